//! `rko load`: stream an image (for an index, the image of one platform) into the local
//! Docker daemon or podman, tagged as asked.

use anyhow::Result;
use clap::Args;

use crate::archive::load::{Tool, load};
use crate::cli::args::{RegistryArgs, SourcesArgs};
use crate::oci::{Platform, tag};

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub sources: SourcesArgs,
    /// A tag for the loaded image, NAME[:TAG]. Repeatable; at least one.
    #[arg(long = "tag", value_name = "NAME[:TAG]", required = true)]
    pub tags: Vec<String>,
    /// For an index: the platform to load (default linux/amd64, else the first).
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Which tool loads the image.
    #[arg(long, value_enum, default_value = "auto")]
    pub tool: Tool,
    /// How to reach the registry of a shallow base's blobs.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(a: LoadArgs) -> Result<()> {
    let tags = tag::parse_tags(&a.tags)?;
    let (artifact, store) = a.sources.artifact(&a.registry)?;
    load(&artifact, &store, &tags, a.platform.as_ref(), a.tool)?;
    for t in &tags {
        crate::cli::stdout::line(t);
    }
    Ok(())
}

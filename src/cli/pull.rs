//! `rko pull`: a base pinned by digest into an OCI layout, shallow unless --eager.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::RegistryArgs;
use crate::oci::{Platform, Reference};
use crate::output::Outputs;
use crate::registry::pull::Puller;
use crate::registry::push::human;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: HOST/REPO@sha256:… (a tag alone needs --allow-tag).
    pub reference: String,
    /// A platform to fetch from an index, os/arch[/variant]. Repeatable; default linux/amd64.
    #[arg(long = "platform")]
    pub platforms: Vec<Platform>,
    /// Also download the layer blobs (for tarball, layout and load outputs).
    #[arg(long)]
    pub eager: bool,
    /// Accept a reference without a digest; the resolved digest is printed to pin it.
    #[arg(long)]
    pub allow_tag: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The OCI layout directory to write.
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run(a: PullArgs) -> Result<()> {
    let r = Reference::parse(&a.reference)?;
    let platforms = if a.platforms.is_empty() {
        vec![Platform::new("linux", "amd64")]
    } else {
        a.platforms.clone()
    };
    let client = a.registry.client()?;
    let mut outputs = Outputs::new();
    let dir = outputs.dir(&a.output)?;
    let pulled = Puller { client: &client }.pull(&r, &platforms, a.allow_tag, a.eager, &dir)?;
    outputs.commit()?;
    if r.digest.is_none() {
        eprintln!(
            "rko: {} resolved to {}; pin it as {}@{}",
            r,
            pulled.digest,
            r.name(),
            pulled.digest
        );
    }
    eprintln!(
        "rko: pulled {} ({}), {} downloaded",
        pulled.digest,
        pulled.media_type,
        human(pulled.bytes_downloaded)
    );
    crate::cli::stdout::line(pulled.digest);
    Ok(())
}

//! `rko pull`: a base pinned by digest into an OCI layout, shallow unless --eager.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::RegistryArgs;
use crate::oci::{Platform, Reference};
use crate::output::Outputs;
use crate::registry::mirrors::Mirrors;
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
    /// Pull through this mirror: HOST[/PATH]=MIRROR_HOST[:PORT][/PATH], the reference's
    /// HOST[/PATH] replaced by the mirror's. Repeatable; tried in order, before the
    /// mirrors of registries.conf ($CONTAINERS_REGISTRIES_CONF or
    /// /etc/containers/registries.conf) and then the origin. The content is checked
    /// against the pinned digest.
    #[arg(long = "mirror", value_name = "HOST=MIRROR")]
    pub mirrors: Vec<String>,
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
    let sources = Mirrors::load(&a.mirrors)?.sources(&r)?;
    let mut registry = a.registry.clone();
    let insecure = sources.iter().filter(|s| s.insecure);
    registry
        .insecure
        .extend(insecure.map(|s| s.reference.registry.clone()));
    let client = registry.client()?;
    let mut outputs = Outputs::new();
    let dir = outputs.dir(&a.output)?;
    let puller = Puller { client: &client };
    let pulled = puller.pull_from(&sources, &platforms, a.allow_tag, a.eager, &dir);
    let pulled = outputs.finish(pulled)?;
    if pulled.from != r.name() {
        eprintln!("rko: pulled {} through {}", r.name(), pulled.from);
    }
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

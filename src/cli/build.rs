//! `rko build`: the one-shot command for people, shaped like `ko build`: layers, image and
//! the asked-for outputs in one process. It prints the image digest.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::build::{Outs, Push, Request, build};
use crate::cli::args::{CompressionArgs, ImageConfigArgs, RegistryArgs};
use crate::image::base::spec::BaseSpec;
use crate::oci::{Platform, json, tag};
use crate::output::Outputs;
use crate::sbom::Format;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Go binary (built with CGO_ENABLED=0 for the static and scratch bases).
    pub binary: PathBuf,
    /// The Go import path of the main package (ko://… accepted).
    #[arg(long)]
    pub import_path: String,
    /// The base: `static` (embedded, the default), `scratch`, or an OCI layout DIR[@sha256:…].
    #[arg(long, default_value = "static")]
    pub base: String,
    /// The image platform (default: linux and the binary's own architecture).
    #[arg(long)]
    pub platform: Option<Platform>,
    /// The kodata directory (default: none; the kodata layer is still written, as by ko).
    #[arg(long)]
    pub kodata: Option<PathBuf>,
    /// A tar of files to add as an extra layer (see `rko layer tar`), below kodata and the
    /// binary, in the order given. Repeatable.
    #[arg(long = "layer", value_name = "IN.tar")]
    pub layers: Vec<PathBuf>,
    /// The file name under /ko-app (default: the import path's last element).
    #[arg(long)]
    pub name: Option<String>,
    /// Accept an executable without Go build info.
    #[arg(long)]
    pub allow_non_go: bool,
    /// Tag for the tarball and layout, NAME[:TAG]. Repeatable.
    #[arg(long = "tag", short = 't', value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Write a tar for `docker load` / `podman load` / `skopeo … oci-archive:`.
    #[arg(long, value_name = "OUT.tar")]
    pub tarball: Option<PathBuf>,
    /// Write an OCI image layout directory.
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// Write the image digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Seconds since the epoch for the kodata files and their history entry.
    #[arg(long, env = "KO_DATA_DATE_EPOCH", value_name = "SECONDS")]
    pub kodata_created: Option<u64>,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub config: ImageConfigArgs,
    /// Push the image, as `ko build` does (needs --repository).
    #[arg(long, requires = "repository")]
    pub push: bool,
    /// Where to push: HOST[:PORT]/REPO, the prefix ko calls KO_DOCKER_REPO; the image's
    /// repository under it follows --naming.
    #[arg(long, env = "KO_DOCKER_REPO")]
    pub repository: Option<String>,
    /// ko's naming strategy for the repository.
    #[arg(long, value_enum, default_value = "md5")]
    pub naming: crate::registry::naming::Naming,
    /// A tag to push. Repeatable; default `latest`, as ko.
    #[arg(long = "push-tag", value_name = "TAG")]
    pub push_tags: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// With --push: put every tag, even one the registry already has on this image (by default each tag
    /// is HEADed first and put only when it names something else).
    #[arg(long)]
    pub force_tags: bool,
    /// The SBOM to make, as ko's --sbom: written to --sbom-dir, and attached to the image
    /// by --push.
    /// Default spdx, as ko; a default SBOM the binary cannot give (no build info) is left
    /// out of a push with a warning, one asked for fails.
    #[arg(long, value_enum)]
    pub sbom: Option<SbomChoice>,
    /// Write the SBOMs to this directory (created if missing), named as ko names them:
    /// `<app>-<os>-<arch>[-<variant>].spdx.json`, `….cyclonedx.json`.
    #[arg(long, value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
    /// Write the image's SLSA v1 provenance (an in-toto Statement) to this file.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// The provenance's builder id (SLSA runDetails.builder.id), a URI naming who built.
    #[arg(long, value_name = "URI", default_value = crate::sbom::provenance::DEFAULT_BUILDER_ID)]
    pub builder_id: String,
    /// With --push: how the SBOMs (--sbom) and the provenance (--provenance) are attached to
    /// the pushed image, after it and its tags: as OCI 1.1 referrers (the registry's
    /// referrers API, else the referrers tag `sha256-<hex>`), as ko's `sha256-<hex>.sbom`
    /// tag (SBOMs only), or not at all.
    #[arg(long, value_enum, default_value = "referrers", env = "RKO_ATTACH")]
    pub attach: crate::registry::attach::AttachMode,
    /// With --push: write the pushed references as JSON, for CI.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
}

/// `--sbom`: ko's values, and `both`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomChoice {
    Spdx,
    Cyclonedx,
    Both,
    None,
}

impl SbomChoice {
    fn formats(self) -> Vec<Format> {
        match self {
            SbomChoice::Spdx => vec![Format::Spdx],
            SbomChoice::Cyclonedx => vec![Format::Cyclonedx],
            SbomChoice::Both => vec![Format::Spdx, Format::Cyclonedx],
            SbomChoice::None => Vec::new(),
        }
    }
}

pub fn run(a: BuildArgs) -> Result<()> {
    let req = Request {
        binary: a.binary.clone(),
        import_path: crate::importpath::strip_scheme(&a.import_path).to_string(),
        base: BaseSpec::parse(&a.base)?,
        base_name: a.config.base_name.clone(),
        platform: a.platform.clone(),
        kodata: a.kodata.clone(),
        kodata_created: a.kodata_created,
        layers: a.layers.clone(),
        name: a.name.clone(),
        allow_non_go: a.allow_non_go,
        compression: a.compression.compression()?,
        threads: a.compression.threads(),
        options: a.config.options()?,
        sbom: a.sbom.unwrap_or(SbomChoice::Spdx).formats(),
        sbom_by_default: a.sbom.is_none() && a.sbom_dir.is_none(),
        builder_id: a.builder_id.clone(),
    };
    let tags = tag::parse_tags(&a.tags)?;
    let push = a.push.then(|| Push {
        repository: a
            .repository
            .clone()
            .expect("clap requires --repository with --push"),
        naming: a.naming,
        tags: a.push_tags.clone(),
        settings: crate::registry::progress::PushSettings {
            force_tags: a.force_tags,
            ..a.registry.settings()
        },
        attach: a.attach,
    });
    let client = || a.registry.client();
    let outs = Outs {
        tags: &tags,
        tarball: a.tarball.clone(),
        layout: a.layout.clone(),
        digest_file: a.digest_file.clone(),
        sbom_dir: a.sbom_dir.clone(),
        provenance: a.provenance.clone(),
        sbom_for_push: true,
        push,
        client: &client,
    };
    let built = build(&req, &outs)?;
    match built.pushed {
        Some(report) => {
            if let Some(p) = &a.image_refs {
                let mut outputs = Outputs::new();
                outputs.write(p, &json::pretty(&report))?;
                outputs.commit()?;
            }
            crate::cli::stdout::line(report.reference)
        }
        None => crate::cli::stdout::line(built.image.digest()),
    }
    Ok(())
}

//! `rko provenance`: SLSA v1 provenance of an image as an in-toto Statement: the base, the
//! binary (hashed whole), the kodata files and rko itself, and who built it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::image_arg;
use crate::image::base::spec::BaseSpec;
use crate::oci::Platform;
use crate::output::Outputs;
use crate::sbom::Image;
use crate::sbom::provenance::{self, ProvenanceInput};

#[derive(Debug, Args)]
pub struct ProvenanceArgs {
    /// The image: its descriptor (`rko image --descriptor-out`) or its digest `sha256:…`.
    #[arg(long, value_name = "DESCRIPTOR.json|sha256:…")]
    pub image: String,
    /// The Go binary in the image (its sha256 is recorded).
    #[arg(long, value_name = "BIN")]
    pub binary: PathBuf,
    /// The Go import path of the binary's main package (ko://… accepted).
    #[arg(long)]
    pub import_path: String,
    /// The image platform, os/arch[/variant] (default: the descriptor's).
    #[arg(long)]
    pub platform: Option<Platform>,
    /// The base's reference as the user named it (e.g. cgr.dev/chainguard/static@sha256:…).
    #[arg(long, value_name = "REF")]
    pub base_ref: Option<String>,
    /// The base as `rko image --base` takes it (`static`, `scratch`, an OCI layout
    /// DIR[@sha256:…]): a layout gives the base manifest's digest.
    #[arg(long, default_value = "static")]
    pub base: String,
    /// The kodata directory: every file is recorded with its sha256.
    #[arg(long, value_name = "DIR")]
    pub kodata: Option<PathBuf>,
    /// IMAGE_PATH=FILE: a kodata file as `rko layer kodata --file` takes it (what a build
    /// system passes). Repeatable.
    #[arg(
        long = "kodata-file",
        value_name = "IMAGE_PATH=FILE",
        conflicts_with = "kodata"
    )]
    pub kodata_files: Vec<String>,
    /// The input tar of an extra layer (`rko layer tar --tar`), in image order: recorded
    /// with its sha256. Repeatable.
    #[arg(long = "layer", value_name = "IN.tar")]
    pub layers: Vec<PathBuf>,
    /// A tag the image gets. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Where the image is pushed, HOST[:PORT]/REPO: the subject's name (default: the
    /// import path's last element).
    #[arg(long, value_name = "HOST[:PORT]/REPO")]
    pub repository: Option<String>,
    /// The builder's id, a URI (SLSA runDetails.builder.id).
    #[arg(long, value_name = "URI")]
    pub builder_id: String,
    /// Where to write the statement.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: PathBuf,
}

pub fn run(a: ProvenanceArgs) -> Result<()> {
    let import_path = crate::importpath::strip_scheme(&a.import_path).to_string();
    crate::importpath::check(&import_path)?;
    provenance::check_builder_id(&a.builder_id)?;
    let (digest, desc_platform) = image_arg(&a.image)?;
    let platform = a.platform.clone().or(desc_platform);
    let spec = BaseSpec::parse(&a.base)?;
    let (base_spec, base_digest) = match &spec {
        BaseSpec::Static => ("static", None),
        BaseSpec::Scratch => ("scratch", None),
        BaseSpec::Layout { .. } => {
            let p = platform.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--base {} is a layout: --platform (or an --image descriptor with a platform) is needed to pick its image",
                    a.base
                )
            })?;
            ("layout", spec.resolve(&p, None)?.pinned_digest)
        }
    };
    let base_digest = base_digest.or_else(|| {
        a.base_ref
            .as_deref()
            .and_then(|r| r.rsplit_once('@'))
            .and_then(|(_, d)| d.parse().ok())
    });
    let kodata = match &a.kodata {
        Some(d) => provenance::kodata_files(
            d,
            platform
                .as_ref()
                .is_some_and(crate::layer::binary::is_windows),
        )?,
        None => provenance::kodata_pairs(&a.kodata_files)?,
    };
    let input = ProvenanceInput {
        image: Image {
            digest,
            repository: a.repository.clone(),
            import_path,
        },
        platform: platform.map(|p| p.to_string()),
        base_ref: a.base_ref.clone(),
        base_digest,
        base_spec: base_spec.to_string(),
        tags: a.tags.clone(),
        binary_digest: provenance::hash_file(&a.binary)?,
        kodata,
        layers: provenance::layer_tars(&a.layers)?,
        builder_id: a.builder_id.clone(),
    };
    let mut outputs = Outputs::new();
    outputs.write(&a.output, &provenance::statement(&input))?;
    outputs.commit()
}

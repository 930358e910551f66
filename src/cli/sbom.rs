//! `rko sbom`: the SBOM of an image, SPDX 2.3 or CycloneDX 1.6 JSON, from the Go build info
//! of the binary in it. Reads the binary's headers and build info block only.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::image_arg;
use crate::output::Outputs;
use crate::sbom::{self, Format, GoParts, Image, SbomInput};

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The Go binary in the image.
    #[arg(long, value_name = "BIN")]
    pub binary: PathBuf,
    /// The Go import path of the binary's main package (ko://… accepted); names the image
    /// when --repository does not.
    #[arg(long)]
    pub import_path: String,
    /// The image: its descriptor (`rko image --descriptor-out`) or its digest `sha256:…`.
    #[arg(long, value_name = "DESCRIPTOR.json|sha256:…")]
    pub image: String,
    /// The image config (`rko image --config-out`): its `created` dates the SBOM when
    /// SOURCE_DATE_EPOCH is not set.
    #[arg(long, value_name = "CONFIG.json")]
    pub image_config: Option<PathBuf>,
    /// Where the image is pushed, HOST[:PORT]/REPO: the purl's repository_url, and the name.
    #[arg(long, value_name = "HOST[:PORT]/REPO")]
    pub repository: Option<String>,
    /// The SBOM format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write the SBOM.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: PathBuf,
    /// Accept a binary without Go build info: the SBOM then lists only the image.
    #[arg(long)]
    pub allow_non_go: bool,
    /// Seconds since the epoch for the SBOM's creation time (default: the image config's
    /// `created`, else 1970-01-01T00:00:00Z).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub created: Option<u64>,
    /// Test hook: read the build info from this `go version -m` output instead of the binary.
    #[arg(long, hide = true, value_name = "FILE")]
    pub buildinfo_text: Option<PathBuf>,
}

pub fn run(a: SbomArgs) -> Result<()> {
    let import_path = crate::importpath::strip_scheme(&a.import_path).to_string();
    crate::importpath::check(&import_path)?;
    let (digest, _) = image_arg(&a.image)?;
    let config = a.image_config.as_ref().map(fs_err::read).transpose()?;
    let go = match &a.buildinfo_text {
        Some(t) => Some(GoParts::new(&sbom::parse_go_version_m(
            t,
            &fs_err::read_to_string(t)?,
        )?)),
        None => sbom::go_parts(&a.binary, a.allow_non_go)?,
    };
    let input = SbomInput {
        image: Image {
            digest,
            repository: a.repository.clone(),
            import_path,
        },
        go,
        created: sbom::created(a.created, config.as_deref()),
    };
    let mut outputs = Outputs::new();
    outputs.write(&a.output, &sbom::sbom(a.format, &input))?;
    outputs.commit()
}

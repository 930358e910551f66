//! `rko build`: the one-shot command for people, shaped like `ko build`: layers, image and
//! the asked-for outputs in one process. It prints the image digest.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::build::{Outs, Push, Request, build_all};
use crate::cli::args::{CapabilityArgs, CompressionArgs, ImageConfigArgs, RegistryArgs};
use crate::image::base::spec::BaseSpec;
use crate::oci::{Platform, json, tag};
use crate::output::Outputs;
use crate::sbom::Format;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Go binary (built with CGO_ENABLED=0 for the static and scratch bases), or a Go
    /// main package to build from source as `ko build` does: ./cmd/app, its import path, or
    /// ko://IMPORT/PATH (with `go build -trimpath`, CGO_ENABLED=0 unless set, GOOS/GOARCH
    /// from --platform, default linux/amd64; its kodata/ directory is the kodata).
    #[arg(value_name = "BINARY|PACKAGE")]
    pub binary: PathBuf,
    /// The Go import path of the main package (ko://… accepted); found by `go list` when
    /// building from source.
    #[arg(long)]
    pub import_path: Option<String>,
    /// The Go toolchain for building from source (default: the first `go` on PATH).
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,
    /// The base: `static` (embedded, the default), `scratch`, an OCI layout DIR[@sha256:…],
    /// or a registry reference HOST/REPO[:TAG]@sha256:… (pulled shallow once into
    /// $XDG_CACHE_HOME/rko, so later builds need no network; a tag alone is resolved and
    /// its digest printed).
    #[arg(long, default_value = "static", env = "KO_DEFAULTBASEIMAGE")]
    pub base: String,
    /// The image platform (default: linux and the binary's own architecture). Building from
    /// source, a comma-separated list (linux/amd64,linux/arm64) builds each in parallel and
    /// makes an index of the images, as `ko build --platform` does.
    #[arg(long, value_name = "OS/ARCH[/VARIANT][,…]", value_parser = platform_list)]
    pub platform: Option<PlatformList>,
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
    #[command(flatten)]
    pub capabilities: CapabilityArgs,
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
    // Binaries built from source live here until the image is made.
    let scratch = tempfile::Builder::new().prefix("rko-go-").tempdir()?;
    let mut reqs = Vec::new();
    for source in sources(&a, scratch.path())? {
        let (base, base_name) = base(&a, &source)?;
        reqs.push(Request {
            binary: source.binary.clone(),
            import_path: source.import_path.clone(),
            base,
            base_name,
            platform: source.platform.clone(),
            kodata: source.kodata.clone(),
            kodata_created: a.kodata_created,
            layers: a.layers.clone(),
            name: a.name.clone(),
            allow_non_go: a.allow_non_go,
            capabilities: a.capabilities.caps()?,
            compression: a.compression.compression()?,
            threads: a.compression.threads(),
            options: a.config.options()?,
            sbom: a.sbom.unwrap_or(SbomChoice::Spdx).formats(),
            sbom_by_default: a.sbom.is_none() && a.sbom_dir.is_none(),
            builder_id: a.builder_id.clone(),
        });
    }
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
    let built = build_all(&reqs, &outs)?;
    match built.pushed {
        Some(report) => {
            if let Some(p) = &a.image_refs {
                let mut outputs = Outputs::new();
                outputs.write(p, &json::pretty(&report))?;
                outputs.commit()?;
            }
            crate::cli::stdout::line(report.reference)
        }
        None => crate::cli::stdout::line(built.digest),
    }
    Ok(())
}

/// `--base`: a built-in base or a layout as given, or a registry reference pulled into the
/// base cache (named, unless --base-name says otherwise, as written, for ko's base
/// annotations).
fn base(a: &BuildArgs, source: &Source) -> Result<(BaseSpec, Option<String>)> {
    if !crate::registry::base_cache::is_registry_reference(&a.base) {
        return Ok((BaseSpec::parse(&a.base)?, a.config.base_name.clone()));
    }
    let r = crate::oci::Reference::parse(&a.base)?;
    let platform = match &source.platform {
        Some(p) => p.clone(),
        None => crate::layer::binary::platform_of(&source.binary)?,
    };
    let client = a.registry.client()?;
    let (dir, digest) = crate::registry::base_cache::cached_base(&client, &r, &platform)?;
    let spec = BaseSpec::Layout {
        dir,
        digest: Some(digest),
    };
    let name = a.config.base_name.clone().unwrap_or_else(|| a.base.clone());
    Ok((spec, Some(name)))
}

/// The binary the image is made of, with its import path, platform and kodata: the given
/// binary, or the package built from source (its directory's kodata/ by default, as ko).
struct Source {
    binary: PathBuf,
    import_path: String,
    platform: Option<Platform>,
    kodata: Option<PathBuf>,
}

/// `--platform`'s platforms, in order.
#[derive(Clone, Debug)]
pub struct PlatformList(Vec<Platform>);

/// `--platform`'s value: one platform or a comma-separated list of different ones (a bad
/// one is a usage error, as for any flag).
fn platform_list(list: &str) -> Result<PlatformList, String> {
    let mut out: Vec<Platform> = Vec::new();
    for p in list.split(',').map(str::trim) {
        let platform: Platform = p.parse().map_err(|e| format!("{e}"))?;
        if out.contains(&platform) {
            return Err(format!("{p} is named twice; name each platform once"));
        }
        out.push(platform);
    }
    Ok(PlatformList(out))
}

/// `--platform`'s list (empty when not given).
fn platforms(a: &BuildArgs) -> Result<Vec<Platform>> {
    Ok(a.platform.clone().map(|l| l.0).unwrap_or_default())
}

/// What the images are made of: the given binary (one platform), or the package built from
/// source once per platform, the builds running in parallel.
fn sources(a: &BuildArgs, scratch: &std::path::Path) -> Result<Vec<Source>> {
    use crate::gobuild::{self, Target};
    let given_ip = a
        .import_path
        .as_deref()
        .map(|ip| crate::importpath::strip_scheme(ip).to_string());
    let platforms = platforms(a)?;
    match Target::of(&a.binary) {
        Target::Binary(binary) => {
            if platforms.len() > 1 {
                anyhow::bail!(
                    "{} is one binary, for one platform, but --platform names {}; pass the \
                     package (./cmd/app) to build it from source for each, or one platform",
                    a.binary.display(),
                    platforms.len()
                );
            }
            Ok(vec![Source {
                binary,
                import_path: given_ip.ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} is a binary, so rko needs its import path: expected \
                         --import-path (e.g. example.com/app/cmd/app), which names \
                         /ko-app/<name> and the repository; or pass the package (./cmd/app) \
                         to build it from source",
                        a.binary.display()
                    )
                })?,
                platform: platforms.into_iter().next(),
                kodata: a.kodata.clone(),
            }])
        }
        Target::Package(package) => {
            let go = gobuild::go_tool(a.go.as_deref())?;
            let (ip, dir) = gobuild::main_package(&go, &package)?;
            if let Some(given) = given_ip.filter(|g| *g != ip) {
                anyhow::bail!(
                    "--import-path {given} does not match the package {package}, whose import \
                     path is {ip}; drop --import-path when building from source"
                );
            }
            let platforms = match platforms.is_empty() {
                true => vec![Platform::new("linux", "amd64")],
                false => platforms,
            };
            let kodata = a
                .kodata
                .clone()
                .or_else(|| Some(dir.join("kodata")).filter(|k| k.is_dir()));
            let name = crate::layer::binary::app_filename(&ip);
            let indexed: Vec<(usize, &Platform)> = platforms.iter().enumerate().collect();
            crate::pool::pool(indexed.len(), &indexed, |&(i, platform)| {
                let binary = scratch.join(format!("{i}")).join(&name);
                fs_err::create_dir_all(binary.parent().expect("a parent"))?;
                gobuild::build(&go, &package, platform, &binary)?;
                Ok(Source {
                    binary,
                    import_path: ip.clone(),
                    platform: Some(platform.clone()),
                    kodata: kodata.clone(),
                })
            })
        }
    }
}

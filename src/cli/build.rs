//! `rko build`: the one-shot command for people, shaped like `ko build`: layers, image and
//! the asked-for outputs in one process. It prints the image digest.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::build::{Outs, Push, Request, build_all};
use crate::cli::args::{CapabilityArgs, CompressionArgs, ImageConfigArgs, RegistryArgs};
use crate::gobuild::KoBuild;
use crate::image::base::spec::BaseSpec;
use crate::koconfig::Loaded;
use crate::oci::{Platform, Sha256Digest, json, tag};
use crate::output::Outputs;
use crate::sbom::Format;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Go binary (built with CGO_ENABLED=0 for the static and scratch bases), or a Go
    /// main package to build from source as `ko build` does: ./cmd/app, its import path, or
    /// ko://IMPORT/PATH (with `go build -trimpath`, CGO_ENABLED=0 unless set, GOOS/GOARCH
    /// from --platform, default linux/amd64; its kodata/ directory is the kodata). Building
    /// from source reads ko's .ko.yaml as `ko build` does ($KO_CONFIG_PATH, a file or a
    /// directory holding .ko.yaml, else ./.ko.yaml): its build entry for the package (or
    /// defaults) adds env, flags and ldflags, with ko's templates {{.Env.NAME}},
    /// {{.GoEnv.NAME}}, {{.Git.ShortCommit}} (and ko's other .Git fields), {{.Date}},
    /// {{.Timestamp}}.
    #[arg(value_name = "BINARY|PACKAGE")]
    pub binary: PathBuf,
    /// The Go import path of the main package (ko://… accepted); found by `go list` when
    /// building from source.
    #[arg(long)]
    pub import_path: Option<String>,
    /// The Go toolchain for building from source (default: the first `go` on PATH).
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,
    /// The base: `static` (embedded), `scratch`, an OCI layout DIR[@sha256:…], or a
    /// registry reference HOST/REPO[:TAG]@sha256:… (pulled shallow once into
    /// $XDG_CACHE_HOME/rko, so later builds need no network; a tag alone is resolved and
    /// its digest printed). Default, in ko's order: .ko.yaml's baseImageOverrides for the
    /// import path, $KO_DEFAULTBASEIMAGE, .ko.yaml's defaultBaseImage, `static`.
    #[arg(long)]
    pub base: Option<String>,
    /// The image platform (default: .ko.yaml's defaultPlatforms when building from source,
    /// else linux/amd64 from source, or linux and the binary's own architecture). Building
    /// from source, a comma-separated list (linux/amd64,linux/arm64) builds each in parallel
    /// and makes an index of the images, as `ko build --platform` does; `all` builds every
    /// platform of the base's index (less Docker's unknown/unknown attestation entries), or
    /// the one platform of a base that is a single image, as ko does (not with the built-in
    /// static and scratch bases, which have no platform list: name the platforms).
    #[arg(long, value_name = "all|OS/ARCH[/VARIANT][,…]", value_parser = platform_list)]
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
    /// ko's debug image (`ko build --debug`): Delve at /ko-app/dlv, and the app started
    /// under `dlv exec --listen=:40000 --headless --log --accept-multiclient
    /// --api-version=2 --`; a package is built with `-gcflags=all=-N -l`. For linux/amd64
    /// and linux/arm64 (other platforms are built without Delve, as by ko).
    #[arg(long)]
    pub debug: bool,
    /// The Delve binary for --debug (default: `dlv` on PATH). It must run on the image's
    /// base and platform: a static one (CGO_ENABLED=0) for the static and scratch bases.
    #[arg(long, value_name = "PATH", requires = "debug")]
    pub dlv: Option<PathBuf>,
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

/// `--dlv`, else `dlv` on PATH; a clear error without one.
fn delve(a: &BuildArgs) -> Result<Option<PathBuf>> {
    if !a.debug {
        return Ok(None);
    }
    if let Some(p) = &a.dlv {
        anyhow::ensure!(
            p.is_file(),
            "--dlv {}: expected the Delve binary (a file), found nothing there",
            p.display()
        );
        return Ok(Some(p.clone()));
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("dlv"))
        .find(|p| p.is_file());
    match on_path {
        Some(p) => Ok(Some(p)),
        None => anyhow::bail!(
            "--debug needs Delve: expected `dlv` on PATH or --dlv PATH, found neither; install \
             a static one for the image's platform (CGO_ENABLED=0 go install \
             github.com/go-delve/delve/cmd/dlv@latest) and pass --dlv"
        ),
    }
}

pub fn run(a: BuildArgs) -> Result<()> {
    let ko = Loaded::from_env()?;
    let dlv = delve(&a)?;
    // Binaries built from source live here until the image is made.
    let scratch = tempfile::Builder::new().prefix("rko-go-").tempdir()?;
    let mut reqs = Vec::new();
    for source in sources(&a, &ko, scratch.path())? {
        let (base, base_name) = base(&a, &ko, &source)?;
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
            // --linux-capability over the .ko.yaml build entry's, as flags over the file.
            capabilities: match a.capabilities.linux_capabilities.is_empty() {
                true => source.capabilities,
                false => a.capabilities.caps()?,
            },
            compression: a.compression.compression()?,
            threads: a.compression.threads(),
            options: a.config.options()?,
            sbom: a.sbom.unwrap_or(SbomChoice::Spdx).formats(),
            sbom_by_default: a.sbom.is_none() && a.sbom_dir.is_none(),
            builder_id: a.builder_id.clone(),
            delve: dlv.clone(),
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

/// The base for `import_path`: `--base`, else as ko picks it ([`Loaded::base_for`]).
fn base_for(a: &BuildArgs, ko: &Loaded, import_path: &str) -> String {
    a.base.clone().unwrap_or_else(|| ko.base_for(import_path))
}

/// `--base`: a built-in base or a layout as given, or a registry reference pulled into the
/// base cache (named, unless --base-name says otherwise, as written, for ko's base
/// annotations).
fn base(a: &BuildArgs, ko: &Loaded, source: &Source) -> Result<(BaseSpec, Option<String>)> {
    let base = base_for(a, ko, &source.import_path);
    if !crate::registry::base_cache::is_registry_reference(&base) {
        return Ok((BaseSpec::parse(&base)?, a.config.base_name.clone()));
    }
    let mut r = crate::oci::Reference::parse(&base)?;
    if let Some(d) = source.base_pin {
        r.digest = Some(d);
    }
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
    let name = a.config.base_name.clone().unwrap_or(base);
    Ok((spec, Some(name)))
}

/// The binary the image is made of, with its import path, platform and kodata: the given
/// binary, or the package built from source (its directory's kodata/ by default, as ko).
struct Source {
    binary: PathBuf,
    import_path: String,
    platform: Option<Platform>,
    kodata: Option<PathBuf>,
    /// The digest `--platform all` read the base's platforms from: the base by reference
    /// is pulled at it, so a tag that moves meanwhile changes nothing.
    base_pin: Option<Sha256Digest>,
    /// The `.ko.yaml` build entry's `linux_capabilities`.
    capabilities: Option<crate::layer::caps::FileCaps>,
}

/// `--platform`'s value (or .ko.yaml's defaultPlatforms): `all`, or platforms in order.
#[derive(Clone, Debug)]
pub enum PlatformList {
    /// Every platform of the base, as ko's `--platform=all`.
    All,
    List(Vec<Platform>),
}

/// `--platform`'s value: `all`, or one platform or a comma-separated list of different
/// ones (a bad one is a usage error, as for any flag).
fn platform_list(list: &str) -> Result<PlatformList, String> {
    platforms_of(&list.split(',').map(str::trim).collect::<Vec<_>>())
}

/// The platforms named, `all` alone.
fn platforms_of(names: &[&str]) -> Result<PlatformList, String> {
    if names.contains(&"all") {
        return match names {
            ["all"] => Ok(PlatformList::All),
            _ => Err(format!(
                "`all` is named with other platforms ({}); expected `all` alone (every \
                 platform of the base) or a list of platforms",
                names.join(",")
            )),
        };
    }
    let mut out: Vec<Platform> = Vec::new();
    for p in names {
        let platform: Platform = p.parse().map_err(|e| format!("{e}"))?;
        if out.contains(&platform) {
            return Err(format!("{p} is named twice; name each platform once"));
        }
        out.push(platform);
    }
    Ok(PlatformList::List(out))
}

/// The platforms `all` means for the base `base` (as `--base` takes it), as ko takes them
/// from its base: those of the base's index, or the one of a single-image base; for a
/// base in a registry, also the digest read, for every platform's image to be made of.
fn all_platforms(a: &BuildArgs, base: &str) -> Result<(Vec<Platform>, Option<Sha256Digest>)> {
    use crate::registry::base_cache;
    if base_cache::is_registry_reference(base) {
        let r = crate::oci::Reference::parse(base)?;
        let (platforms, digest) = base_cache::all_platforms(&a.registry.client()?, &r)?;
        return Ok((platforms, Some(digest)));
    }
    match BaseSpec::parse(base)? {
        BaseSpec::Layout { dir, digest } => Ok((
            crate::image::base::layout::all_platforms(&dir, digest.as_ref())?,
            None,
        )),
        BaseSpec::Static | BaseSpec::Scratch => anyhow::bail!(
            "--platform all builds every platform of the base's index, but the base is the \
             built-in {base}, which rko makes for any platform and which has no list of its \
             own; name the platforms (--platform linux/amd64,linux/arm64), or a base by \
             reference whose index lists them (--base, defaultBaseImage in .ko.yaml)"
        ),
    }
}

/// What the images are made of: the given binary (one platform), or the package built from
/// source once per platform, the builds running in parallel.
fn sources(a: &BuildArgs, ko: &Loaded, scratch: &std::path::Path) -> Result<Vec<Source>> {
    use crate::gobuild::{self, Target};
    let given_ip = a
        .import_path
        .as_deref()
        .map(|ip| crate::importpath::strip_scheme(ip).to_string());
    match Target::of(&a.binary) {
        Target::Binary(binary) => {
            if let Some(w) = ko.unused_for_binary(&binary) {
                eprintln!("rko: warning: {w}");
            }
            // A binary has one platform: .ko.yaml's defaultPlatforms are for building.
            let platforms = match &a.platform {
                None => Vec::new(),
                Some(PlatformList::List(l)) => l.clone(),
                Some(PlatformList::All) => anyhow::bail!(
                    "--platform all builds every platform of the base from source, but {} \
                     is one binary, for one platform; pass the package (./cmd/app) instead, \
                     or the binary's platform",
                    a.binary.display()
                ),
            };
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
                base_pin: None,
                capabilities: None,
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
            let spec = match &a.platform {
                Some(p) => p.clone(),
                None => {
                    let names: Vec<&str> = ko
                        .config
                        .default_platforms
                        .iter()
                        .flat_map(|p| p.split(','))
                        .map(str::trim)
                        .collect();
                    platforms_of(&names)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", ko.source_of("defaultPlatforms")))?
                }
            };
            let (platforms, base_pin) = match spec {
                PlatformList::All => all_platforms(a, &base_for(a, ko, &ip))?,
                PlatformList::List(l) if l.is_empty() => {
                    (vec![Platform::new("linux", "amd64")], None)
                }
                PlatformList::List(l) => (l, None),
            };
            let go_flags = KoBuild::for_package(ko, &go, &ip, a.config.created)?;
            let kodata = a
                .kodata
                .clone()
                .or_else(|| Some(dir.join("kodata")).filter(|k| k.is_dir()));
            let name = crate::layer::binary::app_filename(&ip);
            let indexed: Vec<(usize, &Platform)> = platforms.iter().enumerate().collect();
            crate::pool::pool(indexed.len(), &indexed, |&(i, platform)| {
                let binary = scratch.join(format!("{i}")).join(&name);
                fs_err::create_dir_all(binary.parent().expect("a parent"))?;
                let mut flags = go_flags.expand(platform)?;
                if a.debug {
                    // ko's debug build: no optimizations, no inlining, for Delve.
                    flags
                        .flags
                        .extend(["-gcflags".to_string(), "all=-N -l".to_string()]);
                }
                gobuild::build(&go, &package, platform, &binary, &flags)?;
                Ok(Source {
                    binary,
                    import_path: ip.clone(),
                    platform: Some(platform.clone()),
                    kodata: kodata.clone(),
                    base_pin,
                    capabilities: go_flags.capabilities,
                })
            })
        }
    }
}

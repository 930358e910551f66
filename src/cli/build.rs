//! `rko build`: the one-shot command for people, shaped like `ko build`: layers, image and
//! the asked-for outputs in one process. It prints the image digest.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::base::BaseSpec;
use crate::cli::{CompressionArgs, ImageConfigArgs};
use crate::image::archive::{Artifact, BlobStore};
use crate::layer::binary::BinaryLayer;
use crate::output::Outputs;
use crate::platform::Platform;
use crate::reference::parse_tag;

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
    pub registry: crate::cli::push::RegistryArgs,
    /// With --push: write the pushed references as JSON, for CI.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
}

pub fn run(a: BuildArgs) -> Result<()> {
    let import_path = crate::importpath::strip_scheme(&a.import_path);
    crate::importpath::check(import_path)?;
    let tags = a
        .tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    let platform = match &a.platform {
        Some(p) => p.clone(),
        None => platform_of(&a.binary)?,
    };
    let spec = BaseSpec::parse(&a.base)?;
    let base = spec.resolve(&platform, a.config.base_name.as_deref())?;
    let compression = a.compression.compression()?;
    let threads = a.compression.threads();

    // Layers go to a scratch directory beside nothing the user sees; removed on return.
    let scratch = tempfile::Builder::new()
        .prefix("rko-build-")
        .tempdir()
        .context("creating a temporary directory")?;
    let kodata_blob = scratch.path().join("kodata.layer");
    let binary_blob = scratch.path().join("binary.layer");

    let tree = crate::cli::layer::kodata_tree(a.kodata.as_deref(), &[], None)?;
    let kodata_desc = {
        let f = std::io::BufWriter::new(fs_err::File::create(&kodata_blob)?);
        tree.write_layer(f, import_path, a.kodata_created, &compression, threads)?
    };
    let binary_desc = {
        let layer = BinaryLayer {
            binary: &a.binary,
            import_path,
            name: a.name.as_deref(),
            platform: &platform,
            allow_non_go: a.allow_non_go,
            compression: &compression,
            threads,
        };
        layer.write(std::io::BufWriter::new(fs_err::File::create(&binary_blob)?))?
    };

    let built = crate::image::assemble(
        &base,
        &[kodata_desc.clone(), binary_desc.clone()],
        &a.config.options()?,
    )?;

    let mut outputs = Outputs::new();
    let mut pushed = None;
    if a.tarball.is_some() || a.layout.is_some() || a.push {
        let mut store = BlobStore::default();
        let (manifest_file, config_file) = (
            scratch.path().join("manifest.json"),
            scratch.path().join("config.json"),
        );
        fs_err::write(&manifest_file, &built.manifest)?;
        fs_err::write(&config_file, &built.config)?;
        store.add_path(manifest_file)?;
        store.add_path(config_file)?;
        store.add_file(kodata_desc.digest, kodata_blob.clone());
        store.add_file(binary_desc.digest, binary_blob.clone());
        if let Some(d) = &base.blob_dir {
            store.add_dir(d.clone());
        }
        if a.tarball.is_some() || a.layout.is_some() {
            a.registry.connect(&mut store)?;
        }
        let artifact = Artifact::collect(built.descriptor.clone(), &store)?;
        if let Some(t) = &a.tarball {
            let f = outputs.file(t)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
            artifact.write_tarball(&store, &tags, None, &mut w)?;
            std::io::Write::flush(&mut w)?;
        }
        if let Some(l) = &a.layout {
            let dir = outputs.dir(l)?;
            artifact.write_layout(&store, &tags, &dir)?;
        }
        if a.push {
            let prefix = a
                .repository
                .as_deref()
                .expect("clap requires --repository with --push");
            let repository = crate::registry::naming::repository(prefix, import_path, a.naming);
            let push_tags = if a.push_tags.is_empty() {
                vec!["latest".to_string()]
            } else {
                a.push_tags.clone()
            };
            let pm = artifact.push_manifest(&store, &repository, &push_tags)?;
            let report = crate::cli::push::push(&pm, &a.registry)?;
            if let Some(p) = &a.image_refs {
                crate::cli::push::write_image_refs(p, &report)?;
            }
            pushed = Some(report.reference);
        }
    }
    if let Some(p) = &a.digest_file {
        crate::cli::write_digest(&mut outputs, p, &built.digest())?;
    }
    outputs.commit()?;
    match pushed {
        Some(reference) => crate::cli::outln!("{reference}"),
        None => crate::cli::outln!("{}", built.digest()),
    }
    Ok(())
}

/// linux (or the binary's OS) and the binary's own architecture.
fn platform_of(binary: &std::path::Path) -> Result<Platform> {
    let mut head = vec![0u8; 4096];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(binary).map_err(|source| {
            crate::layer::binary::BinaryError::Unreadable {
                path: binary.to_path_buf(),
                source,
            }
        })?;
        let mut n = 0;
        while n < head.len() {
            let k = f.read(&mut head[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    match crate::buildinfo::sniff(&head[..n]) {
        Some(crate::buildinfo::ExecutableKind {
            format,
            arch: Some(arch),
        }) => Ok(Platform::new(format.os_hint(), arch)),
        // Let the layer report what the file is.
        _ => Ok(Platform::new("linux", "amd64")),
    }
}

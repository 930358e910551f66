//! Flag groups several subcommands share, and the parsing of flag values into library
//! types: compression, image config options, registry access, and the blob sources of an
//! image or index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

use crate::archive::{Artifact, BlobStore};
use crate::image::ImageOptions;
use crate::layer::{Algorithm, Compression, LayerDescriptor};
use crate::oci::{Descriptor, TagRef, tag};
use crate::registry::client::{Client, ClientOptions};
use crate::registry::progress::PushSettings;
use crate::registry::pull::RegistryBlobs;

/// Compression flags shared by the layer-making commands.
#[derive(Debug, Clone, Args)]
pub struct CompressionArgs {
    /// Layer compression. gzip (libdeflate, ko's level 1 by default) or zstd.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Algorithm,
    /// Compression level (gzip 1-12, zstd 1-19); the default is gzip 1, zstd 3.
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// Compression threads. The output bytes do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl CompressionArgs {
    pub fn compression(&self) -> Result<Compression> {
        Ok(Compression::new(self.compression, self.compression_level)?)
    }

    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(crate::layer::default_threads)
            .max(1)
    }
}

/// Options that change the image config or manifest, shared by `image` and `build`.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageConfigArgs {
    /// Seconds since the epoch for the config's `created` (default: the base's).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub created: Option<u64>,
    /// Set an environment variable (KEY=VALUE), replacing the base's value. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Add a config label (KEY=VALUE). Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Add a manifest annotation (KEY=VALUE). Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// The user to run as (default: the base's; 65532 for the static base).
    #[arg(long)]
    pub user: Option<String>,
    /// The working directory.
    #[arg(long)]
    pub workdir: Option<String>,
    /// Replace ko's entrypoint (`/ko-app/<name>`): one argument per flag.
    #[arg(long = "entrypoint", value_name = "ARG")]
    pub entrypoint: Vec<String>,
    /// Set the command (arguments to the entrypoint): one argument per flag.
    #[arg(long = "cmd", value_name = "ARG")]
    pub cmd: Vec<String>,
    /// Expose a port (PORT[/tcp|udp|sctp]). Repeatable.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<String>,
    /// The base's name for the org.opencontainers.image.base.name annotation.
    #[arg(long)]
    pub base_name: Option<String>,
}

impl ImageConfigArgs {
    pub fn options(&self) -> Result<ImageOptions> {
        Ok(ImageOptions {
            created: self.created,
            env: self.env.clone(),
            labels: key_values(&self.labels, "--label")?,
            annotations: key_values(&self.annotations, "--annotation")?,
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            entrypoint: (!self.entrypoint.is_empty()).then(|| self.entrypoint.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            exposed_ports: self.ports.clone(),
        })
    }
}

/// Flags for reaching registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP or unverified TLS. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// An extra CA certificate (PEM) to trust for TLS.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Attempts per request and per blob on connection errors, 5xx and 429.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Upload blobs larger than this many bytes in chunks of that size (for slow or flaky
    /// links); by default every blob goes in one streamed PUT.
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
    /// Seconds to wait for a registry to send (or take) the next bytes before giving up on
    /// a stalled connection: an idle timeout per read and write, not a deadline, so a large
    /// blob takes as long as it keeps moving. 0 waits forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub registry_timeout: u64,
}

impl RegistryArgs {
    pub fn client(&self) -> Result<Client> {
        Client::new(ClientOptions {
            insecure: self.insecure.clone(),
            ca_file: self.ca_file.as_deref().map(user_path),
            attempts: self.attempts,
            idle_timeout: (self.registry_timeout > 0)
                .then(|| std::time::Duration::from_secs(self.registry_timeout)),
        })
    }

    /// Lets `store` read the blobs only a registry has (a shallow base's layers).
    pub fn connect(&self, store: &mut BlobStore) -> Result<()> {
        if store.has_remote() {
            store.set_fetcher(Box::new(RegistryBlobs(self.client()?)));
        }
        Ok(())
    }

    pub fn settings(&self) -> PushSettings {
        PushSettings {
            jobs: self.jobs,
            attempts: self.attempts,
            chunk_size: self.chunk_size,
            force_tags: false,
        }
    }
}

/// An image or index and the places its blobs are.
#[derive(Debug, Args)]
pub struct SourcesArgs {
    /// The image or index descriptor (from `rko image` / `rko index --descriptor-out`).
    #[arg(long)]
    pub root: PathBuf,
    /// A blob file: a manifest, index or config JSON. Repeatable.
    #[arg(long = "blob", value_name = "FILE")]
    pub blobs: Vec<PathBuf>,
    /// A layer: DESCRIPTOR.json=BLOB, the outputs of `rko layer`. Repeatable.
    #[arg(long = "layer", value_name = "DESCRIPTOR.json=BLOB")]
    pub layers: Vec<String>,
    /// A directory holding blobs/sha256/… (an OCI layout, e.g. the base's). Repeatable.
    #[arg(long = "blobs", value_name = "DIR")]
    pub blob_dirs: Vec<PathBuf>,
}

impl SourcesArgs {
    /// The root descriptor and a store of every blob source given.
    pub fn store(&self) -> Result<(Descriptor, BlobStore)> {
        let root = Descriptor::read_file(&self.root)?;
        let mut store = BlobStore::default();
        for b in &self.blobs {
            store.add_path(b.clone())?;
        }
        for l in &self.layers {
            let (desc, blob) = parse_layer_pair(l)?;
            store.add_file(LayerDescriptor::read(&desc)?.digest, blob);
        }
        for d in &self.blob_dirs {
            store.add_dir(d.clone())?;
        }
        Ok((root, store))
    }

    /// The artifact with all its blobs, the store able to reach registries as `registry`
    /// says.
    pub fn artifact(&self, registry: &RegistryArgs) -> Result<(Artifact, BlobStore)> {
        let (root, mut store) = self.store()?;
        registry.connect(&mut store)?;
        Ok((Artifact::collect(root, &store)?, store))
    }
}

/// What the tarball and layout commands share: the image, its tags, registry access.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub sources: SourcesArgs,
    /// A tag, NAME[:TAG], recorded in index.json (and for `docker load`). Repeatable.
    #[arg(long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// How to reach the registry of a shallow base's blobs.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl ArchiveArgs {
    pub fn load(&self) -> Result<(Artifact, BlobStore, Vec<TagRef>)> {
        let tags = tag::parse_tags(&self.tags)?;
        let (artifact, store) = self.sources.artifact(&self.registry)?;
        Ok((artifact, store, tags))
    }
}

/// Parses `KEY=VALUE` flags into a sorted map.
pub fn key_values(items: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("invalid {flag} {it:?}: expected KEY=VALUE with a non-empty KEY"),
        }
    }
    Ok(out)
}

/// `DESC.json=BLOB` pairs.
pub fn parse_layer_pair(s: &str) -> Result<(PathBuf, PathBuf)> {
    match s.split_once('=') {
        Some((d, b)) if !d.is_empty() && !b.is_empty() => Ok((PathBuf::from(d), PathBuf::from(b))),
        _ => bail!(
            "invalid --layer {s:?}: expected DESCRIPTOR.json=BLOB (the two outputs of `rko layer`)"
        ),
    }
}

/// A path the user typed: under `bazel run` (which runs in the runfiles tree and sets
/// BUILD_WORKING_DIRECTORY) a relative one is relative to where the user ran bazel.
pub fn user_path(p: &Path) -> PathBuf {
    match std::env::var_os("BUILD_WORKING_DIRECTORY") {
        Some(dir) if p.is_relative() && !dir.is_empty() => PathBuf::from(dir).join(p),
        _ => p.to_path_buf(),
    }
}

/// Writes a digest file: `sha256:<hex>`, no newline (as rules_oci and ko's --image-refs).
pub fn write_digest(
    outputs: &mut crate::output::Outputs,
    path: &Path,
    digest: &crate::oci::Sha256Digest,
) -> Result<()> {
    outputs.write(path, digest.to_string().as_bytes())
}

/// What `--image` names for `rko sbom` and `rko provenance`: a descriptor file (from
/// `rko image --descriptor-out`), or a digest `sha256:…`. Gives the digest and the
/// descriptor's platform, if it has one.
pub fn image_arg(s: &str) -> Result<(crate::oci::Sha256Digest, Option<crate::oci::Platform>)> {
    if s.starts_with("sha256:") {
        return Ok((s.parse()?, None));
    }
    let d = Descriptor::read_file(&user_path(Path::new(s)))?;
    Ok((d.digest, d.platform))
}

/// `--linux-capability`, for `rko layer binary` and `rko build`.
#[derive(Debug, Args)]
pub struct CapabilityArgs {
    /// A Linux file capability for the binary, as ko's `linux_capabilities`: a name
    /// (net_bind_service, CAP_BPF, 39), or a cap_from_text(3) clause (bpf,perfmon=ep).
    /// Repeatable; names alone are permitted. Written as ko writes it: the
    /// security.capability xattr in the binary's tar entry.
    #[arg(long = "linux-capability", value_name = "CAP[,CAP…][=FLAGS]")]
    pub linux_capabilities: Vec<String>,
}

impl CapabilityArgs {
    pub fn caps(
        &self,
    ) -> Result<Option<crate::layer::caps::FileCaps>, crate::layer::caps::CapsError> {
        crate::layer::caps::FileCaps::parse(&self.linux_capabilities)
    }
}

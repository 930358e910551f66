//! The `rko` command line: one subcommand per build action, each taking explicit inputs and
//! writing its outputs all-or-nothing. Arguments are parsed here and validated by the
//! library modules they are handed to.

/// Prints a line of output on stdout. A closed pipe (`rko … | head -1`) ends the output
/// quietly instead of panicking as `println!` does.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("rko: error: writing to stdout: {e}");
                std::process::exit(1);
            }
        }
    }};
}
pub(crate) use outln;

pub mod argfile;
pub mod build;
pub mod image;
pub mod index;
pub mod layer;
pub mod load;
pub mod pull;
pub mod push;
pub mod tarball;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::layer::{Algorithm, Compression};
use crate::output::Outputs;

/// rko: turn Go binaries into OCI images the way ko does, as deterministic build actions.
#[derive(Debug, Parser)]
#[command(name = "rko", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Make a layer: the Go binary (`binary`) or the kodata tree (`kodata`).
    #[command(subcommand)]
    Layer(layer::LayerCommand),
    /// Make an image's config, manifest and descriptor from a base and layer descriptors.
    Image(image::ImageArgs),
    /// Make an image index from per-platform image descriptors.
    Index(index::IndexArgs),
    /// Write an image or index with its blobs as one tar for `docker load` and OCI tools.
    Tarball(tarball::TarballArgs),
    /// Write an image or index with its blobs as an OCI image layout directory.
    Layout(tarball::LayoutArgs),
    /// Load an image into docker or podman (for an index, one platform's image).
    Load(load::LoadArgs),
    /// Pull a base pinned by digest into an OCI layout: manifests and configs only, unless --eager.
    Pull(pull::PullArgs),
    /// Write a push manifest: where to push, and where every blob's bytes are.
    PushManifest(push::PushManifestArgs),
    /// Push an image or index from a push manifest, skipping or mounting what the registry has.
    Push(push::PushArgs),
    /// Build an image from a Go binary in one go, like `ko build` (prints the digest).
    Build(build::BuildArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Layer(c) => layer::run(c),
        Command::Image(a) => image::run(a),
        Command::Index(a) => index::run(a),
        Command::Tarball(a) => tarball::run_tarball(a),
        Command::Layout(a) => tarball::run_layout(a),
        Command::Load(a) => load::run(a),
        Command::Pull(a) => pull::run(a),
        Command::PushManifest(a) => push::run_push_manifest(a),
        Command::Push(a) => push::run_push(a),
        Command::Build(a) => build::run(a),
    }
}

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
    pub fn options(&self) -> Result<crate::image::ImageOptions> {
        Ok(crate::image::ImageOptions {
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

/// Writes a digest file: `sha256:<hex>`, no newline (as rules_oci and ko's --image-refs).
pub fn write_digest(
    outputs: &mut Outputs,
    path: &Path,
    digest: &crate::digest::Sha256Digest,
) -> Result<()> {
    outputs.write(path, digest.to_string().as_bytes())
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

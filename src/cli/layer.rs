//! `rko layer binary`, `rko layer kodata` and `rko layer tar`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::args::{CapabilityArgs, CompressionArgs};
use crate::layer::LayerDescriptor;
use crate::layer::binary::BinaryLayer;
use crate::layer::extra::ExtraTar;
use crate::layer::kodata::Tree;
use crate::oci::Platform;
use crate::output::Outputs;

#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// The Go binary at /ko-app/<name>, as ko's tarBinary writes it.
    Binary(BinaryArgs),
    /// The kodata tree at /var/run/ko, as ko's tarKoData writes it.
    Kodata(KodataArgs),
    /// An extra layer from a tar (plain, gzip or zstd), rewritten deterministically: paths,
    /// types, modes, numeric owners and contents kept; times, owner names and order
    /// normalized. Goes below the kodata layer in `rko image --layer`.
    Tar(TarArgs),
}

#[derive(Debug, Args)]
pub struct TarArgs {
    /// The input tar: directories, regular files, symlinks and hard links at relative paths.
    #[arg(long = "tar", value_name = "IN.tar")]
    pub tar: PathBuf,
    /// Modification time of every entry, seconds since the epoch (default 0).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub mtime: Option<u64>,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub outs: Outs,
}

#[derive(Debug, Args)]
pub struct Outs {
    /// Where to write the compressed layer blob.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Where to write the layer descriptor JSON (for `rko image`).
    #[arg(long)]
    pub descriptor: PathBuf,
}

#[derive(Debug, Args)]
pub struct BinaryArgs {
    /// The Go binary.
    #[arg(long)]
    pub binary: PathBuf,
    /// The Go import path of the main package (ko://… accepted).
    #[arg(long)]
    pub import_path: String,
    /// The file name under /ko-app (default: the import path's last element, as ko).
    #[arg(long)]
    pub name: Option<String>,
    /// The image platform, os/arch[/variant]; the binary's architecture must match it.
    #[arg(long)]
    pub platform: Platform,
    /// Accept an executable without Go build info.
    #[arg(long)]
    pub allow_non_go: bool,
    /// The binary is Delve (a static `dlv` for the platform), for ko's debug image: it goes
    /// to /ko-app/dlv, and `rko image` given this layer after the app's starts the app
    /// under it, listening on :40000, as `ko build --debug` does.
    #[arg(long, conflicts_with = "name")]
    pub delve: bool,
    #[command(flatten)]
    pub capabilities: CapabilityArgs,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub outs: Outs,
}

#[derive(Debug, Args)]
pub struct KodataArgs {
    /// The kodata directory (a missing one gives an empty kodata layer, as in ko).
    #[arg(long, conflicts_with = "file")]
    pub dir: Option<PathBuf>,
    /// IMAGE_PATH=FILE: a file (or directory) at /var/run/ko/IMAGE_PATH. Repeatable.
    #[arg(long = "file", value_name = "IMAGE_PATH=FILE")]
    pub file: Vec<String>,
    /// The Go import path the kodata belongs to (ko://… accepted).
    #[arg(long)]
    pub import_path: String,
    /// Modification time of every entry, seconds since the epoch (default 0).
    #[arg(long, env = "KO_DATA_DATE_EPOCH", value_name = "SECONDS")]
    pub mtime: Option<u64>,
    /// Where symlinks under --dir may point (default: the git work tree around it, else --dir).
    #[arg(long, env = "KO_DATA_PATH_ALLOWED_ROOT")]
    pub allowed_root: Option<PathBuf>,
    /// The image platform, os/arch[/variant]. Only its OS matters: a windows/* image gets
    /// ko's Windows layer (under Files/, symlinks in --dir skipped); any other, Linux's.
    #[arg(long)]
    pub platform: Option<Platform>,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub outs: Outs,
}

pub fn run(cmd: LayerCommand) -> Result<()> {
    match cmd {
        LayerCommand::Binary(a) => {
            let import_path = crate::importpath::strip_scheme(&a.import_path);
            let compression = a.compression.compression()?;
            let layer = BinaryLayer {
                binary: &a.binary,
                import_path,
                name: a.name.as_deref(),
                platform: &a.platform,
                allow_non_go: a.allow_non_go,
                capabilities: a.capabilities.caps()?,
                delve: a.delve,
                compression: &compression,
                threads: a.compression.threads(),
            };
            write(&a.outs, |out| layer.write(std::io::BufWriter::new(out)))
        }
        LayerCommand::Kodata(a) => {
            let import_path = crate::importpath::strip_scheme(&a.import_path);
            let compression = a.compression.compression()?;
            let windows = a
                .platform
                .as_ref()
                .is_some_and(crate::layer::binary::is_windows);
            let tree = Tree::from_inputs(
                a.dir.as_deref(),
                &a.file,
                a.allowed_root.as_deref(),
                windows,
            )?;
            let mtime = a.mtime;
            let threads = a.compression.threads();
            write(&a.outs, |out| {
                tree.write_layer(
                    std::io::BufWriter::new(out),
                    import_path,
                    mtime,
                    &compression,
                    threads,
                )
            })
        }
        LayerCommand::Tar(a) => {
            let compression = a.compression.compression()?;
            let tar = ExtraTar::open(&a.tar)?;
            let threads = a.compression.threads();
            write(&a.outs, |out| {
                tar.write_layer(std::io::BufWriter::new(out), a.mtime, &compression, threads)
            })
        }
    }
}

fn write(
    outs: &Outs,
    make: impl FnOnce(&mut std::fs::File) -> Result<LayerDescriptor>,
) -> Result<()> {
    let mut outputs = Outputs::new();
    let blob = outputs.file(&outs.output)?;
    let written =
        make(blob.as_file_mut()).and_then(|desc| outputs.write(&outs.descriptor, &desc.to_json()));
    outputs.finish(written)
}

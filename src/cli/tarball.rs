//! `rko tarball` and `rko layout`: an image or index with all its blobs, as one tar (an OCI
//! layout that `docker load` also reads) or as an OCI layout directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::ArchiveArgs;
use crate::oci::Platform;
use crate::output::Outputs;

#[derive(Debug, Args)]
pub struct TarballArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// For an index: the platform `docker load` gets (default linux/amd64, else the first).
    #[arg(long)]
    pub load_platform: Option<Platform>,
    /// Where to write the tar.
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// The layout directory to write (replaced if it exists).
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run_tarball(a: TarballArgs) -> Result<()> {
    let (artifact, store, tags) = a.archive.load()?;
    let mut outputs = Outputs::new();
    let f = outputs.file(&a.output)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
    let written = artifact
        .write_tarball(&store, &tags, a.load_platform.as_ref(), &mut w)
        .and_then(|()| Ok(std::io::Write::flush(&mut w)?));
    drop(w);
    outputs.finish(written)
}

pub fn run_layout(a: LayoutArgs) -> Result<()> {
    let (artifact, store, tags) = a.archive.load()?;
    let mut outputs = Outputs::new();
    let dir = outputs.dir(&a.output)?;
    let written = artifact.write_layout(&store, &tags, &dir);
    outputs.finish(written)
}

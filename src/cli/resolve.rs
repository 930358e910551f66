//! `rko resolve`: `ko://IMPORTPATH` references in YAML become the images that push
//! manifests name (the rules are in `resolve`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::resolve::{self, Request};

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// A YAML file, a directory (its `.yaml` and `.yml` files, recursively, sorted by path),
    /// or `-` for stdin. Repeatable: all are read as one stream, with a `---` line between
    /// two files.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// A push manifest written with `rko push-manifest --import-path IMPORTPATH`:
    /// `ko://IMPORTPATH` becomes its REPOSITORY@sha256:DIGEST. Repeatable. Its blob files
    /// need not exist.
    #[arg(long = "image", value_name = "PUSH_MANIFEST")]
    pub images: Vec<PathBuf>,
    /// Write REPOSITORY:TAG@sha256:DIGEST, with each push manifest's first tag.
    #[arg(long)]
    pub tag_refs: bool,
    /// Where to write the resolved YAML (`-` for stdout).
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run(a: ResolveArgs) -> Result<()> {
    resolve::run(&Request {
        inputs: a.files,
        images: a.images,
        output: a.output,
        tag_refs: a.tag_refs,
    })
}

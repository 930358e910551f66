//! `rko index`: per-platform image descriptors → index, descriptor, digest.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::args::{key_values, write_digest};
use crate::oci::{Descriptor, json};
use crate::output::Outputs;

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// An image descriptor from `rko image --descriptor-out`, one per platform. Repeatable.
    #[arg(long = "image", value_name = "DESCRIPTOR.json", required = true)]
    pub images: Vec<PathBuf>,
    /// Add an index annotation (KEY=VALUE). Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Where to write the index JSON.
    #[arg(long = "index-out", value_name = "FILE", required = true)]
    pub index_out: PathBuf,
    /// Where to write the index's descriptor JSON.
    #[arg(long = "descriptor-out", value_name = "FILE")]
    pub descriptor_out: Option<PathBuf>,
    /// Where to write the index digest (`sha256:…`).
    #[arg(long = "digest-out", value_name = "FILE")]
    pub digest_out: Option<PathBuf>,
}

pub fn run(a: IndexArgs) -> Result<()> {
    let images = a
        .images
        .iter()
        .map(|p| Descriptor::read_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (bytes, desc) =
        crate::image::index::build(&images, &key_values(&a.annotations, "--annotation")?)?;
    let mut outputs = Outputs::new();
    outputs.write(&a.index_out, &bytes)?;
    if let Some(p) = &a.descriptor_out {
        outputs.write(p, &json::pretty(&desc))?;
    }
    if let Some(p) = &a.digest_out {
        write_digest(&mut outputs, p, &desc.digest)?;
    }
    outputs.commit()?;
    if a.digest_out.is_none() {
        crate::cli::stdout::line(desc.digest);
    }
    Ok(())
}

//! `rko tarball` and `rko layout`: an image or index with all its blobs, as one tar (an OCI
//! layout that `docker load` also reads) or as an OCI layout directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::image::read_descriptor;
use crate::cli::parse_layer_pair;
use crate::image::archive::{Artifact, BlobStore};
use crate::layer::LayerDescriptor;
use crate::output::Outputs;
use crate::platform::Platform;
use crate::reference::{TagRef, parse_tag};

#[derive(Debug, Args)]
pub struct Sources {
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

impl Sources {
    pub fn load(&self) -> Result<(Artifact, BlobStore)> {
        let (root, store) = self.load_store()?;
        let artifact = Artifact::collect(root, &store)?;
        Ok((artifact, store))
    }

    /// The root descriptor and the blob sources, before collecting.
    pub fn load_store(&self) -> Result<(crate::image::descriptor::Descriptor, BlobStore)> {
        let root = read_descriptor(&self.root)?;
        let mut store = BlobStore::default();
        for b in &self.blobs {
            store.add_path(b.clone())?;
        }
        for l in &self.layers {
            let (desc, blob) = parse_layer_pair(l)?;
            let d = LayerDescriptor::read(&desc)?;
            store.add_file(d.digest, blob);
        }
        for d in &self.blob_dirs {
            store.add_dir(d.clone());
        }
        Ok((root, store))
    }
}

#[derive(Debug, Args)]
pub struct TarballArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// A tag, NAME[:TAG], recorded for `docker load` and in index.json. Repeatable.
    #[arg(long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// How to reach the registry of a shallow base's blobs.
    #[command(flatten)]
    pub registry: crate::cli::push::RegistryArgs,
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
    pub sources: Sources,
    /// A tag, NAME[:TAG], recorded in index.json. Repeatable.
    #[arg(long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// How to reach the registry of a shallow base's blobs.
    #[command(flatten)]
    pub registry: crate::cli::push::RegistryArgs,
    /// The layout directory to write (replaced if it exists).
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run_tarball(a: TarballArgs) -> Result<()> {
    let (artifact, mut store) = a.sources.load()?;
    a.registry.connect(&mut store)?;
    let tags = parse_tags(&a.tags)?;
    let mut outputs = Outputs::new();
    let f = outputs.file(&a.output)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
    artifact.write_tarball(&store, &tags, a.load_platform.as_ref(), &mut w)?;
    std::io::Write::flush(&mut w)?;
    drop(w);
    outputs.commit()
}

pub fn run_layout(a: LayoutArgs) -> Result<()> {
    let (artifact, mut store) = a.sources.load()?;
    a.registry.connect(&mut store)?;
    let tags = parse_tags(&a.tags)?;
    let mut outputs = Outputs::new();
    let dir = outputs.dir(&a.output)?;
    artifact.write_layout(&store, &tags, &dir)?;
    outputs.commit()
}

fn parse_tags(tags: &[String]) -> Result<Vec<TagRef>> {
    Ok(tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>, _>>()?)
}

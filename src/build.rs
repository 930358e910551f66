//! `rko build`'s pipeline, shaped like `ko build`: both layers, the image, and the outputs
//! asked for (tarball, layout, push) in one process. It sits above `registry/` because it
//! may push; the build-system actions run the same stages one per process instead.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::archive::{Artifact, BlobStore};
use crate::image::base::spec::BaseSpec;
use crate::image::{BuiltImage, ImageOptions};
use crate::layer::binary::{BinaryLayer, platform_of};
use crate::layer::kodata::Tree;
use crate::layer::{Compression, LayerDescriptor};
use crate::oci::{Platform, TagRef};
use crate::output::Outputs;
use crate::registry::client::Client;
use crate::registry::naming::{self, Naming};
use crate::registry::progress::{self, PushSettings};
use crate::registry::pull::RegistryBlobs;
use crate::registry::push::PushReport;

/// What to build.
pub struct Request {
    pub binary: PathBuf,
    /// Without the `ko://` scheme.
    pub import_path: String,
    pub base: BaseSpec,
    pub base_name: Option<String>,
    /// Default: linux and the binary's own architecture.
    pub platform: Option<Platform>,
    pub kodata: Option<PathBuf>,
    pub kodata_created: Option<u64>,
    pub name: Option<String>,
    pub allow_non_go: bool,
    pub compression: Compression,
    pub threads: usize,
    pub options: ImageOptions,
}

/// Which outputs to write.
pub struct Outs<'a> {
    pub tags: &'a [TagRef],
    pub tarball: Option<PathBuf>,
    pub layout: Option<PathBuf>,
    pub digest_file: Option<PathBuf>,
    pub push: Option<Push>,
    /// Reaches a shallow base's registry, and the push target.
    pub client: &'a dyn Fn() -> Result<Client>,
}

/// Where and how to push.
pub struct Push {
    /// The prefix ko calls KO_DOCKER_REPO; the repository under it follows `naming`.
    pub repository: String,
    pub naming: Naming,
    pub tags: Vec<String>,
    pub settings: PushSettings,
}

/// What was built.
pub struct Built {
    pub image: BuiltImage,
    pub pushed: Option<PushReport>,
}

/// Builds the image of `req` and writes `outs`, all of them or none.
pub fn build(req: &Request, outs: &Outs<'_>) -> Result<Built> {
    crate::importpath::check(&req.import_path)?;
    let platform = match &req.platform {
        Some(p) => p.clone(),
        None => platform_of(&req.binary)?,
    };
    let base = req.base.resolve(&platform, req.base_name.as_deref())?;
    // Layers go to a scratch directory the user never sees; removed on return.
    let scratch = tempfile::Builder::new()
        .prefix("rko-build-")
        .tempdir()
        .context("creating a temporary directory")?;
    let files = |name: &str| scratch.path().join(name);
    let kodata = write_kodata(req, &files("kodata.layer"))?;
    let binary = write_binary(req, &platform, &files("binary.layer"))?;
    let layers = [kodata.clone(), binary.clone()];
    let image = crate::image::assemble(&base, &layers, &req.options)?;
    let mut outputs = Outputs::new();
    let mut pushed = None;
    if outs.tarball.is_some() || outs.layout.is_some() || outs.push.is_some() {
        let mut store = BlobStore::default();
        fs_err::write(files("manifest.json"), &image.manifest)?;
        fs_err::write(files("config.json"), &image.config)?;
        store.add_path(files("manifest.json"))?;
        store.add_path(files("config.json"))?;
        store.add_file(kodata.digest, files("kodata.layer"));
        store.add_file(binary.digest, files("binary.layer"));
        if let Some(d) = &base.blob_dir {
            store.add_dir(d.clone())?;
        }
        let written = write_outputs(req, outs, &image, store, &mut outputs);
        pushed = written.map_err(|e| outputs.explain(e))?;
    }
    if let Some(p) = &outs.digest_file {
        outputs.write(p, image.digest().to_string().as_bytes())?;
    }
    outputs.commit()?;
    Ok(Built { image, pushed })
}

fn write_kodata(req: &Request, blob: &std::path::Path) -> Result<LayerDescriptor> {
    let tree = Tree::from_inputs(req.kodata.as_deref(), &[], None)?;
    let f = std::io::BufWriter::new(fs_err::File::create(blob)?);
    let (ip, created) = (&req.import_path, req.kodata_created);
    tree.write_layer(f, ip, created, &req.compression, req.threads)
}

fn write_binary(
    req: &Request,
    platform: &Platform,
    blob: &std::path::Path,
) -> Result<LayerDescriptor> {
    let layer = BinaryLayer {
        binary: &req.binary,
        import_path: &req.import_path,
        name: req.name.as_deref(),
        platform,
        allow_non_go: req.allow_non_go,
        compression: &req.compression,
        threads: req.threads,
    };
    layer.write(std::io::BufWriter::new(fs_err::File::create(blob)?))
}

/// The tarball and layout (into `outputs`), and the push.
fn write_outputs(
    req: &Request,
    outs: &Outs<'_>,
    image: &BuiltImage,
    mut store: BlobStore,
    outputs: &mut Outputs,
) -> Result<Option<PushReport>> {
    if store.has_remote() && (outs.tarball.is_some() || outs.layout.is_some()) {
        store.set_fetcher(Box::new(RegistryBlobs((outs.client)()?)));
    }
    let artifact = Artifact::collect(image.descriptor.clone(), &store)?;
    if let Some(t) = &outs.tarball {
        let f = outputs.file(t)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
        artifact.write_tarball(&store, outs.tags, None, &mut w)?;
        std::io::Write::flush(&mut w)?;
    }
    if let Some(l) = &outs.layout {
        let dir = outputs.dir(l)?;
        artifact.write_layout(&store, outs.tags, &dir)?;
    }
    let Some(push) = &outs.push else {
        return Ok(None);
    };
    let repository = naming::repository(&push.repository, &req.import_path, push.naming);
    let tags = match push.tags.is_empty() {
        true => vec!["latest".to_string()],
        false => push.tags.clone(),
    };
    let pm = artifact.push_manifest(&store, &repository, &tags)?;
    Ok(Some(progress::push(&pm, &(outs.client)()?, push.settings)?))
}

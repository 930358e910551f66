//! `rko build`'s pipeline, shaped like `ko build`: the layers (extra, kodata, binary), the image, and the outputs
//! asked for (tarball, layout, push) in one process. It sits above `registry/` because it
//! may push; the build-system actions run the same stages one per process instead.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::archive::attachment::Attachment;
use crate::archive::{Artifact, BlobStore};
use crate::image::base::spec::BaseSpec;
use crate::image::{BuiltImage, ImageOptions};
use crate::layer::binary::{BinaryLayer, platform_of};
use crate::layer::extra::ExtraTar;
use crate::layer::kodata::Tree;
use crate::layer::{Compression, LayerDescriptor};
use crate::oci::{Platform, TagRef};
use crate::output::Outputs;
use crate::registry::attach::{AttachMode, attach};
use crate::registry::client::Client;
use crate::registry::naming::{self, Naming};
use crate::registry::progress::{self, PushSettings};
use crate::registry::pull::RegistryBlobs;
use crate::registry::push::PushReport;
use crate::sbom::provenance::{self, ProvenanceInput};
use crate::sbom::{self as sbom_mod, Format as SbomFormat, Image as SbomImage, SbomInput};

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
    /// Tars of extra layers (`rko layer tar`), in image order, between the base and kodata.
    pub layers: Vec<PathBuf>,
    pub name: Option<String>,
    pub allow_non_go: bool,
    /// ko's `linux_capabilities` on the binary.
    pub capabilities: Option<crate::layer::caps::FileCaps>,
    /// ko's debug image: this Delve binary at /ko-app/dlv (on the platforms Delve debugs).
    pub delve: Option<PathBuf>,
    pub compression: Compression,
    pub threads: usize,
    pub options: ImageOptions,
    /// The SBOM formats to make (empty: none). Made only when something takes them:
    /// [`Outs::sbom_dir`], or a push with [`Outs::sbom_for_push`].
    pub sbom: Vec<SbomFormat>,
    /// `sbom` is the default, not asked for: a push of a binary without build info then
    /// goes on without an SBOM, with a warning.
    pub sbom_by_default: bool,
    /// SLSA `runDetails.builder.id` of the provenance.
    pub builder_id: String,
}

/// Which outputs to write.
pub struct Outs<'a> {
    pub tags: &'a [TagRef],
    pub tarball: Option<PathBuf>,
    pub layout: Option<PathBuf>,
    pub digest_file: Option<PathBuf>,
    /// Write the SBOMs here, named as ko names them: `<app>-<os>-<arch>[-<variant>].spdx.json`
    /// and `….cyclonedx.json`.
    pub sbom_dir: Option<PathBuf>,
    /// Write the SLSA provenance (an in-toto Statement) to this file.
    pub provenance: Option<PathBuf>,
    /// Make the SBOMs for the push to attach as referrers, also without `sbom_dir`.
    pub sbom_for_push: bool,
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
    /// How the SBOMs and provenance are attached after the image and its tags.
    pub attach: AttachMode,
}

/// What was built.
pub struct Built {
    /// The image's digest, or with several platforms the index's.
    pub digest: crate::oci::Sha256Digest,
    pub pushed: Option<PushReport>,
}

/// A document about the image (SBOM or provenance), ready to be attached to it.
#[derive(Clone, Debug)]
pub struct Document {
    /// The image it is about (its manifest's descriptor).
    pub subject: crate::oci::Descriptor,
    /// [`sbom_mod::MEDIA_SPDX`], [`sbom_mod::MEDIA_CYCLONEDX`] or [`sbom_mod::MEDIA_IN_TOTO`].
    pub media_type: &'static str,
    /// The file name it has in `--sbom-dir` (ko's naming), or `provenance.json`.
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Builds one image per request (one platform each, each with its own binary) and writes
/// `outs`, all of them or none. With several requests the result is an index of the images,
/// in the order given; each image gets its own SBOMs.
pub fn build_all(reqs: &[Request], outs: &Outs<'_>) -> Result<Built> {
    if reqs.len() > 1 && outs.provenance.is_some() {
        anyhow::bail!(
            "--provenance FILE writes one statement about one image, but {} platforms were \
             asked for; build each platform with its own --provenance, or leave it out",
            reqs.len()
        );
    }
    // Layers go to a scratch directory the user never sees; removed on return.
    let scratch = tempfile::Builder::new()
        .prefix("rko-build-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut store = BlobStore::default();
    let mut images = Vec::new();
    let mut documents = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        crate::importpath::check(&req.import_path)?;
        let platform = match &req.platform {
            Some(p) => p.clone(),
            None => platform_of(&req.binary)?,
        };
        let base = req.base.resolve(&platform, req.base_name.as_deref())?;
        let files = |name: &str| scratch.path().join(format!("{i}-{name}"));
        // Extra layers first (base, extras, kodata, binary: ko's two stay on top).
        let mut layers = Vec::new();
        // A dynamically linked Delve needs its ELF interpreter in the image: from the base,
        // or from an extra layer.
        let delve_interp = req
            .delve
            .as_deref()
            .and_then(crate::buildinfo::exe::elf_interpreter);
        let mut interp_in_layers = false;
        for (j, tar) in req.layers.iter().enumerate() {
            let extra = ExtraTar::open(tar)?;
            interp_in_layers |= delve_interp.as_deref().is_some_and(|i| extra.has_path(i));
            layers.push(write_extra(
                req,
                extra,
                &files(&format!("extra-{j}.layer")),
            )?);
        }
        let extras = layers.len();
        let kodata = write_kodata(req, &platform, &files("kodata.layer"))?;
        let binary = write_binary(req, &platform, &files("binary.layer"))?;
        layers.extend([kodata.clone(), binary.clone()]);
        let delve = match &req.delve {
            Some(dlv) if crate::layer::binary::debuggable(&platform) => {
                let bare = matches!(req.base, BaseSpec::Static | BaseSpec::Scratch);
                if let Some(interp) = delve_interp.as_ref().filter(|_| bare && !interp_in_layers) {
                    eprintln!(
                        "rko: warning: --debug: {} is dynamically linked (it needs {interp}), \
                         which the {} base does not have (nor does any --layer), so Delve will \
                         not start there; use a static dlv (CGO_ENABLED=0 go install \
                         github.com/go-delve/delve/cmd/dlv@latest), a base with a C library, \
                         or a --layer holding it and the libraries `ldd dlv` lists",
                        dlv.display(),
                        if matches!(req.base, BaseSpec::Static) {
                            "static"
                        } else {
                            "scratch"
                        }
                    );
                }
                let d = write_delve(req, dlv, &platform, &files("delve.layer"))?;
                layers.push(d.clone());
                Some(d)
            }
            Some(_) => {
                eprintln!(
                    "rko: warning: --debug: Delve debugs linux/amd64 and linux/arm64 only; the \
                     {platform} image is built without it{}",
                    match crate::layer::binary::is_windows(&platform) {
                        // ko writes a Delve entrypoint there with no Delve in the image.
                        true => ", with its usual entrypoint",
                        false => ", as ko builds it",
                    }
                );
                None
            }
            None => None,
        };
        let image = crate::image::assemble(&base, &layers, &req.options)?;
        documents.extend(self::documents(req, outs, &platform, &base, &image)?);
        fs_err::write(files("manifest.json"), &image.manifest)?;
        fs_err::write(files("config.json"), &image.config)?;
        store.add_path(files("manifest.json"))?;
        store.add_path(files("config.json"))?;
        for (i, l) in layers[..extras].iter().enumerate() {
            store.add_file(l.digest, files(&format!("extra-{i}.layer")));
        }
        store.add_file(kodata.digest, files("kodata.layer"));
        store.add_file(binary.digest, files("binary.layer"));
        if let Some(d) = &delve {
            store.add_file(d.digest, files("delve.layer"));
        }
        if let Some(d) = &base.blob_dir {
            store.add_dir(d.clone())?;
        }
        images.push(image);
    }
    let root = match images.as_slice() {
        [one] => one.descriptor.clone(),
        many => {
            let descriptors: Vec<_> = many.iter().map(|i| i.descriptor.clone()).collect();
            let (bytes, descriptor) =
                crate::image::index::build(&descriptors, &Default::default())?;
            let path = scratch.path().join("index.json");
            fs_err::write(&path, bytes)?;
            store.add_path(path)?;
            descriptor
        }
    };
    let mut outputs = Outputs::new();
    write_documents(outs, &documents, &mut outputs)?;
    let mut pushed = None;
    if outs.tarball.is_some() || outs.layout.is_some() || outs.push.is_some() {
        let docs = (&documents[..], scratch.path());
        let written = write_outputs(&reqs[0], outs, &root, store, &mut outputs, docs);
        pushed = written.map_err(|e| outputs.explain(e))?;
    }
    if let Some(p) = &outs.digest_file {
        outputs.write(p, root.digest.to_string().as_bytes())?;
    }
    outputs.commit()?;
    Ok(Built {
        digest: root.digest,
        pushed,
    })
}

/// The SBOMs (for `--sbom-dir`, or a push that attaches them) and the provenance (when
/// asked).
fn documents(
    req: &Request,
    outs: &Outs<'_>,
    platform: &Platform,
    base: &crate::image::base::Base,
    image: &BuiltImage,
) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    let for_push = outs.sbom_for_push && outs.push.is_some();
    let sboms = !req.sbom.is_empty() && (outs.sbom_dir.is_some() || for_push);
    if !sboms && outs.provenance.is_none() {
        return Ok(docs);
    }
    let subject = SbomImage {
        digest: image.digest(),
        repository: outs
            .push
            .as_ref()
            .map(|p| naming::repository(&p.repository, &req.import_path, p.naming)),
        import_path: req.import_path.clone(),
    };
    let app = req.name.clone().unwrap_or_else(|| {
        let ip = &req.import_path;
        ip.rsplit('/').next().unwrap_or(ip).to_string()
    });
    let pf = platform.to_string().replace(['/', ':'], "-");
    if sboms {
        let go = match sbom_mod::go_parts(&req.binary, req.allow_non_go) {
            // The default SBOM of a push, for a binary that passed the layer's check (it
            // has Go's magic) yet holds no build info: warn and push without it. One asked
            // for (--sbom, --sbom-dir) fails instead.
            Err(sbom_mod::GoInfoError::NotGo { path }) if req.sbom_by_default => {
                eprintln!(
                    "rko: warning: {} carries no Go build info, so the push attaches no SBOM; \
                     pass --allow-non-go for an SBOM holding only the image, or --sbom none",
                    path.display()
                );
                return provenance_only(docs, req, outs, platform, base, image, subject);
            }
            other => other?,
        };
        let input = SbomInput {
            image: subject.clone(),
            go,
            created: sbom_mod::created(req.options.created, Some(&image.config)),
        };
        for &f in &req.sbom {
            docs.push(Document {
                subject: image.descriptor.clone(),
                media_type: f.media_type(),
                file_name: format!("{app}-{pf}.{}", f.extension()),
                bytes: sbom_mod::sbom(f, &input),
            });
        }
    }
    provenance_only(docs, req, outs, platform, base, image, subject)
}

/// `docs` and, when asked, the provenance.
fn provenance_only(
    mut docs: Vec<Document>,
    req: &Request,
    outs: &Outs<'_>,
    platform: &Platform,
    base: &crate::image::base::Base,
    image: &BuiltImage,
    subject: SbomImage,
) -> Result<Vec<Document>> {
    if outs.provenance.is_some() {
        provenance::check_builder_id(&req.builder_id)?;
        let tags = match &outs.push {
            Some(p) => p.tags.clone(),
            None => outs.tags.iter().map(|t| t.to_string()).collect(),
        };
        let input = ProvenanceInput {
            image: subject,
            platform: Some(platform.to_string()),
            base_ref: base.name.clone(),
            base_digest: base.pinned_digest,
            base_spec: match &req.base {
                BaseSpec::Static => "static",
                BaseSpec::Scratch => "scratch",
                BaseSpec::Layout { .. } => "layout",
            }
            .to_string(),
            tags,
            binary_digest: provenance::hash_file(&req.binary)?,
            kodata: match &req.kodata {
                Some(d) => provenance::kodata_files(d, crate::layer::binary::is_windows(platform))?,
                None => Vec::new(),
            },
            layers: provenance::layer_tars(&req.layers)?,
            builder_id: req.builder_id.clone(),
        };
        docs.push(Document {
            subject: image.descriptor.clone(),
            media_type: sbom_mod::MEDIA_IN_TOTO,
            file_name: "provenance.json".to_string(),
            bytes: provenance::statement(&input),
        });
    }
    Ok(docs)
}

/// The SBOMs into `--sbom-dir`, the provenance to `--provenance`. A missing `--sbom-dir`
/// (and its missing parents, as ko makes them) is made as a temporary directory that
/// appears with the other outputs, so a failed build leaves none behind; an existing one
/// keeps its other files.
fn write_documents(outs: &Outs<'_>, docs: &[Document], outputs: &mut Outputs) -> Result<()> {
    let sboms = docs.iter().any(|d| d.media_type != sbom_mod::MEDIA_IN_TOTO);
    let new_dir = match &outs.sbom_dir {
        Some(dir) if sboms && !dir.is_dir() => Some(new_sbom_dir(dir, outputs)?),
        _ => None,
    };
    for d in docs {
        if d.media_type == sbom_mod::MEDIA_IN_TOTO {
            if let Some(p) = &outs.provenance {
                outputs.write(p, &d.bytes)?;
            }
        } else if let Some(tmp) = &new_dir {
            // Into the temporary directory, renamed into place on commit.
            fs_err::write(tmp.join(&d.file_name), &d.bytes)?;
        } else if let Some(dir) = &outs.sbom_dir {
            outputs.write(&dir.join(&d.file_name), &d.bytes)?;
        }
    }
    Ok(())
}

/// A temporary directory that becomes the missing `dir` on commit: the topmost missing
/// ancestor is the temporary, `dir` is made inside it; returns where `dir` is for now.
fn new_sbom_dir(dir: &std::path::Path, outputs: &mut Outputs) -> Result<PathBuf> {
    if std::fs::symlink_metadata(dir).is_ok() {
        anyhow::bail!(
            "--sbom-dir {} exists and is not a directory; expected a directory, or a path \
             where one can be made (remove the file, or choose another path)",
            dir.display()
        );
    }
    let mut top = dir;
    while let Some(parent) = top.parent() {
        if parent.as_os_str().is_empty() || std::fs::symlink_metadata(parent).is_ok() {
            break;
        }
        top = parent;
    }
    let tmp = outputs.dir(top)?;
    let inner = tmp.join(dir.strip_prefix(top).expect("an ancestor"));
    fs_err::create_dir_all(&inner)?;
    Ok(inner)
}

fn write_kodata(
    req: &Request,
    platform: &Platform,
    blob: &std::path::Path,
) -> Result<LayerDescriptor> {
    let windows = crate::layer::binary::is_windows(platform);
    let tree = Tree::from_inputs(req.kodata.as_deref(), &[], None, windows)?;
    let f = std::io::BufWriter::new(fs_err::File::create(blob)?);
    let (ip, created) = (&req.import_path, req.kodata_created);
    tree.write_layer(f, ip, created, &req.compression, req.threads)
}

/// An extra layer from a tar, its entries dated as the image (`SOURCE_DATE_EPOCH`, else 0).
fn write_extra(req: &Request, extra: ExtraTar, blob: &std::path::Path) -> Result<LayerDescriptor> {
    let f = std::io::BufWriter::new(fs_err::File::create(blob)?);
    extra.write_layer(f, req.options.created, &req.compression, req.threads)
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
        capabilities: req.capabilities,
        delve: false,
        compression: &req.compression,
        threads: req.threads,
    };
    layer.write(std::io::BufWriter::new(fs_err::File::create(blob)?))
}

/// ko's Delve layer: the debugger at /ko-app/dlv, shaped and capable as the binary's.
fn write_delve(
    req: &Request,
    dlv: &std::path::Path,
    platform: &Platform,
    blob: &std::path::Path,
) -> Result<LayerDescriptor> {
    let layer = BinaryLayer {
        binary: dlv,
        import_path: &req.import_path,
        name: None,
        platform,
        allow_non_go: true,
        capabilities: req.capabilities,
        delve: true,
        compression: &req.compression,
        threads: req.threads,
    };
    layer
        .write(std::io::BufWriter::new(fs_err::File::create(blob)?))
        .with_context(|| format!("--debug: the Delve layer from {}", dlv.display()))
}

/// The tarball and layout (into `outputs`), and the push, with the documents (written to
/// files in the scratch directory) attached after the image and its tags.
fn write_outputs(
    req: &Request,
    outs: &Outs<'_>,
    root: &crate::oci::Descriptor,
    mut store: BlobStore,
    outputs: &mut Outputs,
    (documents, scratch): (&[Document], &std::path::Path),
) -> Result<Option<PushReport>> {
    if store.has_remote() && (outs.tarball.is_some() || outs.layout.is_some()) {
        store.set_fetcher(Box::new(RegistryBlobs((outs.client)()?)));
    }
    let artifact = Artifact::collect(root.clone(), &store)?;
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
    let client = (outs.client)()?;
    let mut report = progress::push(&pm, &client, push.settings)?;
    let mut attachments = Vec::new();
    for (i, d) in documents.iter().enumerate() {
        let path = scratch.join(format!("document-{i}-{}", d.file_name));
        fs_err::write(&path, &d.bytes)?;
        attachments.push(Attachment::new(&d.subject, &path, Some(d.media_type))?);
    }
    // After the image and its tags: a failure here leaves them in place.
    report.attached = attach(
        &client,
        push.settings,
        None,
        &repository,
        &attachments,
        push.attach,
    )
    .with_context(|| {
        format!(
            "{} and its tags are pushed, but attaching its SBOMs and provenance failed",
            report.reference
        )
    })?;
    Ok(Some(report))
}

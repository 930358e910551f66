//! Writing an image (or index) with all its blobs: as one tar that is at once an OCI image
//! layout and a `docker load` archive (`manifest.json`), or as an OCI layout directory.
//! Every blob is checked against its digest and size while it is copied.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::base::layout::blob_path;
use crate::digest::Sha256Digest;
use crate::image::descriptor::{Descriptor, Index, Manifest, to_go_json};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::media;
use crate::platform::Platform;
use crate::reference::TagRef;
use crate::registry::push::{BlobRef, PushManifest};

/// Where a blob's bytes are.
#[derive(Clone, Debug)]
pub enum BlobSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "blob {digest} ({what}) is not available: none of the given blob sources has it; pass the base's blobs (an OCI layout with its layers, e.g. `skopeo copy docker://BASE oci:DIR`) with --blobs DIR, or the layer with --layer DESC=BLOB"
    )]
    Missing { digest: Sha256Digest, what: String },
    #[error(
        "blob {path} does not match: expected {expected} ({expected_size} bytes), found {found} ({found_size} bytes); rebuild it"
    )]
    Mismatch {
        path: PathBuf,
        expected: Sha256Digest,
        expected_size: u64,
        found: Sha256Digest,
        found_size: u64,
    },
}

/// Blobs by digest, from memory, files and layout directories.
#[derive(Default)]
pub struct BlobStore {
    known: BTreeMap<Sha256Digest, BlobSource>,
    dirs: Vec<PathBuf>,
    remote: Option<String>,
    /// When set, blobs found nowhere on disk are streamed from `remote`.
    client: Option<crate::registry::client::Client>,
}

impl BlobStore {
    pub fn add_bytes(&mut self, bytes: Vec<u8>) -> Sha256Digest {
        let d = Sha256Digest::of(&bytes);
        self.known.insert(d, BlobSource::Bytes(bytes));
        d
    }

    /// A file claimed to have `digest`; checked when copied.
    pub fn add_file(&mut self, digest: Sha256Digest, path: PathBuf) {
        self.known.entry(digest).or_insert(BlobSource::File(path));
    }

    /// A small file (manifest, index, config) whose digest is computed here.
    pub fn add_path(&mut self, path: PathBuf) -> Result<Sha256Digest> {
        let (d, _) = Sha256Digest::of_file(&path)?;
        self.add_file(d, path);
        Ok(d)
    }

    /// A repository (`host[:port]/repo`) where blobs found nowhere else can be read.
    pub fn add_remote(&mut self, repository: String) {
        self.remote = Some(repository);
    }

    /// Where a blob's bytes are, for a push manifest: a file, or a source repository.
    fn locate(&self, desc: &Descriptor, what: &str) -> Result<(Option<PathBuf>, Option<String>)> {
        match self.find(desc, what) {
            Ok(BlobSource::File(p)) => return Ok((Some(p), None)),
            Ok(BlobSource::Bytes(_)) | Err(_) => {}
        }
        // Not on disk: a base blob. Prefer the registry it lives in (a mount costs nothing),
        // else the static layer built into rko.
        if let Some(r) = &self.remote {
            return Ok((None, Some(r.clone())));
        }
        if crate::base::static_base::layer_if(&desc.digest).is_some() {
            return Ok((None, Some(crate::registry::push::STATIC_SOURCE.to_string())));
        }
        match self.find(desc, what) {
            Ok(_) => bail!(
                "blob {} ({what}) is only in memory; expected a file",
                desc.digest
            ),
            Err(e) => Err(e),
        }
    }

    /// Whether some blobs may live only in a registry (a shallow base).
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Lets outputs that need base blobs the disk lacks stream them from their registry.
    pub fn set_client(&mut self, client: crate::registry::client::Client) {
        self.client = Some(client);
    }

    /// A directory with `blobs/sha256/<hex>` (an OCI layout).
    pub fn add_dir(&mut self, dir: PathBuf) {
        // A layout `rko pull` made says where the blobs it did not download can be read.
        if let Ok(b) = std::fs::read(dir.join(crate::registry::pull::SOURCES_FILE))
            && let Ok(s) = serde_json::from_slice::<crate::registry::pull::Sources>(&b)
        {
            self.remote.get_or_insert(s.repository);
        }
        self.dirs.push(dir);
    }

    fn find(&self, desc: &Descriptor, what: &str) -> Result<BlobSource> {
        if let Some(s) = self.known.get(&desc.digest) {
            return Ok(s.clone());
        }
        for d in &self.dirs {
            let p = blob_path(d, &desc.digest);
            if p.is_file() {
                return Ok(BlobSource::File(p));
            }
        }
        if let Some(l) = crate::base::static_base::layer_if(&desc.digest) {
            return Ok(BlobSource::Bytes(l.blob.clone()));
        }
        bail!(ArchiveError::Missing {
            digest: desc.digest,
            what: what.to_string()
        })
    }

    /// Reads a small (JSON) blob whole.
    pub fn read(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
        let bytes = match self.find(desc, what)? {
            BlobSource::Bytes(b) => b,
            BlobSource::File(p) => fs_err::read(&p)?,
        };
        check_bytes(desc, &bytes, what)?;
        Ok(bytes)
    }

    /// Streams a blob into `out`, checking digest and size.
    fn copy(&self, desc: &Descriptor, what: &str, out: &mut impl Write) -> Result<()> {
        let found = match (self.find(desc, what), &self.remote, &self.client) {
            (Err(_), Some(remote), Some(client)) => {
                // A base blob of a shallow pull: stream it from the registry it lives in.
                let r = crate::registry::reference::Reference::parse(remote)?;
                crate::registry::pull::Puller { client }.blob(&r, desc, out)?;
                return Ok(());
            }
            (found, _, _) => found?,
        };
        match found {
            BlobSource::Bytes(b) => {
                check_bytes(desc, &b, what)?;
                out.write_all(&b)?;
            }
            BlobSource::File(p) => {
                let mut f = fs_err::File::open(&p)?;
                let (found, n) = crate::digest::copy_hashed(&mut f, out, desc.size)
                    .with_context(|| format!("copying {}", p.display()))?;
                if found != desc.digest || n != desc.size {
                    bail!(ArchiveError::Mismatch {
                        path: p,
                        expected: desc.digest,
                        expected_size: desc.size,
                        found,
                        found_size: n
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks in-memory bytes against their descriptor.
fn check_bytes(desc: &Descriptor, bytes: &[u8], what: &str) -> Result<()> {
    let found = Sha256Digest::of(bytes);
    if found != desc.digest || bytes.len() as u64 != desc.size {
        bail!(ArchiveError::Mismatch {
            path: PathBuf::from(what),
            expected: desc.digest,
            expected_size: desc.size,
            found,
            found_size: bytes.len() as u64
        });
    }
    Ok(())
}

/// One image of what is written: its manifest, config and layers.
struct ImageParts {
    manifest: Descriptor,
    config: Descriptor,
    layers: Vec<Descriptor>,
    platform: Option<Platform>,
}

/// An image or index to write, with its blobs.
pub struct Artifact {
    root: Descriptor,
    images: Vec<ImageParts>,
    /// Every blob, in the order it is written: sorted by digest, each once.
    blobs: BTreeMap<Sha256Digest, (Descriptor, String)>,
}

impl Artifact {
    /// Collects everything reachable from `root` (a manifest or an index) out of `store`.
    pub fn collect(root: Descriptor, store: &BlobStore) -> Result<Artifact> {
        let mut blobs = BTreeMap::new();
        let mut images = Vec::new();
        let mut add = |d: &Descriptor, what: String| {
            blobs.entry(d.digest).or_insert((d.clone(), what));
        };
        add(&root, "the top manifest".to_string());
        let mut todo = vec![root.clone()];
        while let Some(d) = todo.pop() {
            let bytes = store.read(&d, "manifest")?;
            if d.media_type == media::OCI_INDEX || d.media_type == media::DOCKER_MANIFEST_LIST {
                let idx: Index = serde_json::from_slice(&bytes).context("parsing an index")?;
                for m in idx.manifests.iter().rev() {
                    add(
                        m,
                        format!(
                            "manifest for {}",
                            m.platform
                                .as_ref()
                                .map(|p| p.to_string())
                                .unwrap_or_default()
                        ),
                    );
                    todo.push(m.clone());
                }
            } else {
                let m: Manifest = serde_json::from_slice(&bytes).context("parsing a manifest")?;
                add(&m.config, "config".to_string());
                for (i, l) in m.layers.iter().enumerate() {
                    add(l, format!("layer {} of image {}", i + 1, d.digest));
                }
                images.push(ImageParts {
                    manifest: d.clone(),
                    config: m.config,
                    layers: m.layers,
                    platform: d.platform.clone(),
                });
            }
        }
        Ok(Artifact {
            root,
            images,
            blobs,
        })
    }

    fn index_json(&self, tags: &[TagRef]) -> Vec<u8> {
        let mut manifests = Vec::new();
        if tags.is_empty() {
            manifests.push(Descriptor {
                platform: None,
                ..self.root.clone()
            });
        }
        for t in tags {
            let mut d = Descriptor {
                platform: None,
                ..self.root.clone()
            };
            d.annotations
                .insert("io.containerd.image.name".to_string(), t.to_string());
            d.annotations.insert(
                "org.opencontainers.image.ref.name".to_string(),
                t.tag.clone(),
            );
            manifests.push(d);
        }
        let idx = Index {
            schema_version: 2,
            media_type: media::OCI_INDEX.to_string(),
            manifests,
            annotations: BTreeMap::new(),
        };
        to_go_json(&idx)
    }

    /// The image `docker load` gets: the one for `platform` (default linux/amd64) or the first.
    fn docker_image(&self, platform: Option<&Platform>) -> Result<&ImageParts> {
        let want = platform
            .cloned()
            .unwrap_or_else(|| Platform::new("linux", "amd64"));
        if let Some(i) = self
            .images
            .iter()
            .find(|i| i.platform.as_ref().is_some_and(|p| want.matches(p)))
        {
            return Ok(i);
        }
        if platform.is_some() && self.images.len() > 1 {
            let have = self
                .images
                .iter()
                .filter_map(|i| i.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>();
            bail!(
                "the index has no image for {want} to load into docker; it has: {}",
                have.join(", ")
            );
        }
        Ok(&self.images[0])
    }

    fn manifest_json(&self, tags: &[TagRef], platform: Option<&Platform>) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct DockerEntry {
            #[serde(rename = "Config")]
            config: String,
            #[serde(rename = "RepoTags")]
            repo_tags: Vec<String>,
            #[serde(rename = "Layers")]
            layers: Vec<String>,
        }
        let img = self.docker_image(platform)?;
        let path = |d: &Descriptor| format!("blobs/sha256/{}", d.digest.hex());
        let entry = DockerEntry {
            config: path(&img.config),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            layers: img.layers.iter().map(path).collect(),
        };
        Ok(to_go_json(&vec![entry]))
    }

    /// Writes the combined OCI-layout + docker-archive tar.
    pub fn write_tarball(
        &self,
        store: &BlobStore,
        tags: &[TagRef],
        platform: Option<&Platform>,
        out: &mut impl Write,
    ) -> Result<()> {
        let file = |out: &mut dyn Write, name: &str, bytes: &[u8]| -> Result<()> {
            let mut w = WriteRef(out);
            tar::write_header(
                &mut w,
                &Entry::new(name, EntryKind::File, 0o644, bytes.len() as u64, 0),
            )?;
            w.write_all(bytes)?;
            w.write_all(&[0u8; tar::BLOCK][..tar::padding(bytes.len() as u64)])?;
            Ok(())
        };
        file(out, "oci-layout", OCI_LAYOUT)?;
        file(out, "index.json", &self.index_json(tags))?;
        file(out, "manifest.json", &self.manifest_json(tags, platform)?)?;
        for dir in ["blobs", "blobs/sha256"] {
            tar::write_header(out, &Entry::new(dir, EntryKind::Dir, 0o755, 0, 0))?;
        }
        for (digest, (desc, what)) in &self.blobs {
            let name = format!("blobs/sha256/{}", digest.hex());
            tar::write_header(
                out,
                &Entry::new(&name, EntryKind::File, 0o644, desc.size, 0),
            )?;
            store.copy(desc, what, out)?;
            out.write_all(&[0u8; tar::BLOCK][..tar::padding(desc.size)])?;
        }
        out.write_all(&tar::TRAILER)?;
        Ok(())
    }

    /// Writes an OCI image layout into the (empty) directory `dir`.
    pub fn write_layout(&self, store: &BlobStore, tags: &[TagRef], dir: &Path) -> Result<()> {
        fs_err::write(dir.join("oci-layout"), OCI_LAYOUT)?;
        fs_err::write(dir.join("index.json"), self.index_json(tags))?;
        let blobs = dir.join("blobs").join("sha256");
        fs_err::create_dir_all(&blobs)?;
        for (digest, (desc, what)) in &self.blobs {
            let mut f = std::io::BufWriter::new(fs_err::File::create(blobs.join(digest.hex()))?);
            store.copy(desc, what, &mut f)?;
            f.flush()?;
        }
        Ok(())
    }
}

impl Artifact {
    /// The push manifest for pushing this artifact to `repository` with `tags`.
    pub fn push_manifest(
        &self,
        store: &BlobStore,
        repository: &str,
        tags: &[String],
    ) -> Result<PushManifest> {
        let blob_ref = |d: &Descriptor, what: &str| -> Result<BlobRef> {
            let (path, source) = store.locate(d, what)?;
            Ok(BlobRef {
                media_type: d.media_type.clone(),
                digest: d.digest,
                size: d.size,
                path,
                source,
            })
        };
        let mut manifests = Vec::new();
        let mut blobs = Vec::new();
        for img in &self.images {
            manifests.push(blob_ref(&img.manifest, "manifest")?);
            blobs.push(blob_ref(&img.config, "config")?);
            for l in &img.layers {
                blobs.push(blob_ref(l, "layer")?);
            }
        }
        if !manifests.iter().any(|m| m.digest == self.root.digest) {
            manifests.push(blob_ref(&self.root, "index")?);
        }
        blobs.sort_by_key(|b| b.digest);
        blobs.dedup_by_key(|b| b.digest);
        Ok(PushManifest {
            repository: repository.to_string(),
            tags: tags.to_vec(),
            root: blob_ref(&self.root, "root")?,
            manifests,
            blobs,
        })
    }
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

struct WriteRef<'a>(&'a mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

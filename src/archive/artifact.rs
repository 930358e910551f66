//! An image or index with every blob it reaches, written as one tar that is at once an OCI
//! image layout and a `docker load` archive (`manifest.json`), as an OCI layout directory,
//! or described by a push manifest. Every blob is checked against its digest and size while
//! it is copied.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::archive::push_manifest::{BlobRef, PushManifest, STATIC_SOURCE};
use crate::archive::store::{BlobSource, BlobStore};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::oci::layout::{self, CONTAINERD_NAME, REF_NAME};
use crate::oci::{Descriptor, Index, Manifest, Platform, Sha256Digest, TagRef, json, media};

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
    /// Every blob, in the order it is written: sorted by digest, each once, with what it
    /// is for messages.
    blobs: BTreeMap<Sha256Digest, (Descriptor, String)>,
}

impl Artifact {
    /// Collects everything reachable from `root` (a manifest or an index) out of `store`.
    pub fn collect(root: Descriptor, store: &BlobStore) -> Result<Artifact> {
        let mut a = Artifact {
            root: root.clone(),
            images: Vec::new(),
            blobs: BTreeMap::new(),
        };
        a.add(&root, "the top manifest".to_string());
        let mut todo = vec![root];
        while let Some(d) = todo.pop() {
            let bytes = store.read(&d, "manifest")?;
            if media::is_index(&d.media_type) {
                let idx: Index = serde_json::from_slice(&bytes).context("parsing an index")?;
                for m in idx.manifests.iter().rev() {
                    let p = m.platform.as_ref().map(|p| p.to_string());
                    a.add(m, format!("manifest for {}", p.unwrap_or_default()));
                    todo.push(m.clone());
                }
            } else {
                let m: Manifest = serde_json::from_slice(&bytes).context("parsing a manifest")?;
                a.add(&m.config, "config".to_string());
                for (i, l) in m.layers.iter().enumerate() {
                    a.add(l, format!("layer {} of image {}", i + 1, d.digest));
                }
                a.images.push(ImageParts {
                    platform: d.platform.clone(),
                    manifest: d,
                    config: m.config,
                    layers: m.layers,
                });
            }
        }
        Ok(a)
    }

    fn add(&mut self, d: &Descriptor, what: String) {
        self.blobs.entry(d.digest).or_insert((d.clone(), what));
    }

    /// A layout's index.json: the root once per tag (or once untagged).
    fn index_json(&self, tags: &[TagRef]) -> Vec<u8> {
        let untagged = Descriptor {
            platform: None,
            ..self.root.clone()
        };
        let mut manifests = Vec::new();
        if tags.is_empty() {
            manifests.push(untagged.clone());
        }
        for t in tags {
            let mut d = untagged.clone();
            d.annotations
                .insert(CONTAINERD_NAME.to_string(), t.to_string());
            d.annotations.insert(REF_NAME.to_string(), t.tag.clone());
            manifests.push(d);
        }
        json::go(&Index::new(media::OCI_INDEX, manifests))
    }

    /// The image `docker load` gets: the one for `platform` (default linux/amd64) or the first.
    fn docker_image(&self, platform: Option<&Platform>) -> Result<&ImageParts> {
        let want = platform
            .cloned()
            .unwrap_or_else(|| Platform::new("linux", "amd64"));
        let matching = self
            .images
            .iter()
            .find(|i| i.platform.as_ref().is_some_and(|p| want.matches(p)));
        match matching {
            Some(i) => Ok(i),
            None if platform.is_some() && self.images.len() > 1 => {
                let have = self.images.iter().filter_map(|i| i.platform.as_ref());
                let have: Vec<String> = have.map(|p| p.to_string()).collect();
                bail!(
                    "the index has no image for {want} to load into docker; it has: {}; pass \
                     one of those",
                    have.join(", ")
                )
            }
            None => Ok(&self.images[0]),
        }
    }

    /// Docker's `manifest.json` for the image `docker load` gets.
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
        let entry = DockerEntry {
            config: layout::blob_name(&img.config.digest),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            layers: img
                .layers
                .iter()
                .map(|l| layout::blob_name(&l.digest))
                .collect(),
        };
        Ok(json::go(&vec![entry]))
    }

    /// Writes the combined OCI-layout + docker-archive tar.
    pub fn write_tarball(
        &self,
        store: &BlobStore,
        tags: &[TagRef],
        platform: Option<&Platform>,
        out: &mut impl Write,
    ) -> Result<()> {
        for (name, bytes) in [
            (layout::OCI_LAYOUT_FILE, layout::OCI_LAYOUT.to_vec()),
            (layout::INDEX_FILE, self.index_json(tags)),
            ("manifest.json", self.manifest_json(tags, platform)?),
        ] {
            let entry = Entry::new(name, EntryKind::File, 0o644, bytes.len() as u64, 0);
            tar::write_file(out, &entry, &bytes)?;
        }
        for dir in ["blobs", "blobs/sha256"] {
            tar::write_header(out, &Entry::new(dir, EntryKind::Dir, 0o755, 0, 0))?;
        }
        for (digest, (desc, what)) in &self.blobs {
            let name = layout::blob_name(digest);
            tar::write_header(
                out,
                &Entry::new(&name, EntryKind::File, 0o644, desc.size, 0),
            )?;
            store.copy(desc, what, out)?;
            tar::write_padding(out, desc.size)?;
        }
        out.write_all(&tar::TRAILER)?;
        Ok(())
    }

    /// Writes an OCI image layout into the (empty) directory `dir`.
    pub fn write_layout(&self, store: &BlobStore, tags: &[TagRef], dir: &Path) -> Result<()> {
        fs_err::write(dir.join(layout::OCI_LAYOUT_FILE), layout::OCI_LAYOUT)?;
        fs_err::write(dir.join(layout::INDEX_FILE), self.index_json(tags))?;
        fs_err::create_dir_all(dir.join("blobs").join("sha256"))?;
        for (digest, (desc, what)) in &self.blobs {
            let path = layout::blob_path(dir, digest);
            let mut f = std::io::BufWriter::new(fs_err::File::create(path)?);
            store.copy(desc, what, &mut f)?;
            f.flush()?;
        }
        Ok(())
    }

    /// The push manifest for pushing this artifact to `repository` with `tags`: manifests
    /// children first and the root last, then every other blob sorted by digest.
    pub fn push_manifest(
        &self,
        store: &BlobStore,
        repository: &str,
        tags: &[String],
    ) -> Result<PushManifest> {
        let blob_ref = |d: &Descriptor, what: &str| -> Result<BlobRef> {
            let (path, source) = match store.locate(d, what)? {
                BlobSource::File(p) => (Some(p), None),
                BlobSource::Static => (None, Some(STATIC_SOURCE.to_string())),
                BlobSource::Registry(r) => (None, Some(r)),
            };
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
            import_path: None,
            tags: tags.to_vec(),
            root: blob_ref(&self.root, "root")?,
            manifests,
            blobs,
            attachments: Vec::new(),
        })
    }
}

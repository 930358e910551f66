//! The push manifest: everything `rko push` needs, written at build time by
//! `rko push-manifest` — where to push, the tags, and for every manifest and blob its
//! descriptor and where its bytes are (a file, or a repository to mount or copy from).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::archive::attachment::Attachment;
use crate::oci::Sha256Digest;

/// The `source` of a blob that is the embedded static base's layer.
pub const STATIC_SOURCE: &str = "rko:static";

/// The push manifest: everything `rko push` needs, written at build time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PushManifest {
    /// `host[:port]/repository` to push to.
    pub repository: String,
    /// The Go import path the image was built from (without `ko://`), when
    /// `rko push-manifest --import-path` gave one: what `rko resolve` matches `ko://`
    /// references against. Absent from manifests written without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_path: Option<String>,
    /// Tags to point at the root, pushed last.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The image or index that is pushed.
    pub root: BlobRef,
    /// Manifests and indexes, children before parents, the root last.
    pub manifests: Vec<BlobRef>,
    /// Every config and layer blob.
    pub blobs: Vec<BlobRef>,
    /// SBOMs and provenance statements to push as OCI referrers of the images above, after
    /// them (`rko push-manifest --attach`). Absent when there are none, so a push manifest
    /// without them is the same bytes as before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A blob and where its bytes are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlobRef {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    /// A local file with the bytes. In a push manifest file a relative path is relative to
    /// the directory holding that file, not to the working directory: build systems run the
    /// push from elsewhere than the build (Bazel in the runfiles tree, Buck2 in the user's
    /// directory), and only the manifest's own location is known to both.
    /// [`PushManifest::read`] resolves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Or a repository (`host[:port]/repo`) where the blob can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a push manifest file cannot be pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushManifestError {
    /// (`main` prints the parser's message after this one, as the error's source.)
    #[error("{manifest} is not a push manifest: expected the JSON `rko push-manifest` writes")]
    NotAPushManifest {
        manifest: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the push manifest {manifest} records blob {digest} at {recorded}, which resolves \
         (relative paths against the manifest's directory) to {resolved}, but no file is there; \
         rebuild the push target, and run it through the build system (`bazel run`, `buck2 run`) \
         so that the blobs sit where the manifest says; for a lazy push (ko_push lazy = True), \
         whose layers are not on disk, pass --remote-cache URL (or set RKO_REMOTE_CACHE)"
    )]
    MissingBlobFile {
        manifest: PathBuf,
        digest: Sha256Digest,
        recorded: PathBuf,
        resolved: PathBuf,
    },
}

impl PushManifest {
    /// Reads a push manifest file and resolves its relative blob paths against the file's
    /// directory, by joining names (symlinks are not resolved: under Bazel the manifest sits
    /// in a runfiles tree of symlinks, and the blobs must be found through that tree).
    /// Every blob file must exist, so a wrong location fails before anything is sent.
    pub fn read(manifest: &Path) -> Result<PushManifest> {
        PushManifest::read_with(manifest, false)
    }

    /// [`PushManifest::read`], but files may be missing: a lazy push reads what is not on
    /// disk from a remote cache, by digest.
    pub fn read_lazy(manifest: &Path) -> Result<PushManifest> {
        PushManifest::read_with(manifest, true)
    }

    fn read_with(manifest: &Path, may_be_missing: bool) -> Result<PushManifest> {
        let mut pm = PushManifest::read_metadata(manifest)?;
        let dir = manifest.parent().unwrap_or(Path::new(""));
        for b in pm.blob_refs_mut() {
            let Some(recorded) = b.path.take() else {
                continue;
            };
            let resolved = dir.join(&recorded);
            if !may_be_missing && !resolved.is_file() {
                bail!(PushManifestError::MissingBlobFile {
                    manifest: manifest.to_path_buf(),
                    digest: b.digest,
                    recorded,
                    resolved,
                });
            }
            b.path = Some(resolved);
        }
        Ok(pm)
    }

    /// Every blob of the push manifest with a place for its bytes: the root, the manifests,
    /// the blobs and the attached documents.
    pub fn blob_refs_mut(&mut self) -> impl Iterator<Item = &mut BlobRef> {
        std::iter::once(&mut self.root)
            .chain(self.manifests.iter_mut())
            .chain(self.blobs.iter_mut())
            .chain(self.attachments.iter_mut().map(|a| &mut a.document))
    }

    /// Reads a push manifest file for what it says about the image (repository, import
    /// path, tags, digests) only: blob paths are left as recorded and not checked, so no
    /// blob file need exist (`rko resolve` needs none).
    pub fn read_metadata(manifest: &Path) -> Result<PushManifest> {
        let bytes = fs_err::read(manifest)?;
        let pm = serde_json::from_slice(&bytes).map_err(|source| {
            PushManifestError::NotAPushManifest {
                manifest: manifest.to_path_buf(),
                source,
            }
        })?;
        Ok(pm)
    }
}

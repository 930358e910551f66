//! Blobs by digest, and where their bytes are: a file (a layer `rko layer` wrote, a JSON
//! document, a blob of a layout directory), the embedded static base layer, or a registry
//! repository that holds a shallow base's layers. Reading through the store verifies every
//! byte against its descriptor.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::archive::sources::PulledSources;
use crate::image::base::static_base;
use crate::oci::json::JSON_LIMIT;
use crate::oci::verify::{verify, verify_bytes};
use crate::oci::{Descriptor, Sha256Digest, layout};

/// Where a blob's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobSource {
    File(PathBuf),
    /// The embedded static base's layer, made by this rko.
    Static,
    /// A repository (`host[:port]/repo`) the blob can be read from.
    Registry(String),
}

/// Reads blobs from registries for the store; the registry module implements it.
pub trait RemoteBlobs {
    /// Streams the blob `desc` of `repository` into `out`, verified.
    fn fetch(&self, repository: &str, desc: &Descriptor, out: &mut dyn Write) -> Result<()>;
}

/// What a blob is wanted for, which decides between sources that all have it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Bytes are read here: the static layer (in memory) beats a registry.
    Read,
    /// A push: a registry beats the static layer (a mount sends nothing).
    Push,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "blob {digest} ({what}) is not available: none of the given blob sources has it; pass the \
     base's blobs (an OCI layout with its layers, e.g. `skopeo copy docker://BASE oci:DIR`) \
     with --blobs DIR, or the layer with --layer DESC=BLOB"
)]
pub struct MissingBlob {
    pub digest: Sha256Digest,
    pub what: String,
}

/// Blobs by digest, from files, layout directories, the static layer and a registry.
#[derive(Default)]
pub struct BlobStore {
    files: BTreeMap<Sha256Digest, PathBuf>,
    dirs: Vec<PathBuf>,
    remote: Option<String>,
    fetcher: Option<Box<dyn RemoteBlobs>>,
}

/// The bytes of the embedded static base layer, when `digest` is its digest.
pub fn static_blob(digest: &Sha256Digest) -> Option<&'static [u8]> {
    static_base::layer_if(digest).map(|l| l.blob.as_slice())
}

impl BlobStore {
    /// A file claimed to have `digest`; checked when read.
    pub fn add_file(&mut self, digest: Sha256Digest, path: PathBuf) {
        self.files.entry(digest).or_insert(path);
    }

    /// A small file (manifest, index, config) whose digest is computed here.
    pub fn add_path(&mut self, path: PathBuf) -> Result<Sha256Digest> {
        let d = Sha256Digest::of(&fs_err::read(&path)?);
        self.add_file(d, path);
        Ok(d)
    }

    /// A directory with `blobs/sha256/<hex>` (an OCI layout). A layout `rko pull` made
    /// says where the blobs it did not download can be read.
    pub fn add_dir(&mut self, dir: PathBuf) -> Result<()> {
        if let Some(s) = PulledSources::read(&dir)? {
            self.remote.get_or_insert(s.repository);
        }
        self.dirs.push(dir);
        Ok(())
    }

    /// A repository (`host[:port]/repo`) where blobs found nowhere else can be read.
    pub fn add_remote(&mut self, repository: String) {
        self.remote = Some(repository);
    }

    /// Whether some blobs may live only in a registry (a shallow base).
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Lets reads of blobs that only a registry has go through `fetcher`.
    pub fn set_fetcher(&mut self, fetcher: Box<dyn RemoteBlobs>) {
        self.fetcher = Some(fetcher);
    }

    fn resolve(&self, desc: &Descriptor, what: &str, purpose: Purpose) -> Result<BlobSource> {
        if let Some(p) = self.files.get(&desc.digest) {
            return Ok(BlobSource::File(p.clone()));
        }
        if let Some(p) = self
            .dirs
            .iter()
            .map(|d| layout::blob_path(d, &desc.digest))
            .find(|p| p.is_file())
        {
            return Ok(BlobSource::File(p));
        }
        let is_static = static_blob(&desc.digest).is_some();
        match (&self.remote, purpose) {
            (_, Purpose::Read) if is_static => Ok(BlobSource::Static),
            (Some(r), _) => Ok(BlobSource::Registry(r.clone())),
            (None, _) if is_static => Ok(BlobSource::Static),
            (None, _) => bail!(MissingBlob {
                digest: desc.digest,
                what: what.to_string()
            }),
        }
    }

    /// Where a push reads the blob from.
    pub fn locate(&self, desc: &Descriptor, what: &str) -> Result<BlobSource> {
        self.resolve(desc, what, Purpose::Push)
    }

    /// Reads a small (JSON) blob whole: at most [`JSON_LIMIT`] bytes.
    pub fn read(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
        if desc.size > JSON_LIMIT {
            bail!(
                "{what} {} is too large: its descriptor says {} bytes, and rko reads at most \
                 {JSON_LIMIT} bytes of a manifest, index or config; expected a manifest or \
                 index that an image tool wrote (check the descriptor)",
                desc.digest,
                desc.size
            );
        }
        let mut out = Vec::new();
        self.copy(desc, what, &mut out)?;
        Ok(out)
    }

    /// Streams a blob into `out`, checking digest and size. A failure to write `out` (a
    /// full disk) is reported as a write, not as a failure to read the blob.
    pub fn copy(&self, desc: &Descriptor, what: &str, out: &mut impl Write) -> Result<()> {
        match self.resolve(desc, what, Purpose::Read)? {
            BlobSource::File(p) => {
                let mut f = fs_err::File::open(&p)?;
                if !f.metadata()?.is_file() {
                    bail!(
                        "blob {} ({what}) at {} is not a regular file; expected the blob's bytes \
                         in a plain file (a pipe or device is not read)",
                        desc.digest,
                        p.display()
                    );
                }
                let subject = || format!("blob {}", p.display());
                verify(desc, &mut f, out, subject, "rebuild it")?;
            }
            BlobSource::Static => {
                let bytes = static_blob(&desc.digest).expect("resolved as the static layer");
                verify_bytes(desc, bytes, || "the static layer".into(), "rebuild it")?;
                out.write_all(bytes).with_context(|| {
                    format!("writing the copy of blob {} ({what})", desc.digest)
                })?;
            }
            BlobSource::Registry(repository) => match &self.fetcher {
                Some(f) => f.fetch(&repository, desc, out)?,
                None => bail!(MissingBlob {
                    digest: desc.digest,
                    what: format!("{what}, in {repository}, which this command does not reach"),
                }),
            },
        }
        Ok(())
    }
}

//! Pulling a base by digest into an OCI image layout. Shallow by default: the manifest or
//! index and the configs of the platforms asked for, each verified against its digest and
//! size; the layers stay in the registry, and `rko-sources.json` records where they can be
//! read. Eager mode also fetches the layer blobs (verified while streaming to disk).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::archive::sources::PulledSources;
use crate::archive::store::RemoteBlobs;
use crate::oci::json::JSON_LIMIT;
use crate::oci::layout::{self, REF_NAME};
use crate::oci::verify::{verify, verify_bytes};
use crate::oci::{Descriptor, Index, Manifest, NoPlatform, Platform, Reference, Sha256Digest};
use crate::oci::{json, media};
use crate::registry::client::{Client, Payload, RegistryError, bytes_shown};
use crate::registry::mirrors::Source;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(
        "{reference} is not pinned by digest: expected REFERENCE@sha256:… so the build is reproducible; pass --allow-tag to resolve the tag once and print the digest to pin"
    )]
    NotPinned { reference: String },
    #[error("{reference} has {missing}")]
    NoPlatform {
        reference: String,
        missing: NoPlatform,
    },
}

/// What to do about a blob the registry sent that is not the one asked for.
const REGISTRY_CHANGED: &str = "the registry content changed or is corrupt";

use crate::oci::media::MANIFEST_ACCEPT as ACCEPT;

pub struct Puller<'a> {
    pub client: &'a Client,
}

/// What a pull produced.
pub struct Pulled {
    /// The repository that served it (a mirror, or the origin).
    pub from: String,
    pub digest: Sha256Digest,
    pub media_type: String,
    pub bytes_downloaded: u64,
}

impl Puller<'_> {
    fn get(
        &self,
        r: &Reference,
        path: &str,
        accept: Option<&str>,
    ) -> Result<crate::registry::client::Response> {
        let scopes = [format!("repository:{}:pull", r.repository)];
        let headers: Vec<(&str, String)> = accept
            .map(|a| vec![("accept", a.to_string())])
            .unwrap_or_default();
        let mut resp =
            self.client
                .send(&r.registry, "GET", path, &headers, &scopes, &mut || {
                    Ok(Payload::Empty)
                })?;
        if resp.status != 200 {
            bail!(RegistryError::Status {
                method: "GET".into(),
                url: format!("{}{path}", r.registry),
                status: resp.status,
                body: resp.text()
            });
        }
        Ok(resp)
    }

    fn manifest(
        &self,
        r: &Reference,
        target: &str,
        expect: Option<&Sha256Digest>,
    ) -> Result<(Vec<u8>, String, Sha256Digest)> {
        let mut resp = self.get(
            r,
            &format!("/v2/{}/manifests/{target}", r.repository),
            Some(ACCEPT),
        )?;
        let mt = resp.header("content-type").unwrap_or_default();
        let bytes = resp.read_to_vec(JSON_LIMIT)?;
        let found = Sha256Digest::of(&bytes);
        if let Some(e) = expect {
            let d = Descriptor::new(&mt, *e, bytes.len() as u64);
            let subject = || format!("the manifest {target} from {r}");
            verify_bytes(&d, &bytes, subject, REGISTRY_CHANGED)?;
        }
        let mt = media::probe(&bytes).unwrap_or(mt);
        Ok((bytes, mt, found))
    }

    /// The manifest or index `r` names (checked against its digest when pinned), its media
    /// type and its digest.
    pub fn top(&self, r: &Reference) -> Result<(Vec<u8>, String, Sha256Digest)> {
        self.manifest(r, &r.target(), r.digest.as_ref())
    }

    /// Streams a blob into `out`, checking digest and size; returns the bytes read.
    pub fn blob(&self, r: &Reference, d: &Descriptor, out: &mut impl Write) -> Result<u64> {
        let mut resp = self.get(r, &format!("/v2/{}/blobs/{}", r.repository, d.digest), None)?;
        let subject = || format!("blob {} from {}", d.digest, r.name());
        Ok(verify(
            d,
            &mut resp.reader(),
            out,
            subject,
            REGISTRY_CHANGED,
        )?)
    }

    /// Downloads the config of each image manifest in `images`, and with `eager` its layers,
    /// into the layout `dir`; returns the layers left in the registry.
    fn configs_and_layers(
        &self,
        r: &Reference,
        images: &[Vec<u8>],
        eager: bool,
        dir: &Path,
        downloaded: &mut u64,
    ) -> Result<Vec<Descriptor>> {
        let mut missing: Vec<Descriptor> = Vec::new();
        for bytes in images {
            let m: Manifest = serde_json::from_slice(bytes).context("parsing a base manifest")?;
            if m.config.size > JSON_LIMIT {
                bail!(
                    "the config of {r} is {} bytes by its manifest, more than the {} rko \
                     reads of an image config: refusing it (a broken or hostile manifest)",
                    m.config.size,
                    bytes_shown(JSON_LIMIT)
                );
            }
            let mut cfg = Vec::new();
            *downloaded += self.blob(r, &m.config, &mut cfg)?;
            fs_err::write(layout::blob_path(dir, &m.config.digest), &cfg)?;
            for l in &m.layers {
                if eager {
                    let path = layout::blob_path(dir, &l.digest);
                    let mut f = std::io::BufWriter::new(fs_err::File::create(&path)?);
                    *downloaded += self.blob(r, l, &mut f)?;
                    f.flush()?;
                } else if !missing.iter().any(|d| d.digest == l.digest) {
                    missing.push(l.clone());
                }
            }
        }
        Ok(missing)
    }

    /// Pulls from each of `sources` in turn (mirrors, then the origin) until one serves
    /// the reference; a failed source is reported on stderr and its partial files removed.
    pub fn pull_from(
        &self,
        sources: &[Source],
        platforms: &[Platform],
        allow_tag: bool,
        eager: bool,
        dir: &Path,
    ) -> Result<Pulled> {
        if let Some(s) = sources.first()
            && s.reference.digest.is_none()
            && !allow_tag
        {
            bail!(PullError::NotPinned {
                reference: s.reference.to_string()
            });
        }
        let mut failed = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            let r = &s.reference;
            let e = match self.pull(r, platforms, allow_tag, eager, dir) {
                Ok(p) => return Ok(p),
                Err(e) => e,
            };
            let Some(next) = sources.get(i + 1) else {
                return Err(match failed.is_empty() {
                    true => e,
                    false => e.context(format!("pulling {r} (after {})", failed.join(", "))),
                });
            };
            let what = if s.mirror { "mirror" } else { "source" };
            eprintln!(
                "rko: {what} {} failed: {e:#}; trying {}",
                r.name(),
                next.reference.name()
            );
            failed.push(format!("{what} {} failed", r.name()));
            for entry in fs_err::read_dir(dir)? {
                let path = entry?.path();
                match path.is_dir() {
                    true => fs_err::remove_dir_all(&path)?,
                    false => fs_err::remove_file(&path)?,
                }
            }
        }
        bail!("no source to pull from: expected at least the origin")
    }

    /// Pulls `r` for `platforms` into the (new, empty) layout directory `dir`.
    pub fn pull(
        &self,
        r: &Reference,
        platforms: &[Platform],
        allow_tag: bool,
        eager: bool,
        dir: &Path,
    ) -> Result<Pulled> {
        if r.digest.is_none() && !allow_tag {
            bail!(PullError::NotPinned {
                reference: r.to_string()
            });
        }
        let blobs = dir.join("blobs/sha256");
        fs_err::create_dir_all(&blobs)?;
        let write = |d: &Sha256Digest, b: &[u8]| fs_err::write(blobs.join(d.hex()), b);
        let (top, top_mt, top_digest) = self.manifest(r, &r.target(), r.digest.as_ref())?;
        write(&top_digest, &top)?;
        let mut downloaded = top.len() as u64;
        let mut images = Vec::new();
        if media::is_index(&top_mt) {
            let idx: Index = serde_json::from_slice(&top).context("parsing the base index")?;
            for p in platforms {
                let child = idx.select(p).map_err(|missing| PullError::NoPlatform {
                    reference: r.to_string(),
                    missing,
                })?;
                let (bytes, _, d) =
                    self.manifest(r, &child.digest.to_string(), Some(&child.digest))?;
                write(&d, &bytes)?;
                downloaded += bytes.len() as u64;
                images.push(bytes);
            }
        } else {
            images.push(top.clone());
        }
        let missing = self.configs_and_layers(r, &images, eager, dir, &mut downloaded)?;
        fs_err::write(dir.join(layout::OCI_LAYOUT_FILE), layout::OCI_LAYOUT)?;
        let mut root = Descriptor::of_bytes(&top_mt, &top);
        root.annotations.insert(REF_NAME.into(), r.to_string());
        let index = Index::new(media::OCI_INDEX, vec![root]);
        fs_err::write(dir.join(layout::INDEX_FILE), json::go(&index))?;
        let sources = PulledSources {
            repository: r.name(),
            blobs: missing,
        };
        sources.write(dir)?;
        Ok(Pulled {
            from: r.name(),
            digest: top_digest,
            media_type: top_mt,
            bytes_downloaded: downloaded,
        })
    }
}

/// Streams the blobs of a shallow base from the registry they live in.
pub struct RegistryBlobs(pub Client);

impl RemoteBlobs for RegistryBlobs {
    fn fetch(&self, repository: &str, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        let r = Reference::parse(repository)?;
        Puller { client: &self.0 }.blob(&r, desc, &mut { out })?;
        Ok(())
    }
}

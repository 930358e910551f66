//! Pulling a base by digest into an OCI image layout. Shallow by default: the manifest or
//! index and the configs of the platforms asked for, each verified against its digest and
//! size; the layers stay in the registry, and `rko-sources.json` records where they can be
//! read. Eager mode also fetches the layer blobs (verified while streaming to disk).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::image::descriptor::{Descriptor, Index, Manifest, to_go_json};
use crate::media;
use crate::platform::Platform;
use crate::registry::client::{Client, Payload, RegistryError};
use crate::registry::reference::Reference;

/// The file in a pulled layout that says where its missing blobs can be read.
pub const SOURCES_FILE: &str = "rko-sources.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sources {
    /// `host[:port]/repository` the base was pulled from.
    pub repository: String,
    /// The layer blobs that were not downloaded.
    pub blobs: Vec<Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(
        "{reference} is not pinned by digest: expected REFERENCE@sha256:… so the build is reproducible; pass --allow-tag to resolve the tag once and print the digest to pin"
    )]
    NotPinned { reference: String },
    #[error(
        "{what} from {reference} does not match: expected {expected}, the registry sent {found}; the registry content changed or is corrupt"
    )]
    Mismatch {
        reference: String,
        what: String,
        expected: String,
        found: String,
    },
    #[error("{reference} has no image for {wanted}; it has: {found}")]
    NoPlatform {
        reference: String,
        wanted: String,
        found: String,
    },
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

pub struct Puller<'a> {
    pub client: &'a Client,
}

/// What a pull produced.
pub struct Pulled {
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
        let bytes = resp.read_to_vec(16 << 20)?;
        let found = Sha256Digest::of(&bytes);
        if let Some(e) = expect
            && *e != found
        {
            bail!(PullError::Mismatch {
                reference: r.to_string(),
                what: "the manifest".into(),
                expected: e.to_string(),
                found: found.to_string()
            });
        }
        let mt = media_type_of(&bytes).unwrap_or(mt);
        Ok((bytes, mt, found))
    }

    /// Streams a blob into `out`, checking digest and size; returns the bytes read.
    pub fn blob(&self, r: &Reference, d: &Descriptor, out: &mut impl Write) -> Result<u64> {
        let mut resp = self.get(r, &format!("/v2/{}/blobs/{}", r.repository, d.digest), None)?;
        let (found, n) = crate::digest::copy_hashed(&mut resp.body.as_reader(), out, d.size)?;
        if found != d.digest || n != d.size {
            bail!(PullError::Mismatch {
                reference: r.to_string(),
                what: format!("blob {}", d.digest),
                expected: format!("{} ({} bytes)", d.digest, d.size),
                found: format!("{found} ({n} bytes)"),
            });
        }
        Ok(n)
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
        if top_mt == media::OCI_INDEX || top_mt == media::DOCKER_MANIFEST_LIST {
            let idx: Index = serde_json::from_slice(&top).context("parsing the base index")?;
            for p in platforms {
                let child = crate::image::index::select(&idx, p).map_err(|found| {
                    PullError::NoPlatform {
                        reference: r.to_string(),
                        wanted: p.to_string(),
                        found,
                    }
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
        let mut missing = Vec::new();
        for bytes in &images {
            let m: Manifest = serde_json::from_slice(bytes).context("parsing a base manifest")?;
            let mut cfg = Vec::new();
            downloaded += self.blob(r, &m.config, &mut cfg)?;
            write(&m.config.digest, &cfg)?;
            for l in &m.layers {
                if eager {
                    let path = blobs.join(l.digest.hex());
                    let mut f = std::io::BufWriter::new(fs_err::File::create(&path)?);
                    downloaded += self.blob(r, l, &mut f)?;
                    f.flush()?;
                } else if !missing.iter().any(|d: &Descriptor| d.digest == l.digest) {
                    missing.push(l.clone());
                }
            }
        }
        fs_err::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut root = Descriptor::new(&top_mt, &top);
        root.annotations
            .insert("org.opencontainers.image.ref.name".into(), r.to_string());
        let index = Index {
            schema_version: 2,
            media_type: media::OCI_INDEX.into(),
            manifests: vec![root],
            annotations: Default::default(),
        };
        fs_err::write(dir.join("index.json"), to_go_json(&index))?;
        let sources = Sources {
            repository: r.name(),
            blobs: missing,
        };
        let mut sj = serde_json::to_vec_pretty(&sources)?;
        sj.push(b'\n');
        fs_err::write(dir.join(SOURCES_FILE), sj)?;
        Ok(Pulled {
            digest: top_digest,
            media_type: top_mt,
            bytes_downloaded: downloaded,
        })
    }
}

fn media_type_of(bytes: &[u8]) -> Option<String> {
    let probed = crate::base::layout::probe_media_type(bytes);
    if !probed.is_empty() {
        return Some(probed);
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(
        if v.get("manifests").is_some() {
            media::OCI_INDEX
        } else {
            media::OCI_MANIFEST
        }
        .to_string(),
    )
}

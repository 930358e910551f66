//! Reading a base from an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) as any tool writes it (`skopeo copy … oci:DIR`, `rko pull`). Every
//! blob read is checked against its descriptor's digest and size; layer blobs are never
//! read here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

use crate::base::Base;
use crate::digest::Sha256Digest;
use crate::image::config::ConfigFile;
use crate::image::descriptor::{Descriptor, Index, Manifest};
use crate::media;
use crate::platform::Platform;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "{dir} is not an OCI image layout: expected the files oci-layout and index.json in it (make one with `skopeo copy docker://IMAGE oci:{dir}`)"
    )]
    NotALayout { dir: PathBuf },
    #[error(
        "blob {digest} is missing from {dir}; expected it at {path} (copy the whole image into the layout again)"
    )]
    MissingBlob {
        dir: PathBuf,
        digest: Sha256Digest,
        path: PathBuf,
    },
    #[error(
        "blob {path} does not match its descriptor: expected {expected} ({expected_size} bytes), found {found} ({found_size} bytes); the layout is corrupt, copy the image again"
    )]
    DigestMismatch {
        path: PathBuf,
        expected: Sha256Digest,
        expected_size: u64,
        found: Sha256Digest,
        found_size: u64,
    },
    #[error(
        "base digest mismatch in {dir}: expected {expected}, but the layout holds {found}; update the pinned digest or the layout"
    )]
    PinMismatch {
        dir: PathBuf,
        expected: Sha256Digest,
        found: String,
    },
    #[error("{dir} holds {count} images; pin one with DIR@sha256:… (it holds: {found})")]
    Ambiguous {
        dir: PathBuf,
        count: usize,
        found: String,
    },
    #[error(
        "the base index {digest} has no image for platform {wanted}; it has: {found} (choose one of those with --platform)"
    )]
    NoPlatform {
        digest: Sha256Digest,
        wanted: String,
        found: String,
    },
    #[error(
        "the base image is for {found}, but the platform asked for is {wanted}; use --platform {found} or a base for {wanted}"
    )]
    WrongPlatform { wanted: String, found: String },
    #[error("blob {digest} has media type {media_type:?}; expected an image manifest or index")]
    UnknownMediaType {
        digest: Sha256Digest,
        media_type: String,
    },
}

/// The path of a blob in a layout.
pub fn blob_path(dir: &Path, digest: &Sha256Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// Reads a blob and checks it against `desc`.
pub fn read_verified(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>> {
    let path = blob_path(dir, &desc.digest);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LayoutError::MissingBlob {
                dir: dir.to_path_buf(),
                digest: desc.digest,
                path,
            }
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let found = Sha256Digest::of(&bytes);
    if found != desc.digest || bytes.len() as u64 != desc.size {
        return Err(LayoutError::DigestMismatch {
            path,
            expected: desc.digest,
            expected_size: desc.size,
            found,
            found_size: bytes.len() as u64,
        }
        .into());
    }
    Ok(bytes)
}

fn parse<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: &str) -> Result<T> {
    serde_json::from_slice(bytes).with_context(|| {
        format!(
            "{} is not a valid {what} (corrupt JSON); copy the base image again",
            path.display()
        )
    })
}

/// The media type of a manifest-ish blob: its descriptor's, else the one in its JSON.
fn media_type_of(desc: &Descriptor, bytes: &[u8]) -> String {
    if !desc.media_type.is_empty() {
        return desc.media_type.clone();
    }
    probe_media_type(bytes)
}

/// The `mediaType` field of a manifest or index JSON, or "" when it has none.
pub fn probe_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
    }
    serde_json::from_slice::<Probe>(bytes)
        .map(|p| p.media_type)
        .unwrap_or_default()
}

/// Reads `index.json` of a layout.
pub fn read_index_json(dir: &Path) -> Result<Index> {
    if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
        return Err(LayoutError::NotALayout {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let path = dir.join("index.json");
    parse(&fs_err::read(&path)?, &path, "OCI layout index.json")
}

/// Resolves a layout base, pinned by `pin` when given, for `platform`.
pub fn read_base(
    dir: &Path,
    pin: Option<&Sha256Digest>,
    platform: &Platform,
    name: Option<&str>,
) -> Result<Base> {
    let top = read_index_json(dir)?;
    let list = |ds: &[Descriptor]| {
        ds.iter()
            .map(|d| d.digest.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let root = match pin {
        Some(d) => match top.manifests.iter().find(|m| &m.digest == d) {
            Some(m) => m.clone(),
            None if blob_path(dir, d).is_file() => {
                let size = fs_err::metadata(blob_path(dir, d))?.len();
                Descriptor {
                    media_type: String::new(),
                    size,
                    digest: *d,
                    urls: None,
                    annotations: Default::default(),
                    platform: None,
                    artifact_type: None,
                }
            }
            None => {
                return Err(LayoutError::PinMismatch {
                    dir: dir.to_path_buf(),
                    expected: *d,
                    found: list(&top.manifests),
                }
                .into());
            }
        },
        None => match top.manifests.as_slice() {
            [one] => one.clone(),
            many => {
                return Err(LayoutError::Ambiguous {
                    dir: dir.to_path_buf(),
                    count: many.len(),
                    found: list(many),
                }
                .into());
            }
        },
    };
    let mut desc = root.clone();
    let mut index_media_type = None;
    loop {
        let bytes = read_verified(dir, &desc)?;
        let mt = media_type_of(&desc, &bytes);
        let path = blob_path(dir, &desc.digest);
        match mt.as_str() {
            media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => {
                let idx: Index = parse(&bytes, &path, "image index")?;
                let child = crate::image::index::select(&idx, platform).map_err(|found| {
                    LayoutError::NoPlatform {
                        digest: desc.digest,
                        wanted: platform.to_string(),
                        found,
                    }
                })?;
                index_media_type.get_or_insert(mt.clone());
                desc = child.clone();
            }
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => {
                let m: Manifest = parse(&bytes, &path, "image manifest")?;
                let cfg_bytes = read_verified(dir, &m.config)?;
                let config: ConfigFile = parse(
                    &cfg_bytes,
                    &blob_path(dir, &m.config.digest),
                    "image config",
                )?;
                let mut found = Platform::new(&config.os, &config.architecture);
                found.variant = config.variant.clone();
                found.os_version = config.os_version.clone();
                if !platform.matches(&found) {
                    return Err(LayoutError::WrongPlatform {
                        wanted: platform.to_string(),
                        found: found.to_string(),
                    }
                    .into());
                }
                return Ok(Base {
                    name: name.map(str::to_string),
                    pinned_digest: Some(desc.digest),
                    manifest_annotations: m.annotations,
                    media_type: mt,
                    index_media_type,
                    config,
                    layers: m.layers,
                    platform: found,
                    blob_dir: Some(dir.to_path_buf()),
                });
            }
            other => {
                return Err(LayoutError::UnknownMediaType {
                    digest: desc.digest,
                    media_type: other.to_string(),
                }
                .into());
            }
        }
    }
}

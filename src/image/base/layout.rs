//! Reading a base from an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) as any tool writes it (`skopeo copy … oci:DIR`, `rko pull`). Every
//! blob read is checked against its descriptor's digest and size; layer blobs are never
//! read here.
//!
//! A layout is untrusted input, so reading one is bounded:
//! - digests are parsed before any path is made of them (`sha256:` and 64 lowercase hex
//!   digits), so a descriptor can never name a path outside `blobs/sha256/`;
//! - `index.json`, manifests, indexes and configs are read only up to [`JSON_LIMIT`] (as
//!   the registry client bounds manifests; containers/image allows 4 MiB), and only from
//!   regular files, so a FIFO or a link to `/dev/zero` cannot hang or exhaust memory;
//! - symlinks are followed, the `blobs` directory's included (as containers/image and
//!   go-containerregistry do): every blob read is checked against its digest, so a link can
//!   only supply the very bytes the digest names.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

use crate::image::base::Base;
use crate::oci::layout::{INDEX_FILE, OCI_LAYOUT_FILE, blob_path};
use crate::oci::verify::verify_bytes;
use crate::oci::{
    ConfigFile, Descriptor, Index, Manifest, NoPlatform, Platform, Sha256Digest, media,
};

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
        "the base index {digest} has no image for platform {}; it has: {} (choose one of those with --platform)",
        .missing.wanted, .missing.found
    )]
    NoPlatform {
        digest: Sha256Digest,
        missing: NoPlatform,
    },
    #[error(
        "the base image is for {found}, but the platform asked for is {wanted}; use --platform {found} or a base for {wanted}"
    )]
    WrongPlatform { wanted: String, found: String },
    #[error(
        "{path} is too large for {what}: {found} bytes, and rko reads at most {limit} bytes of one; expected a layout written by an image tool (skopeo, rko pull); check that it is the right file, or copy the image again"
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        found: u64,
        limit: u64,
    },
    #[error(
        "{path} is not a regular file (found {found}); expected {what} as a plain file (copy the image into the layout again)"
    )]
    NotRegular {
        path: PathBuf,
        what: &'static str,
        found: &'static str,
    },
    #[error("blob {digest} has media type {media_type:?}; expected an image manifest or index")]
    UnknownMediaType {
        digest: Sha256Digest,
        media_type: String,
    },
}

use crate::oci::json::JSON_LIMIT;

/// What a file is, for messages.
fn kind_of(m: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if m.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads the regular file `path` (symlinks followed), at most `limit` bytes of it.
/// `Ok(None)` when it does not exist.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let meta = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        return Err(LayoutError::NotRegular {
            path: path.to_path_buf(),
            what,
            found: kind_of(&meta),
        }
        .into());
    }
    let too_large = |found| LayoutError::TooLarge {
        path: path.to_path_buf(),
        what,
        found,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()).into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64).into());
    }
    Ok(Some(bytes))
}

/// Reads a (manifest, index or config) blob and checks it against `desc`.
pub fn read_verified(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>> {
    let path = blob_path(dir, &desc.digest);
    let what = "a manifest, index or config blob";
    if desc.size > JSON_LIMIT {
        return Err(LayoutError::TooLarge {
            path,
            what,
            found: desc.size,
            limit: JSON_LIMIT,
        }
        .into());
    }
    let Some(bytes) = read_bounded(&path, JSON_LIMIT, what)? else {
        return Err(LayoutError::MissingBlob {
            dir: dir.to_path_buf(),
            digest: desc.digest,
            path,
        }
        .into());
    };
    let subject = || format!("blob {}", path.display());
    verify_bytes(
        desc,
        &bytes,
        subject,
        "the layout is corrupt, copy the image again",
    )?;
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

/// The media type of a manifest-ish blob: its descriptor's, else the one its JSON implies.
fn media_type_of(desc: &Descriptor, bytes: &[u8]) -> String {
    if !desc.media_type.is_empty() {
        return desc.media_type.clone();
    }
    media::probe(bytes).unwrap_or_default()
}

/// Reads `index.json` of a layout.
pub fn read_index_json(dir: &Path) -> Result<Index> {
    if !dir.join(OCI_LAYOUT_FILE).is_file() || !dir.join(INDEX_FILE).is_file() {
        return Err(LayoutError::NotALayout {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let path = dir.join(INDEX_FILE);
    let bytes = read_bounded(&path, JSON_LIMIT, "an OCI layout's index.json")?;
    let bytes = bytes.ok_or_else(|| LayoutError::NotALayout {
        dir: dir.to_path_buf(),
    })?;
    parse(&bytes, &path, "OCI layout index.json")
}

/// Resolves a layout base, pinned by `pin` when given, for `platform`.
pub fn read_base(
    dir: &Path,
    pin: Option<&Sha256Digest>,
    platform: &Platform,
    name: Option<&str>,
) -> Result<Base> {
    let mut desc = root_of(dir, pin)?;
    loop {
        let bytes = read_verified(dir, &desc)?;
        let mt = media_type_of(&desc, &bytes);
        let path = blob_path(dir, &desc.digest);
        match mt.as_str() {
            media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => {
                let idx: Index = parse(&bytes, &path, "image index")?;
                let child = idx
                    .select(platform)
                    .map_err(|missing| LayoutError::NoPlatform {
                        digest: desc.digest,
                        missing,
                    })?;
                desc = child.clone();
            }
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => {
                let m: Manifest = parse(&bytes, &path, "image manifest")?;
                let cfg_bytes = read_verified(dir, &m.config)?;
                let cfg_path = blob_path(dir, &m.config.digest);
                let config: ConfigFile = parse(&cfg_bytes, &cfg_path, "image config")?;
                let found = Platform::of_config(&config);
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
                    config,
                    layers: m.layers,
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

/// The platforms `--platform all` builds on a layout base, as ko takes them from a base:
/// those of its index ([`Index::buildable_platforms`]), or for a single image the one its
/// config names.
pub fn all_platforms(dir: &Path, pin: Option<&Sha256Digest>) -> Result<Vec<Platform>> {
    let desc = root_of(dir, pin)?;
    let bytes = read_verified(dir, &desc)?;
    let path = blob_path(dir, &desc.digest);
    match media_type_of(&desc, &bytes).as_str() {
        media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => {
            let idx: Index = parse(&bytes, &path, "image index")?;
            idx.buildable_platforms()
                .with_context(|| format!("--platform all on the base index {}", desc.digest))
        }
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => {
            let m: Manifest = parse(&bytes, &path, "image manifest")?;
            let cfg_bytes = read_verified(dir, &m.config)?;
            let cfg_path = blob_path(dir, &m.config.digest);
            let config: ConfigFile = parse(&cfg_bytes, &cfg_path, "image config")?;
            Ok(vec![platform_of_single(&config)])
        }
        other => Err(LayoutError::UnknownMediaType {
            digest: desc.digest,
            media_type: other.to_string(),
        }
        .into()),
    }
}

/// The platform ko builds on a base that is one image: its config's, linux/amd64 where
/// the config leaves os or architecture out.
pub fn platform_of_single(config: &ConfigFile) -> Platform {
    let mut p = Platform::of_config(config);
    if p.os.is_empty() {
        p.os = "linux".to_string();
    }
    if p.architecture.is_empty() {
        p.architecture = "amd64".to_string();
    }
    p
}

/// The layout's image or index: the one pinned (listed in index.json, or only among its
/// blobs), else the only one it lists.
fn root_of(dir: &Path, pin: Option<&Sha256Digest>) -> Result<Descriptor> {
    let top = read_index_json(dir)?;
    let list = |ds: &[Descriptor]| {
        ds.iter()
            .map(|d| d.digest.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (pin, top.manifests.as_slice()) {
        (Some(d), all) => match all.iter().find(|m| &m.digest == d) {
            Some(m) => Ok(m.clone()),
            None if blob_path(dir, d).is_file() => {
                let size = fs_err::metadata(blob_path(dir, d))?.len();
                Ok(Descriptor::new("", *d, size))
            }
            None => Err(LayoutError::PinMismatch {
                dir: dir.to_path_buf(),
                expected: *d,
                found: list(all),
            }
            .into()),
        },
        (None, [one]) => Ok(one.clone()),
        (None, many) => Err(LayoutError::Ambiguous {
            dir: dir.to_path_buf(),
            count: many.len(),
            found: list(many),
        }
        .into()),
    }
}

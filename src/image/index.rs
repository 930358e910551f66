//! Image indexes: one image per platform. The index is an OCI index, or a Docker manifest
//! list when the images use Docker media types (as ko follows its base).

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::oci::{Descriptor, Index, json, media};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("an index needs at least one image descriptor (made by `rko image --descriptor`)")]
    Empty,
    #[error(
        "image descriptor {digest} has no platform; expected descriptors written by `rko image`, which record it"
    )]
    NoPlatform { digest: String },
    #[error(
        "two images are for the same platform {platform}: {a} and {b}; give one image per platform"
    )]
    SamePlatform {
        platform: String,
        a: String,
        b: String,
    },
    #[error(
        "the images mix OCI and Docker media types ({a} and {b}); build them on bases of the same kind"
    )]
    Mixed { a: String, b: String },
}

/// Builds the index JSON from per-platform image descriptors (in the order given).
pub fn build(
    images: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Descriptor)> {
    let Some(first) = images.first() else {
        bail!(IndexError::Empty)
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for d in images {
        let Some(p) = &d.platform else {
            bail!(IndexError::NoPlatform {
                digest: d.digest.to_string()
            })
        };
        if let Some(prev) = seen.insert(p.to_string(), d.digest.to_string()) {
            bail!(IndexError::SamePlatform {
                platform: p.to_string(),
                a: prev,
                b: d.digest.to_string()
            });
        }
        if media::is_docker(&d.media_type) != media::is_docker(&first.media_type) {
            bail!(IndexError::Mixed {
                a: first.media_type.clone(),
                b: d.media_type.clone()
            });
        }
    }
    let mt = if media::is_docker(&first.media_type) {
        media::DOCKER_MANIFEST_LIST
    } else {
        media::OCI_INDEX
    };
    let index = Index {
        annotations: annotations.clone(),
        ..Index::new(mt, images.to_vec())
    };
    let bytes = json::go(&index);
    let desc = Descriptor::of_bytes(mt, &bytes);
    Ok((bytes, desc))
}

//! OCI content descriptors, manifests and indexes, with fields in the order
//! go-containerregistry (and so ko) serializes them, and maps kept sorted so the JSON is
//! the same on every run; and choosing an index's image for a platform.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::oci::digest::Sha256Digest;
use crate::oci::platform::Platform;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub size: u64,
    pub digest: Sha256Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor of `size` bytes with `digest`: the one constructor.
    pub fn new(media_type: &str, digest: Sha256Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            size,
            digest,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }

    /// The descriptor of `bytes`.
    pub fn of_bytes(media_type: &str, bytes: &[u8]) -> Self {
        Self::new(media_type, Sha256Digest::of(bytes), bytes.len() as u64)
    }

    /// Reads a descriptor file written by `rko image` or `rko index`.
    pub fn read_file(path: &Path) -> Result<Self, DescriptorFileError> {
        let bytes = fs_err::read(path).map_err(|cause| DescriptorFileError::Unreadable {
            path: path.display().to_string(),
            cause,
        })?;
        serde_json::from_slice(&bytes).map_err(|cause| DescriptorFileError::NotADescriptor {
            path: path.display().to_string(),
            cause,
        })
    }
}

/// A descriptor file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorFileError {
    #[error("cannot read {path}: {cause}")]
    Unreadable { path: String, cause: std::io::Error },
    #[error(
        "{path} is not an image descriptor ({cause}): expected the JSON that `rko image \
         --descriptor-out` or `rko index --descriptor-out` writes"
    )]
    NotADescriptor {
        path: String,
        cause: serde_json::Error,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// An index of `media_type` listing `manifests`.
    pub fn new(media_type: &str, manifests: Vec<Descriptor>) -> Self {
        Index {
            schema_version: 2,
            media_type: media_type.to_string(),
            manifests,
            annotations: BTreeMap::new(),
        }
    }

    /// The first entry for `platform`, matched as ko matches (an unnamed variant matches any).
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor, NoPlatform> {
        self.manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| NoPlatform {
                wanted: platform.to_string(),
                found: self
                    .manifests
                    .iter()
                    .map(|m| match &m.platform {
                        Some(p) => p.to_string(),
                        None => "(no platform)".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
    /// The platforms of the images this index lists, as `ko build --platform=all` takes
    /// them: in index order, each once, leaving out the `unknown/unknown` entries Docker
    /// uses for attestations. A nested index is refused, as ko refuses it; so is an image
    /// without a platform (ko would read its config; rko asks for the platforms instead).
    pub fn buildable_platforms(&self) -> Result<Vec<Platform>, AllPlatformsError> {
        let mut out: Vec<Platform> = Vec::new();
        for (i, m) in self.manifests.iter().enumerate() {
            let image = [
                crate::oci::media::OCI_MANIFEST,
                crate::oci::media::DOCKER_MANIFEST,
            ];
            if !image.contains(&m.media_type.as_str()) {
                return Err(AllPlatformsError::NotAnImage {
                    entry: i,
                    digest: m.digest,
                    media_type: m.media_type.clone(),
                });
            }
            let Some(p) = &m.platform else {
                return Err(AllPlatformsError::NoPlatform {
                    entry: i,
                    digest: m.digest,
                });
            };
            if p.os == "unknown" || p.architecture == "unknown" {
                continue;
            }
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        if out.is_empty() {
            return Err(AllPlatformsError::None);
        }
        Ok(out)
    }
}

/// Why an index gives no platforms for `--platform all`.
#[derive(Debug, thiserror::Error)]
pub enum AllPlatformsError {
    #[error(
        "entry {entry} ({digest}) is a {media_type:?}, not an image manifest; expected an \
         index of images (a nested index is refused, as by ko); name the platforms with \
         --platform os/arch,…"
    )]
    NotAnImage {
        entry: usize,
        digest: Sha256Digest,
        media_type: String,
    },
    #[error(
        "entry {entry} ({digest}) has no platform, so rko cannot tell what to build for it; \
         name the platforms with --platform os/arch,…"
    )]
    NoPlatform { entry: usize, digest: Sha256Digest },
    #[error(
        "it lists no image with a platform rko can build (only unknown/unknown \
         attestations, or nothing); name the platforms with --platform os/arch,…"
    )]
    None,
}

/// An index without an image for the platform asked for.
#[derive(Debug, thiserror::Error)]
#[error("no image for {wanted}; it has: {found}")]
pub struct NoPlatform {
    pub wanted: String,
    /// The platforms the index has, for the message.
    pub found: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media;

    fn entry(mt: &str, platform: Option<&str>, n: u8) -> Descriptor {
        let mut d = Descriptor::new(mt, Sha256Digest::of(&[n]), 1);
        d.platform = platform.map(|p| match p {
            "unknown/unknown" => Platform::new("unknown", "unknown"),
            p => p.parse().unwrap(),
        });
        d
    }

    #[test]
    fn buildable_platforms_are_kos_all() {
        let idx = Index::new(
            media::OCI_INDEX,
            vec![
                entry(media::OCI_MANIFEST, Some("linux/arm/v7"), 1),
                entry(media::OCI_MANIFEST, Some("unknown/unknown"), 2),
                entry(media::DOCKER_MANIFEST, Some("linux/amd64"), 3),
                entry(media::OCI_MANIFEST, Some("linux/amd64"), 4),
            ],
        );
        let got: Vec<String> = idx
            .buildable_platforms()
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["linux/arm/v7", "linux/amd64"]);

        let nested = Index::new(
            media::OCI_INDEX,
            vec![entry(media::OCI_INDEX, Some("linux/amd64"), 1)],
        );
        let e = nested.buildable_platforms().unwrap_err().to_string();
        assert!(e.contains("not an image manifest"), "{e}");
        let bare = Index::new(media::OCI_INDEX, vec![entry(media::OCI_MANIFEST, None, 1)]);
        let e = bare.buildable_platforms().unwrap_err().to_string();
        assert!(e.contains("has no platform"), "{e}");
        let only_att = Index::new(
            media::OCI_INDEX,
            vec![entry(media::OCI_MANIFEST, Some("unknown/unknown"), 1)],
        );
        let e = only_att.buildable_platforms().unwrap_err().to_string();
        assert!(e.contains("no image with a platform rko can build"), "{e}");
    }
}

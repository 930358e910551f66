//! Base images: read from an OCI image layout directory and pinned by digest, `scratch`, or
//! the embedded `static` base that rko makes itself. Only the manifest and config are read;
//! the base's layer blobs stay where they are until an output needs their bytes.

pub mod layout;
pub mod static_base;

use std::path::PathBuf;

use crate::digest::Sha256Digest;
use crate::image::config::ConfigFile;
use crate::image::descriptor::Descriptor;
use crate::platform::Platform;

/// A base image resolved to one platform: what `rko image` builds on.
#[derive(Clone, Debug)]
pub struct Base {
    /// For the `org.opencontainers.image.base.name` annotation.
    pub name: Option<String>,
    /// The digest of the base image's manifest (the child chosen from an index), for the
    /// `.base.digest` annotation as ko writes it.
    pub pinned_digest: Option<Sha256Digest>,
    /// The base manifest's own annotations, which the new manifest keeps.
    pub manifest_annotations: std::collections::BTreeMap<String, String>,
    /// The manifest media type (decides OCI or Docker media types for the new image).
    pub media_type: String,
    /// Whether the base was selected from an index (the built image's index follows it).
    pub index_media_type: Option<String>,
    pub config: ConfigFile,
    pub layers: Vec<Descriptor>,
    pub platform: Platform,
    /// Where the base's blobs can be read, when they are on disk.
    pub blob_dir: Option<PathBuf>,
}

/// What `--base` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseSpec {
    Static,
    Scratch,
    Layout {
        dir: PathBuf,
        digest: Option<Sha256Digest>,
    },
}

impl BaseSpec {
    /// Parses `static`, `scratch`, or `DIR[@sha256:…]`.
    pub fn parse(s: &str) -> Result<BaseSpec, crate::digest::DigestParseError> {
        match s {
            "static" => Ok(BaseSpec::Static),
            "scratch" => Ok(BaseSpec::Scratch),
            _ => match s.rsplit_once('@') {
                Some((dir, d)) if d.starts_with("sha256:") => Ok(BaseSpec::Layout {
                    dir: PathBuf::from(dir),
                    digest: Some(d.parse()?),
                }),
                _ => Ok(BaseSpec::Layout {
                    dir: PathBuf::from(s),
                    digest: None,
                }),
            },
        }
    }

    /// Resolves the base for one platform.
    pub fn resolve(&self, platform: &Platform, name: Option<&str>) -> anyhow::Result<Base> {
        match self {
            BaseSpec::Static => Ok(static_base::base(platform)),
            BaseSpec::Scratch => Ok(scratch(platform)),
            BaseSpec::Layout { dir, digest } => {
                layout::read_base(dir, digest.as_ref(), platform, name)
            }
        }
    }
}

/// An empty base: no layers, the platform asked for.
pub fn scratch(platform: &Platform) -> Base {
    let config = ConfigFile {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        os_version: platform.os_version.clone(),
        ..Default::default()
    };
    Base {
        name: None,
        pinned_digest: None,
        manifest_annotations: Default::default(),
        media_type: crate::media::OCI_MANIFEST.to_string(),
        index_media_type: None,
        config,
        layers: Vec::new(),
        platform: platform.clone(),
        blob_dir: None,
    }
}

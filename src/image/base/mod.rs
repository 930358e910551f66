//! Base images: read from an OCI image layout directory and pinned by digest, `scratch`, or
//! the embedded `static` base that rko makes itself. Only the manifest and config are read;
//! the base's layer blobs stay where they are until an output needs their bytes.

pub mod layout;
pub mod spec;
pub mod static_base;

use std::path::PathBuf;

use crate::oci::digest::Sha256Digest;
use crate::oci::{ConfigFile, Descriptor, Platform};

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
    pub config: ConfigFile,
    pub layers: Vec<Descriptor>,
    /// Where the base's blobs can be read, when they are on disk.
    pub blob_dir: Option<PathBuf>,
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
        media_type: crate::oci::media::OCI_MANIFEST.to_string(),
        config,
        layers: Vec::new(),
        blob_dir: None,
    }
}

//! The OCI image layout's names: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.

use std::path::{Path, PathBuf};

use crate::oci::digest::Sha256Digest;

/// The `oci-layout` file name and its content.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub const INDEX_FILE: &str = "index.json";
/// Annotations a layout's index.json gives a tagged entry.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `blobs/sha256/<hex>`, the blob's name inside a layout (or a tarball of one).
pub fn blob_name(digest: &Sha256Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The path of a blob in the layout `dir`.
pub fn blob_path(dir: &Path, digest: &Sha256Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

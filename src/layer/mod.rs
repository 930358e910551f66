//! Layers as ko makes them: the Go binary at `/ko-app/<name>` and the kodata tree at
//! `/var/run/ko` (and extra layers rewritten from users' tars, `extra`), written as Go's `archive/tar` would (so the diff_id matches ko's), then
//! compressed in one streaming pass. See `tar` for the header bytes and `compress` for the
//! digest-while-writing sink.

pub mod binary;
pub mod buildinfo;
pub mod caps;
pub mod compress;
pub mod extra;
pub mod kodata;
pub mod tar;

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::oci::{Sha256Digest, media};
pub use compress::{Algorithm, Compression};

/// What a layer holds, so the image action can write ko's history and entrypoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LayerContent {
    /// The Go binary; `path` is where it sits in the image (`/ko-app/<name>`, as ko names
    /// it also on Windows). `windows`: ko's Windows layer (under `Files/`), for a windows/*
    /// image only.
    Binary {
        #[serde(rename = "importPath")]
        import_path: String,
        path: String,
        #[serde(default, skip_serializing_if = "is_false")]
        windows: bool,
    },
    /// The kodata tree at `/var/run/ko`; `mtime` is ko's `KO_DATA_DATE_EPOCH`, which is
    /// also the layer's history time. `windows`: ko's Windows layer, under `Files/`.
    Kodata {
        #[serde(rename = "importPath")]
        import_path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<u64>,
        #[serde(default, skip_serializing_if = "is_false")]
        windows: bool,
    },
    /// Delve, the Go debugger, for ko's debug image (`rko layer binary --delve`); `path` is
    /// `/ko-app/dlv`. An image with one starts the binary under it.
    Delve { path: String },
    /// An extra layer rewritten from a tar (`rko layer tar`); `name` is the tar's file
    /// name, `mtime` the time on every entry, also the layer's history time.
    Tar {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<u64>,
    },
}

fn is_false(b: &bool) -> bool {
    !b
}

impl LayerContent {
    /// Whether the layer is laid out for a windows/* image (ko's `Files/` and `Hives/`).
    pub fn windows(&self) -> bool {
        match self {
            LayerContent::Binary { windows, .. } | LayerContent::Kodata { windows, .. } => *windows,
            LayerContent::Delve { .. } | LayerContent::Tar { .. } => false,
        }
    }
}

/// The descriptor file `rko layer` writes and `rko image` reads: all the image action needs
/// to know of a layer, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerDescriptor {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    #[serde(rename = "diffID")]
    pub diff_id: Sha256Digest,
    pub uncompressed_size: u64,
    pub compression: Compression,
    pub content: LayerContent,
}

impl LayerDescriptor {
    /// The descriptor of a layer a [`compress::LayerSink`] has written.
    pub fn written(w: compress::Written, compression: &Compression, content: LayerContent) -> Self {
        LayerDescriptor {
            media_type: oci_media_type(compression.algorithm).to_string(),
            digest: w.digest,
            size: w.size,
            diff_id: w.diff_id,
            uncompressed_size: w.uncompressed_size,
            compression: compression.clone(),
            content,
        }
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = fs_err::read(path)?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a layer descriptor: expected the JSON file that `rko layer` writes with --descriptor",
                path.display()
            )
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        crate::oci::json::pretty(self)
    }
}

/// The OCI media type of a layer compressed with `alg`.
pub fn oci_media_type(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Gzip => media::OCI_LAYER_GZIP,
        Algorithm::Zstd => media::OCI_LAYER_ZSTD,
    }
}

/// The number of compression threads to use when none is asked for.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

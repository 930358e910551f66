//! `rko-sources.json`: the file `rko pull` leaves in a shallow layout to say which layer
//! blobs it did not download and the repository they can be read from.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::oci::Descriptor;

/// The file's name, beside `index.json`.
pub const SOURCES_FILE: &str = "rko-sources.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PulledSources {
    /// `host[:port]/repository` the base was pulled from.
    pub repository: String,
    /// The layer blobs that were not downloaded.
    pub blobs: Vec<Descriptor>,
}

/// A sources file that is there but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is corrupt ({cause}): expected the JSON `rko pull` writes, naming the repository \
     of the blobs it did not download; pull the base again with `rko pull`"
)]
pub struct CorruptSources {
    pub path: String,
    pub cause: serde_json::Error,
}

impl PulledSources {
    /// The sources file of the layout `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<PulledSources>> {
        let path = dir.join(SOURCES_FILE);
        let limit = crate::oci::json::JSON_LIMIT;
        let Some(bytes) =
            crate::image::base::layout::read_bounded(&path, limit, "rko-sources.json")?
        else {
            return Ok(None);
        };
        let sources = serde_json::from_slice(&bytes).map_err(|cause| CorruptSources {
            path: path.display().to_string(),
            cause,
        })?;
        Ok(Some(sources))
    }

    /// Writes the sources file into the layout `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        fs_err::write(dir.join(SOURCES_FILE), crate::oci::json::pretty(self))?;
        Ok(())
    }
}

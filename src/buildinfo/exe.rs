//! Finding Go build info in an executable: the `\xff Go buildinf:` header in the
//! `.go.buildinfo` section (ELF), `__go_buildinfo` (Mach-O) or the first writable data
//! section (PE), read with positioned reads so the cost does not grow with the binary.

use std::path::Path;

use crate::buildinfo::{BuildInfo, ModinfoError};

/// Why an executable's build info could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Modinfo {
        path: std::path::PathBuf,
        source: ModinfoError,
    },
    #[error("{path}: {what}")]
    Malformed {
        path: std::path::PathBuf,
        what: String,
    },
}

/// Reads the Go build info of the executable at `path`; `Ok(None)` when it carries none
/// (not a Go binary, or not an executable at all).
pub fn read_file(path: &Path) -> Result<Option<BuildInfo>, ExeError> {
    // Placeholder until the section readers land (issue 9, in progress on a branch).
    let _ = path;
    Err(ExeError::Malformed {
        path: path.to_path_buf(),
        what: "build info reading is not implemented yet".into(),
    })
}

//! Outputs written all-or-nothing: every file goes to a temporary name beside its final
//! path and is renamed into place only when the whole action has succeeded. A failed run
//! leaves no output behind (the temporaries are removed when dropped).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::{NamedTempFile, TempDir};

/// A set of outputs that become visible together on [`Outputs::commit`].
#[derive(Default)]
pub struct Outputs {
    files: Vec<(NamedTempFile, PathBuf)>,
    dirs: Vec<(TempDir, PathBuf)>,
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn not_writable(path: &Path, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot write output {}: {e}; expected an existing, writable directory {} (create it, or choose another output path)",
        path.display(),
        parent_of(path).display()
    )
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// A temporary file that becomes `path` on commit.
    pub fn file(&mut self, path: &Path) -> Result<&mut NamedTempFile> {
        let dir = parent_of(path);
        let tmp = tempfile::Builder::new()
            .prefix(".rko-tmp-")
            .tempfile_in(&dir)
            .map_err(|e| not_writable(path, e))?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(&mut self.files.last_mut().expect("just pushed").0)
    }

    /// Writes `bytes` to a temporary that becomes `path` on commit.
    pub fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let f = self.file(path)?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// A temporary directory that becomes `path` on commit (replacing an older one).
    pub fn dir(&mut self, path: &Path) -> Result<PathBuf> {
        let parent = parent_of(path);
        let tmp = tempfile::Builder::new()
            .prefix(".rko-tmp-")
            .tempdir_in(&parent)
            .map_err(|e| not_writable(path, e))?;
        let p = tmp.path().to_path_buf();
        self.dirs.push((tmp, path.to_path_buf()));
        Ok(p)
    }

    /// Renames every temporary into place.
    pub fn commit(self) -> Result<()> {
        for (tmp, path) in self.files {
            set_readable(tmp.path())?;
            tmp.persist(&path)
                .map_err(|e| not_writable(&path, e.error))?;
        }
        for (tmp, path) in self.dirs {
            set_dir_readable(tmp.path())?;
            if path.is_dir() {
                fs_err::remove_dir_all(&path)?;
            }
            let kept = tmp.keep();
            fs_err::rename(&kept, &path).map_err(|e| not_writable(&path, e))?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn set_readable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

#[cfg(unix)]
fn set_dir_readable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_readable(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn set_dir_readable(_: &Path) -> Result<()> {
    Ok(())
}

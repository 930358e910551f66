//! Outputs written all-or-nothing: every file goes to a temporary name beside its final
//! path and is renamed into place only when the whole action has succeeded. A failed run
//! leaves no output behind (the temporaries are removed when dropped).
//!
//! Crash safety (see docs/reliability/outputs.md):
//! - A process killed at any moment (`kill -9`, an OOM kill) leaves at an output path either
//!   the complete new output, the complete old one, or nothing: never a partial file or
//!   directory. A directory output replaces an older one by renaming the old one aside
//!   first, so a kill while the old one is deleted leaves only a temporary half-deleted.
//! - Before a rename the temporary's data is flushed to disk (`fsync` of every file and
//!   directory in it), and after the renames the parent directories are, so a power loss
//!   cannot leave a renamed but empty or truncated output. `RKO_FSYNC=0` turns this off.
//! - Temporaries are named `.rko-tmp-*` and held under an exclusive `flock` while their
//!   process lives. A killed process leaves its temporaries behind; the next rko that writes
//!   an output into the same directory removes every `.rko-tmp-*` there that no live process
//!   holds. A live writer's temporaries are never touched.
//! - A full disk (ENOSPC), or an exceeded quota, gives an error naming the outputs and the
//!   directory; the temporaries are removed as for any other failure.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::{NamedTempFile, TempDir};

/// The prefix of every temporary an output is written to.
pub const TMP_PREFIX: &str = ".rko-tmp-";

/// A set of outputs that become visible together on [`Outputs::commit`].
#[derive(Default)]
pub struct Outputs {
    files: Vec<(NamedTempFile, PathBuf)>,
    /// Each with an open handle that holds the temporary's lock.
    dirs: Vec<(TempDir, PathBuf, File)>,
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn not_writable(path: &Path, e: std::io::Error) -> anyhow::Error {
    if let Some(full) = disk_full(e.kind()) {
        let text = e.to_string();
        return anyhow::anyhow!("{}", full_message(&[path.to_path_buf()], &text, full));
    }
    anyhow::anyhow!(
        "cannot write output {}: {e}; expected an existing, writable directory {} (create it, or choose another output path)",
        path.display(),
        parent_of(path).display()
    )
}

/// Whether `e` says the file system is full (or over quota, or the file too large): what
/// happened and the errno's name.
fn disk_full(kind: ErrorKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ErrorKind::StorageFull => Some(("the file system is full", "ENOSPC")),
        ErrorKind::QuotaExceeded => Some(("the disk quota is exceeded", "EDQUOT")),
        ErrorKind::FileTooLarge => Some(("the file is too large for the file system", "EFBIG")),
        _ => None,
    }
}

fn full_message(paths: &[PathBuf], e: &str, (what, errno): (&str, &str)) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let dirs: std::collections::BTreeSet<String> = paths
        .iter()
        .map(|p| parent_of(p).display().to_string())
        .collect();
    let dirs: Vec<String> = dirs.into_iter().collect();
    format!(
        "cannot write output {}: {what} ({errno}: {e}); nothing was written there and the \
         partial temporaries were removed; free space in {} or choose an output path on \
         another file system",
        names.join(", "),
        dirs.join(", ")
    )
}

/// Whether outputs are flushed to disk before they are renamed into place (`RKO_FSYNC=0`
/// turns it off).
fn fsync_enabled() -> bool {
    std::env::var_os("RKO_FSYNC").is_none_or(|v| v != "0")
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// A temporary file that becomes `path` on commit.
    pub fn file(&mut self, path: &Path) -> Result<&mut NamedTempFile> {
        let dir = parent_of(path);
        sweep(&dir);
        let tmp = locked(|| {
            let tmp = tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempfile_in(&dir)?;
            tmp.as_file().lock()?;
            Ok(still_there(tmp.as_file(), tmp.path())?.then_some(tmp))
        })
        .map_err(|e| not_writable(path, e))?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(&mut self.files.last_mut().expect("just pushed").0)
    }

    /// Writes `bytes` to a temporary that becomes `path` on commit.
    pub fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let f = self.file(path)?;
        let written = f.write_all(bytes);
        written
            .map_err(|e| self.explain(anyhow::Error::new(e)))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// A temporary directory that becomes `path` on commit (replacing an older one).
    pub fn dir(&mut self, path: &Path) -> Result<PathBuf> {
        let parent = parent_of(path);
        sweep(&parent);
        let (tmp, lock) = locked(|| {
            let tmp = tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempdir_in(&parent)?;
            let lock = File::open(tmp.path())?;
            lock.lock()?;
            Ok(still_there(&lock, tmp.path())?.then_some((tmp, lock)))
        })
        .map_err(|e| not_writable(path, e))?;
        let p = tmp.path().to_path_buf();
        self.dirs.push((tmp, path.to_path_buf(), lock));
        Ok(p)
    }

    /// `e` reworded when it is a full disk: naming every output and its directory.
    /// Other errors are returned as they are.
    pub fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        let mut kinds = e
            .chain()
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .map(|io| io.kind());
        let text = format!("{e:#}");
        match kinds.find_map(disk_full) {
            Some(what) => {
                let paths: Vec<PathBuf> = self
                    .files
                    .iter()
                    .map(|(_, p)| p.clone())
                    .chain(self.dirs.iter().map(|(_, p, _)| p.clone()))
                    .collect();
                anyhow::anyhow!("{}", full_message(&paths, &text, what))
            }
            None => e,
        }
    }

    /// Commits when `result` is Ok; else drops the temporaries and returns the error
    /// (reworded by [`Outputs::explain`]).
    pub fn finish<T>(self, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Flushes every temporary to disk and renames it into place.
    pub fn commit(self) -> Result<()> {
        let sync = fsync_enabled();
        let mut parents = std::collections::BTreeSet::new();
        for (tmp, path) in self.files {
            set_readable(tmp.path())?;
            if sync {
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| not_writable(&path, e))?;
            }
            tmp.persist(&path)
                .map_err(|e| not_writable(&path, e.error))?;
            parents.insert(parent_of(&path));
        }
        for (tmp, path, _lock) in self.dirs {
            set_dir_readable(tmp.path())?;
            if sync {
                sync_tree(tmp.path()).map_err(|e| not_writable(&path, e))?;
            }
            let parent = parent_of(&path);
            // The old output, if any, is renamed aside (atomically), never deleted in place:
            // a kill while it is deleted then leaves a temporary, not a partial output.
            let aside = match fs_err::symlink_metadata(&path) {
                Ok(m) if m.is_dir() || m.file_type().is_symlink() => {
                    let aside = parent.join(format!(
                        "{TMP_PREFIX}old-{}-{}",
                        std::process::id(),
                        random_suffix()
                    ));
                    std::fs::rename(&path, &aside).map_err(|e| not_writable(&path, e))?;
                    Some(aside)
                }
                _ => None,
            };
            let kept = tmp.keep();
            std::fs::rename(&kept, &path).map_err(|e| not_writable(&path, e))?;
            if let Some(aside) = aside {
                // Best effort: whatever is left is swept by the next run.
                let _ = remove_any(&aside);
            }
            parents.insert(parent);
        }
        if sync {
            for p in parents {
                sync_dir(&p).with_context(|| format!("flushing directory {}", p.display()))?;
            }
        }
        Ok(())
    }
}

/// Runs `make` until it gives a temporary that is still there once locked (a concurrent
/// [`sweep`] may remove one between its creation and its lock).
fn locked<T>(mut make: impl FnMut() -> std::io::Result<Option<T>>) -> std::io::Result<T> {
    for _ in 0..16 {
        if let Some(t) = make()? {
            return Ok(t);
        }
    }
    Err(std::io::Error::other(
        "temporaries kept disappearing while being created (another process removes .rko-tmp-* here)",
    ))
}

/// Whether the open `f` is still the file at `path`.
#[cfg(unix)]
fn still_there(f: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = f.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == open.dev() && m.ino() == open.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn still_there(_: &File, path: &Path) -> std::io::Result<bool> {
    Ok(path.exists())
}

/// Removes the `.rko-tmp-*` entries of `dir` that no live process holds: what killed runs
/// left. Entries that cannot be opened or locked, and symlinks, are left alone; errors are
/// ignored (the output is written regardless).
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TMP_PREFIX))
        {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !(meta.is_file() || meta.is_dir()) {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        if f.try_lock().is_err() {
            continue;
        }
        // Held: no live process writes it. Remove it while holding the lock, so a writer
        // that created it an instant ago sees it gone once it gets the lock, and retries.
        if matches!(still_there(&f, &path), Ok(true)) {
            let _ = remove_any(&path);
        }
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    if m.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{n:x}")
}

/// fsyncs every file and directory under `root`, and `root`.
fn sync_tree(root: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.map_err(std::io::Error::other)?;
        let ft = entry.file_type();
        if ft.is_file() {
            File::open(entry.path())?.sync_all()?;
        } else if ft.is_dir() {
            sync_dir(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_unlocked_temporaries_only() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(".rko-tmp-stale");
        std::fs::write(&stale, b"partial").unwrap();
        let stale_dir = d.path().join(".rko-tmp-staledir");
        std::fs::create_dir_all(stale_dir.join("blobs/sha256")).unwrap();
        std::fs::write(stale_dir.join("blobs/sha256/x"), b"x").unwrap();
        let other = d.path().join("keep.tar");
        std::fs::write(&other, b"x").unwrap();
        let mut outs = Outputs::new();
        let live = outs
            .file(&d.path().join("out"))
            .unwrap()
            .path()
            .to_path_buf();
        let live_dir = outs.dir(&d.path().join("layout")).unwrap();
        assert!(!stale.exists() && !stale_dir.exists());
        // A second writer in the same directory leaves the first one's temporaries alone.
        sweep(d.path());
        assert!(live.exists() && live_dir.exists() && other.exists());
        drop(outs);
        assert!(!live.exists() && !live_dir.exists());
    }

    #[test]
    fn a_directory_output_replaces_the_old_one_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("layout");
        std::fs::create_dir_all(out.join("old")).unwrap();
        let mut outs = Outputs::new();
        let tmp = outs.dir(&out).unwrap();
        std::fs::write(tmp.join("new"), b"n").unwrap();
        outs.commit().unwrap();
        assert!(out.join("new").exists() && !out.join("old").exists());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn disk_full_names_the_outputs() {
        let d = tempfile::tempdir().unwrap();
        let mut outs = Outputs::new();
        outs.file(&d.path().join("x.tar")).unwrap();
        let e = anyhow::Error::new(std::io::Error::from(ErrorKind::StorageFull))
            .context("writing the layer");
        let msg = format!("{:#}", outs.explain(e));
        assert!(msg.contains("x.tar") && msg.contains("ENOSPC"), "{msg}");
    }
}

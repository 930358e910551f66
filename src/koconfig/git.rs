//! ko's `.Git` template values, found as ko finds them: `git` run in the working
//! directory (`rev-parse --abbrev-ref HEAD`, `show --format=%h|%H|%ct HEAD`, `status
//! --porcelain`, `describe --tags --abbrev=0 HEAD`). Outside a repository, without git, or
//! with no commit, every field is empty (dates the zero time) and a warning says why, as
//! ko logs it; a repository without a tag has the tag `v0.0.0`, as ko's.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::oci::config::rfc3339_signed as rfc3339;

/// Go's zero `time.Time` as Unix seconds (0001-01-01T00:00:00Z), ko's commit date when
/// there is no commit.
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitInfo {
    pub branch: String,
    pub tag: String,
    pub short_commit: String,
    pub full_commit: String,
    /// Unix seconds.
    pub commit_date: i64,
    pub dirty: bool,
}

impl Default for GitInfo {
    fn default() -> Self {
        GitInfo {
            branch: String::new(),
            tag: String::new(),
            short_commit: String::new(),
            full_commit: String::new(),
            commit_date: GO_ZERO_TIME,
            dirty: false,
        }
    }
}

impl GitInfo {
    /// The value of ko's `.Git.<name>`, as Go's template prints it.
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "Branch" => self.branch.clone(),
            "Tag" => self.tag.clone(),
            "ShortCommit" => self.short_commit.clone(),
            "FullCommit" => self.full_commit.clone(),
            "CommitDate" => rfc3339(self.commit_date),
            "CommitTimestamp" => self.commit_date.to_string(),
            "IsDirty" => self.dirty.to_string(),
            "IsClean" => (!self.dirty).to_string(),
            "TreeState" => match self.dirty {
                true => "dirty".to_string(),
                false => "clean".to_string(),
            },
            _ => return None,
        })
    }

    /// The repository's information at `dir`; on failure the empty info and the reason.
    pub fn of(dir: &Path) -> (GitInfo, Option<String>) {
        let git = |args: &[&str]| -> Result<String, String> {
            let o = Command::new("git")
                .args(["-c", "log.showSignature=false"])
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run git: {e}"))?;
            match o.status.success() {
                true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
                false => Err(String::from_utf8_lossy(&o.stderr).trim_end().to_string()),
            }
        };
        // ko's `clean`: the first line, single quotes removed.
        let first = |s: String| s.lines().next().unwrap_or("").replace('\'', "");
        let in_repo = git(&["rev-parse", "--is-inside-work-tree"]);
        if in_repo.as_deref().map(str::trim) != Ok("true") {
            let why = match in_repo {
                Err(e) if e.starts_with("cannot run git") => e,
                _ => format!("{} is not in a git repository", dir.display()),
            };
            return (GitInfo::default(), Some(why));
        }
        let info = (|| -> Result<GitInfo, String> {
            let branch = first(git(&["rev-parse", "--abbrev-ref", "HEAD", "--quiet"])?);
            let short_commit = first(git(&["show", "--format=%h", "HEAD", "--quiet"])?);
            let full_commit = first(git(&["show", "--format=%H", "HEAD", "--quiet"])?);
            let ct = first(git(&["show", "--format=%ct", "HEAD", "--quiet"])?);
            let commit_date = match ct.trim() {
                "" => GO_ZERO_TIME,
                s => s
                    .parse()
                    .map_err(|_| format!("git gave the commit time {s:?}"))?,
            };
            let dirty = git(&["status", "--porcelain"]).map_or(true, |s| !s.trim().is_empty());
            let tag = match git(&["describe", "--tags", "--abbrev=0", "HEAD"]) {
                Ok(s) => s
                    .lines()
                    .map(|l| l.trim().replace('\'', ""))
                    .find(|l| !l.is_empty())
                    .unwrap_or_default(),
                Err(_) => "v0.0.0".to_string(),
            };
            Ok(GitInfo {
                branch,
                tag,
                short_commit,
                full_commit,
                commit_date,
                dirty,
            })
        })();
        match info {
            Ok(i) => (i, None),
            Err(e) => (GitInfo::default(), Some(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_repository_everything_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let (info, why) = GitInfo::of(d.path());
        assert_eq!(info, GitInfo::default());
        assert!(why.is_some());
        assert_eq!(info.field("CommitTimestamp").unwrap(), "-62135596800");
        assert_eq!(info.field("TreeState").unwrap(), "clean");
    }
}

//! Blob paths in a push manifest. A relative blob path in a push manifest is relative to the
//! directory holding the manifest file, not to the working directory: build systems run the
//! push from elsewhere than the build (Bazel in the target's runfiles tree, Buck2 in the
//! user's directory with the manifest's absolute path), so the manifest's own location is
//! the one place both sides know. [`record`] writes each path relative to the output's
//! directory, computed from the names alone (or as a `--path-map` says);
//! [`PushManifest::read`] joins them onto the manifest's directory, again without resolving
//! symlinks, so that under Bazel they stay inside the runfiles tree.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::archive::push_manifest::PushManifest;

/// Rewrites every blob path of `pm` as it is recorded in a manifest written to `output`:
/// by the longest matching `(FROM, TO)` of `maps` (TO taken verbatim), else relative to
/// `output`'s directory.
pub fn record(pm: &mut PushManifest, output: &Path, maps: &[(PathBuf, PathBuf)]) -> Result<()> {
    let out_dir = output.parent().unwrap_or(Path::new(""));
    for b in pm.blob_refs_mut() {
        if let Some(p) = &b.path {
            b.path = Some(match map_path(p, maps) {
                Some(mapped) => mapped,
                None => recorded_path(p, out_dir)?,
            });
        }
    }
    Ok(())
}

/// Parses a `FROM=TO` path map.
pub fn parse_path_map(s: &str) -> Result<(PathBuf, PathBuf)> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => {
            Ok((PathBuf::from(from), PathBuf::from(to)))
        }
        _ => anyhow::bail!("--path-map {s:?}: expected FROM=TO, two non-empty paths"),
    }
}

/// Rewrites `p` by the map whose FROM is its longest leading run of whole components;
/// `None` when no FROM covers it.
fn map_path(p: &Path, maps: &[(PathBuf, PathBuf)]) -> Option<PathBuf> {
    maps.iter()
        .filter_map(|(from, to)| p.strip_prefix(from).ok().map(|rest| (from, to, rest)))
        .max_by_key(|(from, _, _)| from.components().count())
        .map(|(_, to, rest)| {
            if rest.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rest)
            }
        })
}

/// A blob path that cannot be written relative to the push manifest's directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot record blob {blob} relative to the push manifest's directory {dir}: expected an \
     output directory without `..` (past any leading ones), found {dir}; where such a `..` \
     leads depends on symlinks, which rko does not resolve; pass -o without `..` (e.g. as \
     `realpath -m` prints it)"
)]
struct UnrelatablePath {
    blob: PathBuf,
    dir: PathBuf,
}

/// How `rko push-manifest` records the blob file `p` (absolute, or relative to the working
/// directory) in a manifest written into `out_dir`: absolute stays absolute; relative
/// becomes relative to `out_dir`, which is where `rko push` resolves it.
fn recorded_path(p: &Path, out_dir: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    if out_dir.is_relative()
        && let Some(r) = relative_to(p, out_dir)
    {
        return Ok(r);
    }
    // An absolute output, or one that climbs out of the working directory: compare both as
    // absolute paths.
    let (abs_p, abs_dir) = (absolute(p)?, absolute(out_dir)?);
    match relative_to(&abs_p, &abs_dir) {
        Some(r) => Ok(r),
        None => anyhow::bail!(UnrelatablePath {
            blob: p.to_path_buf(),
            dir: out_dir.to_path_buf(),
        }),
    }
}

/// `p` joined onto the working directory, its leading `..` taken by name. That is exact
/// (unlike `..` anywhere else): the working directory (getcwd) holds no symlinks.
fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let mut base = std::env::current_dir().context("reading the working directory")?;
    let mut rest = p
        .components()
        .filter(|c| *c != Component::CurDir)
        .peekable();
    while rest.next_if_eq(&Component::ParentDir).is_some() {
        base.pop();
    }
    Ok(base.join(rest.collect::<PathBuf>()))
}

/// The path from directory `dir` to `path` (both relative to the same directory, or both
/// absolute), from the names alone: past their shared leading components, one `..` per
/// component left in `dir`, then the rest of `path`. `None` when `dir` has a `..` past the
/// shared part, whose way back is not known without resolving symlinks.
fn relative_to(path: &Path, dir: &Path) -> Option<PathBuf> {
    fn names(p: &Path) -> Vec<Component<'_>> {
        p.components().filter(|c| *c != Component::CurDir).collect()
    }
    let (path, dir) = (names(path), names(dir));
    let shared = path.iter().zip(&dir).take_while(|(a, b)| a == b).count();
    let up = &dir[shared..];
    if !up.iter().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut r: PathBuf = up.iter().map(|_| Component::ParentDir).collect();
    r.extend(&path[shared..]);
    if r.as_os_str().is_empty() {
        r.push(Component::CurDir);
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_map_takes_the_longest_whole_component_prefix() {
        let maps = vec![
            parse_path_map("external/base=img.blobs/0").unwrap(),
            parse_path_map("external/base/layout=img.blobs/1").unwrap(),
            parse_path_map("out/l.tgz=img.blobs/2").unwrap(),
        ];
        let m = |p: &str| map_path(Path::new(p), &maps);
        assert_eq!(
            m("external/base/layout/blobs/sha256/ab"),
            Some(PathBuf::from("img.blobs/1/blobs/sha256/ab"))
        );
        assert_eq!(m("external/base/x"), Some(PathBuf::from("img.blobs/0/x")));
        assert_eq!(m("out/l.tgz"), Some(PathBuf::from("img.blobs/2")));
        // A name that merely starts with FROM's text is not under it.
        assert_eq!(m("external/baseline/x"), None);
        assert!(parse_path_map("nothing").is_err());
        assert!(parse_path_map("=x").is_err());
    }

    fn recorded(p: &str, out_dir: impl AsRef<Path>) -> PathBuf {
        recorded_path(Path::new(p), out_dir.as_ref()).unwrap()
    }

    #[test]
    fn blob_paths_are_recorded_relative_to_the_output_directory() {
        // Buck2: the image and the push manifest are sibling directories in buck-out.
        let target = "buck-out/v2/gen/root/abc/cmd/foo";
        assert_eq!(
            recorded(
                &format!("{target}/__image__/image.ko/binary.tar.gz"),
                format!("{target}/__image.push__")
            ),
            Path::new("../__image__/image.ko/binary.tar.gz")
        );
        // A deeper output directory climbs once per component past the shared part.
        assert_eq!(
            recorded("out/l.tgz", "out/a/b/c"),
            Path::new("../../../l.tgz")
        );
        assert_eq!(recorded("x/l.tgz", "a/b"), Path::new("../../x/l.tgz"));
        // A deeper blob descends.
        assert_eq!(recorded("out/a/b/l.tgz", "out"), Path::new("a/b/l.tgz"));
        // The same directory, including the working directory itself (`-o push.json`).
        assert_eq!(recorded("out/m.json", "out"), Path::new("m.json"));
        assert_eq!(recorded("m.json", ""), Path::new("m.json"));
        // `./` prefixes are only names for "here".
        assert_eq!(recorded("./out/x", "out"), Path::new("x"));
        assert_eq!(recorded("out/x", "./out"), Path::new("x"));
        assert_eq!(recorded("./x", ""), Path::new("x"));
        assert_eq!(recorded("out/./x", "./out/."), Path::new("x"));
        // A blob above the working directory keeps its leading `..`.
        assert_eq!(recorded("../x", "out"), Path::new("../../x"));
        // Absolute blobs stay absolute, wherever the output is.
        assert_eq!(recorded("/abs/l.tgz", "out"), Path::new("/abs/l.tgz"));
        assert_eq!(recorded("/abs/l.tgz", "/abs/o"), Path::new("/abs/l.tgz"));
    }

    #[test]
    fn an_absolute_or_climbing_output_is_compared_from_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(recorded("a/x", cwd.join("o")), Path::new("../a/x"));
        assert_eq!(recorded("./a/x", cwd.join("a")), Path::new("x"));
        // `-o ../o/push.json`: the way back goes through the working directory's own name.
        let here = cwd.file_name().unwrap();
        assert_eq!(recorded("x", "../o"), Path::new("..").join(here).join("x"));
        assert_eq!(relative_to(Path::new("x"), Path::new("../o")), None);
        // A `..` after a name may cross a symlink: refused, saying what to do.
        let e = recorded_path(Path::new("x"), Path::new("/w/link/../o"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/w/link/../o") && e.contains("pass -o without `..`"),
            "{e}"
        );
    }
}

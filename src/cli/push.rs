//! `rko push-manifest` (build time: what to push and where every blob's bytes are) and
//! `rko push` (run time: push it).
//!
//! A relative blob path in a push manifest is relative to the directory holding the
//! manifest file, not to the working directory: build systems run the push from elsewhere
//! than the build (Bazel in the target's runfiles tree, Buck2 in the user's directory with
//! the manifest's absolute path), so the manifest's own location is the one place both
//! sides know. `rko push-manifest` writes each path relative to its output's directory,
//! computed from the names alone; `rko push` joins them onto its `--manifest`'s directory,
//! again without resolving symlinks, so that under Bazel they stay inside the runfiles tree.

use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::tarball::Sources;
use crate::output::Outputs;
use crate::registry::client::{Client, ClientOptions};
use crate::registry::naming::{self, Naming};
use crate::registry::push::{BlobOutcome, Counters, PushManifest, PushReport, Pusher};

#[derive(Debug, Args)]
pub struct PushManifestArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Where to push: HOST[:PORT]/REPOSITORY (with --import-path, the prefix ko calls KO_DOCKER_REPO).
    #[arg(long)]
    pub repository: String,
    /// Name the repository from this import path, by --naming, as ko does.
    #[arg(long)]
    pub import_path: Option<String>,
    /// ko's naming strategy for --import-path.
    #[arg(long, value_enum, default_value = "md5")]
    pub naming: Naming,
    /// A tag to push (pushed after everything else). Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A file of tags, one per line (blank lines and `#` comments skipped). Repeatable.
    #[arg(long = "tag-file", value_name = "FILE")]
    pub tag_files: Vec<PathBuf>,
    /// A workspace status file (`KEY value` lines, as Bazel's stable-status.txt and
    /// volatile-status.txt): `{KEY}` in a tag becomes its value. Repeatable.
    #[arg(long = "stamp-file", value_name = "FILE")]
    pub stamp_files: Vec<PathBuf>,
    /// A repository (HOST/REPO) to read base blobs from when they are not on disk.
    #[arg(long, value_name = "HOST/REPO")]
    pub remote_blobs: Option<String>,
    /// Record blob paths under FROM (a file or directory given above, as given) as TO
    /// instead, for when the push finds the files elsewhere (the Bazel rules stage them
    /// in runfiles). TO is relative to the output's directory (or absolute) and recorded as
    /// is. Repeatable.
    #[arg(long = "path-map", value_name = "FROM=TO")]
    pub path_maps: Vec<String>,
    /// Where to write the push manifest JSON. Blob paths not mapped by --path-map are
    /// recorded relative to this file's directory (absolute ones stay absolute).
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Flags for reaching registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP or unverified TLS. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// An extra CA certificate (PEM) to trust for TLS.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Attempts per request and per blob on connection errors, 5xx and 429.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Upload blobs larger than this many bytes in chunks of that size (for slow or flaky
    /// links); by default every blob goes in one streamed PUT.
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
}

impl RegistryArgs {
    /// Gives `store` a client when some of its blobs live only in a registry.
    pub fn connect(&self, store: &mut crate::image::archive::BlobStore) -> Result<()> {
        if store.has_remote() {
            store.set_client(self.client()?);
        }
        Ok(())
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(ClientOptions {
            insecure: self.insecure.clone(),
            ca_file: self.ca_file.as_deref().map(user_path),
            attempts: self.attempts,
        })
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The push manifest from `rko push-manifest`. Its relative blob paths are relative to
    /// the directory holding it, so the push runs from any working directory.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Push to this HOST[:PORT]/REPOSITORY instead of the manifest's.
    #[arg(long)]
    pub repository: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Write the pushed references and what was sent as JSON, for CI.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
}

pub fn run_push_manifest(a: PushManifestArgs) -> Result<()> {
    let (artifact, store) = {
        let mut s = a.sources.load_store()?;
        if let Some(r) = &a.remote_blobs {
            s.1.add_remote(r.clone());
        }
        let artifact = crate::image::archive::Artifact::collect(s.0, &s.1)?;
        (artifact, s.1)
    };
    let repository = match &a.import_path {
        Some(ip) => {
            naming::repository(&a.repository, crate::importpath::strip_scheme(ip), a.naming)
        }
        None => a.repository.clone(),
    };
    let tags = expand_tags(&a.tags, &a.tag_files, &a.stamp_files)?;
    for t in &tags {
        crate::reference::parse_tag(&format!("{repository}:{t}"))
            .with_context(|| format!("tag {t:?}"))?;
    }
    let maps = a
        .path_maps
        .iter()
        .map(|m| parse_path_map(m))
        .collect::<Result<Vec<_>>>()?;
    let mut pm = artifact.push_manifest(&store, &repository, &tags)?;
    let out_dir = a.output.parent().unwrap_or(Path::new(""));
    for b in std::iter::once(&mut pm.root)
        .chain(pm.manifests.iter_mut())
        .chain(pm.blobs.iter_mut())
    {
        if let Some(p) = &b.path {
            b.path = Some(match map_path(p, &maps) {
                Some(mapped) => mapped,
                None => recorded_path(p, out_dir)?,
            });
        }
    }
    let mut outputs = Outputs::new();
    let mut bytes = serde_json::to_vec_pretty(&pm)?;
    bytes.push(b'\n');
    outputs.write(&a.output, &bytes)?;
    outputs.commit()
}

/// Pushes and reports on stderr; returns the report.
pub fn push(pm: &PushManifest, registry: &RegistryArgs) -> Result<PushReport> {
    let client = registry.client()?;
    let counters = Arc::new(Counters::default());
    // On a terminal, one status line redrawn as blobs go; otherwise a plain line per blob.
    let tty = std::io::stderr().is_terminal();
    let progress = |line: &str| {
        if !tty {
            eprintln!("rko: {line}");
        }
    };
    let pusher = Pusher {
        client: &client,
        counters: counters.clone(),
        jobs: registry.jobs,
        attempts: registry.attempts,
        chunk_size: registry.chunk_size,
        progress: &progress,
    };
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        if tty {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    eprint!(
                        "\r\x1b[Krko: pushing {}: {}",
                        pm.repository,
                        status_line(&counters)
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                eprint!("\r\x1b[K");
            });
        }
        let r = pusher.push(pm);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let count = |o: BlobOutcome| report.blobs.iter().filter(|b| b.1 == o).count();
    eprintln!(
        "rko: pushed {}: {} blobs existed, {} mounted, {} uploaded, {} copied; {} sent",
        report.reference,
        count(BlobOutcome::Existed),
        count(BlobOutcome::Mounted),
        count(BlobOutcome::Uploaded),
        count(BlobOutcome::Copied),
        crate::registry::push::human(report.bytes_sent)
    );
    Ok(report)
}

fn status_line(c: &Counters) -> String {
    format!(
        "{}/{} blobs, {} already there, {} mounted, {} sent",
        c.done.load(Ordering::Relaxed),
        c.total.load(Ordering::Relaxed),
        c.existed.load(Ordering::Relaxed),
        c.mounted.load(Ordering::Relaxed),
        crate::registry::push::human(c.bytes_sent.load(Ordering::Relaxed))
    )
}

/// The tags from flags and tag files, with `{KEY}` replaced from the status files.
fn expand_tags(
    tags: &[String],
    tag_files: &[PathBuf],
    stamp_files: &[PathBuf],
) -> Result<Vec<String>> {
    let mut all = tags.to_vec();
    for f in tag_files {
        let text = fs_err::read_to_string(f)?;
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    let mut status = std::collections::BTreeMap::new();
    for f in stamp_files {
        for line in fs_err::read_to_string(f)?.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            if !k.is_empty() {
                status.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for t in all {
        let mut expanded = String::new();
        let mut rest = t.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                anyhow::bail!("tag {t:?} has an unclosed '{{'; expected {{KEY}} placeholders");
            };
            let key = &rest[open + 1..open + close];
            let value = match status.get(key) {
                Some(v) => v,
                None if stamp_files.is_empty() => anyhow::bail!(
                    "tag {t:?} uses the workspace status key {key} but the build is not stamped; \
                     build with --stamp (or set stamp = 1 on the target), or drop the placeholder"
                ),
                None => anyhow::bail!(
                    "tag {t:?} uses the workspace status key {key}, which the status files do not \
                     have; keys found: {}",
                    status.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            expanded.push_str(&rest[..open]);
            expanded.push_str(value);
            rest = &rest[open + close + 1..];
        }
        expanded.push_str(rest);
        if !out.contains(&expanded) {
            out.push(expanded);
        }
    }
    Ok(out)
}

/// A path the user typed: under `bazel run` (which runs in the runfiles tree and sets
/// BUILD_WORKING_DIRECTORY) a relative one is relative to where the user ran bazel.
pub fn user_path(p: &std::path::Path) -> PathBuf {
    match std::env::var_os("BUILD_WORKING_DIRECTORY") {
        Some(dir) if p.is_relative() && !dir.is_empty() => PathBuf::from(dir).join(p),
        _ => p.to_path_buf(),
    }
}

fn parse_path_map(s: &str) -> Result<(PathBuf, PathBuf)> {
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

pub fn run_push(a: PushArgs) -> Result<()> {
    let mut pm = PushManifest::read(&a.manifest)?;
    if let Some(r) = a.repository {
        pm.repository = r;
    }
    let report = push(&pm, &a.registry)?;
    crate::cli::outln!("{}", report.reference);
    for t in &report.tagged {
        crate::cli::outln!("{t}");
    }
    if let Some(p) = &a.image_refs {
        write_image_refs(&user_path(p), &report)?;
    }
    Ok(())
}

pub fn write_image_refs(path: &std::path::Path, report: &PushReport) -> Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Refs<'a> {
        reference: &'a str,
        tagged: &'a [String],
        blobs: Vec<(String, BlobOutcome, u64)>,
        bytes_sent: u64,
    }
    let refs = Refs {
        reference: &report.reference,
        tagged: &report.tagged,
        blobs: report
            .blobs
            .iter()
            .map(|b| (b.0.to_string(), b.1, b.2))
            .collect(),
        bytes_sent: report.bytes_sent,
    };
    let mut outputs = Outputs::new();
    let mut bytes = serde_json::to_vec_pretty(&refs)?;
    bytes.push(b'\n');
    outputs.write(path, &bytes)?;
    outputs.commit()
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

    #[test]
    fn tags_expand_from_status_files_and_tag_files() {
        let dir = tempfile::tempdir().unwrap();
        let stable = dir.path().join("stable-status.txt");
        std::fs::write(&stable, "STABLE_GIT_COMMIT abc123\nBUILD_USER ci bot\n").unwrap();
        let tag_file = dir.path().join("tags.txt");
        std::fs::write(&tag_file, "# release tags\n\nv1.2\nlatest\n").unwrap();
        let tags = expand_tags(
            &["git-{STABLE_GIT_COMMIT}".into(), "latest".into()],
            &[tag_file],
            std::slice::from_ref(&stable),
        )
        .unwrap();
        assert_eq!(tags, ["git-abc123", "latest", "v1.2"]);
        let unstamped = expand_tags(&["git-{STABLE_GIT_COMMIT}".into()], &[], &[]).unwrap_err();
        assert!(unstamped.to_string().contains("--stamp"), "{unstamped}");
        let unknown = expand_tags(&["{NOPE}".into()], &[], &[stable]).unwrap_err();
        assert!(
            unknown.to_string().contains("STABLE_GIT_COMMIT"),
            "{unknown}"
        );
    }
}

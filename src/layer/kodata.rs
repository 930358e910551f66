//! The kodata layer: `/var`, `/var/run`, `/var/run/ko`, then the kodata tree below it in
//! the order ko's `filepath.Walk` visits it (names sorted bytewise within each directory,
//! depth first), everything mode 0555, symlinks followed.
//!
//! The tree comes from a directory, or from `image-path=file` pairs as a build system
//! passes its inputs (often symlinks into the source tree). Both are turned into the same
//! in-memory tree first, so both give the same bytes for the same files.
//!
//! For a windows/* image, ko's Windows layer: `Hives`, `Files`, `Files/var`,
//! `Files/var/run`, `Files/var/run/ko`, the tree under `Files/var/run/ko`, every file with
//! the `MSWINDOWS.rawsd` record; symlinks in a kodata directory are skipped, as ko skips
//! them there (explicit `image-path=file` pairs are the build system's inputs and are
//! always read).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::layer::binary::{WINDOWS_FILES, WINDOWS_SD, WINDOWS_SD_KEY};
use crate::layer::compress::{Compression, LayerSink};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::layer::{LayerContent, LayerDescriptor};

/// Where ko puts kodata in the image.
pub const KODATA_ROOT: &str = "/var/run/ko";
const PARENTS: [&str; 3] = ["/var", "/var/run", "/var/run/ko"];
const WINDOWS_PARENTS: [&str; 5] = [
    "Hives",
    "Files",
    "Files/var",
    "Files/var/run",
    "Files/var/run/ko",
];

#[derive(Debug, thiserror::Error)]
pub enum KodataError {
    #[error(
        "kodata symlink {link} resolves to {target}, which is outside the allowed root {root}; point it inside the kodata tree (or set KO_DATA_PATH_ALLOWED_ROOT / --allowed-root to a directory that holds both)"
    )]
    Escapes {
        link: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("cannot read kodata {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "kodata {path} is not a regular file, directory or symlink to one; remove it from kodata"
    )]
    Special { path: PathBuf },
    #[error("kodata file name {path:?} is not valid UTF-8; rename it")]
    NotUtf8 { path: PathBuf },
    #[error(
        "kodata directory {path} links back to one of its parents (a symlink loop); remove the link"
    )]
    Loop { path: PathBuf },
    #[error(
        "invalid kodata entry {found:?}: {why}; expected IMAGE_PATH=FILE with IMAGE_PATH relative to /var/run/ko, such as static/index.html=cmd/app/kodata/static/index.html"
    )]
    BadPair { found: String, why: String },
    #[error(
        "kodata path {path:?} is given twice (or as both a file and a directory); give each path once"
    )]
    Duplicate { path: String },
    #[error(
        "kodata file {path} changed while it was read: expected {expected} bytes, read {found}"
    )]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("writing the layer")]
    Write(#[source] std::io::Error),
}

/// The PAX records of every kodata file (none on Linux).
type PaxRecords<'a> = &'a [(&'a str, &'a [u8])];

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KodataError + '_ {
    move |source| KodataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A kodata tree: directories and the files to read.
#[derive(Debug, Default)]
pub struct Tree {
    root: BTreeMap<String, Node>,
    /// Laid out for a windows/* image.
    windows: bool,
    /// The symlinks a windows walk left out, for the layer's warning.
    skipped: Vec<PathBuf>,
}

#[derive(Debug)]
enum Node {
    Dir(BTreeMap<String, Node>),
    File { source: PathBuf, size: u64 },
}

impl Tree {
    /// Walks a kodata directory as ko does. A missing directory is an empty tree (ko too
    /// always writes the kodata layer). `allowed_root` widens where symlinks may point.
    /// `windows`: the layer of a windows/* image, whose walk skips symlinks (as ko's).
    pub fn from_dir(
        dir: &Path,
        allowed_root: Option<&Path>,
        windows: bool,
    ) -> Result<Tree, KodataError> {
        if !dir.exists() {
            return Ok(Tree {
                windows,
                ..Tree::default()
            });
        }
        let real = fs_err::canonicalize(dir).map_err(io_err(dir))?;
        let mut root = real.clone();
        if let Some(wider) = allowed_root
            && let Ok(w) = std::fs::canonicalize(wider)
            && real.starts_with(&w)
        {
            root = w;
        }
        let mut skipped = Vec::new();
        Ok(Tree {
            root: walk(dir, &root, windows.then_some(&mut skipped))?,
            windows,
            skipped,
        })
    }

    /// The tree of a kodata directory (with ko's allowed root for symlinks: `allowed_root`,
    /// else `KO_DATA_PATH_ALLOWED_ROOT` as ko reads it, else the git work tree around it),
    /// or else of `IMAGE_PATH=FILE` pairs; `windows` as [`Tree::from_dir`]. Every command
    /// that walks a kodata directory (`layer kodata`, `build`, `provenance`) comes here, so
    /// the layer and the provenance's list of its files agree on which links are allowed.
    pub fn from_inputs(
        dir: Option<&Path>,
        pairs: &[String],
        allowed_root: Option<&Path>,
        windows: bool,
    ) -> Result<Tree, KodataError> {
        match dir {
            Some(d) => {
                let env = match allowed_root {
                    Some(p) => Some(p.to_string_lossy().into_owned()),
                    None => std::env::var(ALLOWED_ROOT_ENV).ok(),
                };
                let root = ko_allowed_root(d, env.as_deref());
                Tree::from_dir(d, root.as_deref(), windows)
            }
            None => Tree::from_pairs(pairs, windows),
        }
    }

    /// Builds the tree from `image-path=file` pairs. A file that is a directory adds its
    /// whole tree at that path. `windows`: laid out for a windows/* image (the pairs are
    /// read as given: no symlink is skipped).
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S], windows: bool) -> Result<Tree, KodataError> {
        let mut tree = Tree {
            windows,
            ..Tree::default()
        };
        for pair in pairs {
            let pair = pair.as_ref();
            let bad = |why: &str| KodataError::BadPair {
                found: pair.to_string(),
                why: why.to_string(),
            };
            let (image_path, file) = pair.split_once('=').ok_or_else(|| bad("there is no '='"))?;
            let image_path = image_path
                .strip_prefix("/var/run/ko/")
                .unwrap_or(image_path);
            let parts: Vec<&str> = image_path.split('/').collect();
            if image_path.is_empty() || image_path.starts_with('/') {
                return Err(bad("the image path is empty or absolute"));
            }
            if parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
            {
                return Err(bad("the image path has an empty, '.' or '..' element"));
            }
            if file.is_empty() {
                return Err(bad("the file is empty"));
            }
            let source = PathBuf::from(file);
            let meta = fs_err::metadata(&source).map_err(io_err(&source))?;
            let node = if meta.is_dir() {
                let real = fs_err::canonicalize(&source).map_err(io_err(&source))?;
                Node::Dir(walk(&source, &real, None)?)
            } else if meta.is_file() {
                Node::File {
                    source,
                    size: meta.len(),
                }
            } else {
                return Err(KodataError::Special { path: source });
            };
            insert(&mut tree.root, &parts, node, image_path)?;
        }
        Ok(tree)
    }

    /// Every file of the tree, in layer order: its path under /var/run/ko, and where it is
    /// read from.
    pub fn files(&self) -> Vec<(String, &Path)> {
        fn collect<'a>(
            nodes: &'a BTreeMap<String, Node>,
            prefix: &str,
            out: &mut Vec<(String, &'a Path)>,
        ) {
            for (name, node) in nodes {
                let path = match prefix {
                    "" => name.clone(),
                    _ => format!("{prefix}/{name}"),
                };
                match node {
                    Node::Dir(children) => collect(children, &path, out),
                    Node::File { source, .. } => out.push((path, source)),
                }
            }
        }
        let mut out = Vec::new();
        collect(&self.root, "", &mut out);
        out
    }

    /// Writes the layer tar into `sink`, mtime `mtime` on every entry.
    pub fn write_tar(&self, sink: &mut impl Write, mtime: u64) -> Result<(), KodataError> {
        let (parents, root, pax): (&[&str], String, PaxRecords) = match self.windows {
            false => (&PARENTS, KODATA_ROOT.to_string(), &[]),
            true => (
                &WINDOWS_PARENTS,
                format!("{WINDOWS_FILES}{KODATA_ROOT}"),
                &[(WINDOWS_SD_KEY, WINDOWS_SD.as_bytes())],
            ),
        };
        for dir in parents {
            let e = Entry::new(dir, EntryKind::Dir, 0o555, 0, mtime);
            tar::write_header(sink, &e).map_err(KodataError::Write)?;
        }
        write_nodes(sink, &root, &self.root, mtime, pax)?;
        sink.write_all(&tar::TRAILER).map_err(KodataError::Write)
    }

    /// Builds the compressed layer and its descriptor.
    pub fn write_layer(
        &self,
        out: impl Write,
        import_path: &str,
        mtime: Option<u64>,
        compression: &Compression,
        threads: usize,
    ) -> anyhow::Result<LayerDescriptor> {
        crate::importpath::check(import_path)?;
        for link in &self.skipped {
            eprintln!(
                "rko: warning: kodata: skipping the symlink {} in a windows image, as ko does \
                 (Windows layers cannot hold links); copy the file in to keep it",
                link.display()
            );
        }
        let mut sink = LayerSink::new(out, compression, threads).map_err(KodataError::Write)?;
        self.write_tar(&mut sink, mtime.unwrap_or(0))?;
        let (w, _) = sink.finish().map_err(KodataError::Write)?;
        Ok(LayerDescriptor::written(
            w,
            compression,
            LayerContent::Kodata {
                import_path: import_path.to_string(),
                mtime,
                windows: self.windows,
            },
        ))
    }
}

fn insert(
    map: &mut BTreeMap<String, Node>,
    parts: &[&str],
    node: Node,
    full: &str,
) -> Result<(), KodataError> {
    let dup = || KodataError::Duplicate {
        path: full.to_string(),
    };
    let (first, rest) = parts.split_first().expect("non-empty path");
    if rest.is_empty() {
        if map.contains_key(*first) {
            return Err(dup());
        }
        map.insert(first.to_string(), node);
        return Ok(());
    }
    match map
        .entry(first.to_string())
        .or_insert_with(|| Node::Dir(BTreeMap::new()))
    {
        Node::Dir(children) => insert(children, rest, node, full),
        Node::File { .. } => Err(dup()),
    }
}

/// Walks `dir` as ko's `filepath.Walk` does after resolving links: symlinks followed (each
/// must resolve inside `allowed`), loops refused, names sorted. With `skipped`, symlinks
/// are left out instead (ko's walk for windows) and recorded there.
fn walk(
    dir: &Path,
    allowed: &Path,
    mut skipped: Option<&mut Vec<PathBuf>>,
) -> Result<BTreeMap<String, Node>, KodataError> {
    let mut out = BTreeMap::new();
    let skip_links = skipped.is_some();
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(!skip_links)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| match (&mut skipped, e.path_is_symlink()) {
            (Some(s), true) => {
                s.push(e.path().to_path_buf());
                false
            }
            _ => true,
        });
    for entry in entries {
        let entry = entry.map_err(|e| walk_error(dir, e))?;
        let path = entry.path();
        let names = path
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root")
            .iter()
            .map(|n| n.to_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| KodataError::NotUtf8 {
                path: path.to_path_buf(),
            })?;
        if entry.path_is_symlink() {
            let target = fs_err::canonicalize(path).map_err(io_err(path))?;
            if !target.starts_with(allowed) {
                return Err(KodataError::Escapes {
                    link: path.to_path_buf(),
                    target,
                    root: allowed.to_path_buf(),
                });
            }
        }
        let ft = entry.file_type();
        let node = if ft.is_dir() {
            Node::Dir(BTreeMap::new())
        } else if ft.is_file() {
            let meta = entry.metadata().map_err(|e| walk_error(dir, e))?;
            Node::File {
                // Read through the walked path: the kernel follows its links, and a
                // message names the file as the user sees it. No realpath per file.
                source: path.to_path_buf(),
                size: meta.len(),
            }
        } else {
            return Err(KodataError::Special {
                path: path.to_path_buf(),
            });
        };
        let (name, parents) = names.split_last().expect("min_depth(1)");
        let mut map = &mut out;
        for p in parents {
            map = match map.get_mut(p) {
                Some(Node::Dir(children)) => children,
                _ => unreachable!("walkdir yields a directory before its entries"),
            };
        }
        map.insert(name.clone(), node);
    }
    Ok(out)
}

fn walk_error(dir: &Path, e: walkdir::Error) -> KodataError {
    let path = e.path().unwrap_or(dir).to_path_buf();
    if e.loop_ancestor().is_some() {
        return KodataError::Loop { path };
    }
    match e.into_io_error() {
        Some(source) => KodataError::Io { path, source },
        None => KodataError::Loop { path },
    }
}

fn write_nodes(
    sink: &mut impl Write,
    parent: &str,
    nodes: &BTreeMap<String, Node>,
    mtime: u64,
    pax: &[(&str, &[u8])],
) -> Result<(), KodataError> {
    // BTreeMap<String> iterates in bytewise order, which is Go's sort.Strings order.
    for (name, node) in nodes {
        let path = format!("{parent}/{name}");
        match node {
            Node::Dir(children) => {
                let e = Entry::new(&path, EntryKind::Dir, 0o555, 0, mtime);
                tar::write_header(sink, &e).map_err(KodataError::Write)?;
                write_nodes(sink, &path, children, mtime, pax)?;
            }
            Node::File { source, size } => {
                let e = Entry {
                    pax,
                    ..Entry::new(&path, EntryKind::File, 0o555, *size, mtime)
                };
                tar::write_header(sink, &e).map_err(KodataError::Write)?;
                let f = fs_err::File::open(source).map_err(io_err(source))?;
                let copied = std::io::copy(&mut f.take(*size + 1), sink).map_err(io_err(source))?;
                if copied != *size {
                    return Err(KodataError::Changed {
                        path: source.clone(),
                        expected: *size,
                        found: copied,
                    });
                }
                tar::write_padding(sink, *size).map_err(KodataError::Write)?;
            }
        }
    }
    Ok(())
}

/// ko's variable for the symlink boundary of a kodata directory.
pub const ALLOWED_ROOT_ENV: &str = "KO_DATA_PATH_ALLOWED_ROOT";

/// ko's widening of the symlink boundary: `KO_DATA_PATH_ALLOWED_ROOT`, else the enclosing
/// git work tree of the kodata directory.
pub fn ko_allowed_root(dir: &Path, env_value: Option<&str>) -> Option<PathBuf> {
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let mut d = std::fs::canonicalize(dir).ok()?;
    loop {
        if d.join(".git").exists() {
            return Some(d);
        }
        if !d.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(map: &BTreeMap<String, Node>, prefix: &str, out: &mut Vec<String>) {
        for (name, node) in map {
            let path = format!("{prefix}{name}");
            out.push(path.clone());
            if let Node::Dir(children) = node {
                names(children, &format!("{path}/"), out);
            }
        }
    }

    #[test]
    fn links_are_followed_inside_the_root_and_refused_outside_or_in_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let kd = dir.path().join("kodata");
        std::fs::create_dir_all(kd.join("b/empty")).unwrap();
        std::fs::write(kd.join("b/z.txt"), "z").unwrap();
        std::fs::write(kd.join("a.txt"), "a").unwrap();
        symlink("b", kd.join("link-dir")).unwrap();
        symlink("a.txt", kd.join("link-file")).unwrap();
        let tree = Tree::from_dir(&kd, None, false).unwrap();
        let mut got = Vec::new();
        names(&tree.root, "", &mut got);
        let want = [
            "a.txt",
            "b",
            "b/empty",
            "b/z.txt",
            "link-dir",
            "link-dir/empty",
            "link-dir/z.txt",
            "link-file",
        ];
        assert_eq!(got, want);

        symlink("..", kd.join("b/up")).unwrap();
        let e = Tree::from_dir(&kd, None, false).unwrap_err();
        assert!(matches!(e, KodataError::Loop { .. }), "{e}");
        std::fs::remove_file(kd.join("b/up")).unwrap();

        std::fs::write(dir.path().join("secret"), "s").unwrap();
        symlink("../secret", kd.join("leak")).unwrap();
        let e = Tree::from_dir(&kd, None, false).unwrap_err().to_string();
        assert!(e.contains("outside the allowed root"), "{e}");
        // A wider allowed root admits it.
        assert!(Tree::from_dir(&kd, Some(dir.path()), false).is_ok());

        // For windows, ko skips every symlink: the loop and the leak are no error, and the
        // links are left out.
        symlink("..", kd.join("b/up")).unwrap();
        let tree = Tree::from_dir(&kd, None, true).unwrap();
        let mut got = Vec::new();
        names(&tree.root, "", &mut got);
        assert_eq!(got, ["a.txt", "b", "b/empty", "b/z.txt"]);
        let skipped: Vec<_> = tree
            .skipped
            .iter()
            .map(|p| p.strip_prefix(&kd).unwrap())
            .collect();
        let want = ["b/up", "leak", "link-dir", "link-file"].map(Path::new);
        assert_eq!(skipped, want);
    }
}

//! The kodata layer: `/var`, `/var/run`, `/var/run/ko`, then the kodata tree below it in
//! the order ko's `filepath.Walk` visits it (names sorted bytewise within each directory,
//! depth first), everything mode 0555, symlinks followed.
//!
//! The tree comes from a directory, or from `image-path=file` pairs as a build system
//! passes its inputs (often symlinks into the source tree). Both are turned into the same
//! in-memory tree first, so both give the same bytes for the same files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::layer::compress::{Compression, LayerSink};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::layer::{LayerContent, LayerDescriptor, oci_media_type};

/// Where ko puts kodata in the image.
pub const KODATA_ROOT: &str = "/var/run/ko";
const PARENTS: [&str; 3] = ["/var", "/var/run", "/var/run/ko"];
/// Deepest directory nesting followed, as a guard against symlink loops.
const MAX_DEPTH: usize = 64;

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
    #[error("writing the layer: {0}")]
    Write(std::io::Error),
}

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
}

#[derive(Debug)]
enum Node {
    Dir(BTreeMap<String, Node>),
    File { source: PathBuf, size: u64 },
}

impl Tree {
    /// Walks a kodata directory as ko does. A missing directory is an empty tree (ko too
    /// always writes the kodata layer). `allowed_root` widens where symlinks may point.
    pub fn from_dir(dir: &Path, allowed_root: Option<&Path>) -> Result<Tree, KodataError> {
        if !dir.exists() {
            return Ok(Tree::default());
        }
        let real = fs_err::canonicalize(dir).map_err(io_err(dir))?;
        let mut root = real.clone();
        if let Some(wider) = allowed_root
            && let Ok(w) = std::fs::canonicalize(wider)
            && real.starts_with(&w)
        {
            root = w;
        }
        let mut chain = vec![real.clone()];
        Ok(Tree {
            root: walk(dir, &root, &mut chain)?,
        })
    }

    /// Builds the tree from `image-path=file` pairs. A file that is a directory adds its
    /// whole tree at that path.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Tree, KodataError> {
        let mut tree = Tree::default();
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
                let mut chain = vec![real.clone()];
                Node::Dir(walk(&source, &real, &mut chain)?)
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

    /// Writes the layer tar into `sink`, mtime `mtime` on every entry.
    pub fn write_tar(&self, sink: &mut impl Write, mtime: u64) -> Result<(), KodataError> {
        for dir in PARENTS {
            let e = Entry::new(dir, EntryKind::Dir, 0o555, 0, mtime);
            tar::write_header(sink, &e).map_err(KodataError::Write)?;
        }
        write_nodes(sink, KODATA_ROOT, &self.root, mtime)?;
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
        let mut sink = LayerSink::new(out, compression, threads).map_err(KodataError::Write)?;
        self.write_tar(&mut sink, mtime.unwrap_or(0))?;
        let (w, _) = sink.finish().map_err(KodataError::Write)?;
        Ok(LayerDescriptor {
            media_type: oci_media_type(compression.algorithm).to_string(),
            digest: w.digest,
            size: w.size,
            diff_id: w.diff_id,
            uncompressed_size: w.uncompressed_size,
            compression: compression.clone(),
            content: LayerContent::Kodata {
                import_path: import_path.to_string(),
                mtime,
            },
        })
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

fn walk(
    dir: &Path,
    allowed: &Path,
    chain: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, Node>, KodataError> {
    if chain.len() > MAX_DEPTH {
        return Err(KodataError::Loop {
            path: dir.to_path_buf(),
        });
    }
    let mut out = BTreeMap::new();
    for entry in fs_err::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| KodataError::NotUtf8 { path: path.clone() })?;
        let ft = entry.file_type().map_err(io_err(&path))?;
        let node = if ft.is_dir() {
            let real = fs_err::canonicalize(&path).map_err(io_err(&path))?;
            chain.push(real);
            let n = Node::Dir(walk(&path, allowed, chain)?);
            chain.pop();
            n
        } else {
            // Files and symlinks: resolve and check the target stays inside the allowed root.
            let target = fs_err::canonicalize(&path).map_err(io_err(&path))?;
            if !target.starts_with(allowed) {
                return Err(KodataError::Escapes {
                    link: path,
                    target,
                    root: allowed.to_path_buf(),
                });
            }
            let meta = fs_err::metadata(&target).map_err(io_err(&target))?;
            if meta.is_dir() {
                if chain.contains(&target) {
                    return Err(KodataError::Loop { path });
                }
                chain.push(target.clone());
                let n = Node::Dir(walk(&target, allowed, chain)?);
                chain.pop();
                n
            } else if meta.is_file() {
                Node::File {
                    source: target,
                    size: meta.len(),
                }
            } else {
                return Err(KodataError::Special { path });
            }
        };
        out.insert(name, node);
    }
    Ok(out)
}

fn write_nodes(
    sink: &mut impl Write,
    parent: &str,
    nodes: &BTreeMap<String, Node>,
    mtime: u64,
) -> Result<(), KodataError> {
    // BTreeMap<String> iterates in bytewise order, which is Go's sort.Strings order.
    for (name, node) in nodes {
        let path = format!("{parent}/{name}");
        match node {
            Node::Dir(children) => {
                let e = Entry::new(&path, EntryKind::Dir, 0o555, 0, mtime);
                tar::write_header(sink, &e).map_err(KodataError::Write)?;
                write_nodes(sink, &path, children, mtime)?;
            }
            Node::File { source, size } => {
                let e = Entry::new(&path, EntryKind::File, 0o555, *size, mtime);
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
                sink.write_all(&[0u8; tar::BLOCK][..tar::padding(*size)])
                    .map_err(KodataError::Write)?;
            }
        }
    }
    Ok(())
}

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

//! Extra layers: files a user adds next to the binary (tzdata, configs, certificates), given
//! as a tar. The tar is rewritten deterministically, so the same files give the same layer
//! digest whatever tool made the tar and however it ordered, dated or named its entries:
//!
//! - input: plain, gzip or zstd (detected by magic); every entry is read;
//! - kept: paths, types (directories, regular files, symlinks, hard links), permission bits
//!   (with setuid/setgid/sticky), numeric uid/gid, contents, symlink targets, and the
//!   extended attributes `security.capability` and `user.*` as `SCHILY.xattr.*` PAX records
//!   (what GNU tar, bsdtar and Docker write), on every entry but a hard link (whose file
//!   carries them);
//! - dropped: mtimes (all set to `mtime`: 0, or `SOURCE_DATE_EPOCH`), user and group names,
//!   PAX global headers (`git archive` writes one), the `./` root entry, other extended
//!   attributes (`security.selinux`, ACLs, `trusted.*`: the tar-making host's, or needing
//!   privileges to unpack) and other PAX records (times, `LIBARCHIVE.*`);
//! - normalized: symlink modes to 0777 (Linux ignores them; tools disagree on them), names
//!   as ko writes them (`/etc/zoneinfo/UTC`, no trailing slash), the
//!   kodata layer's order (depth first, names sorted bytewise within each directory), a
//!   missing parent directory added as 0755 root:root, each group of hard links written as
//!   one file (the first path in that order, with the group's content, mode and owner) and
//!   hard links to it;
//! - refused: absolute paths, `..` anywhere, device nodes, fifos and other entry types,
//!   a path given twice (or both as a file and as a directory), a hard link to a missing or
//!   non-regular entry, names that are not UTF-8, owner ids above 2097151, and a malformed
//!   or truncated tar.
//!
//! Contents are spooled to a temporary file while the tar is read, so memory does not grow
//! with the size of the input.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::layer::compress::{Compression, LayerSink};
use crate::layer::tar::{self, Entry, EntryKind, MAX_OCTAL_ID};
use crate::layer::{LayerContent, LayerDescriptor};

#[derive(Debug, thiserror::Error)]
pub enum ExtraError {
    #[error("{tar} is not a readable tar: {why}")]
    Malformed { tar: String, why: String },
    #[error(
        "{tar}: entry {path:?} {why}; extra layers take relative paths inside the image root, such as etc/app/config.yaml or ./etc/app/config.yaml"
    )]
    BadPath {
        tar: String,
        path: String,
        why: &'static str,
    },
    #[error(
        "{tar}: entry {path:?} is a {kind}, which an extra layer does not carry; only directories, regular files, symlinks and hard links are allowed"
    )]
    Unsupported {
        tar: String,
        path: String,
        kind: String,
    },
    #[error(
        "{tar}: path {path:?} is given twice (or as both a file and a directory); give each path once"
    )]
    Duplicate { tar: String, path: String },
    #[error("{tar}: hard link {path:?} points to {target:?}, which is {why}")]
    BadHardlink {
        tar: String,
        path: String,
        target: String,
        why: &'static str,
    },
    #[error(
        "{tar}: entry {path:?} has owner id {id}, above the largest a USTAR header holds (2097151)"
    )]
    BigOwner { tar: String, path: String, id: u64 },
    #[error("writing the layer")]
    Write(#[source] std::io::Error),
}

/// What an entry is, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    /// `offset` and `size` in the spool.
    File {
        offset: u64,
        size: u64,
    },
    Symlink(String),
    /// The target's path (normalized, without a leading slash).
    Hardlink(String),
}

#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    /// `SCHILY.xattr.*` PAX records: (key, value), sorted by key.
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The PAX key prefix of an extended attribute, as GNU tar and Go's archive/tar write it.
const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// The extended attributes an extra layer keeps: file capabilities and user attributes.
/// Others describe the machine that made the tar (`security.selinux` labels, ACLs) or need
/// privileges to unpack (`trusted.*`), so they would change digests from host to host and
/// fail rootless unpacking.
fn kept_xattr(name: &str) -> bool {
    name == "security.capability" || name.starts_with("user.")
}

/// The entries of an input tar, ready to be written in order.
#[derive(Debug)]
pub struct ExtraTar {
    /// Keyed by path components, so iteration is the kodata layer's order.
    items: BTreeMap<Vec<String>, Item>,
    spool: std::fs::File,
    /// The input's file name, for the history entry.
    name: String,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl ExtraTar {
    /// Reads the tar at `path` (plain, gzip or zstd).
    pub fn open(path: &Path) -> anyhow::Result<ExtraTar> {
        let f = fs_err::File::open(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ExtraTar::read(f, &path.display().to_string(), name)?)
    }

    /// Whether the tar has an entry (of any kind) at `path`, absolute or relative.
    pub fn has_path(&self, path: &str) -> bool {
        normalize(path.trim_start_matches('/'))
            .ok()
            .flatten()
            .is_some_and(|key| self.items.contains_key(&key))
    }

    /// Reads a tar from `input`; `shown` names it in errors, `name` in the history.
    pub fn read(input: impl Read, shown: &str, name: String) -> Result<ExtraTar, ExtraError> {
        let malformed = |why: String| ExtraError::Malformed {
            tar: shown.to_string(),
            why,
        };
        let mut input = BufReader::with_capacity(1 << 16, input);
        let head = input.fill_buf().map_err(|e| malformed(e.to_string()))?;
        if head.is_empty() {
            return Err(malformed("the file is empty".to_string()));
        }
        let reader: Box<dyn Read> = if head.starts_with(&GZIP_MAGIC) {
            Box::new(flate2::read::MultiGzDecoder::new(input))
        } else if head.starts_with(&ZSTD_MAGIC) {
            Box::new(zstd::stream::read::Decoder::new(input).map_err(|e| malformed(e.to_string()))?)
        } else {
            Box::new(input)
        };
        let spool = tempfile::tempfile().map_err(ExtraError::Write)?;
        let mut t = ExtraTar {
            items: BTreeMap::new(),
            spool,
            name,
        };
        t.read_entries(reader, shown)?;
        t.check_links(shown)?;
        t.add_parents(shown)?;
        t.canonical_hardlinks();
        Ok(t)
    }

    fn read_entries(&mut self, reader: impl Read, shown: &str) -> Result<(), ExtraError> {
        let malformed = |e: std::io::Error| ExtraError::Malformed {
            tar: shown.to_string(),
            why: e.to_string(),
        };
        let mut archive = ::tar::Archive::new(reader);
        let mut offset = 0u64;
        for entry in archive.entries().map_err(malformed)? {
            let mut entry = entry.map_err(malformed)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let ty = entry.header().entry_type();
            if ty.is_pax_global_extensions() {
                continue;
            }
            let bad = |why| ExtraError::BadPath {
                tar: shown.to_string(),
                path: raw.clone(),
                why,
            };
            let path = std::str::from_utf8(&entry.path_bytes())
                .map_err(|_| bad("is not valid UTF-8"))
                .and_then(|p| normalize(p).map_err(bad))?;
            let Some(path) = path else {
                continue; // "./": the image root itself.
            };
            let mut xattrs = Vec::new();
            if let Some(exts) = entry.pax_extensions().map_err(malformed)? {
                for ext in exts {
                    let ext = ext.map_err(malformed)?;
                    if let Ok(key) = ext.key()
                        && let Some(name) = key.strip_prefix(XATTR_PREFIX)
                        && kept_xattr(name)
                    {
                        xattrs.push((key.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
            xattrs.sort();
            xattrs.dedup_by(|a, b| a.0 == b.0);
            let h = entry.header();
            let mut mode = h.mode().map_err(malformed)? & 0o7777;
            let owner = |id: std::io::Result<u64>| -> Result<u32, ExtraError> {
                let id = id.map_err(malformed)?;
                if id > MAX_OCTAL_ID as u64 {
                    return Err(ExtraError::BigOwner {
                        tar: shown.to_string(),
                        path: raw.clone(),
                        id,
                    });
                }
                Ok(id as u32)
            };
            let (uid, gid) = (owner(h.uid())?, owner(h.gid())?);
            let link = || -> Result<String, ExtraError> {
                let l = entry.link_name_bytes().unwrap_or_default();
                let l = std::str::from_utf8(&l)
                    .map_err(|_| bad("has a link target that is not valid UTF-8"))?;
                if l.is_empty() {
                    return Err(bad("is a link with an empty target"));
                }
                Ok(l.to_string())
            };
            let kind = if ty.is_dir() {
                Kind::Dir
            } else if ty.is_file() || ty.is_contiguous() {
                let want = entry.size();
                let size = std::io::copy(&mut entry, &mut self.spool).map_err(malformed)?;
                if size != want {
                    return Err(ExtraError::Malformed {
                        tar: shown.to_string(),
                        why: format!("entry {raw:?} is cut short ({size} of {want} bytes)"),
                    });
                }
                let k = Kind::File { offset, size };
                offset += size;
                k
            } else if ty.is_symlink() {
                // Linux ignores a symlink's mode and tools write 0777, 0755 or 0644: one
                // value, so the same link gives the same bytes.
                mode = 0o777;
                Kind::Symlink(link()?)
            } else if ty.is_hard_link() {
                let target = link()?;
                let norm = normalize(&target)
                    .map_err(|_| bad("is a hard link whose target is absolute or has '..'"))?
                    .ok_or_else(|| bad("is a hard link to the image root"))?;
                Kind::Hardlink(norm.join("/"))
            } else {
                let kind = match ty {
                    ::tar::EntryType::Char => "character device".to_string(),
                    ::tar::EntryType::Block => "block device".to_string(),
                    ::tar::EntryType::Fifo => "fifo".to_string(),
                    other => format!("tar entry of type {:?}", other.as_byte() as char),
                };
                return Err(ExtraError::Unsupported {
                    tar: shown.to_string(),
                    path: raw,
                    kind,
                });
            };
            if matches!(kind, Kind::Hardlink(_)) {
                xattrs.clear(); // the file it links to carries them
            }
            let item = Item {
                kind,
                mode,
                uid,
                gid,
                xattrs,
            };
            if self.items.insert(path, item).is_some() {
                return Err(ExtraError::Duplicate {
                    tar: shown.to_string(),
                    path: raw,
                });
            }
        }
        Ok(())
    }

    /// Every hard link must point to a regular file of the archive (or a link to one).
    fn check_links(&self, shown: &str) -> Result<(), ExtraError> {
        for (path, item) in &self.items {
            if let Kind::Hardlink(target) = &item.kind {
                let why = match self.resolve(target) {
                    Some(_) => continue,
                    None if self.items.contains_key(&split(target)) => {
                        "not a regular file (or a link chain that ends in one)"
                    }
                    None => "not in the tar",
                };
                return Err(ExtraError::BadHardlink {
                    tar: shown.to_string(),
                    path: path.join("/"),
                    target: target.clone(),
                    why,
                });
            }
        }
        Ok(())
    }

    /// The regular file a hard link chain ends in.
    fn resolve(&self, target: &str) -> Option<Vec<String>> {
        let mut key = split(target);
        for _ in 0..=self.items.len() {
            match &self.items.get(&key)?.kind {
                Kind::File { .. } => return Some(key),
                Kind::Hardlink(next) => key = split(next),
                _ => return None,
            }
        }
        None
    }

    /// Adds each missing parent directory (0755, root) and refuses a file used as one.
    fn add_parents(&mut self, shown: &str) -> Result<(), ExtraError> {
        let mut missing = Vec::new();
        for path in self.items.keys() {
            for n in 1..path.len() {
                let parent = &path[..n];
                match self.items.get(parent) {
                    Some(Item {
                        kind: Kind::Dir, ..
                    }) => {}
                    Some(_) => {
                        return Err(ExtraError::Duplicate {
                            tar: shown.to_string(),
                            path: parent.join("/"),
                        });
                    }
                    None => missing.push(parent.to_vec()),
                }
            }
        }
        for p in missing {
            self.items.insert(
                p,
                Item {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    xattrs: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Writes each group of hard links as its first path (in layer order) holding the
    /// content and the others linking to it, all with the file's mode and owner.
    fn canonical_hardlinks(&mut self) {
        let mut groups: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
        for (path, item) in &self.items {
            match &item.kind {
                Kind::File { .. } => groups.entry(path.clone()).or_default().push(path.clone()),
                Kind::Hardlink(t) => {
                    let file = self.resolve(t).expect("links were checked");
                    groups.entry(file).or_default().push(path.clone());
                }
                _ => {}
            }
        }
        for (file, mut members) in groups {
            if members.len() < 2 {
                continue;
            }
            members.sort();
            let item = self.items[&file].clone();
            let first = members[0].join("/");
            for (i, m) in members.iter().enumerate() {
                let (kind, xattrs) = match i {
                    0 => (item.kind.clone(), item.xattrs.clone()),
                    _ => (Kind::Hardlink(first.clone()), Vec::new()),
                };
                let member = Item {
                    kind,
                    xattrs,
                    ..item.clone()
                };
                self.items.insert(m.clone(), member);
            }
        }
    }

    /// Writes the layer tar into `sink`, mtime `mtime` on every entry.
    pub fn write_tar(&self, sink: &mut impl Write, mtime: u64) -> Result<(), ExtraError> {
        let mut spool = &self.spool;
        for (path, item) in &self.items {
            let name = format!("/{}", path.join("/"));
            let hardlink;
            let (kind, size, link) = match &item.kind {
                Kind::Dir => (EntryKind::Dir, 0, ""),
                Kind::File { size, .. } => (EntryKind::File, *size, ""),
                Kind::Symlink(t) => (EntryKind::Symlink, 0, t.as_str()),
                Kind::Hardlink(t) => {
                    hardlink = format!("/{t}");
                    (EntryKind::Hardlink, 0, hardlink.as_str())
                }
            };
            let pax: Vec<(&str, &[u8])> = item
                .xattrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let e = Entry {
                name: &name,
                kind,
                mode: item.mode,
                size,
                mtime,
                uid: item.uid,
                gid: item.gid,
                link,
                pax: &pax,
            };
            tar::write_header(sink, &e).map_err(ExtraError::Write)?;
            if let Kind::File { offset, size } = item.kind {
                spool
                    .seek(SeekFrom::Start(offset))
                    .map_err(ExtraError::Write)?;
                let copied =
                    std::io::copy(&mut (&mut spool).take(size), sink).map_err(ExtraError::Write)?;
                if copied != size {
                    return Err(ExtraError::Write(std::io::Error::other(
                        "the spooled content is shorter than written",
                    )));
                }
                tar::write_padding(sink, size).map_err(ExtraError::Write)?;
            }
        }
        sink.write_all(&tar::TRAILER).map_err(ExtraError::Write)
    }

    /// Builds the compressed layer and its descriptor.
    pub fn write_layer(
        &self,
        out: impl Write,
        mtime: Option<u64>,
        compression: &Compression,
        threads: usize,
    ) -> anyhow::Result<LayerDescriptor> {
        let mut sink = LayerSink::new(out, compression, threads).map_err(ExtraError::Write)?;
        self.write_tar(&mut sink, mtime.unwrap_or(0))?;
        let (w, _) = sink.finish().map_err(ExtraError::Write)?;
        Ok(LayerDescriptor::written(
            w,
            compression,
            LayerContent::Tar {
                name: self.name.clone(),
                mtime,
            },
        ))
    }
}

fn split(p: &str) -> Vec<String> {
    p.split('/').map(str::to_string).collect()
}

/// A tar entry's path as components: `./` prefixes, empty and `.` elements and a trailing
/// slash dropped; `None` for the root itself.
fn normalize(p: &str) -> Result<Option<Vec<String>>, &'static str> {
    if p.starts_with('/') {
        return Err("is absolute");
    }
    let mut out = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a '..' element"),
            _ => out.push(part.to_string()),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_or_refused() {
        let n = |p| normalize(p).map(|o| o.map(|v| v.join("/")));
        assert_eq!(n("./etc/x"), Ok(Some("etc/x".into())));
        assert_eq!(n("etc//x/"), Ok(Some("etc/x".into())));
        assert_eq!(n("./"), Ok(None));
        assert_eq!(n("/etc/x"), Err("is absolute"));
        assert_eq!(n("etc/../../x"), Err("has a '..' element"));
    }
}

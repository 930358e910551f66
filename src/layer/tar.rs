//! Tar headers written byte for byte as Go's `archive/tar` writes them, so a layer made here
//! has the same diff_id as the layer `ko` makes from the same files.
//!
//! Go picks the USTAR format when every field fits (splitting long ASCII names into the
//! prefix and name fields), and otherwise PAX: a `PaxHeaders.0/<name>` extended header whose
//! records are sorted by key, followed by a USTAR-shaped header with the fields cut to size.
//! Supported: directories, regular files, symlinks and hard links with numeric uid/gid (no
//! uname/gname) and whole-second mtimes. ko's own layers use only directories and files
//! owned by 0; extra layers (`extra`) use the rest.
//!
//! This is hand-written rather than the `tar` crate's builder on purpose: that crate
//! formats numeric fields, GNU long names and PAX records differently from Go, and one
//! differing byte changes the diff_id, so the layer would no longer be ko's.

use std::io::{self, Write};

const BLOCK: usize = 512;
const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
/// Largest size that fits the 11 octal digits of a USTAR size field.
const MAX_OCTAL_SIZE: u64 = (1 << 33) - 1;
/// Largest uid/gid that fits the 7 octal digits of a USTAR id field.
pub const MAX_OCTAL_ID: u32 = (1 << 21) - 1;

/// The kind of a tar entry that ko writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// `link` is the target, written as given.
    Symlink,
    /// `link` is the path of an earlier entry of the archive.
    Hardlink,
}

/// One tar entry header, as ko fills in `tar.Header`.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Seconds since the epoch; 0 for ko's zero `time.Time`.
    pub mtime: u64,
    /// Owner ids; ko's entries have 0.
    pub uid: u32,
    pub gid: u32,
    /// The link target of a symlink or hard link; empty otherwise.
    pub link: &'a str,
    /// PAX records of the entry's own (`SCHILY.xattr.*`), written as Go writes
    /// `Header.PAXRecords`: they make the entry PAX, sorted with the others by key.
    pub pax: &'a [(&'a str, &'a [u8])],
}

impl<'a> Entry<'a> {
    /// A root-owned entry, as ko writes every entry.
    pub fn new(name: &'a str, kind: EntryKind, mode: u32, size: u64, mtime: u64) -> Self {
        Entry {
            name,
            kind,
            mode,
            size,
            mtime,
            uid: 0,
            gid: 0,
            link: "",
            pax: &[],
        }
    }
}

/// Writes the header block(s) for `entry`. The caller writes `entry.size` bytes of content
/// and then [`padding`] zero bytes.
pub fn write_header(out: &mut impl Write, entry: &Entry<'_>) -> io::Result<()> {
    let name_ok = entry.name.len() <= NAME_SIZE && entry.name.is_ascii();
    let split = if name_ok {
        None
    } else {
        split_ustar_path(entry.name)
    };
    let size_ok = entry.size <= MAX_OCTAL_SIZE;
    let link_ok = entry.link.len() <= NAME_SIZE && entry.link.is_ascii();
    assert!(
        entry.uid <= MAX_OCTAL_ID && entry.gid <= MAX_OCTAL_ID,
        "owner ids above {MAX_OCTAL_ID:o} are refused before a header is written"
    );
    if entry.pax.is_empty() && size_ok && link_ok && (name_ok || split.is_some()) {
        let (prefix, name) = split.unwrap_or(("", entry.name));
        let mut blk = [0u8; BLOCK];
        fill_v7(&mut blk, name, entry);
        put_str(&mut blk[345..345 + PREFIX_SIZE], prefix);
        finish(&mut blk);
        return out.write_all(&blk);
    }
    // PAX: records for what does not fit, sorted by key. A long name gets its record even
    // when it could be split into USTAR's prefix: Go records it before it knows that
    // another field (a long link target, a huge size) rules USTAR out.
    let size = entry.size.to_string();
    let mut records: Vec<(&str, &[u8])> = Vec::new();
    if !name_ok {
        records.push(("path", entry.name.as_bytes()));
    }
    if !size_ok {
        records.push(("size", size.as_bytes()));
    }
    if !link_ok {
        records.push(("linkpath", entry.link.as_bytes()));
    }
    // Go keeps a field's own record over a user record of the same key.
    for &(k, v) in entry.pax {
        if !records.iter().any(|r| r.0 == k) {
            records.push((k, v));
        }
    }
    records.sort();
    let mut data = Vec::new();
    for (k, v) in &records {
        data.extend_from_slice(&pax_record(k, v));
    }
    let (dir, file) = match entry.name.rfind('/') {
        Some(i) => (&entry.name[..=i], &entry.name[i + 1..]),
        None => ("", entry.name),
    };
    let pax_name = go_path_join(&[dir, "PaxHeaders.0", file]);
    let mut pax_name = to_ascii(&pax_name);
    pax_name.truncate(NAME_SIZE);
    let pax_name = pax_name.trim_end_matches('/');
    let mut blk = [0u8; BLOCK];
    put_str(&mut blk[0..100], pax_name);
    put_octal(&mut blk[100..108], 0);
    put_octal(&mut blk[108..116], 0);
    put_octal(&mut blk[116..124], 0);
    put_octal(&mut blk[124..136], data.len() as u64);
    put_octal(&mut blk[136..148], 0);
    blk[156] = b'x';
    finish(&mut blk);
    out.write_all(&blk)?;
    out.write_all(&data)?;
    out.write_all(&[0u8; BLOCK][..padding(data.len() as u64)])?;

    let mut blk = [0u8; BLOCK];
    let ascii = to_ascii(entry.name);
    let link = to_ascii(entry.link);
    let shown = Entry {
        size: if size_ok { entry.size } else { 0 },
        link: &link,
        ..entry.clone()
    };
    fill_v7(&mut blk, &ascii, &shown);
    finish(&mut blk);
    out.write_all(&blk)
}

/// Writes a whole entry whose content is in memory: header, content, padding.
pub fn write_file(out: &mut impl Write, entry: &Entry<'_>, content: &[u8]) -> io::Result<()> {
    debug_assert_eq!(entry.size, content.len() as u64);
    write_header(out, entry)?;
    out.write_all(content)?;
    write_padding(out, entry.size)
}

/// Writes the zero bytes that follow `size` bytes of content to fill the last block.
pub fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    out.write_all(&[0u8; BLOCK][..padding(size)])
}

/// Zero bytes that follow `size` bytes of content to fill the last block.
fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The end of an archive as Go writes it: two zero blocks, no padding to a record.
pub const TRAILER: [u8; 2 * BLOCK] = [0u8; 2 * BLOCK];

fn fill_v7(blk: &mut [u8; BLOCK], name: &str, e: &Entry<'_>) {
    put_str(&mut blk[0..100], name);
    put_octal(&mut blk[100..108], e.mode as u64);
    put_octal(&mut blk[108..116], e.uid as u64);
    put_octal(&mut blk[116..124], e.gid as u64);
    put_octal(&mut blk[124..136], e.size);
    put_octal(&mut blk[136..148], e.mtime);
    blk[156] = match e.kind {
        EntryKind::Dir => b'5',
        EntryKind::File => b'0',
        EntryKind::Symlink => b'2',
        EntryKind::Hardlink => b'1',
    };
    put_str(&mut blk[157..257], e.link);
    // uname, gname: empty. devmajor, devminor: zero in octal, as Go formats them.
    put_octal(&mut blk[329..337], 0);
    put_octal(&mut blk[337..345], 0);
}

/// Sets the USTAR magic and version and then the checksum.
fn finish(blk: &mut [u8; BLOCK]) {
    blk[257..263].copy_from_slice(b"ustar\0");
    blk[263..265].copy_from_slice(b"00");
    blk[148..156].fill(b' ');
    let sum: u64 = blk.iter().map(|&b| b as u64).sum();
    put_octal(&mut blk[148..155], sum);
    blk[155] = b' ';
}

/// Go's `formatString`: copy, NUL-terminate when there is room; when a cut-off value would
/// end in '/', the slashes are replaced by a NUL.
fn put_str(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
    if b.len() < field.len() {
        field[b.len()] = 0;
    }
    if b.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = s[..field.len()].trim_end_matches('/').len();
        field[kept] = 0;
    }
}

/// Go's `formatOctal`: zero-padded octal leaving room for a trailing NUL.
fn put_octal(field: &mut [u8], v: u64) {
    let s = format!("{:o}", v);
    let width = field.len() - 1;
    let padded = if s.len() < width {
        format!("{}{}", "0".repeat(width - s.len()), s)
    } else {
        s
    };
    put_str(field, &padded);
}

/// Go's `splitUSTARPath`.
fn split_ustar_path(s: &str) -> Option<(&str, &str)> {
    let mut length = s.len();
    if length <= NAME_SIZE || !s.is_ascii() {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if s.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = s[..length].rfind('/')?;
    let nlen = s.len() - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&s[..i], &s[i + 1..]))
}

/// Go's `formatPAXRecord`: "<len> <key>=<value>\n" where len counts the whole record.
fn pax_record(k: &str, v: &[u8]) -> Vec<u8> {
    let base = k.len() + v.len() + 3;
    let mut size = base + base.to_string().len();
    if (base + size.to_string().len()) != size {
        size = base + size.to_string().len();
    }
    let mut rec = format!("{size} {k}=").into_bytes();
    rec.extend_from_slice(v);
    rec.push(b'\n');
    debug_assert_eq!(rec.len(), size);
    rec
}

/// Go's `toASCII`: drops every byte that is not ASCII (and, as Go's, copies an ASCII string
/// whole: `str::is_ascii` checks a word at a time, where the filter goes a char at a time).
fn to_ascii(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    s.chars().filter(|c| c.is_ascii()).collect()
}

/// Go's `path.Join` for the few shapes used here (clean, non-empty parts joined by '/').
fn go_path_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    go_path_clean(&joined)
}

/// Go's `path.Clean`.
pub fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            _ => out.push(part),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_match_go() {
        let mut f = [0xffu8; 8];
        put_octal(&mut f, 0o555);
        assert_eq!(&f, b"0000555\0");
        let mut f = [0xffu8; 12];
        put_octal(&mut f, 0);
        assert_eq!(&f, b"00000000000\0");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        // 91 + 4 + 3 = 98, plus two digits is 100, which has three: Go's final adjustment.
        let v = "x".repeat(91);
        let r = String::from_utf8(pax_record("path", v.as_bytes())).unwrap();
        let n: usize = r.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, r.len());
        assert!(r.starts_with("101 path="));
        // A binary value (an xattr) goes in as it is, NUL bytes and all.
        assert_eq!(pax_record("k", &[0, 1]), b"7 k=\0\x01\n");
    }

    #[test]
    fn ustar_split_as_go() {
        let long = format!("/var/run/ko/{}/file.txt", "d".repeat(120));
        let (p, n) = split_ustar_path(&long).unwrap();
        assert_eq!(n, "file.txt");
        assert_eq!(format!("{p}/{n}"), long);
        assert!(split_ustar_path("short").is_none());
        assert!(split_ustar_path(&format!("/{}", "x".repeat(120))).is_none());
    }

    #[test]
    fn path_clean_as_go() {
        assert_eq!(go_path_clean("/var/run/ko/../x//y/"), "/var/run/x/y");
        assert_eq!(go_path_clean("a/PaxHeaders.0/b"), "a/PaxHeaders.0/b");
        assert_eq!(go_path_clean(""), ".");
    }
}

//! Finding Go build info in an executable: the `\xff Go buildinf:` header in the
//! `.go.buildinfo` section (ELF), `__go_buildinfo` (Mach-O) or the first writable data
//! section (PE), read with positioned reads so the cost does not grow with the binary.
//!
//! What is read: the file header, the program/section (ELF), load command (Mach-O) or
//! section (PE) tables, at most [`SEARCH_WINDOW`] bytes where the build info block
//! should start, and the block itself. Every length taken from the file is checked
//! against the file's size and a fixed limit before anything is allocated.
//!
//! The block (written by Go's linker): 14 bytes of magic, the pointer size, a flags byte,
//! then either (flags & 2, Go 1.18 and later) two uvarint-length-prefixed strings at
//! offset 32, the Go version and the module info, or (Go 1.17 and earlier) two pointers at
//! offset 16 to Go string headers (data pointer, length) in the binary's address space,
//! whose byte order is big endian when flags & 1.

use std::io;
use std::path::Path;

use crate::buildinfo::{BuildInfo, ModinfoError, modinfo};

/// The first 14 bytes of the build info block.
pub const GO_BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Why an executable's build info could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExeError {
    #[error("cannot read {path}: {error}; expected a readable executable file (check the path)")]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Modinfo {
        path: std::path::PathBuf,
        error: ModinfoError,
    },
    #[error("{path}: {what}")]
    Malformed {
        path: std::path::PathBuf,
        what: String,
    },
}

/// How far past the start of the data section or segment the build info magic is looked
/// for. Go's linker puts the block first in `.go.buildinfo`, and at the start of the data
/// segment where there is no such section.
pub const SEARCH_WINDOW: u64 = 64 * 1024;
/// The longest Go version string accepted (`go1.26.0`, `devel go1.27-abcdef … X:exp`).
const MAX_VERSION: u64 = 4 * 1024;
/// The longest module info text accepted (a binary with thousands of dependencies has a
/// few hundred KiB).
const MAX_MODINFO: u64 = 64 * 1024 * 1024;
/// The largest header table (program headers, section headers, load commands, PE
/// sections, ELF section names) read in one piece.
const MAX_TABLE: u64 = 16 * 1024 * 1024;
/// The length of Go's module info sentinels (`cmd/go`'s infoStart and infoEnd).
const SENTINEL: usize = 16;
const HEADER_SIZE: u64 = 32;

/// Reads the Go build info of the executable at `path`; `Ok(None)` when it carries none
/// (not a Go binary, or not an executable at all).
pub fn read_file(path: &Path) -> Result<Option<BuildInfo>, ExeError> {
    let io_err = |error| ExeError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(ExeError::Malformed {
            path: path.to_path_buf(),
            what: "is a directory; expected a Go executable file".into(),
        });
    }
    read_from(&file, meta.len()).map_err(|f| f.into_error(path))
}

/// [`read_file`] over bytes in memory (for the fuzz target and unit tests).
#[cfg_attr(not(any(test, fuzzing)), allow(dead_code))]
pub fn read_bytes(data: &[u8]) -> Result<Option<BuildInfo>, ExeError> {
    read_from(data, data.len() as u64).map_err(|f| f.into_error(Path::new("<memory>")))
}

/// Positioned reads of exactly `buf.len()` bytes at `offset`.
pub trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// An internal failure, given the file's path when it leaves the module.
#[derive(Debug)]
enum Fail {
    Io(io::Error),
    Bad(String),
    Modinfo(ModinfoError),
}

impl Fail {
    fn into_error(self, path: &Path) -> ExeError {
        let path = path.to_path_buf();
        match self {
            Fail::Io(error) => ExeError::Io { path, error },
            Fail::Modinfo(error) => ExeError::Modinfo { path, error },
            Fail::Bad(what) => ExeError::Malformed {
                path,
                what: format!(
                    "{what}; the executable is truncated or damaged: rebuild it, or copy it \
                     again in full"
                ),
            },
        }
    }
}

type R<T> = Result<T, Fail>;

fn bad<T>(what: impl Into<String>) -> R<T> {
    Err(Fail::Bad(what.into()))
}

/// The file (or, in a universal Mach-O file, one architecture's slice of it).
struct Src<'a, F: ReadAt + ?Sized> {
    f: &'a F,
    /// Where the slice starts in the file.
    base: u64,
    /// The slice's length.
    len: u64,
}

impl<F: ReadAt + ?Sized> Src<'_, F> {
    /// `n` bytes at `off` (within the slice); an error naming `what` when they are not all
    /// in the file.
    fn bytes(&self, off: u64, n: u64, what: &str) -> R<Vec<u8>> {
        let end = off.checked_add(n);
        if end.is_none_or(|e| e > self.len) {
            return bad(format!(
                "{what} (bytes {off}..{} of the file) lies past its end ({} bytes)",
                off.saturating_add(n),
                self.len
            ));
        }
        let n = usize::try_from(n).map_err(|_| Fail::Bad(format!("{what} is too large")))?;
        let mut buf = vec![0u8; n];
        self.f
            .read_exact_at(&mut buf, self.base + off)
            .map_err(Fail::Io)?;
        Ok(buf)
    }
}

/// Byte order of the executable's header fields.
#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }
    fn u64(self, b: &[u8], at: usize) -> u64 {
        let v: [u8; 8] = b[at..at + 8].try_into().unwrap();
        if self.big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    }
    /// A 4- or 8-byte word.
    fn word(self, b: &[u8], at: usize, wide: bool) -> u64 {
        if wide {
            self.u64(b, at)
        } else {
            u64::from(self.u32(b, at))
        }
    }
}

/// A piece of the address space backed by the file: `size` bytes at virtual address
/// `addr` are the file's bytes at `off`.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    addr: u64,
    off: u64,
    size: u64,
}

/// Where to look for the build info block: the address range of the section or segment,
/// and how addresses map to file offsets.
struct Data {
    addr: u64,
    size: u64,
    maps: Vec<Mapping>,
}

impl Data {
    /// The file offset of `addr` and how many mapped bytes follow it.
    fn locate(&self, addr: u64) -> Option<(u64, u64)> {
        self.maps.iter().find_map(|m| {
            let rel = addr.checked_sub(m.addr)?;
            if rel < m.size {
                Some((m.off.checked_add(rel)?, m.size - rel))
            } else {
                None
            }
        })
    }

    /// `n` bytes at virtual address `addr`.
    fn read<F: ReadAt + ?Sized>(&self, src: &Src<F>, addr: u64, n: u64, what: &str) -> R<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let Some((off, left)) = self.locate(addr) else {
            return bad(format!(
                "{what} is at address {addr:#x}, which no segment of the file holds"
            ));
        };
        if n > left {
            return bad(format!(
                "{what} ({n} bytes at address {addr:#x}) runs past the end of the segment \
                 that holds it ({left} bytes left)"
            ));
        }
        src.bytes(off, n, what)
    }
}

fn read_from<F: ReadAt + ?Sized>(f: &F, len: u64) -> R<Option<BuildInfo>> {
    let src = Src { f, base: 0, len };
    let head = src.bytes(0, len.min(16), "the file header")?;
    let data = if head.starts_with(b"\x7fELF") {
        elf(&src)?
    } else if head.starts_with(b"MZ") {
        pe(&src)?
    } else if head.len() >= 4 && is_thin_macho(&head[..4]) {
        macho(&src)?
    } else if head.starts_with(b"\xca\xfe\xba\xbe") || head.starts_with(b"\xca\xfe\xba\xbf") {
        fat(&src)?
    } else {
        None
    };
    let Some(data) = data else {
        return Ok(None);
    };
    let Some(addr) = search_magic(&src, &data)? else {
        return Ok(None);
    };
    decode(&src, &data, addr).map(Some)
}

/// The address of the 16-byte-aligned magic within the first [`SEARCH_WINDOW`] bytes of
/// the data range, if there.
fn search_magic<F: ReadAt + ?Sized>(src: &Src<F>, data: &Data) -> R<Option<u64>> {
    let Some(end) = data.addr.checked_add(data.size) else {
        return bad(format!(
            "the data section's address range ({:#x} + {:#x} bytes) overflows",
            data.addr, data.size
        ));
    };
    let Some(start) = data.addr.checked_next_multiple_of(16) else {
        return Ok(None);
    };
    if start >= end {
        return Ok(None);
    }
    let Some((_, left)) = data.locate(start) else {
        return Ok(None);
    };
    let n = (end - start).min(SEARCH_WINDOW).min(left);
    let window = data.read(src, start, n, "the data section")?;
    let found = window
        .chunks(16)
        .position(|c| c.starts_with(GO_BUILDINFO_MAGIC));
    let Some(i) = found else {
        return Ok(None);
    };
    let addr = start + 16 * i as u64;
    if end - addr < HEADER_SIZE {
        return bad(format!(
            "the Go build info header at address {addr:#x} is cut short by the end of its \
             section ({} of {HEADER_SIZE} bytes)",
            end - addr
        ));
    }
    Ok(Some(addr))
}

/// Reads the version and module info from the header at `addr`.
fn decode<F: ReadAt + ?Sized>(src: &Src<F>, data: &Data, addr: u64) -> R<BuildInfo> {
    let header = data.read(src, addr, HEADER_SIZE, "the Go build info header")?;
    let (ptr_size, flags) = (header[14], header[15]);
    let (version, module_text) = if flags & 2 != 0 {
        let (version, next) =
            inline_string(src, data, addr + HEADER_SIZE, MAX_VERSION, "Go version")?;
        let (text, _) = inline_string(src, data, next, MAX_MODINFO, "module info")?;
        (version, text)
    } else {
        let wide = match ptr_size {
            4 => false,
            8 => true,
            other => {
                return bad(format!(
                    "the Go build info header (Go 1.17 or older) gives a pointer size of \
                     {other}; expected 4 or 8"
                ));
            }
        };
        let order = Order {
            big: flags & 1 != 0,
        };
        let w = u64::from(ptr_size);
        let version_ptr = order.word(&header, 16, wide);
        let module_ptr = order.word(&header, 16 + ptr_size as usize, wide);
        let version = pointed_string(src, data, order, w, version_ptr, MAX_VERSION, "Go version")?;
        let text = pointed_string(src, data, order, w, module_ptr, MAX_MODINFO, "module info")?;
        (version, text)
    };
    if version.is_empty() {
        return bad("the Go build info header holds an empty Go version");
    }
    let version = String::from_utf8_lossy(&version).into_owned();
    // The module info sits between two 16-byte sentinels, the last after a newline; Go
    // treats anything else as no module info.
    let n = module_text.len();
    let body = if n > 2 * SENTINEL && module_text[n - SENTINEL - 1] == b'\n' {
        &module_text[SENTINEL..n - SENTINEL]
    } else {
        &[][..]
    };
    let text = String::from_utf8_lossy(body);
    let mut info = modinfo::parse(&version, &text).map_err(Fail::Modinfo)?;
    info.go_version = version;
    Ok(info)
}

/// A uvarint-length-prefixed string at `addr` (Go 1.18 and later); also the address just
/// after it.
fn inline_string<F: ReadAt + ?Sized>(
    src: &Src<F>,
    data: &Data,
    addr: u64,
    max: u64,
    what: &str,
) -> R<(Vec<u8>, u64)> {
    let Some((_, left)) = data.locate(addr) else {
        return bad(format!(
            "the {what} length is at address {addr:#x}, which no segment of the file holds"
        ));
    };
    let prefix = data.read(src, addr, left.min(10), &format!("the {what} length"))?;
    let Some((n, used)) = uvarint(&prefix) else {
        return bad(format!(
            "the {what} length at address {addr:#x} is not a valid uvarint (bytes {})",
            hex::encode(&prefix)
        ));
    };
    if n > max {
        return bad(format!(
            "the Go build info claims a {what} of {n} bytes; expected at most {max}"
        ));
    }
    // Saturating: a mapping may claim to reach past the end of the address space.
    let start = addr.saturating_add(used as u64);
    let bytes = data.read(src, start, n, &format!("the {what}"))?;
    Ok((bytes, start.saturating_add(n)))
}

/// The Go string whose header (data pointer, length) is at `addr` (Go 1.17 and older).
fn pointed_string<F: ReadAt + ?Sized>(
    src: &Src<F>,
    data: &Data,
    order: Order,
    ptr_size: u64,
    addr: u64,
    max: u64,
    what: &str,
) -> R<Vec<u8>> {
    let hdr = data.read(
        src,
        addr,
        2 * ptr_size,
        &format!("the {what} string header"),
    )?;
    let wide = ptr_size == 8;
    let ptr = order.word(&hdr, 0, wide);
    let n = order.word(&hdr, ptr_size as usize, wide);
    if n > max {
        return bad(format!(
            "the Go build info claims a {what} of {n} bytes; expected at most {max}"
        ));
    }
    data.read(src, ptr, n, &format!("the {what}"))
}

/// Decodes an unsigned LEB128 varint (Go's `binary.Uvarint`): the value and its length.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A table of `count` entries of `entsize` bytes at `off`, bounded by [`MAX_TABLE`].
fn table<F: ReadAt + ?Sized>(
    src: &Src<F>,
    off: u64,
    count: u64,
    entsize: u64,
    what: &str,
) -> R<Vec<u8>> {
    let size = count.saturating_mul(entsize);
    if size > MAX_TABLE {
        return bad(format!(
            "the {what} ({count} entries of {entsize} bytes) is larger than the \
             {MAX_TABLE}-byte limit"
        ));
    }
    src.bytes(off, size, &format!("the {what}"))
}

// ---------------------------------------------------------------------------- ELF

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const SHT_NOBITS: u32 = 8;

/// An ELF file's header fields rko reads, and its program headers.
struct ElfHead {
    wide: bool,
    o: Order,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
    phdrs: Vec<Phdr>,
}

/// One ELF program header.
struct Phdr {
    p_type: u32,
    flags: u32,
    off: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Reads the ELF identification, header and program header table (bounded).
fn elf_head<F: ReadAt + ?Sized>(src: &Src<F>) -> R<ElfHead> {
    let ident = src.bytes(0, 16.min(src.len), "the ELF identification")?;
    if ident.len() < 16 {
        return bad(format!(
            "the ELF identification is cut short: the file is {} bytes long; expected at least 16",
            src.len
        ));
    }
    let wide = match ident[4] {
        1 => false,
        2 => true,
        c => {
            return bad(format!(
                "unknown ELF class {c}; expected 1 (32-bit) or 2 (64-bit)"
            ));
        }
    };
    let o = match ident[5] {
        1 => Order { big: false },
        2 => Order { big: true },
        d => {
            return bad(format!(
                "unknown ELF data encoding {d}; expected 1 (little endian) or 2 (big endian)"
            ));
        }
    };
    let h = src.bytes(0, if wide { 64 } else { 52 }, "the ELF header")?;
    let (phoff, shoff, at) = if wide {
        (o.u64(&h, 0x20), o.u64(&h, 0x28), 0x36)
    } else {
        (u64::from(o.u32(&h, 0x1c)), u64::from(o.u32(&h, 0x20)), 0x2a)
    };
    let phentsize = u64::from(o.u16(&h, at));
    let phnum = u64::from(o.u16(&h, at + 2));
    let mut phdrs = Vec::new();
    if phnum > 0 {
        let ph_min = if wide { 56 } else { 32 };
        if phentsize < ph_min {
            return bad(format!(
                "the ELF program header size is {phentsize}; expected at least {ph_min}"
            ));
        }
        let t = table(src, phoff, phnum, phentsize, "ELF program header table")?;
        for e in t.chunks_exact(phentsize as usize) {
            let p_type = o.u32(e, 0);
            let (flags, off, vaddr, filesz, memsz) = if wide {
                (
                    o.u32(e, 4),
                    o.u64(e, 8),
                    o.u64(e, 16),
                    o.u64(e, 32),
                    o.u64(e, 40),
                )
            } else {
                let w = |at| u64::from(o.u32(e, at));
                (o.u32(e, 24), w(4), w(8), w(16), w(20))
            };
            phdrs.push(Phdr {
                p_type,
                flags,
                off,
                vaddr,
                filesz,
                memsz,
            });
        }
    }
    Ok(ElfHead {
        wide,
        o,
        shoff,
        shentsize: u64::from(o.u16(&h, at + 4)),
        shnum: u64::from(o.u16(&h, at + 6)),
        shstrndx: u64::from(o.u16(&h, at + 8)),
        phdrs,
    })
}

/// The program interpreter an ELF executable names (`PT_INTERP`, e.g.
/// `/lib64/ld-linux-x86-64.so.2`): it is dynamically linked, and will not start on a base
/// without that loader (the static and scratch bases). None for a static ELF, for a file
/// that is not ELF, and for one whose headers do not read.
pub fn elf_interpreter(path: &Path) -> Option<String> {
    const PT_INTERP: u32 = 3;
    let file = std::fs::File::open(path).ok()?;
    let src = Src {
        f: &file,
        base: 0,
        len: file.metadata().ok()?.len(),
    };
    if !src
        .bytes(0, 4.min(src.len), "")
        .ok()?
        .starts_with(b"\x7fELF")
    {
        return None;
    }
    let head = elf_head(&src).ok()?;
    let p = head.phdrs.iter().find(|p| p.p_type == PT_INTERP)?;
    let name = src.bytes(p.off, p.filesz.min(4096), "").ok()?;
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

fn elf<F: ReadAt + ?Sized>(src: &Src<F>) -> R<Option<Data>> {
    let ElfHead {
        wide,
        o,
        shoff,
        shentsize,
        mut shnum,
        mut shstrndx,
        phdrs,
    } = elf_head(src)?;

    // Program headers: the address space.
    let sh_min = if wide { 64 } else { 40 };
    let mut maps: Vec<Mapping> = phdrs
        .iter()
        .map(|p| Mapping {
            addr: p.vaddr,
            off: p.off,
            size: p.filesz,
        })
        .collect();
    let writable = phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.flags & (PF_X | PF_W) == PF_W)
        .map(|p| (p.vaddr, p.memsz));

    // Section headers: find .go.buildinfo.
    let mut section = None;
    if shoff != 0 {
        if shentsize < sh_min {
            return bad(format!(
                "the ELF section header size is {shentsize}; expected at least {sh_min}"
            ));
        }
        if shnum == 0 || shstrndx == 0xffff {
            // Extended numbering: the counts are in section 0.
            let s0 = src.bytes(shoff, shentsize, "the first ELF section header")?;
            if shnum == 0 {
                shnum = if wide {
                    o.u64(&s0, 32)
                } else {
                    u64::from(o.u32(&s0, 20))
                };
            }
            if shstrndx == 0xffff {
                shstrndx = u64::from(o.u32(&s0, if wide { 40 } else { 24 }));
            }
        }
        let t = table(src, shoff, shnum, shentsize, "ELF section header table")?;
        let sh = |i: usize| {
            let e = &t[i * shentsize as usize..];
            let w = |at32: usize, at64: usize| {
                if wide {
                    o.u64(e, at64)
                } else {
                    u64::from(o.u32(e, at32))
                }
            };
            // name, type, addr, offset, size
            (o.u32(e, 0), o.u32(e, 4), w(12, 16), w(16, 24), w(20, 32))
        };
        if shstrndx < shnum {
            let (_, _, _, str_off, str_size) = sh(shstrndx as usize);
            let names = table(src, str_off, str_size, 1, "ELF section name table")?;
            for i in 0..shnum as usize {
                let (name, kind, addr, off, size) = sh(i);
                let name = names.get(name as usize..).unwrap_or_default();
                if name.starts_with(b".go.buildinfo\0") && kind != SHT_NOBITS {
                    section = Some(Mapping { addr, off, size });
                    break;
                }
            }
        }
    }
    if let Some(s) = section {
        // Read through the program headers as Go does; the section's own offset is the
        // last resort (an object with no program headers).
        maps.push(s);
        return Ok(Some(Data {
            addr: s.addr,
            size: s.size,
            maps,
        }));
    }
    Ok(writable.map(|(addr, size)| Data {
        addr,
        size: size.min(SEARCH_WINDOW),
        maps,
    }))
}

// ---------------------------------------------------------------------------- Mach-O

const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;

fn is_thin_macho(magic: &[u8]) -> bool {
    matches!(
        magic,
        b"\xce\xfa\xed\xfe" | b"\xcf\xfa\xed\xfe" | b"\xfe\xed\xfa\xce" | b"\xfe\xed\xfa\xcf"
    )
}

fn fat<F: ReadAt + ?Sized>(src: &Src<F>) -> R<Option<Data>> {
    let o = Order { big: true };
    let h = src.bytes(0, 8, "the universal Mach-O header")?;
    let wide = h[3] == 0xbf;
    let n = o.u32(&h, 4);
    // Java class files share the magic; their version makes this count 45 or more.
    if n == 0 || n >= 20 {
        return Ok(None);
    }
    let first = src.bytes(
        8,
        if wide { 32 } else { 20 },
        "the first universal Mach-O entry",
    )?;
    let (off, size) = if wide {
        (o.u64(&first, 8), o.u64(&first, 16))
    } else {
        (u64::from(o.u32(&first, 8)), u64::from(o.u32(&first, 12)))
    };
    if off.checked_add(size).is_none_or(|e| e > src.len) {
        return bad(format!(
            "the first architecture of the universal Mach-O file (bytes {off}..{}) lies \
             past its end ({} bytes)",
            off.saturating_add(size),
            src.len
        ));
    }
    let slice = Src {
        f: src.f,
        base: src.base + off,
        len: size,
    };
    let magic = slice.bytes(0, 4.min(size), "the Mach-O header")?;
    if !is_thin_macho(&magic) {
        return bad(format!(
            "the first architecture of the universal Mach-O file (at byte {off}) starts with \
             {}; expected a Mach-O header",
            hex::encode(&magic)
        ));
    }
    // Offsets inside the slice are relative to it: rebase the result.
    Ok(macho(&slice)?.map(|mut d| {
        for m in &mut d.maps {
            m.off = m.off.saturating_add(off);
        }
        d
    }))
}

fn macho<F: ReadAt + ?Sized>(src: &Src<F>) -> R<Option<Data>> {
    let m = src.bytes(0, 4, "the Mach-O magic")?;
    let big = m[0] == 0xfe;
    let wide = if big { m[3] == 0xcf } else { m[0] == 0xcf };
    let o = Order { big };
    let hsize = if wide { 32 } else { 28 };
    let h = src.bytes(0, hsize, "the Mach-O header")?;
    let ncmds = u64::from(o.u32(&h, 16));
    let sizeofcmds = u64::from(o.u32(&h, 20));
    let cmds = table(src, hsize, sizeofcmds, 1, "Mach-O load commands")?;
    let mut maps = Vec::new();
    let mut section = None;
    let mut writable = None;
    let mut at = 0usize;
    for i in 0..ncmds {
        if cmds.len() - at < 8 {
            return bad(format!(
                "Mach-O load command {i} of {ncmds} starts past the {sizeofcmds} bytes of \
                 load commands"
            ));
        }
        let cmd = o.u32(&cmds, at);
        let size = o.u32(&cmds, at + 4) as usize;
        if size < 8 || size > cmds.len() - at {
            return bad(format!(
                "Mach-O load command {i} claims {size} bytes; expected 8 to {} (what is left \
                 of the load commands)",
                cmds.len() - at
            ));
        }
        let c = &cmds[at..at + size];
        at += size;
        let (seg_len, sect_len) = match cmd {
            LC_SEGMENT_64 => (72, 80),
            LC_SEGMENT => (56, 68),
            _ => continue,
        };
        if c.len() < seg_len {
            return bad(format!(
                "Mach-O segment command {i} is {} bytes; expected at least {seg_len}",
                c.len()
            ));
        }
        let w64 = cmd == LC_SEGMENT_64;
        let name = &c[8..24];
        let (vmaddr, vmsize, fileoff, filesize, rest) = if w64 {
            (o.u64(c, 24), o.u64(c, 32), o.u64(c, 40), o.u64(c, 48), 56)
        } else {
            let w = |at| u64::from(o.u32(c, at));
            (w(24), w(28), w(32), w(36), 40)
        };
        let (maxprot, initprot, nsects) = (o.u32(c, rest), o.u32(c, rest + 4), o.u32(c, rest + 8));
        if !name.starts_with(b"__PAGEZERO\0") {
            maps.push(Mapping {
                addr: vmaddr,
                off: fileoff,
                size: filesize,
            });
        }
        if writable.is_none() && vmaddr != 0 && filesize != 0 && maxprot == 3 && initprot == 3 {
            writable = Some((vmaddr, vmsize));
        }
        let sects = &c[seg_len..];
        if (nsects as usize).saturating_mul(sect_len) > sects.len() {
            return bad(format!(
                "Mach-O segment command {i} claims {nsects} sections, which do not fit in its \
                 {} bytes",
                c.len()
            ));
        }
        for s in sects.chunks_exact(sect_len).take(nsects as usize) {
            if section.is_none() && s.starts_with(b"__go_buildinfo") {
                let (addr, size) = if w64 {
                    (o.u64(s, 32), o.u64(s, 40))
                } else {
                    (u64::from(o.u32(s, 32)), u64::from(o.u32(s, 36)))
                };
                section = Some((addr, size));
            }
        }
    }
    Ok(section
        .or(writable.map(|(a, s)| (a, s.min(SEARCH_WINDOW))))
        .map(|(addr, size)| Data { addr, size, maps }))
}

// ---------------------------------------------------------------------------- PE

fn pe<F: ReadAt + ?Sized>(src: &Src<F>) -> R<Option<Data>> {
    let dos = src.bytes(0, 0x40, "the DOS header")?;
    let o = Order { big: false };
    let pe_off = u64::from(o.u32(&dos, 0x3c));
    let Ok(sig) = src.bytes(pe_off, 4, "the PE signature") else {
        return Ok(None); // an MS-DOS program
    };
    if sig != b"PE\0\0" {
        return Ok(None);
    }
    let coff = src.bytes(pe_off + 4, 20, "the COFF header")?;
    let nsections = u64::from(o.u16(&coff, 2));
    let opt_size = u64::from(o.u16(&coff, 16));
    let opt_off = pe_off + 24;
    let image_base = if opt_size >= 2 {
        let opt = src.bytes(opt_off, opt_size.min(32), "the PE optional header")?;
        match (o.u16(&opt, 0), opt.len()) {
            (0x10b, 32) => u64::from(o.u32(&opt, 28)),
            (0x20b, 32) => o.u64(&opt, 24),
            _ => 0,
        }
    } else {
        0
    };
    let t = table(src, opt_off + opt_size, nsections, 40, "PE section table")?;
    let mut maps = Vec::new();
    let mut data = None;
    for s in t.chunks_exact(40) {
        let (vsize, va, raw_size, raw_off, chars) = (
            o.u32(s, 8),
            o.u32(s, 12),
            o.u32(s, 16),
            o.u32(s, 20),
            o.u32(s, 36),
        );
        let addr = u64::from(va).wrapping_add(image_base);
        maps.push(Mapping {
            addr,
            off: u64::from(raw_off),
            size: u64::from(raw_size),
        });
        // The first initialized, readable, writable data section (alignment bits aside).
        const DATA_RW: u32 = 0x0000_0040 | 0x4000_0000 | 0x8000_0000;
        if data.is_none() && va != 0 && raw_size != 0 && chars & !0x0060_0000 == DATA_RW {
            data = Some((addr, u64::from(vsize)));
        }
    }
    Ok(data.map(|(addr, size)| Data { addr, size, maps }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian file with one program header (`p_type`) whose
    /// segment is `seg`.
    fn elf_with_phdr(p_type: u32, seg: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let off = f.len() as u64;
        f[64..68].copy_from_slice(&p_type.to_le_bytes());
        f[64 + 8..64 + 16].copy_from_slice(&off.to_le_bytes()); // p_offset
        f[64 + 32..64 + 40].copy_from_slice(&(seg.len() as u64).to_le_bytes()); // p_filesz
        f.extend_from_slice(seg);
        f
    }

    #[test]
    fn elf_interpreter_names_a_dynamic_programs_loader() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("dynamic");
        std::fs::write(&dynamic, elf_with_phdr(3, b"/lib64/ld-linux-x86-64.so.2\0")).unwrap();
        assert_eq!(
            elf_interpreter(&dynamic).as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        // PT_LOAD only: static. Not ELF, or cut short: none.
        let stat = dir.path().join("static");
        std::fs::write(&stat, elf_with_phdr(1, b"x")).unwrap();
        assert_eq!(elf_interpreter(&stat), None);
        let text = dir.path().join("text");
        std::fs::write(&text, "#!/bin/sh\n").unwrap();
        assert_eq!(elf_interpreter(&text), None);
        let cut = dir.path().join("cut");
        std::fs::write(&cut, &elf_with_phdr(3, b"/lib/ld.so\0")[..80]).unwrap();
        assert_eq!(elf_interpreter(&cut), None);
    }

    /// A 64-bit little-endian ELF with one PT_LOAD and a `.go.buildinfo` section holding
    /// `block`, at file offset 0x200 and address 0x10200.
    pub(crate) fn tiny_elf(block: &[u8], with_sections: bool) -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16] = 2; // ET_EXEC
        f[18] = 62;
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        f[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        // PT_LOAD RW covering the block.
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        f[ph + 4..ph + 8].copy_from_slice(&6u32.to_le_bytes());
        f[ph + 8..ph + 16].copy_from_slice(&0x200u64.to_le_bytes());
        f[ph + 16..ph + 24].copy_from_slice(&0x10200u64.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&(block.len() as u64).to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&(block.len() as u64).to_le_bytes());
        f.extend_from_slice(block);
        if with_sections {
            let names = b"\0.go.buildinfo\0.shstrtab\0";
            let names_off = f.len() as u64;
            f.extend_from_slice(names);
            while !f.len().is_multiple_of(8) {
                f.push(0);
            }
            let shoff = f.len() as u64;
            let mut sh = |name: u32, kind: u32, addr: u64, off: u64, size: u64| {
                let mut e = [0u8; 64];
                e[0..4].copy_from_slice(&name.to_le_bytes());
                e[4..8].copy_from_slice(&kind.to_le_bytes());
                e[16..24].copy_from_slice(&addr.to_le_bytes());
                e[24..32].copy_from_slice(&off.to_le_bytes());
                e[32..40].copy_from_slice(&size.to_le_bytes());
                f.extend_from_slice(&e);
            };
            sh(0, 0, 0, 0, 0);
            sh(1, 1, 0x10200, 0x200, block.len() as u64);
            sh(15, 3, 0, names_off, names.len() as u64);
            f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
            f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
            f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        }
        f
    }

    /// A Go 1.18+ build info block with `version` and module text `text` (framed by
    /// sentinels).
    pub(crate) fn block(version: &str, text: &str) -> Vec<u8> {
        let mut b = GO_BUILDINFO_MAGIC.to_vec();
        b.extend_from_slice(&[8, 2]);
        b.resize(32, 0);
        let mut put = |s: &[u8]| {
            let mut n = s.len() as u64;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        };
        put(version.as_bytes());
        let framed = format!("{}{text}{}", "0".repeat(16), "1".repeat(16));
        put(if text.is_empty() {
            b""
        } else {
            framed.as_bytes()
        });
        b
    }

    const TEXT: &str = "path\texample.com/x\nmod\texample.com/x\t(devel)\t\nbuild\tGOOS=linux\n";

    #[test]
    fn reads_section_and_segment() {
        for with_sections in [true, false] {
            let f = tiny_elf(&block("go1.26.0", TEXT), with_sections);
            let bi = read_bytes(&f).unwrap().unwrap();
            assert_eq!(bi.go_version, "go1.26.0");
            assert_eq!(bi.path, "example.com/x");
            assert_eq!(bi.setting("GOOS"), Some("linux"));
        }
    }

    #[test]
    fn no_module_text_without_sentinels() {
        let f = tiny_elf(&block("go1.26.0", ""), true);
        let bi = read_bytes(&f).unwrap().unwrap();
        assert_eq!((bi.go_version.as_str(), bi.path.as_str()), ("go1.26.0", ""));
    }

    #[test]
    fn old_pointer_format() {
        // Header with two pointers to string headers, then the headers, then the bytes.
        let base = 0x10200u64;
        let text = format!("{}{TEXT}{}", "0".repeat(16), "1".repeat(16));
        let mut b = GO_BUILDINFO_MAGIC.to_vec();
        b.extend_from_slice(&[8, 0]);
        b.extend_from_slice(&(base + 32).to_le_bytes());
        b.extend_from_slice(&(base + 48).to_le_bytes());
        b.extend_from_slice(&(base + 64).to_le_bytes());
        b.extend_from_slice(&6u64.to_le_bytes());
        b.extend_from_slice(&(base + 70).to_le_bytes());
        b.extend_from_slice(&(text.len() as u64).to_le_bytes());
        b.extend_from_slice(b"go1.17");
        b.extend_from_slice(text.as_bytes());
        let bi = read_bytes(&tiny_elf(&b, true)).unwrap().unwrap();
        assert_eq!(bi.go_version, "go1.17");
        assert_eq!(bi.main.unwrap().version, "(devel)");
    }

    #[test]
    fn corrupt_lengths_are_errors() {
        let mut b = block("go1.26.0", TEXT);
        b[32] = 0xff; // version length: a long uvarint
        b[33] = 0xff;
        b[34] = 0x7f;
        let e = read_bytes(&tiny_elf(&b, true)).unwrap_err().to_string();
        assert!(e.contains("Go version of") && e.contains("at most"), "{e}");
        let mut b = block("go1.26.0", TEXT);
        b[32 + 1 + 8] = 0x7f; // module info longer than what follows
        let e = read_bytes(&tiny_elf(&b, true)).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
        let f = tiny_elf(&block("go1.26.0", TEXT), true);
        for cut in [10, 40, 100, 0x210, f.len() - 10] {
            let e = read_bytes(&f[..cut]).unwrap_err().to_string();
            assert!(
                e.contains("past its end") || e.contains("cut short"),
                "{cut}: {e}"
            );
        }
    }

    #[test]
    fn not_executables() {
        assert!(read_bytes(b"").unwrap().is_none());
        assert!(read_bytes(b"#!/bin/sh\n").unwrap().is_none());
        let mut no_magic = block("go1.26.0", TEXT);
        no_magic[0] = 0;
        assert!(read_bytes(&tiny_elf(&no_magic, true)).unwrap().is_none());
    }

    #[test]
    fn uvarint_as_go() {
        assert_eq!(uvarint(&[0x05]), Some((5, 1)));
        assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 10]), None);
    }
}

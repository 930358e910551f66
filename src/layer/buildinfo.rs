//! What kind of executable a file is, read from its own bytes: the container format (ELF,
//! Mach-O, PE), the CPU it is for, and whether it carries Go build info (the
//! `\xff Go buildinf:` block the Go linker writes at a 16-byte boundary).

/// The container format of an executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Elf,
    MachO,
    Pe,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Elf => "ELF",
            Format::MachO => "Mach-O",
            Format::Pe => "PE",
        })
    }
}

impl Format {
    /// The format's name with its article, for a message: "an ELF", "a PE".
    pub fn with_article(self) -> &'static str {
        match self {
            Format::Elf => "an ELF",
            Format::MachO => "a Mach-O",
            Format::Pe => "a PE",
        }
    }

    pub fn os_hint(self) -> &'static str {
        match self {
            Format::Elf => "linux",
            Format::MachO => "darwin",
            Format::Pe => "windows",
        }
    }
}

/// What the first bytes of a file say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutableKind {
    pub format: Format,
    /// GOARCH spelling of the machine, when known.
    pub arch: Option<&'static str>,
}

/// The Go build info magic.
pub use crate::buildinfo::exe::GO_BUILDINFO_MAGIC;

/// Reads the executable header from the first bytes of a file (pass at least 512 bytes
/// where the file has them). `None` when it is not an ELF, Mach-O or PE executable.
pub fn sniff(head: &[u8]) -> Option<ExecutableKind> {
    let (format, arch) = elf(head).or_else(|| macho(head)).or_else(|| pe(head))?;
    Some(ExecutableKind { format, arch })
}

fn elf(head: &[u8]) -> Option<(Format, Option<&'static str>)> {
    if head.len() < 20 || !head.starts_with(b"\x7fELF") {
        return None;
    }
    let little = head[5] == 1;
    let machine = if little {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    };
    let class64 = head[4] == 2;
    let arch = match machine {
        3 => Some("386"),
        62 => Some("amd64"),
        40 => Some("arm"),
        183 => Some("arm64"),
        21 if little => Some("ppc64le"),
        21 => Some("ppc64"),
        22 => Some("s390x"),
        243 if class64 => Some("riscv64"),
        8 if class64 && little => Some("mips64le"),
        8 if class64 => Some("mips64"),
        8 if little => Some("mipsle"),
        8 => Some("mips"),
        258 => Some("loong64"),
        _ => None,
    };
    Some((Format::Elf, arch))
}

fn macho(head: &[u8]) -> Option<(Format, Option<&'static str>)> {
    if head.len() < 8 {
        return None;
    }
    let word = |i: usize| [head[i], head[i + 1], head[i + 2], head[i + 3]];
    let (le, be) = (u32::from_le_bytes(word(0)), u32::from_be_bytes(word(0)));
    let (cpu_le, cpu_be) = (u32::from_le_bytes(word(4)), u32::from_be_bytes(word(4)));
    let arch = |cpu: u32| match cpu {
        0x0100_0007 => Some("amd64"),
        0x0100_000c => Some("arm64"),
        7 => Some("386"),
        12 => Some("arm"),
        _ => None,
    };
    match (le, be) {
        (0xfeed_facf, _) | (0xfeed_face, _) => Some((Format::MachO, arch(cpu_le))),
        (_, 0xfeed_facf) | (_, 0xfeed_face) => Some((Format::MachO, arch(cpu_be))),
        // A universal (fat) binary: several architectures, none in particular.
        (_, 0xcafe_babe) if cpu_be < 20 => Some((Format::MachO, None)),
        _ => None,
    }
}

fn pe(head: &[u8]) -> Option<(Format, Option<&'static str>)> {
    if head.len() < 0x40 || !head.starts_with(b"MZ") {
        return None;
    }
    let pe_off = u32::from_le_bytes([head[0x3c], head[0x3d], head[0x3e], head[0x3f]]) as usize;
    if head.len() < pe_off + 6 || &head[pe_off..pe_off + 4] != b"PE\0\0" {
        return Some((Format::Pe, None));
    }
    let arch = match u16::from_le_bytes([head[pe_off + 4], head[pe_off + 5]]) {
        0x8664 => Some("amd64"),
        0x14c => Some("386"),
        0xaa64 => Some("arm64"),
        0x1c4 => Some("arm"),
        _ => None,
    };
    Some((Format::Pe, arch))
}

/// Finds Go's build info magic at a 16-byte boundary of a file read in pieces: feed it every
/// piece in order. Pieces must be multiples of 16 bytes long, but for the last.
#[derive(Default)]
pub struct GoMagicScanner {
    offset: u64,
    found: bool,
}

impl GoMagicScanner {
    pub fn feed(&mut self, piece: &[u8]) {
        if !self.found {
            debug_assert!(self.offset.is_multiple_of(16));
            self.found = piece
                .chunks(16)
                .any(|c| c.len() >= GO_BUILDINFO_MAGIC.len() && c.starts_with(GO_BUILDINFO_MAGIC));
        }
        self.offset += piece.len() as u64;
    }

    pub fn found(&self) -> bool {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_elf_machine() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 183;
        assert_eq!(
            sniff(&h),
            Some(ExecutableKind {
                format: Format::Elf,
                arch: Some("arm64")
            })
        );
    }

    #[test]
    fn text_is_not_an_executable() {
        assert_eq!(sniff(b"#!/bin/sh\necho hi\n"), None);
    }

    #[test]
    fn magic_found_only_aligned() {
        let mut data = [0u8; 64];
        data[32..46].copy_from_slice(GO_BUILDINFO_MAGIC);
        let mut s = GoMagicScanner::default();
        s.feed(&data[..32]);
        s.feed(&data[32..]);
        assert!(s.found());
        let mut data = vec![0u8; 64];
        data[33..47].copy_from_slice(GO_BUILDINFO_MAGIC);
        let mut s = GoMagicScanner::default();
        s.feed(&data);
        assert!(!s.found());
    }
}

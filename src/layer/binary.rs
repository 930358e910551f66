//! The binary layer: `ko-app/` then `/ko-app/<name>`, both mode 0555, exactly as ko's
//! `tarBinary` writes them, streamed from the file in one pass. For a windows/* platform,
//! ko's Windows layer instead: `Hives`, `Files`, `Files/ko-app`, then
//! `Files/ko-app/<name>` with the `MSWINDOWS.rawsd` record.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::importpath;
use crate::layer::buildinfo::{self, GoMagicScanner};
use crate::layer::caps::{self, FileCaps};
use crate::layer::compress::{Compression, LayerSink};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::layer::{LayerContent, LayerDescriptor};
use crate::oci::Platform;

/// Where ko puts the binary.
pub const APP_DIR: &str = "/ko-app";

/// Delve's file name in ko's debug image.
pub const DELVE_NAME: &str = "dlv";

/// The PAX record ko gives every file of a Windows layer: a self-relative security
/// descriptor, base64, whose owner and group are BUILTIN\\Users (SDDL `O:BUG:BU`), without
/// which Windows will not run the file.
pub const WINDOWS_SD_KEY: &str = "MSWINDOWS.rawsd";
pub const WINDOWS_SD: &str =
    "AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA==";
/// Where a Windows layer's files go: the container's `C:\` is this directory of the layer,
/// beside an empty `Hives` (registry hives).
pub const WINDOWS_FILES: &str = "Files";

/// ko's layers differ for a windows/* platform; for every other OS they are Linux's.
pub fn is_windows(platform: &Platform) -> bool {
    platform.os == "windows"
}

/// Whether ko's debug image takes Delve on `platform` (ko: Delve's linux/amd64 and
/// linux/arm64; other platforms are built without it).
pub fn debuggable(platform: &Platform) -> bool {
    platform.os == "linux" && matches!(platform.architecture.as_str(), "amd64" | "arm64")
}

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "cannot read the Go binary {path}: {source}; expected a readable executable file (check the path)"
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is a directory; expected the Go binary file itself")]
    IsDirectory { path: PathBuf },
    #[error(
        "{path} is not an executable: expected an ELF, Mach-O or PE file, found {found}; pass the output of `go build`"
    )]
    NotExecutable { path: PathBuf, found: String },
    #[error(
        "{path} is an executable ({format}) for {found}, but the image platform is {platform}; build the binary for {expected} (GOARCH={expected}) or change --platform"
    )]
    WrongArch {
        path: PathBuf,
        format: buildinfo::Format,
        found: &'static str,
        expected: String,
        platform: String,
    },
    #[error(
        "the image platform is {platform}, but rko makes linux and windows images only (as ko \
         does); build for linux or windows (GOOS) and use a linux/... or windows/... platform"
    )]
    UnsupportedOs { platform: String },
    #[error(
        "--delve: ko's debug image carries Delve on linux/amd64 and linux/arm64 only, and the \
         platform is {platform}; build this platform's image without the Delve layer"
    )]
    DelvePlatform { platform: String },
    #[error(
        "{path} is {} executable (for {os}), but the image platform is {platform}; \
         build the binary with GOOS={wanted} ({} file)",
        format.with_article(),
        wanted_format.with_article()
    )]
    WrongOs {
        path: PathBuf,
        format: buildinfo::Format,
        os: &'static str,
        platform: String,
        wanted: String,
        wanted_format: buildinfo::Format,
    },
    #[error(
        "{path} has no Go build info: it does not look like a Go binary (built by `go build`); pass --allow-non-go to put it in the image anyway"
    )]
    NotGo { path: PathBuf },
    #[error(
        "{path} changed while it was being read: expected {expected} bytes, read {found}; rebuild and try again"
    )]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("writing the layer")]
    Write(#[source] std::io::Error),
}

/// ko's `appFilename`: the last element of the import path, or `ko-app` when there is none.
pub fn app_filename(import_path: &str) -> String {
    match import_path.trim_end_matches('/').rsplit('/').next() {
        None | Some("") | Some(".") => "ko-app".to_string(),
        Some(base) => base.to_string(),
    }
}

/// What to build the binary layer from.
pub struct BinaryLayer<'a> {
    pub binary: &'a Path,
    pub import_path: &'a str,
    /// Overrides the file name under /ko-app (ko's is the import path's last element).
    pub name: Option<&'a str>,
    pub platform: &'a Platform,
    pub allow_non_go: bool,
    /// File capabilities for the binary (ko's `linux_capabilities`); None: no attribute.
    pub capabilities: Option<FileCaps>,
    /// The binary is Delve, for a debug image: at /ko-app/dlv (ko's layer for it has the
    /// binary layer's shape, capabilities included).
    pub delve: bool,
    pub compression: &'a Compression,
    pub threads: usize,
}

impl BinaryLayer<'_> {
    /// The path of the binary in the image.
    pub fn app_path(&self) -> Result<String, importpath::ImportPathError> {
        let name = match self.name {
            None if self.delve => DELVE_NAME.to_string(),
            Some(n) => {
                importpath::check_file_name(n)?;
                n.to_string()
            }
            None => app_filename(self.import_path),
        };
        Ok(format!("{APP_DIR}/{name}"))
    }

    /// Streams the layer into `out` and returns its descriptor.
    pub fn write(&self, out: impl Write) -> anyhow::Result<LayerDescriptor> {
        importpath::check(self.import_path)?;
        let app_path = self.app_path()?;
        let (mut file, size, mut buf, filled) = self.open_checked()?;
        let mut sink =
            LayerSink::new(out, self.compression, self.threads).map_err(BinaryError::Write)?;
        let windows = is_windows(self.platform);
        let (dirs, entry_path): (&[&str], String) = match windows {
            false => (&["ko-app"], app_path.clone()),
            true => (
                &["Hives", WINDOWS_FILES, "Files/ko-app"],
                format!("{WINDOWS_FILES}{app_path}"),
            ),
        };
        for d in dirs {
            let dir = Entry::new(d, EntryKind::Dir, 0o555, 0, 0);
            tar::write_header(&mut sink, &dir).map_err(BinaryError::Write)?;
        }
        // ko sets capabilities on Linux only; a Windows file gets its security descriptor.
        let xattr = self.capabilities.filter(|_| !windows).map(|c| c.xattr());
        let mut pax: Vec<(&str, &[u8])> = xattr.iter().map(|x| (caps::PAX_KEY, &x[..])).collect();
        if windows {
            pax.push((WINDOWS_SD_KEY, WINDOWS_SD.as_bytes()));
        }
        let file_entry = Entry {
            pax: &pax,
            ..Entry::new(&entry_path, EntryKind::File, 0o555, size, 0)
        };
        tar::write_header(&mut sink, &file_entry).map_err(BinaryError::Write)?;
        self.copy_content(&mut file, size, &mut buf, filled, &mut sink)?;
        tar::write_padding(&mut sink, size).map_err(BinaryError::Write)?;
        sink.write_all(&tar::TRAILER).map_err(BinaryError::Write)?;
        let (w, _) = sink.finish().map_err(BinaryError::Write)?;
        Ok(LayerDescriptor::written(
            w,
            self.compression,
            match self.delve {
                true => LayerContent::Delve { path: app_path },
                false => LayerContent::Binary {
                    import_path: self.import_path.to_string(),
                    path: app_path,
                    windows,
                },
            },
        ))
    }

    /// Opens the binary and reads its first piece, before anything is written, to check
    /// that it is an executable for the platform. Returns the file, its size, the buffer
    /// and how much of it is filled.
    fn open_checked(&self) -> Result<(std::fs::File, u64, Vec<u8>, usize), BinaryError> {
        let path = self.binary;
        if self.delve && !debuggable(self.platform) {
            return Err(BinaryError::DelvePlatform {
                platform: self.platform.to_string(),
            });
        }
        let wanted_format = match self.platform.os.as_str() {
            "linux" => buildinfo::Format::Elf,
            "windows" => buildinfo::Format::Pe,
            _ => {
                return Err(BinaryError::UnsupportedOs {
                    platform: self.platform.to_string(),
                });
            }
        };
        let unreadable = |source| BinaryError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if meta.is_dir() {
            return Err(BinaryError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let mut buf = vec![0u8; 1 << 20];
        let filled = fill(&mut file, &mut buf).map_err(unreadable)?;
        let Some(kind) = buildinfo::sniff(&buf[..filled]) else {
            return Err(BinaryError::NotExecutable {
                path: path.to_path_buf(),
                found: describe(&buf[..filled]),
            });
        };
        if kind.format != wanted_format {
            return Err(BinaryError::WrongOs {
                path: path.to_path_buf(),
                format: kind.format,
                os: kind.format.os_hint(),
                platform: self.platform.to_string(),
                wanted: self.platform.os.clone(),
                wanted_format,
            });
        }
        if let Some(found) = kind.arch
            && found != self.platform.architecture
        {
            return Err(BinaryError::WrongArch {
                path: path.to_path_buf(),
                format: kind.format,
                found,
                expected: self.platform.architecture.clone(),
                platform: self.platform.to_string(),
            });
        }
        Ok((file, meta.len(), buf, filled))
    }

    /// Copies the binary into the tar, looking for Go's build info on the way; the first
    /// `filled` bytes are already in `buf`.
    fn copy_content(
        &self,
        file: &mut std::fs::File,
        size: u64,
        buf: &mut [u8],
        mut filled: usize,
        sink: &mut impl Write,
    ) -> Result<(), BinaryError> {
        let path = self.binary;
        let mut scanner = GoMagicScanner::default();
        let mut total = 0u64;
        while filled > 0 {
            let piece = &buf[..filled];
            scanner.feed(piece);
            total += filled as u64;
            if total > size {
                break;
            }
            sink.write_all(piece).map_err(BinaryError::Write)?;
            filled = fill(file, buf).map_err(|source| BinaryError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if total != size {
            return Err(BinaryError::Changed {
                path: path.to_path_buf(),
                expected: size,
                found: total,
            });
        }
        if !scanner.found() && !self.allow_non_go {
            return Err(BinaryError::NotGo {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }
}

/// The platform a binary is for: its OS (linux for ELF) and its own architecture. A file
/// that is no known executable gets linux/amd64, and the layer then says what the file is.
pub fn platform_of(binary: &Path) -> Result<Platform, BinaryError> {
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(binary)
        .and_then(|mut f| fill(&mut f, &mut head))
        .map_err(|source| BinaryError::Unreadable {
            path: binary.to_path_buf(),
            source,
        })?;
    Ok(match buildinfo::sniff(&head[..n]) {
        Some(buildinfo::ExecutableKind {
            format,
            arch: Some(arch),
        }) => Platform::new(format.os_hint(), arch),
        _ => Platform::new("linux", "amd64"),
    })
}

/// Reads until `buf` is full or the file ends, so every piece but the last is full length.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A short description of what a non-executable file looks like.
fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "an empty file".to_string();
    }
    if head.starts_with(b"#!") {
        return "a script (starts with #!)".to_string();
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return "gzip data".to_string();
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return "a tar archive".to_string();
    }
    let printable = head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let first: String = head
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    if printable {
        format!("text (first bytes {first})")
    } else {
        format!("unknown data (first bytes {first})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_filename_as_ko() {
        assert_eq!(app_filename("github.com/foo/bar/cmd/app"), "app");
        assert_eq!(app_filename("app"), "app");
        assert_eq!(app_filename("example.com/x/"), "x");
        assert_eq!(app_filename("."), "ko-app");
    }
}

//! The input of `rko resolve`: the files given with `-f` (directories walked, `-` for
//! stdin) joined into one YAML stream, and positions in that stream mapped back to a file,
//! line and column.
//!
//! The joining rule. Files are taken in the order given; a directory stands for its `.yaml`
//! and `.yml` files (case-sensitive, as ko), found recursively (following symlinks) and
//! sorted by path. Between two consecutive files rko inserts a separator, and nothing else
//! changes:
//! - if the earlier file is not empty and does not end with `\n`, a line ending first, so
//!   that the separator starts a line;
//! - if the later file starts with a byte order mark, that mark (moved from the file's
//!   start: YAML allows it before `---`, not inside a document);
//! - then the line `---`, or `...` if the later file starts with a directive (`%YAML`,
//!   `%TAG`: its first line that is not blank or a comment starts with `%`), since
//!   directives may follow only a document end marker.
//!
//! Every line ending inserted is the earlier file's: `\r\n` if its first line ends so, `\n`
//! otherwise (and for a file with no line break). Nothing is added before the first file or
//! after the last. An empty file still gets its separators, so it reads as an empty (null)
//! document.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const BOM: char = '\u{feff}';

/// One input file's text and where it sits in the stream.
struct Part {
    /// The file as named in messages (`<stdin>` for `-`).
    name: String,
    /// The byte offset of the file's first line in the stream (after its BOM, which is
    /// not counted in its columns).
    start: usize,
    /// The byte offset just past the file's last byte in the stream.
    end: usize,
}

/// The input files joined into one YAML stream.
#[derive(Default)]
pub struct Stream {
    pub text: String,
    parts: Vec<Part>,
}

/// A position in an input file, for messages: `FILE:LINE:COLUMN`, both 1-based, the column
/// counted in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Set when the position is at a separator rko inserted (after `file`'s end).
    pub at_separator: bool,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)?;
        if self.at_separator {
            write!(
                f,
                " (the end of the file, at the separator rko puts after it)"
            )?;
        }
        Ok(())
    }
}

/// The files `-f` names, in stream order: a directory's YAML files sorted by path; `-` as
/// itself (stdin).
pub fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" || !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let walk = walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.with_context(|| format!("reading directory {}", input.display()))?;
            let yaml = matches!(
                entry.path().extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if yaml && entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
    }
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!(
            "`-f -` is given more than once; expected stdin (`-`) at most once, as it can be read only once"
        );
    }
    Ok(files)
}

fn read_input(file: &Path) -> Result<(String, Vec<u8>)> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin (`-f -`)")?;
        return Ok(("<stdin>".to_string(), bytes));
    }
    let bytes = fs_err::read(file)?;
    Ok((file.display().to_string(), bytes))
}

/// Whether a file starts with a directive: its first line that is not blank or a comment
/// starts with `%`.
fn starts_with_directive(text: &str) -> bool {
    text.lines()
        .map(|l| l.trim_start_matches([' ', '\t', '\r']))
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('%'))
}

/// The line ending a file uses: that of its first line.
fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

impl Stream {
    /// Reads `files` (from [`list_inputs`]) and joins them by the rule above.
    pub fn read(files: &[PathBuf]) -> Result<Stream> {
        let mut stream = Stream::default();
        for file in files {
            let (name, bytes) = read_input(file)?;
            let text = String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{name} is not UTF-8 text (invalid byte at offset {}); expected YAML in UTF-8; convert the file to UTF-8",
                    e.utf8_error().valid_up_to()
                )
            })?;
            stream.push(name, &text);
        }
        Ok(stream)
    }

    /// Appends a file's text, after a separator unless it is the first.
    pub fn push(&mut self, name: String, text: &str) {
        let bom = text.starts_with(BOM);
        if let Some(prev) = self.parts.last() {
            let before = &self.text[prev.start..];
            let eol = line_ending(before);
            if !before.is_empty() && !before.ends_with('\n') {
                self.text.push_str(eol);
            }
            if bom {
                self.text.push(BOM);
            }
            let marker = if starts_with_directive(text.strip_prefix(BOM).unwrap_or(text)) {
                "..."
            } else {
                "---"
            };
            self.text.push_str(marker);
            self.text.push_str(eol);
        } else if bom {
            self.text.push(BOM);
        }
        let start = self.text.len();
        self.text.push_str(text.strip_prefix(BOM).unwrap_or(text));
        self.parts.push(Part {
            name,
            start,
            end: self.text.len(),
        });
    }

    /// The file, line and column of the stream's byte `offset`. An offset in a separator
    /// is reported at the end of the file before it.
    pub fn position(&self, offset: usize) -> Position {
        let i = self.parts.partition_point(|p| p.start <= offset).max(1) - 1;
        let Some(part) = self.parts.get(i) else {
            return Position {
                file: "<empty input>".to_string(),
                line: 1,
                column: 1,
                at_separator: false,
            };
        };
        let at_separator = offset > part.end || (offset == part.end && i + 1 < self.parts.len());
        let before = &self.text[part.start..offset.min(part.end)];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        Position {
            file: part.name.clone(),
            line: 1 + before.matches('\n').count(),
            column: 1 + before[line_start..].trim_end_matches('\r').chars().count(),
            at_separator,
        }
    }
}

/// Maps the character indexes the YAML parser reports to byte offsets in a text, walking
/// forward from the last one asked (the parser reports them mostly in order).
pub struct CharIndex<'a> {
    text: &'a str,
    chars: usize,
    bytes: usize,
}

impl<'a> CharIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        CharIndex {
            text,
            chars: 0,
            bytes: 0,
        }
    }

    /// The byte offset of character `index` (the text's length past its end).
    pub fn byte(&mut self, index: usize) -> usize {
        if index < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        for c in self.text[self.bytes..].chars() {
            if self.chars == index {
                break;
            }
            self.chars += 1;
            self.bytes += c.len_utf8();
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(files: &[&str]) -> String {
        let mut s = Stream {
            text: String::new(),
            parts: Vec::new(),
        };
        for (i, f) in files.iter().enumerate() {
            s.push(format!("f{i}"), f);
        }
        s.text
    }

    #[test]
    fn separators_follow_the_earlier_file() {
        assert_eq!(joined(&["a: 1\n", "b: 2\n"]), "a: 1\n---\nb: 2\n");
        assert_eq!(joined(&["a: 1", "b: 2"]), "a: 1\n---\nb: 2");
        assert_eq!(
            joined(&["a: 1\r\nc: 3", "b: 2\n"]),
            "a: 1\r\nc: 3\r\n---\r\nb: 2\n"
        );
        assert_eq!(joined(&["", "b"]), "---\nb");
        assert_eq!(joined(&["a\n", "\u{feff}b\n"]), "a\n\u{feff}---\nb\n");
        assert_eq!(joined(&["\u{feff}a\n"]), "\u{feff}a\n");
        let directive = "# c\n\n%YAML 1.2\n---\nb\n";
        assert_eq!(joined(&["a", directive]), format!("a\n...\n{directive}"));
    }

    #[test]
    fn positions_are_per_file() {
        let mut s = Stream {
            text: String::new(),
            parts: Vec::new(),
        };
        s.push("one".into(), "a: 1\r\nbé: 2");
        s.push("two".into(), "\u{feff}x:\n  y: z\n");
        let at = |needle: &str| s.position(s.text.find(needle).unwrap()).to_string();
        assert_eq!(at("a:"), "one:1:1");
        assert_eq!(at(": 2"), "one:2:3");
        assert_eq!(at("y:"), "two:2:3");
        assert_eq!(
            at("---"),
            "one:2:6 (the end of the file, at the separator rko puts after it)"
        );
        let mut ci = CharIndex::new("aé\u{feff}b");
        assert_eq!((ci.byte(3), ci.byte(1), ci.byte(9)), (6, 1, 7));
    }
}

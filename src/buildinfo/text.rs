//! Build info printed as `go version -m FILE` prints it: the `FILE: goVERSION` line, then
//! `runtime/debug.BuildInfo.String()`'s lines, each after a tab, with `build` keys and
//! values quoted by Go's `strconv.Quote` where they hold characters that would break the
//! line format. That quoting is current Go's (Debian's Go 1.19.8 has it too); rko prints
//! it whichever Go built the binary.

use std::fmt::Write;

use crate::buildinfo::{BuildInfo, Module};

/// The whole output of `go version -m name` for `info`, ending in a newline.
pub fn go_version_m(name: &str, info: &BuildInfo) -> String {
    let mut out = format!("{name}: {}\n", info.go_version);
    for line in module_lines(info) {
        out.push('\t');
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The lines of `BuildInfo.String()` without its `go` line.
fn module_lines(info: &BuildInfo) -> Vec<String> {
    let mut lines = Vec::new();
    if !info.path.is_empty() {
        lines.push(format!("path\t{}", info.path));
    }
    fn module(lines: &mut Vec<String>, word: &str, m: &Module) {
        match &m.replace {
            None => lines.push(format!("{word}\t{}\t{}\t{}", m.path, m.version, m.sum)),
            Some(r) => {
                lines.push(format!("{word}\t{}\t{}", m.path, m.version));
                module(lines, "=>", r);
                // Go's BuildInfo.String() ends the `=>` line twice, so `go version -m`
                // prints an empty line (a lone tab) after each replacement.
                lines.push(String::new());
            }
        }
    }
    if let Some(m) = info.main.as_ref().filter(|m| **m != Module::default()) {
        module(&mut lines, "mod", m);
    }
    for d in &info.deps {
        module(&mut lines, "dep", d);
    }
    for s in &info.settings {
        let key = if s.key.is_empty() || s.key.contains(['=', ' ', '\t', '\r', '\n', '"', '`']) {
            go_quote(&s.key)
        } else {
            s.key.clone()
        };
        let value = if s.value.contains([' ', '\t', '\r', '\n', '"', '`']) {
            go_quote(&s.value)
        } else {
            s.value.clone()
        };
        lines.push(format!("build\t{key}={value}"));
    }
    lines
}

/// Go's `strconv.Quote`: a double-quoted literal with Go escapes. Which non-ASCII
/// characters Go prints as they are (`unicode.IsPrint`) is approximated: controls,
/// spaces other than U+0020, format characters, private-use characters and
/// non-characters are escaped, everything else is printed.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` for non-ASCII characters.
fn is_print(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e)
        || matches!(u, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff)
        || matches!(u, 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..)
        || u & 0xfffe == 0xfffe
        || (0xfdd0..=0xfdef).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildinfo::modinfo;

    #[test]
    fn quote_as_go() {
        assert_eq!(go_quote("-s -w"), r#""-s -w""#);
        assert_eq!(go_quote("a\"b`c\\"), r#""a\"b`c\\""#);
        assert_eq!(go_quote("\t\n\r\x01\x7f"), r#""\t\n\r\x01\x7f""#);
        assert_eq!(go_quote("é\u{a0}\u{200b}😀"), "\"é\\u00a0\\u200b😀\"");
    }

    #[test]
    fn prints_every_line_kind() {
        let text = "path\tex.com/a\nmod\tex.com/a\t(devel)\t\ndep\tex.com/b\tv1.0.0\th1:x=\n\
                    dep\tex.com/c\tv0.0.0\n=>\t../c\t\t\nbuild\t-ldflags=\"-X a=b c\"\nbuild\tGOOS=linux\n";
        let bi = modinfo::parse("go1.26.0", text).unwrap();
        assert_eq!(
            go_version_m("bin", &bi),
            "bin: go1.26.0\n\tpath\tex.com/a\n\tmod\tex.com/a\t(devel)\t\n\
             \tdep\tex.com/b\tv1.0.0\th1:x=\n\tdep\tex.com/c\tv0.0.0\n\t=>\t../c\t\t\n\t\n\
             \tbuild\t-ldflags=\"-X a=b c\"\n\tbuild\tGOOS=linux\n"
        );
        let bare = BuildInfo {
            go_version: "go1.19".into(),
            ..BuildInfo::default()
        };
        assert_eq!(go_version_m("x", &bare), "x: go1.19\n");
    }
}

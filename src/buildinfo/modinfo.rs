//! The module info text the Go linker embeds (what `runtime/debug.ReadBuildInfo` returns
//! and `go version -m` prints), parsed as Go's `debug.ParseBuildInfo` does (keys and values
//! holding spaces, tabs, newlines, quotes or backquotes are Go-quoted), but lenient where Go
//! is strict: an unquoted value with a space, as early Go 1.18 toolchains wrote, is kept.

use serde::Serialize;

/// One module: `path`, `version` (`(devel)` for a main module built from a checkout, empty
/// for a directory replacement) and the `h1:` sum (empty when unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
    /// The `=>` line after it: what the module was replaced with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

/// One `build` line: `-compiler=gc`, `GOARCH=amd64`, `vcs.revision=…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// A Go executable's build info.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    /// `go1.19.8`, `go1.26.0`: the toolchain that linked the binary.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module (`mod` line); `None` for a binary built outside a module.
    pub main: Option<Module>,
    /// `dep` lines, in the binary's order (Go sorts them by path).
    pub deps: Vec<Module>,
    /// `build` lines, in the binary's order.
    pub settings: Vec<Setting>,
}

impl BuildInfo {
    /// The value of a `build` setting, if the binary records it.
    #[allow(dead_code)] // for the SBOM writers (issue 9); the tests use it now
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }
}

/// A module info line Go's parser would not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "malformed Go build info, line {line} ({text:?}): {what}; expected the `path`, `mod`, \
     `dep`, `=>` and `build` lines `go version -m` prints, tab-separated; the binary's build \
     info is damaged: rebuild it with the Go toolchain"
)]
pub struct ModinfoError {
    /// 1-based line number in the module info text.
    pub line: usize,
    pub text: String,
    pub what: String,
}

/// Parses module info text (sentinels already removed) into `info`, which carries the Go
/// version read beside it. An empty text gives no modules.
pub fn parse(go_version: &str, text: &str) -> Result<BuildInfo, ModinfoError> {
    let mut info = BuildInfo {
        go_version: go_version.to_string(),
        ..BuildInfo::default()
    };
    // What the last `mod`/`dep` line was, for a following `=>`.
    #[derive(PartialEq)]
    enum Last {
        None,
        Main,
        Dep,
    }
    let mut last = Last::None;
    for (i, line) in text.split('\n').enumerate() {
        let err = |what: &str| ModinfoError {
            line: i + 1,
            text: line.to_string(),
            what: what.to_string(),
        };
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line
            .split_once('\t')
            .ok_or_else(|| err("no tab after the line's first word"))?;
        match word {
            "go" => info.go_version = rest.to_string(),
            "path" => info.path = rest.to_string(),
            "mod" => {
                info.main = Some(module(rest).map_err(|w| err(&w))?);
                last = Last::Main;
                continue;
            }
            "dep" => {
                info.deps.push(module(rest).map_err(|w| err(&w))?);
                last = Last::Dep;
                continue;
            }
            "=>" => {
                let m = module(rest).map_err(|w| err(&w))?;
                let target = match last {
                    Last::Main => info.main.as_mut(),
                    Last::Dep => info.deps.last_mut(),
                    Last::None => None,
                }
                .ok_or_else(|| err("a `=>` replacement with no `mod` or `dep` line before it"))?;
                if target.replace.is_some() {
                    return Err(err("a second `=>` replacement for one module"));
                }
                target.replace = Some(Box::new(m));
            }
            "build" => info.settings.push(setting(rest).map_err(|w| err(&w))?),
            other => return Err(err(&format!("unknown line kind {other:?}"))),
        }
        last = Last::None;
    }
    Ok(info)
}

fn module(rest: &str) -> Result<Module, String> {
    let cols: Vec<&str> = rest.split('\t').collect();
    if cols.len() != 2 && cols.len() != 3 {
        return Err(format!(
            "expected 2 or 3 tab-separated columns (path, version, sum), found {}",
            cols.len()
        ));
    }
    if cols[0].is_empty() {
        return Err("empty module path".into());
    }
    Ok(Module {
        path: cols[0].to_string(),
        version: cols[1].to_string(),
        sum: cols.get(2).unwrap_or(&"").to_string(),
        replace: None,
    })
}

fn setting(kv: &str) -> Result<Setting, String> {
    let (key, raw_value) = match kv.as_bytes().first() {
        None => return Err("a `build` line with no KEY=VALUE".into()),
        Some(b'=') => return Err("a `build` line with an empty key".into()),
        Some(b'"' | b'`') => {
            let (key, used) = unquote_prefix(kv).ok_or("a `build` key with a broken quote")?;
            let rest = &kv[used..];
            let value = rest
                .strip_prefix('=')
                .ok_or("no `=` after the quoted `build` key")?;
            (key, value)
        }
        Some(_) => {
            let (k, v) = kv.split_once('=').ok_or("a `build` line with no `=`")?;
            (k.to_string(), v)
        }
    };
    let value = match raw_value.as_bytes().first() {
        Some(b'"' | b'`') => match unquote_prefix(raw_value) {
            Some((v, used)) if used == raw_value.len() => v,
            // Go 1.18/1.19 wrote values verbatim, so one may start with a quote.
            _ => raw_value.to_string(),
        },
        _ => raw_value.to_string(),
    };
    Ok(Setting { key, value })
}

/// Unquotes the Go string literal (`"…"` with escapes, or `` `…` ``) at the start of `s`:
/// its value and how many bytes of `s` it spans. `None` when it is not a valid literal.
pub fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'`') {
        let end = s[1..].find('`')? + 1;
        let v = &s[1..end];
        return (!v.contains('\r')).then(|| (v.to_string(), end + 1));
    }
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    loop {
        let c = *bytes.get(i)?;
        match c {
            b'"' => return String::from_utf8(out).ok().map(|v| (v, i + 1)),
            b'\n' => return None,
            b'\\' => {
                let e = *bytes.get(i + 1)?;
                i += 2;
                match e {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'\'' => out.push(b'\''),
                    b'x' => {
                        out.push(u8::from_str_radix(s.get(i..i + 2)?, 16).ok()?);
                        i += 2;
                    }
                    b'0'..=b'7' => {
                        let v = u32::from_str_radix(s.get(i - 1..i + 2)?, 8).ok()?;
                        out.push(u8::try_from(v).ok()?);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let v = u32::from_str_radix(s.get(i..i + n)?, 16).ok()?;
                        let ch = char::from_u32(v)?;
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        i += n;
                    }
                    _ => return None,
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "path\texample.com/app/cmd/app\n\
mod\texample.com/app\t(devel)\t\n\
dep\texample.com/lib\tv1.2.3\th1:abc=\n\
dep\texample.com/local\tv0.0.0-00010101000000-000000000000\n\
=>\t../local\t\t\n\
build\t-buildmode=exe\n\
build\t-compiler=gc\n\
build\t-ldflags=\"-s -w -X main.version=1.0\"\n\
build\t-tags=netgo,osusergo\n\
build\tCGO_ENABLED=0\n\
build\tGOARCH=amd64\n\
build\tvcs.modified=false\n";

    #[test]
    fn parses_every_line_kind() {
        let bi = parse("go1.26.0", TEXT).unwrap();
        assert_eq!(bi.go_version, "go1.26.0");
        assert_eq!(bi.path, "example.com/app/cmd/app");
        let main = bi.main.as_ref().unwrap();
        assert_eq!(
            (main.path.as_str(), main.version.as_str()),
            ("example.com/app", "(devel)")
        );
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.deps[0].sum, "h1:abc=");
        let rep = bi.deps[1].replace.as_ref().unwrap();
        assert_eq!((rep.path.as_str(), rep.version.as_str()), ("../local", ""));
        assert_eq!(bi.setting("-ldflags"), Some("-s -w -X main.version=1.0"));
        assert_eq!(bi.setting("-tags"), Some("netgo,osusergo"));
        assert_eq!(bi.setting("GOARCH"), Some("amd64"));
    }

    #[test]
    fn go_1_19_unquoted_values_are_kept() {
        let bi = parse(
            "go1.19.8",
            "build\t-ldflags=-s -w\nbuild\tX=\"unterminated\n",
        )
        .unwrap();
        assert_eq!(bi.setting("-ldflags"), Some("-s -w"));
        assert_eq!(bi.setting("X"), Some("\"unterminated"));
    }

    #[test]
    fn quoted_keys_and_escapes() {
        let bi = parse("go", "build\t\"a=b\"=\"x\\ty\\u00e9\\x41\\101\"\n").unwrap();
        assert_eq!(bi.settings[0].key, "a=b");
        assert_eq!(bi.settings[0].value, "x\tyéAA");
        let bi = parse("go", "build\tk=`raw \\n`\n").unwrap();
        assert_eq!(bi.setting("k"), Some("raw \\n"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("go", "path\tx\ndep\tonly-a-path\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(e.what.contains("2 or 3"), "{e}");
        let e = parse("go", "path\tx\n=>\t../y\t\t\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("go", "mystery\tx\n").unwrap_err();
        assert!(e.what.contains("mystery"));
        let e = parse("go", "build\tnoequals\n").unwrap_err();
        assert!(e.what.contains("="));
        let e = parse("go", "nothing-here").unwrap_err();
        assert_eq!(e.line, 1);
    }
}

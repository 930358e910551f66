//! Parameter files: an argument `@FILE` stands for the arguments in FILE, one per line, as
//! Bazel writes them (`Args.use_param_file("@%s")` with the `multiline` format) and as
//! Buck2 writes an argsfile. Build systems use them so a command line with one argument per
//! kodata file or layer never hits the kernel's limit. Lines are taken verbatim (no quoting);
//! a file is expanded once, not recursively.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result};

/// The arguments with every `@FILE` (after the program name) replaced by FILE's lines.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let file = arg
            .to_str()
            .filter(|s| i > 0 && s.len() > 1)
            .and_then(|s| s.strip_prefix('@'));
        match file {
            Some(path) => {
                let text = fs_err::read_to_string(Path::new(path)).with_context(|| {
                    format!(
                        "reading the parameter file {arg:?}: an argument starting with '@' names \
                         a file of arguments, one per line"
                    )
                })?;
                out.extend(text.lines().map(OsString::from));
            }
            None => out.push(arg),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_files_expand_in_place_one_argument_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("args");
        std::fs::write(&f, "--file\na b=c/d\n--tag\n\nx:1\n").unwrap();
        let args = ["rko", "layer", &format!("@{}", f.display()), "--last"].map(OsString::from);
        let got = expand(args).unwrap();
        let want = [
            "rko", "layer", "--file", "a b=c/d", "--tag", "", "x:1", "--last",
        ];
        assert_eq!(got, want.map(OsString::from));
        let e = expand(["rko", "@/nonexistent/args"].map(OsString::from)).unwrap_err();
        assert!(format!("{e:#}").contains("one per line"), "{e:#}");
        // The program name and a lone '@' are never files.
        let kept = expand(["@rko", "@"].map(OsString::from)).unwrap();
        assert_eq!(kept, ["@rko", "@"].map(OsString::from));
    }
}

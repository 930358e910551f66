//! Parameter files: an argument `@FILE` stands for the arguments in FILE, one per line, as
//! Bazel writes them (`Args.use_param_file("@%s")` with the `multiline` format) and as
//! Buck2 writes an argsfile. Build systems use them so a command line with one argument per
//! kodata file or layer never hits the kernel's limit. Lines are taken verbatim (no quoting);
//! a file is expanded once, not recursively.
//!
//! An argument that really starts with '@' (a `--cmd @x`, say) is written `@@x`, on the
//! command line or in a file: `@@` stands for one literal '@'. (A file's line starting with
//! a single '@' is taken as it is.) The rules write every such value of a user's that way.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result};

/// The arguments with every `@FILE` (after the program name) replaced by FILE's lines, and
/// `@@x` (on the command line or a file's line) by `@x`.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_str().filter(|s| i > 0 && s.len() > 1);
        if let Some(literal) = text.and_then(|s| s.strip_prefix("@@")) {
            out.push(OsString::from(format!("@{literal}")));
            continue;
        }
        match text.and_then(|s| s.strip_prefix('@')) {
            Some(path) => {
                let text = fs_err::read_to_string(Path::new(path)).with_context(|| {
                    format!(
                        "reading the parameter file {arg:?}: an argument starting with '@' names \
                         a file of arguments, one per line (write @@{path} for the argument \
                         @{path} itself)"
                    )
                })?;
                out.extend(text.lines().map(|l| match l.strip_prefix("@@") {
                    Some(literal) => OsString::from(format!("@{literal}")),
                    None => OsString::from(l),
                }));
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
        // '@@' is one literal '@', on the command line and in a file; a file's line with a
        // single '@' is as written.
        std::fs::write(&f, "--cmd\n@@x\n--cmd\n@y\n@@@z\n").unwrap();
        let args = ["rko", "--cmd", "@@lit", &format!("@{}", f.display())].map(OsString::from);
        let want = ["rko", "--cmd", "@lit", "--cmd", "@x", "--cmd", "@y", "@@z"];
        assert_eq!(expand(args).unwrap(), want.map(OsString::from));
    }
}

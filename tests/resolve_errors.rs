//! `rko resolve`'s errors: each names the file, line and column (or the push manifests),
//! says what was expected and what to do, exits 1 and leaves no output.

mod common;

use std::path::Path;

use common::resolve::*;

/// Runs `rko resolve ARGS -o out/resolved.yaml` in `dir` (ARGS split at spaces) with
/// `stdin`, expecting exit 1, a message with every part of `expect`, and nothing in `out/`.
fn fails(dir: &Path, args: &str, stdin: &str, expect: &[&str]) {
    let mut a = strings(&args.split_whitespace().collect::<Vec<_>>());
    a.extend(strings(&["-o", "out/resolved.yaml"]));
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let out = run_resolve(dir, &a, stdin.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args}: {err}");
    assert!(err.starts_with("rko: error: "), "{args}: {err}");
    for e in expect {
        assert!(
            err.contains(e),
            "{args}: message should contain {e:?}; got: {err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.join("out")).unwrap().collect();
    assert!(left.is_empty(), "{args} left output behind: {left:?}");
}

/// A directory with the api and worker push manifests (api.json, worker.json) and
/// `ok.yaml`, a file that resolves.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    images(dir.path());
    std::fs::write(dir.path().join("ok.yaml"), format!("a: ko://{API}\n")).unwrap();
    dir
}

#[test]
fn an_unknown_import_path_names_its_position_and_the_known_ones() {
    let dir = setup();
    let d = dir.path();
    let text = format!("# x\r\nitems:\r\n  - é: [ko://{API}, \"ko://example.com/other\"]\r\n");
    std::fs::write(d.join("unknown.yaml"), text).unwrap();
    fails(
        d,
        "-f ok.yaml -f unknown.yaml --image api.json --image worker.json",
        "",
        &[
            "unknown.yaml:3:40: ko://example.com/other is not among the images given",
            &format!(
                "expected one of the import paths the --image push manifests record ({API}, {WORKER})"
            ),
            "add --image with the push manifest of example.com/other, or correct the reference",
        ],
    );
    fails(
        d,
        "-f ok.yaml",
        "",
        &["ok.yaml:1:4: ko://", "(none: no --image was given)"],
    );
}

#[test]
fn invalid_yaml_names_the_file_line_and_column() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(d.join("bad.yaml"), "a: 1\nb: [c\nd: 1\n").unwrap();
    fails(
        d,
        "-f ok.yaml -f bad.yaml --image api.json",
        "",
        &[
            "bad.yaml:3:2: invalid YAML: ",
            "expected a YAML stream (the files are read as one, with a `---` line between two files)",
            "fix the YAML there",
        ],
    );
    fails(
        d,
        "-f - --image api.json",
        "a: 1\nx: 'unterminated\n",
        &["<stdin>:2:4: invalid YAML"],
    );
    // A quoted scalar left open runs into the separator rko puts after its file.
    std::fs::write(d.join("open.yaml"), "a: 1\nx: \"open\n").unwrap();
    fails(
        d,
        "-f open.yaml -f ok.yaml --image api.json",
        "",
        &["open.yaml:", "invalid YAML"],
    );
    std::fs::write(d.join("latin1.yaml"), b"a: \xe9\n").unwrap();
    fails(
        d,
        "-f latin1.yaml",
        "",
        &["latin1.yaml is not UTF-8 text", "convert the file to UTF-8"],
    );
}

#[test]
fn a_bad_reference_names_its_position() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(d.join("ip.yaml"), "a:\n  b: 'ko://a b'\n").unwrap();
    fails(
        d,
        "-f ip.yaml --image api.json",
        "",
        &[
            "ip.yaml:2:6: the scalar \"ko://a b\" starts with ko:// but is not a reference: invalid import path \"a b\"",
            "expected a Go import path",
            "write ko:// followed by a Go import path, or a value that does not start with ko://",
        ],
    );
    std::fs::write(d.join("block.yaml"), format!("a: |\n  ko://{API}\n")).unwrap();
    fails(
        d,
        "-f block.yaml --image api.json",
        "",
        &[
            "block.yaml:2:3: the scalar",
            "a block scalar keeps its final line break unless written |- or >-",
        ],
    );
    std::fs::write(d.join("esc.yaml"), "a: \"ko://example.com/\\x61\"\n").unwrap();
    fails(
        d,
        "-f esc.yaml --image api.json",
        "",
        &[
            "esc.yaml:1:4: the reference ko://example.com/a is written with escapes or line breaks",
            "expected it written out as is",
        ],
    );
}

#[test]
fn manifest_errors_name_the_manifests() {
    let dir = setup();
    let d = dir.path();
    manifest(d, "none.json", None, "r.io/x", API_DIGEST, &[]);
    fails(
        d,
        "-f ok.yaml --image none.json",
        "",
        &[
            "the push manifest none.json records no import path",
            "expected one written by `rko push-manifest --import-path IMPORTPATH`",
        ],
    );
    manifest(d, "untagged.json", Some(API), "r.io/x", API_DIGEST, &[]);
    fails(
        d,
        "-f ok.yaml --image untagged.json --tag-refs",
        "",
        &[
            &format!("the push manifest untagged.json (for ko://{API}) has no tags"),
            "add one, or resolve without --tag-refs",
        ],
    );
    manifest(d, "one.json", Some(API), "r.io/x", API_DIGEST, &["t"]);
    manifest(d, "two.json", Some(API), "r.io/y", API_DIGEST, &["t"]);
    fails(
        d,
        "-f ok.yaml --image one.json --image two.json",
        "",
        &[
            &format!(
                "the push manifests one.json and two.json both record ko://{API}, as r.io/x@{API_DIGEST} and r.io/y@{API_DIGEST}"
            ),
            "expected one image per import path; pass only one of them",
        ],
    );
    std::fs::write(d.join("junk.json"), "{}").unwrap();
    fails(
        d,
        "-f ok.yaml --image junk.json",
        "",
        &["junk.json is not a push manifest"],
    );
    fails(d, "-f - -f -", "", &["`-f -` is given more than once"]);
}

//! `rko resolve`: `ko://IMPORTPATH` scalars become the images push manifests name, and
//! nothing else in the YAML changes, byte for byte.
//!
//! The corpus (tests/fixtures/resolve/, plus a CRLF copy and a 200-document stream made
//! here) marks every `ko://` that must stay with a following ` (stays)`. Each file is
//! checked twice: its output must equal the input with the other `ko://` texts replaced
//! (the test's own expectation, by text), and PyYAML must load the output as the input's
//! structure with exactly the `ko://` string scalars replaced.

mod common;

use std::path::Path;
use std::process::Command;

use common::resolve::*;
use common::{RKO, fake_go_binary, run_ok};

/// The test's own expectation: every `ko://IMPORTPATH` not followed by ` (stays)` replaced.
fn expected(input: &str, tag_refs: bool) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find("ko://") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/".contains(c)))
            .unwrap_or(after.len());
        let ip = &after[..len];
        if after[len..].starts_with(" (stays)") {
            out.push_str(&rest[i..i + 5 + len]);
        } else {
            out.push_str(&reference(ip, tag_refs));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// PyYAML loads `output` as `input` with exactly the `ko://` string scalars replaced.
fn pyyaml_agrees(input: &Path, output: &Path, tag_refs: bool) {
    const CHECK: &str = r#"
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
Loader.add_multi_constructor("!", lambda l, s, n: ("!" + s, l.construct_scalar(n)))
refs = json.loads(sys.argv[3])
def sub(x):
    if isinstance(x, str) and x.startswith("ko://"):
        return refs[x[5:]]
    if isinstance(x, list):
        return [sub(i) for i in x]
    if isinstance(x, dict):
        return {sub(k): sub(v) for k, v in x.items()}
    return x
want = [sub(d) for d in yaml.load_all(open(sys.argv[1], "rb"), Loader)]
got = list(yaml.load_all(open(sys.argv[2], "rb"), Loader))
assert want == got, f"want {want!r}\ngot  {got!r}"
print(len(got))
"#;
    let refs =
        serde_json::json!({ API: reference(API, tag_refs), WORKER: reference(WORKER, tag_refs) });
    run_ok(
        Command::new("python3")
            .args(["-c", CHECK])
            .arg(input)
            .arg(output)
            .arg(refs.to_string()),
    );
}

/// A 200-document stream in every style, some documents closed with `...`.
fn many_documents() -> String {
    let mut s = String::from("# 200 documents\n");
    for i in 0..200 {
        let ip = if i % 3 == 0 { WORKER } else { API };
        s.push_str(&match i % 4 {
            0 => format!("---\nname: d{i}\nimage: ko://{ip}   # ko://{ip} (stays)\n"),
            1 => format!("--- {{name: d{i}, image: \"ko://{ip}\"}}\n...\n"),
            2 => format!("---\n- 'ko://{ip}'\n- &a{i} ko://{ip}\n- *a{i}\n- x ko://{ip} (stays)\n"),
            _ => format!("---\nko://{ip}: |-\n  ko://{ip}\n"),
        });
    }
    s
}

/// The corpus: (name, bytes).
fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = ["styles.yaml", "anchors.yaml", "flow.yaml"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read_to_string(fixtures().join(n)).unwrap(),
            )
        })
        .collect();
    let crlf = files[0].1.replace('\n', "\r\n");
    files.push(("styles-crlf.yaml".into(), crlf));
    files.push(("many.yaml".into(), many_documents()));
    files
}

#[test]
fn only_the_references_bytes_change_and_pyyaml_reads_the_same_structure() {
    let pyyaml = common::require(&["python3-yaml"]);
    let dir = tempfile::tempdir().unwrap();
    let mut args = images(dir.path());
    for tag_refs in [false, true] {
        if tag_refs {
            args.push("--tag-refs".into());
        }
        for (name, text) in corpus() {
            let input = dir.path().join(&name);
            std::fs::write(&input, &text).unwrap();
            let output = dir.path().join(format!("out-{name}"));
            let mut a = strings(&["-f", &name, "-o", output.to_str().unwrap()]);
            a.extend(args.iter().cloned());
            resolve_in(dir.path(), &a, b"");
            let got = std::fs::read_to_string(&output).unwrap();
            assert!(got.contains("@sha256:"), "{name}: nothing replaced");
            let want = expected(&text, tag_refs);
            if got != want {
                let line = got.lines().zip(want.lines()).position(|(g, w)| g != w);
                panic!(
                    "{name} (tag refs {tag_refs}): output differs at line {line:?}:\n--- got\n{got}\n--- want\n{want}"
                );
            }
            if pyyaml {
                pyyaml_agrees(&input, &output, tag_refs);
            }
        }
    }
}

#[test]
fn output_is_the_same_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.yaml"), many_documents()).unwrap();
    let mut args = strings(&[
        "-f",
        "many.yaml",
        "-f",
        &fixtures().display().to_string(),
        "-o",
        "-",
    ]);
    args.extend(images(dir.path()));
    let first = resolve_in(dir.path(), &args, b"");
    for _ in 0..3 {
        assert_eq!(resolve_in(dir.path(), &args, b""), first);
    }
}

#[test]
fn stdin_and_tag_refs() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = strings(&["-f", "-", "--tag-refs", "-o", "out.yaml"]);
    args.extend(images(dir.path()));
    let input = format!("a: ko://{API} # ko://{WORKER} (stays)\nb: \"ko://{WORKER}\"");
    resolve_in(dir.path(), &args, input.as_bytes());
    let got = std::fs::read_to_string(dir.path().join("out.yaml")).unwrap();
    assert_eq!(got, expected(&input, true));
    assert!(
        got.contains(&format!("reg.example.com:5000/api:v1@{API_DIGEST}")),
        "{got}"
    );
}

#[test]
fn directories_are_walked_sorted_and_files_joined_with_separators() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(d.join("b/nested")).unwrap();
    std::fs::create_dir_all(d.join("a")).unwrap();
    // Walk order: a/1.yml, a/2.yaml, b/nested/x.yaml, c.yaml; the rest is not YAML.
    std::fs::write(d.join("c.yaml"), "c: 1\n").unwrap();
    std::fs::write(d.join("a/2.yaml"), format!("two: ko://{API}")).unwrap();
    std::fs::write(d.join("a/1.yml"), "one: 1\r\n").unwrap();
    std::fs::write(
        d.join("b/nested/x.yaml"),
        "\u{feff}x: 'see ko://nothing (stays)'\r\n...\r\n",
    )
    .unwrap();
    std::fs::write(d.join("b/notes.txt"), "ko://not/yaml").unwrap();
    std::fs::write(d.join("b/x.YAML"), "ko://not/yaml/either").unwrap();
    std::fs::write(dir.path().join("first.yaml"), "first: 0").unwrap();
    let mut args = strings(&["-f", "first.yaml", "-f", "deploy", "-f", "-", "-o", "-"]);
    args.extend(images(dir.path()));
    let got = resolve_in(dir.path(), &args, b"last: stdin\n");
    let want = format!(
        "first: 0\n---\none: 1\r\n---\r\ntwo: {}\n\u{feff}---\nx: 'see ko://nothing (stays)'\r\n...\r\n---\r\nc: 1\n---\nlast: stdin\n",
        reference(API, false)
    );
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

/// Runs `rko ARGS` in `dir`, asserting success.
fn ok(dir: &Path, args: &[&str]) -> String {
    run_ok(Command::new(RKO).args(args).current_dir(dir))
}

/// A real image's files in `dir` (l.gz, config.json, manifest.json, desc.json), and its
/// push manifest `out` with `extra` flags; returns the manifest.
fn push_manifest(dir: &Path, extra: &[&str], out: &str) -> serde_json::Value {
    if !dir.join("desc.json").exists() {
        fake_go_binary(&dir.join("app"), 62, 70_000);
        let layer = "--binary app --platform linux/amd64 -o l.gz --descriptor l.json";
        let mut a = vec!["layer", "binary", "--import-path", API];
        a.extend(layer.split(' '));
        ok(dir, &a);
        let image = "--platform linux/amd64 --layer l.json --config-out config.json \
                     --manifest-out manifest.json --descriptor-out desc.json";
        let mut a = vec!["image"];
        a.extend(image.split_whitespace());
        ok(dir, &a);
    }
    let pm = "--root desc.json --blob manifest.json --blob config.json --layer l.json=l.gz \
              --repository reg.example.com/r";
    let mut a = vec!["push-manifest", "-o", out];
    a.extend(pm.split_whitespace());
    a.extend(extra);
    ok(dir, &a);
    common::read_json(dir.join(out))
}

#[test]
fn push_manifest_records_the_import_path_and_resolve_needs_no_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = push_manifest(d, &[], "plain.json");
    assert!(plain.get("importPath").is_none(), "{plain}");
    let ip = format!("ko://{API}");
    let named = push_manifest(d, &["--import-path", &ip, "--naming", "bare"], "api.json");
    assert_eq!(named["importPath"], API);
    for blob in ["l.gz", "config.json", "manifest.json"] {
        std::fs::remove_file(d.join(blob)).unwrap();
    }
    std::fs::write(d.join("in.yaml"), format!("image: ko://{API}\n")).unwrap();
    // The same manifest twice agrees with itself.
    let args = "resolve -f in.yaml --image api.json --image api.json -o -";
    let got = ok(d, &args.split(' ').collect::<Vec<_>>());
    let digest = named["root"]["digest"].as_str().unwrap();
    assert_eq!(got, format!("image: reg.example.com/r@{digest}\n"));
}

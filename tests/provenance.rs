//! `rko provenance` and `rko build --provenance`: SLSA v1 provenance as an in-toto
//! Statement v1, checked by the in-toto-attestation package (the Statement and its
//! resource descriptors validated, the predicate parsed strictly into its Provenance
//! message) and by a JSON schema written from the two specifications; its contents (image
//! digest, the binary's and every kodata file's sha256, the base digest, builder) compared
//! with the inputs; byte-identical from another directory, umask and time zone; bad inputs
//! fail clearly and leave no output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read_json, require_tools, run_ok, sha256_hex};
use serde_json::Value;

const IP: &str = "example.com/x/cmd/app";
const BUILDER: &str = "https://ci.example.com/builders/rko@v1";
const BASE_REF: &str = "cgr.dev/chainguard/static@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn pyvenv(name: &str) -> PathBuf {
    common::require::pyvenv_program(name).expect("required above")
}

fn rko_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = common::rko(args);
    c.current_dir(dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("KO_DOCKER_REPO");
    c.output().unwrap()
}

fn ok_in(dir: &Path, args: &[&str]) -> String {
    let o = rko_in(dir, args);
    assert!(
        o.status.success(),
        "rko {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn fail_in(dir: &Path, args: &[&str]) -> String {
    let o = rko_in(dir, args);
    assert!(!o.status.success(), "rko {args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A Go binary and a kodata tree whose names sort differently by byte and by component.
fn inputs(d: &Path) -> (PathBuf, PathBuf) {
    let bin = common::go_build(
        d,
        "app",
        "package main\n\nfunc main() { println(\"hi\") }\n",
        "amd64",
    );
    let kd = d.join("kodata");
    for (p, body) in [("b.txt", "b"), ("a/c.txt", "c"), ("a b/d.txt", "d")] {
        let f = kd.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, body).unwrap();
    }
    (bin, kd)
}

/// The image of `bin` with `kd` as kodata, on the static base: its descriptor file.
fn image(d: &Path, bin: &Path, kd: &Path) -> PathBuf {
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    ok_in(
        d,
        &[
            "layer",
            "kodata",
            "--dir",
            &s(kd.to_path_buf()),
            "--import-path",
            IP,
            "-o",
            &s(d.join("kd.layer")),
            "--descriptor",
            &s(d.join("kd.json")),
        ],
    );
    ok_in(
        d,
        &[
            "layer",
            "binary",
            "--binary",
            &s(bin.to_path_buf()),
            "--import-path",
            IP,
            "--platform",
            "linux/amd64",
            "-o",
            &s(d.join("bin.layer")),
            "--descriptor",
            &s(d.join("bin.json")),
        ],
    );
    let desc = d.join("image.json");
    ok_in(
        d,
        &[
            "image",
            "--platform",
            "linux/amd64",
            "--layer",
            &s(d.join("kd.json")),
            "--layer",
            &s(d.join("bin.json")),
            "--descriptor-out",
            &s(desc.clone()),
        ],
    );
    desc
}

/// Asserts the in-toto-attestation package and the JSON schema accept `path`.
fn validate(path: &Path) {
    let script = r#"
import json, sys
import jsonschema
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open(sys.argv[1]))
st = json_format.Parse(json.dumps(doc), statement_pb2.Statement())
Statement.copy_from_pb(st).validate()
# Strict: an unknown field in the predicate is an error.
prov = json_format.Parse(json.dumps(doc["predicate"]), provenance_pb2.Provenance())
for rd in prov.build_definition.resolved_dependencies:
    ResourceDescriptor.copy_from_pb(rd).validate()
assert prov.build_definition.build_type and prov.run_details.builder.id
schema = json.load(open(sys.argv[2]))
jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
"#;
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/provenance/slsa-provenance-v1.schema.json");
    run_ok(
        Command::new(pyvenv("python"))
            .args(["-c", script])
            .arg(path)
            .arg(schema),
    );
}

fn args<'a>(desc: &'a str, bin: &'a str, kd: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "provenance",
        "--image",
        desc,
        "--binary",
        bin,
        "--import-path",
        IP,
        "--kodata",
        kd,
        "--base-ref",
        BASE_REF,
        "--tag",
        "v1",
        "--tag",
        "latest",
        "--builder-id",
        BUILDER,
        "-o",
        out,
    ]
}

fn dep<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no dependency {name}"))
}

#[test]
fn provenance_is_a_valid_slsa_v1_statement_about_the_image_and_its_inputs() {
    require_tools!("go", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bin, kd) = inputs(d);
    let desc = image(d, &bin, &kd);
    let out = d.join("prov.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ok_in(d, &args(&s(&desc), &s(&bin), &s(&kd), &s(&out)));
    validate(&out);
    let doc = read_json(&out);
    let digest = read_json(&desc)["digest"].as_str().unwrap().to_string();
    assert_eq!(doc["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(doc["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(doc["subject"][0]["name"], "app");
    assert_eq!(
        format!(
            "sha256:{}",
            doc["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        digest
    );
    let def = &doc["predicate"]["buildDefinition"];
    assert_eq!(def["externalParameters"]["importPath"], IP);
    assert_eq!(def["externalParameters"]["platform"], "linux/amd64");
    assert_eq!(def["externalParameters"]["base"], BASE_REF);
    assert_eq!(
        def["externalParameters"]["tags"],
        serde_json::json!(["v1", "latest"])
    );
    let base = dep(&doc, "base");
    assert_eq!(
        base["uri"],
        format!(
            "pkg:oci/static@sha256:{}?repository_url=cgr.dev/chainguard/static",
            "1".repeat(64)
        )
    );
    assert_eq!(base["digest"]["sha256"], "1".repeat(64));
    let binary = dep(&doc, "binary");
    assert_eq!(binary["uri"], format!("ko://{IP}"));
    assert_eq!(
        binary["digest"]["sha256"],
        sha256_hex(&std::fs::read(&bin).unwrap())
    );
    let names: Vec<&str> = def["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .filter(|n| n.starts_with("kodata/"))
        .collect();
    assert_eq!(
        names,
        ["kodata/a b/d.txt", "kodata/a/c.txt", "kodata/b.txt"]
    );
    for (n, body) in [("a b/d.txt", "d"), ("a/c.txt", "c"), ("b.txt", "b")] {
        assert_eq!(
            dep(&doc, &format!("kodata/{n}"))["digest"]["sha256"],
            sha256_hex(body.as_bytes())
        );
    }
    let rko = dep(&doc, "rko");
    assert_eq!(rko["annotations"]["version"], env!("CARGO_PKG_VERSION"));
    let run = &doc["predicate"]["runDetails"];
    assert_eq!(run["builder"]["id"], BUILDER);
    assert!(
        run.get("metadata").is_none(),
        "no wall-clock times: {run:#}"
    );
    // The same files named as a build system passes them.
    let out2 = d.join("prov2.json");
    let (sd, sb, sk, so) = (s(&desc), s(&bin), s(&kd), s(&out2));
    let mut a2 = args(&sd, &sb, &sk, &so);
    let i = a2.iter().position(|a| *a == "--kodata").unwrap();
    a2.drain(i..i + 2);
    let pairs = [
        format!("b.txt={}", s(&kd.join("b.txt"))),
        format!("a={}", s(&kd.join("a"))),
        format!("a b/d.txt={}", s(&kd.join("a b/d.txt"))),
    ];
    for p in &pairs {
        a2.extend(["--kodata-file", p.as_str()]);
    }
    ok_in(d, &a2);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn a_layout_base_gives_its_manifest_digest() {
    require_tools!("go", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bin, kd) = inputs(d);
    // Any image in an OCI layout can be a base: this one, built by rko.
    let base_digest = ok_in(
        d,
        &[
            "build",
            bin.to_str().unwrap(),
            "--import-path",
            IP,
            "--layout",
            "base",
        ],
    );
    let desc = image(d, &bin, &kd);
    let out = d.join("prov.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ok_in(
        d,
        &[
            "provenance",
            "--image",
            &s(&desc),
            "--binary",
            &s(&bin),
            "--import-path",
            IP,
            "--base",
            "base",
            "--builder-id",
            BUILDER,
            "-o",
            &s(&out),
        ],
    );
    validate(&out);
    let doc = read_json(&out);
    let base = dep(&doc, "base");
    assert_eq!(
        format!("sha256:{}", base["digest"]["sha256"].as_str().unwrap()),
        base_digest
    );
    assert_eq!(
        doc["predicate"]["buildDefinition"]["internalParameters"]["baseSpec"],
        "layout"
    );
    // No kodata given: none listed; the static base has no digest to record.
    ok_in(
        d,
        &[
            "provenance",
            "--image",
            &s(&desc),
            "--binary",
            &s(&bin),
            "--import-path",
            IP,
            "--builder-id",
            BUILDER,
            "-o",
            &s(&out),
        ],
    );
    validate(&out);
    let doc = read_json(&out);
    assert!(dep(&doc, "base:static").get("digest").is_none());
}

#[test]
fn same_inputs_give_the_same_bytes_and_rko_build_agrees() {
    require_tools!("go");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bin, kd) = inputs(d);
    let desc = image(d, &bin, &kd);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let a = d.join("a.json");
    ok_in(d, &args(&s(&desc), &s(&bin), &s(&kd), &s(&a)));
    let other = tempfile::tempdir().unwrap();
    let rel = |p: &Path| {
        format!(
            "../{}",
            p.strip_prefix(d.parent().unwrap()).unwrap().display()
        )
    };
    let (rdesc, rbin, rkd) = (rel(&desc), rel(&bin), rel(&kd));
    let mut c = Command::new("sh");
    c.current_dir(other.path())
        .env("TZ", "Asia/Kathmandu")
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["-c", "umask 077; exec \"$@\"", "sh", common::RKO])
        .args(args(&rdesc, &rbin, &rkd, "b.json"));
    run_ok(&mut c);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(other.path().join("b.json")).unwrap()
    );
    // rko build --provenance: the same statement as rko provenance for its image.
    let digest = ok_in(
        d,
        &[
            "build",
            &s(&bin),
            "--import-path",
            IP,
            "--kodata",
            &s(&kd),
            "--provenance",
            "built.json",
            "--builder-id",
            BUILDER,
        ],
    );
    let direct = d.join("direct.json");
    ok_in(
        d,
        &[
            "provenance",
            "--image",
            &digest,
            "--platform",
            "linux/amd64",
            "--binary",
            &s(&bin),
            "--import-path",
            IP,
            "--kodata",
            &s(&kd),
            "--builder-id",
            BUILDER,
            "-o",
            &s(&direct),
        ],
    );
    assert_eq!(
        std::fs::read(&direct).unwrap(),
        std::fs::read(d.join("built.json")).unwrap()
    );
    assert_eq!(desc_digest(&desc), digest);
}

fn desc_digest(desc: &Path) -> String {
    read_json(desc)["digest"].as_str().unwrap().to_string()
}

#[test]
fn bad_inputs_fail_clearly_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("bin");
    common::fake_go_binary(&bin, 62, 8192);
    let out = d.join("prov.json");
    let (b, o) = (bin.to_str().unwrap(), out.to_str().unwrap());
    let img = "sha256:0000000000000000000000000000000000000000000000000000000000000004";
    // --builder-id is required.
    let err = fail_in(
        d,
        &[
            "provenance",
            "--image",
            img,
            "--binary",
            b,
            "--import-path",
            IP,
            "-o",
            o,
        ],
    );
    assert!(err.contains("--builder-id"), "{err}");
    let base = ["--import-path", IP, "--builder-id", BUILDER, "-o", o];
    let run = |extra: &[&str]| {
        let mut a = vec!["provenance"];
        a.extend(extra);
        a.extend(base);
        fail_in(d, &a)
    };
    let err = fail_in(
        d,
        &[
            "provenance",
            "--image",
            img,
            "--binary",
            b,
            "--import-path",
            IP,
            "--builder-id",
            "my builder",
            "-o",
            o,
        ],
    );
    assert!(err.contains("invalid builder id"), "{err}");
    let err = run(&["--image", "missing.json", "--binary", b]);
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "{err}"
    );
    let err = run(&["--image", img, "--binary", "nope"]);
    assert!(err.contains("nope"), "{err}");
    let err = run(&["--image", img, "--binary", b, "--kodata", "nokodata"]);
    assert!(
        err.contains("nokodata") && err.contains("not a directory"),
        "{err}"
    );
    let err = run(&["--image", img, "--binary", b, "--kodata-file", "nofile"]);
    assert!(err.contains("IMAGE_PATH=FILE"), "{err}");
    let err = run(&["--image", img, "--binary", b, "--base", "nolayout"]);
    assert!(err.contains("--platform"), "{err}");
    assert!(!out.exists());
    let tmp: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".rko-tmp-"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

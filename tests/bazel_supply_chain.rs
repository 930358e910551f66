//! End to end: ko_image's SBOMs and provenance under the real Bazel, checked by the
//! independent validators (spdx-tools, cyclonedx-python-lib, in-toto-attestation), and
//! `bazel run :image.push` attaching them to the pushed image (and to each platform image
//! of an index) as OCI referrers, read back through the registry API. Debian's
//! docker-registry has no referrers API, so the referrers live in the `sha256-<hex>` tag.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bazel::{self, Workspace};
use common::registry::{Registry, RegistryOptions, http_request};
use common::{read_json, run_ok};

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn pyvenv(name: &str) -> PathBuf {
    common::require::pyvenv_program(name).expect("required above")
}

/// GETs `/v2/REPO/manifests/REFERENCE` (any manifest type); the body as JSON, or None on 404.
fn manifest(reg: &Registry, repo: &str, reference: &str) -> Option<(serde_json::Value, String)> {
    let accept = format!("{MANIFEST}, {INDEX}");
    let r = http_request(
        &reg.host(),
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", &accept)],
        b"",
    )
    .unwrap();
    if r.status == 404 {
        return None;
    }
    assert_eq!(
        r.status,
        200,
        "GET {repo}:{reference}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let digest = common::sha256_hex(&r.body);
    Some((
        serde_json::from_slice(&r.body).unwrap(),
        format!("sha256:{digest}"),
    ))
}

fn blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let r = http_request(
        &reg.host(),
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "GET blob {repo}@{digest}");
    r.body
}

/// The referrers of `subject` in `repo` (the tag schema): artifactType -> (artifact
/// manifest, the document's bytes). Every artifact manifest names `subject`.
fn referrers(
    reg: &Registry,
    repo: &str,
    subject: &str,
) -> Vec<(String, serde_json::Value, Vec<u8>)> {
    let tag = subject.replace(':', "-");
    let (index, _) =
        manifest(reg, repo, &tag).unwrap_or_else(|| panic!("no referrers tag {repo}:{tag}"));
    assert_eq!(index["mediaType"], INDEX, "{index}");
    let mut out = Vec::new();
    for d in index["manifests"].as_array().unwrap() {
        let digest = d["digest"].as_str().unwrap();
        let (m, got) = manifest(reg, repo, digest).unwrap();
        assert_eq!(got, digest);
        assert_eq!(m["subject"]["digest"], subject, "{m}");
        assert_eq!(m["artifactType"], d["artifactType"], "{m}");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        let layer = &m["layers"][0];
        let doc = blob(reg, repo, layer["digest"].as_str().unwrap());
        out.push((d["artifactType"].as_str().unwrap().to_string(), m, doc));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn validate_spdx(path: &Path) {
    run_ok(Command::new(pyvenv("pyspdxtools")).arg("-i").arg(path));
}

fn validate_cyclonedx(path: &Path) {
    let script = "import sys\n\
from cyclonedx.schema import SchemaVersion\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
if errors:\n    sys.exit(str(errors))\n";
    run_ok(
        Command::new(pyvenv("python"))
            .args(["-c", script])
            .arg(path),
    );
}

fn bazel_workspace(reg: &Registry, base_digest: &str) -> Workspace {
    let ws = Workspace::copy(&bazel::repo_root().join("tests/e2e/ws"), "ws");
    let host = reg.host();
    ws.write("e2e.bzl", &common::e2e_bzl(&host, &host, base_digest));
    ws
}

#[test]
fn bazel_sbom_and_provenance_output_groups_and_push_attaches_them() {
    common::require_tools!(
        "bazel",
        "go",
        "docker-registry",
        "skopeo",
        "pyvenv:pyspdxtools",
        "pyvenv:python"
    );
    let _serial = bazel::serial();
    let reg = Registry::start(RegistryOptions::plain());
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch.path());
    let ws = bazel_workspace(&reg, &base_digest);

    // The output groups hold the documents; the default outputs do not.
    ws.ok(&[
        "build",
        "//cmd/foo:image_sc",
        "--output_groups=sbom,provenance",
    ]);
    let digest = std::fs::read_to_string(ws.bin("cmd/foo/image_sc.digest")).unwrap();
    let digest = digest.trim();
    let spdx = ws.bin("cmd/foo/image_sc.spdx.json");
    let cdx = ws.bin("cmd/foo/image_sc.cyclonedx.json");
    let prov = ws.bin("cmd/foo/image_sc.provenance.json");
    validate_spdx(&spdx);
    validate_cyclonedx(&cdx);

    // The SPDX names the main module and the image by its digest.
    let doc = read_json(&spdx);
    let text = doc.to_string();
    assert!(text.contains("example.com/e2e/cmd/foo"), "{text}");
    assert!(
        text.contains(&digest.replace(':', "%3A")) || text.contains(digest),
        "{text}"
    );
    // The provenance is about this image, built from this binary.
    let statement = read_json(&prov);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    assert_eq!(
        statement["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example.com/e2e-builder"
    );
    let binary_sha = common::sha256_hex(&std::fs::read(ws.bin("cmd/foo/foo")).unwrap());
    assert!(
        statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            .to_string()
            .contains(&binary_sha),
        "the binary's sha256 {binary_sha} is not among the resolved dependencies: {statement}"
    );

    // `bazel run :image_sc.push` pushes the image, then attaches the three documents.
    ws.ok(&["run", "//cmd/foo:image_sc.push"]);
    assert_eq!(reg.tag_digest("sc", "sc").as_deref(), Some(digest));
    let refs = referrers(&reg, "sc", digest);
    let types: Vec<&str> = refs.iter().map(|r| r.0.as_str()).collect();
    // (Sorted by artifactType.)
    assert_eq!(types, [SPDX, CYCLONEDX, IN_TOTO]);
    for (ty, _, bytes) in &refs {
        let local = match ty.as_str() {
            SPDX => &spdx,
            CYCLONEDX => &cdx,
            _ => &prov,
        };
        assert_eq!(
            bytes,
            &std::fs::read(local).unwrap(),
            "{ty}: the registry holds other bytes"
        );
    }
    // skopeo reads an artifact manifest by digest.
    let index_tag = digest.replace(':', "-");
    let (index, _) = manifest(&reg, "sc", &index_tag).unwrap();
    let first = index["manifests"][0]["digest"].as_str().unwrap();
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/sc@{first}", reg.host()),
    ]));
    assert_eq!(common::parse_json(&raw)["subject"]["digest"], digest);

    // A second run sends nothing new: the referrers tag index is unchanged.
    let blobs_before = reg.blob_count();
    ws.ok(&["run", "//cmd/foo:image_sc.push"]);
    assert_eq!(reg.blob_count(), blobs_before);
    let (again, _) = manifest(&reg, "sc", &index_tag).unwrap();
    assert_eq!(again, index);

    // An index: each platform image gets its own SBOM (and provenance), not the index.
    ws.ok(&["run", "//cmd/foo:image_sc_index.push"]);
    let index_digest = std::fs::read_to_string(ws.bin("cmd/foo/image_sc_index.digest")).unwrap();
    let (image_index, _) = manifest(&reg, "sc-index", index_digest.trim()).unwrap();
    let platforms = image_index["manifests"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for p in platforms {
        let d = p["digest"].as_str().unwrap();
        let refs = referrers(&reg, "sc-index", d);
        assert_eq!(
            refs.len(),
            3,
            "{d}: {:?}",
            refs.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
    }
    assert!(manifest(&reg, "sc-index", &index_digest.trim().replace(':', "-")).is_none());
}

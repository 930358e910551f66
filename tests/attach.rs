//! Attaching SBOMs and provenance statements to pushed images (issue 9): `rko push-manifest
//! --attach SUBJECT=DOCUMENT` records an OCI 1.1 artifact manifest per document, and
//! `rko push --attach referrers|cosign-tag|none` pushes them after the image, against a real
//! docker-registry on 127.0.0.1 (distribution 2.8, which has no referrers API, so the
//! referrers tag schema is what is tested there). Everything is read back through the
//! registry's API and with skopeo, and the copied layout passes the image-spec's schemas.

mod common;

use std::path::Path;
use std::process::Command;

use common::registry::{Fault, FaultProxy, FaultRule, Registry, RegistryOptions, http_request};
use common::scratch::Scratch;
use common::{fake_go_binary, read_json, run, run_ok, sha256_hex};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/attach");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const VALIDATE: &str = "/work/shared/oci-schema/validate.py";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// A scratch directory with the images a test pushes.
struct Work(Scratch);

impl std::ops::Deref for Work {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

/// One image built into a directory of the work area.
struct Image {
    dir: String,
    /// Its descriptor file (`rko image --descriptor-out`), relative to the work area.
    desc: String,
    digest: String,
}

impl Work {
    fn new() -> Work {
        Work(Scratch::new())
    }

    /// An image of a fake Go binary for linux/`arch` in `dir`.
    fn image(&self, dir: &str, arch: &str) -> Image {
        let machine = if arch == "arm64" { 183 } else { 62 };
        std::fs::create_dir_all(self.path(dir)).unwrap();
        fake_go_binary(&self.path(&format!("{dir}/app")), machine, 1 << 17);
        let d = |f: &str| format!("{dir}/{f}");
        let platform = format!("linux/{arch}");
        self.ok(&[
            "layer",
            "binary",
            "--binary",
            &d("app"),
            "--import-path",
            "example.com/svc/cmd/api",
            "--platform",
            &platform,
            "-o",
            &d("bin.tgz"),
            "--descriptor",
            &d("bin.json"),
        ]);
        self.ok(&[
            "image",
            "--platform",
            &platform,
            "--layer",
            &d("bin.json"),
            "--config-out",
            &d("config.json"),
            "--manifest-out",
            &d("manifest.json"),
            "--descriptor-out",
            &d("desc.json"),
            "--digest-out",
            &d("digest"),
        ]);
        let digest = std::fs::read_to_string(self.path(&d("digest"))).unwrap();
        Image {
            dir: dir.to_string(),
            desc: d("desc.json"),
            digest: digest.trim().to_string(),
        }
    }

    /// The index of `images`, in `dir`: (descriptor path, digest).
    fn index(&self, dir: &str, images: &[&Image]) -> (String, String) {
        std::fs::create_dir_all(self.path(dir)).unwrap();
        let mut args = vec!["index".to_string()];
        for i in images {
            args.extend(["--image".to_string(), i.desc.clone()]);
        }
        let d = |f: &str| format!("{dir}/{f}");
        args.extend([
            "--index-out".into(),
            d("index.json"),
            "--descriptor-out".into(),
            d("desc.json"),
            "--digest-out".into(),
            d("digest"),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
        let digest = std::fs::read_to_string(self.path(&d("digest"))).unwrap();
        (d("desc.json"), digest.trim().to_string())
    }

    /// `rko push-manifest` of `root` (a descriptor) and the blobs of `images`, tag v1, with
    /// `--attach` for each (subject descriptor, document) of `attach`, to `out`. Returns the
    /// command's output.
    fn push_manifest(
        &self,
        out: &str,
        root: &str,
        extra_blobs: &[String],
        images: &[&Image],
        repository: &str,
        attach: &[String],
    ) -> std::process::Output {
        let mut args: Vec<String> = vec!["push-manifest".into(), "--root".into(), root.into()];
        for b in extra_blobs {
            args.extend(["--blob".into(), b.clone()]);
        }
        for i in images {
            let d = |f: &str| format!("{}/{f}", i.dir);
            args.extend([
                "--blob".into(),
                d("manifest.json"),
                "--blob".into(),
                d("config.json"),
                "--layer".into(),
                format!("{}={}", d("bin.json"), d("bin.tgz")),
            ]);
        }
        for a in attach {
            args.extend(["--attach".into(), a.clone()]);
        }
        args.extend([
            "--repository".into(),
            repository.into(),
            "--tag".into(),
            "v1".into(),
            "-o".into(),
            out.into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.rko(&args)
    }

    /// The push manifest of one image with attachments; asserts success.
    fn one(&self, out: &str, img: &Image, repository: &str, docs: &[&str]) -> String {
        let attach: Vec<String> = docs
            .iter()
            .map(|d| format!("{}={}", img.desc, fixture(d)))
            .collect();
        let o = self.push_manifest(out, &img.desc, &[], &[img], repository, &attach);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out.to_string()
    }

    /// `rko push --manifest M --insecure-registry HOST --image-refs REFS ARGS…`.
    fn push(&self, manifest: &str, host: &str, refs: &str, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "push",
            "--manifest",
            manifest,
            "--insecure-registry",
            host,
            "--image-refs",
            refs,
        ];
        all.extend_from_slice(args);
        self.rko(&all)
    }
}

/// An amd64 image with one SPDX document, its push manifest for `team/api` of `reg`:
/// (host, work area, image, push manifest).
fn one_spdx_image(reg: &Registry) -> (String, Work, Image, String) {
    let host = reg.host();
    let w = Work::new();
    let img = w.image("img", "amd64");
    let pm = w.one(
        "push.json",
        &img,
        &format!("{host}/team/api"),
        &["app.spdx.json"],
    );
    (host, w, img, pm)
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "rko failed:\n{err}");
    err
}

fn failed(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{err}");
    err
}

/// GET `path` from the registry: (status, content type, body).
fn get(reg: &Registry, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = http_request(&reg.host(), "GET", path, &[("Accept", accept)], b"").unwrap();
    let ct = r.header("content-type").unwrap_or_default().to_string();
    (r.status, ct, r.body)
}

/// The manifest `reference` of `repo`, asserting it is there: (content type, bytes).
fn manifest(reg: &Registry, repo: &str, reference: &str) -> (String, Vec<u8>) {
    let accept = format!("{OCI_INDEX}, {OCI_MANIFEST}");
    let (status, ct, body) = get(reg, &format!("/v2/{repo}/manifests/{reference}"), &accept);
    assert_eq!(
        status,
        200,
        "{repo}:{reference}: {}",
        String::from_utf8_lossy(&body)
    );
    (ct, body)
}

fn blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let (status, _, body) = get(reg, &format!("/v2/{repo}/blobs/{digest}"), "*/*");
    assert_eq!(status, 200, "blob {digest}");
    body
}

/// PUT `body` as manifest `reference` of `repo`; asserts 201.
fn put_manifest(reg: &Registry, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let r = http_request(
        &reg.host(),
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        body,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// Uploads `body` as a blob of `repo` (POST, then PUT with the digest); returns its digest.
fn put_blob(reg: &Registry, repo: &str, body: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(body));
    let r = http_request(
        &reg.host(),
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 202);
    let location = r.header("location").unwrap().to_string();
    let path = match location.find("/v2/") {
        Some(i) => location[i..].to_string(),
        None => location,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = http_request(
        &reg.host(),
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        body,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    digest
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Checks one referrer listed in a referrers index: the artifact manifest behind `entry`
/// (fetched by digest) attaches `document` (a fixture's bytes) to `subject`; returns the
/// manifest's bytes.
fn check_referrer(
    reg: &Registry,
    repo: &str,
    entry: &Value,
    subject: &Value,
    document: &[u8],
) -> Vec<u8> {
    let digest = entry["digest"].as_str().unwrap();
    assert_eq!(entry["mediaType"], OCI_MANIFEST, "{entry}");
    let (_, bytes) = manifest(reg, repo, digest);
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);
    assert_eq!(entry["size"], bytes.len(), "{entry}");
    let m = json(&bytes);
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["artifactType"], entry["artifactType"], "{m}");
    assert_eq!(
        m["config"],
        serde_json::json!({"mediaType": "application/vnd.oci.empty.v1+json",
            "size": 2, "digest": EMPTY_DIGEST, "data": "e30="})
    );
    assert_eq!(blob(reg, repo, EMPTY_DIGEST), b"{}");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], m["artifactType"]);
    assert_eq!(
        blob(reg, repo, layers[0]["digest"].as_str().unwrap()),
        document
    );
    assert_eq!(&m["subject"], subject, "{m}");
    // The index entry carries the manifest's annotations.
    assert_eq!(
        entry.get("annotations").cloned().unwrap_or(Value::Null),
        m.get("annotations").cloned().unwrap_or(Value::Null)
    );
    bytes
}

/// The subject descriptor an artifact manifest must carry for the image `img`.
fn subject_of(w: &Work, img: &Image) -> Value {
    let d = read_json(w.path(&img.desc));
    serde_json::json!({"mediaType": d["mediaType"], "size": d["size"], "digest": d["digest"]})
}

/// An SPDX SBOM, a CycloneDX SBOM and an in-toto provenance statement attached to one
/// image: the referrers tag lists all three, each artifact manifest and document reads back
/// byte for byte (through the API and skopeo), the report lists them, a skopeo copy of the
/// referrers index with its manifests passes the image-spec schemas, and a second push sends
/// nothing.
#[test]
fn referrers_read_back_and_a_repush_sends_nothing() {
    common::require_tools!("docker-registry", "skopeo", "python3");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    let img = w.image("img", "amd64");
    let docs = ["app.spdx.json", "app.cdx.json", "provenance.intoto.json"];
    let pm = w.one("push.json", &img, &format!("{host}/team/api"), &docs);
    let stderr = ok(&w.push(&pm, &host, "refs.json", &[]));
    assert!(
        stderr.contains("attached application/spdx+json"),
        "{stderr}"
    );

    // The report lists the three, as the push manifest recorded them.
    let recorded = read_json(w.path("push.json"));
    let recorded = recorded["attachments"].as_array().unwrap();
    let refs = read_json(w.path("refs.json"));
    let attached = refs["attached"].as_array().expect("attached in the report");
    assert_eq!(attached.len(), 3, "{refs}");
    for (a, r) in attached.iter().zip(recorded) {
        assert_eq!(a["digest"], r["manifest"]["digest"]);
        assert_eq!(a["artifactType"], r["manifest"]["artifactType"]);
        assert_eq!(a["subject"], img.digest.as_str());
        assert_eq!(a["via"], "referrers-tag");
    }
    let types: Vec<&str> = attached
        .iter()
        .map(|a| a["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [SPDX, CYCLONEDX, IN_TOTO]);

    // The referrers tag: an OCI index of the three, each followed to its documents.
    let tag = format!("sha256-{}", hex(&img.digest));
    let (ct, idx_bytes) = manifest(&reg, "team/api", &tag);
    assert_eq!(ct, OCI_INDEX);
    let idx = json(&idx_bytes);
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(idx["mediaType"], OCI_INDEX);
    let entries = idx["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{idx}");
    let subject = subject_of(&w, &img);
    for (entry, doc) in entries.iter().zip(docs) {
        let bytes = check_referrer(&reg, "team/api", entry, &subject, &fixture_bytes(doc));
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(
            skopeo_raw(&format!("{}/team/api@{digest}", reg.host())),
            bytes,
            "skopeo reads the artifact manifest"
        );
    }
    // Annotations only from the documents themselves: the SBOMs' created times.
    let created = "2024-05-06T07:08:09Z";
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.created"],
        created
    );
    assert_eq!(
        entries[1]["annotations"]["org.opencontainers.image.created"],
        created
    );
    assert!(entries[2].get("annotations").is_none(), "{}", entries[2]);
    // The image itself and its tag are there.
    assert_eq!(
        reg.tag_digest("team/api", "v1").as_deref(),
        Some(img.digest.as_str())
    );

    // skopeo copies the referrers index with every artifact manifest into an OCI layout,
    // and one artifact manifest alone into another; both pass the image-spec schemas.
    let layout = w.path("layout");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{}/team/api:{tag}", reg.host()))
            .arg(format!("oci:{}:referrers", layout.display())),
    );
    let one = w.path("one");
    let first = entries[0]["digest"].as_str().unwrap();
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/team/api@{first}", reg.host()))
            .arg(format!("oci:{}:sbom", one.display())),
    );
    let copied = std::fs::read(layout.join("blobs/sha256").join(hex(first))).unwrap();
    assert_eq!(copied, manifest(&reg, "team/api", first).1);
    let out = run_ok(Command::new("python3").arg(VALIDATE).arg(&layout).arg(&one));
    // oci-layout ×2, index.json ×2, the referrers index, its three manifests, the one copied.
    assert!(out.contains("oci schema: 9 documents, 0 errors"), "{out}");

    // Again: HEADs and GETs only, nothing written; the report says the same.
    let before = proxy.request_log().len();
    ok(&w.push(&pm, &host, "refs2.json", &[]));
    let again = &proxy.request_log()[before..];
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let n = again.iter().filter(|(rm, _, _)| rm == m).count();
        assert_eq!(n, 0, "{m}: {}", proxy.log_text());
    }
    let refs2 = read_json(w.path("refs2.json"));
    assert_eq!(refs2["attached"], refs["attached"]);
    assert_eq!(
        manifest(&reg, "team/api", &tag).1,
        idx_bytes,
        "the tag is unchanged"
    );
}

/// Another tool's referrer already in the referrers tag survives, byte for byte, and ours
/// is added after it. Before that, `--attach none` pushes the image without attachments.
#[test]
fn another_tools_referrer_survives() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let (host, w, img, pm) = one_spdx_image(&reg);
    ok(&w.push(&pm, &host, "refs0.json", &["--attach", "none"]));
    let tag = format!("sha256-{}", hex(&img.digest));
    let refs0 = read_json(w.path("refs0.json"));
    assert!(refs0.get("attached").is_none(), "{refs0}");
    assert_eq!(
        reg.tag_digest("team/api", &tag),
        None,
        "--attach none attached nothing"
    );

    // Another tool's artifact, and the referrers tag listing it.
    let doc = put_blob(&reg, "team/api", br#"{"scanner":"other","findings":[]}"#);
    put_blob(&reg, "team/api", b"{}");
    let subject = subject_of(&w, &img);
    let other = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.scan+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": EMPTY_DIGEST},
        "layers": [{"mediaType": "application/vnd.example.scan+json", "size": 33, "digest": doc}],
        "subject": subject,
    });
    let other = serde_json::to_vec(&other).unwrap();
    let other_digest = format!("sha256:{}", sha256_hex(&other));
    put_manifest(&reg, "team/api", &other_digest, OCI_MANIFEST, &other);
    let entry = format!(
        r#"{{"mediaType":"{OCI_MANIFEST}","size":{},"digest":"{other_digest}","artifactType":"application/vnd.example.scan+json","annotations":{{"org.example.tool":"other"}}}}"#,
        other.len()
    );
    let seeded = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{entry}],"annotations":{{"org.example.seeded":"yes"}}}}"#
    );
    put_manifest(&reg, "team/api", &tag, OCI_INDEX, seeded.as_bytes());

    ok(&w.push(&pm, &host, "refs.json", &[]));
    let (_, bytes) = manifest(&reg, "team/api", &tag);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains(&entry),
        "the other entry is kept as it was: {text}"
    );
    let idx = json(&bytes);
    assert_eq!(idx["annotations"]["org.example.seeded"], "yes", "{idx}");
    let entries = idx["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{idx}");
    assert_eq!(entries[0]["digest"], other_digest.as_str());
    assert_eq!(entries[1]["artifactType"], SPDX);
    check_referrer(
        &reg,
        "team/api",
        &entries[1],
        &subject,
        &fixture_bytes("app.spdx.json"),
    );
    // The other tool's artifact is untouched.
    assert_eq!(manifest(&reg, "team/api", &other_digest).1, other);
}

/// An index of two platform images: each platform image gets its own SBOM as a referrer
/// (its own referrers tag); the index itself gets none.
#[test]
fn each_platform_image_gets_its_own_sbom() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    let amd = w.image("amd64", "amd64");
    let arm = w.image("arm64", "arm64");
    let (idx_desc, idx_digest) = w.index("idx", &[&amd, &arm]);
    let attach = [
        format!("{}={}", amd.desc, fixture("app.spdx.json")),
        format!("{}={}", arm.desc, fixture("app-arm64.spdx.json")),
    ];
    let o = w.push_manifest(
        "push.json",
        &idx_desc,
        &["idx/index.json".to_string()],
        &[&amd, &arm],
        &format!("{host}/team/multi"),
        &attach,
    );
    ok(&o);
    ok(&w.push("push.json", &host, "refs.json", &[]));
    assert_eq!(
        reg.tag_digest("team/multi", "v1").as_deref(),
        Some(idx_digest.as_str())
    );
    for (img, doc) in [(&amd, "app.spdx.json"), (&arm, "app-arm64.spdx.json")] {
        let (_, bytes) = manifest(&reg, "team/multi", &format!("sha256-{}", hex(&img.digest)));
        let idx = json(&bytes);
        let entries = idx["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{idx}");
        let m = check_referrer(
            &reg,
            "team/multi",
            &entries[0],
            &subject_of(&w, img),
            &fixture_bytes(doc),
        );
        let d = entries[0]["digest"].as_str().unwrap();
        assert_eq!(skopeo_raw(&format!("{host}/team/multi@{d}")), m);
    }
    let index_tag = format!("sha256-{}", hex(&idx_digest));
    assert_eq!(reg.tag_digest("team/multi", &index_tag), None);
    let refs = read_json(w.path("refs.json"));
    let subjects: Vec<&str> = refs["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, [amd.digest.as_str(), arm.digest.as_str()]);
}

/// `--attach cosign-tag`: the SBOMs as one image tagged `sha256-<hex>.sbom` (ko's layout,
/// cosign's media types) that skopeo reads; the provenance statement is skipped with a note
/// saying why; no referrers tag; a second push writes nothing.
#[test]
fn cosign_tag_holds_the_sboms() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    let img = w.image("img", "amd64");
    let docs = ["app.spdx.json", "app.cdx.json", "provenance.intoto.json"];
    let pm = w.one("push.json", &img, &format!("{host}/team/api"), &docs);
    let err = ok(&w.push(&pm, &host, "refs.json", &["--attach", "cosign-tag"]));
    assert!(
        err.contains("not attaching the application/vnd.in-toto+json document")
            && err.contains("DSSE"),
        "{err}"
    );
    let tag = format!("sha256-{}.sbom", hex(&img.digest));
    let digest = reg.tag_digest("team/api", &tag).expect("the .sbom tag");
    let raw = skopeo_raw(&format!("{}/team/api:{tag}", reg.host()));
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest);
    let m = json(&raw);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["text/spdx+json", CYCLONEDX]);
    for (l, doc) in layers.iter().zip(docs) {
        assert_eq!(
            blob(&reg, "team/api", l["digest"].as_str().unwrap()),
            fixture_bytes(doc)
        );
    }
    // skopeo also reads it as an image (its config parses).
    let inspect = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/team/api:{tag}", reg.host())),
    );
    assert!(inspect.contains(&digest), "{inspect}");
    let referrers = format!("sha256-{}", hex(&img.digest));
    assert_eq!(reg.tag_digest("team/api", &referrers), None);
    let refs = read_json(w.path("refs.json"));
    let attached = refs["attached"].as_array().unwrap();
    assert_eq!(attached.len(), 2, "{refs}");
    assert!(
        attached
            .iter()
            .all(|a| a["via"] == "cosign-tag" && a["digest"] == digest.as_str())
    );

    let before = proxy.request_log().len();
    ok(&w.push(&pm, &host, "refs2.json", &["--attach", "cosign-tag"]));
    let writes = proxy.request_log()[before..]
        .iter()
        .filter(|(m, _, _)| m != "HEAD" && m != "GET")
        .count();
    assert_eq!(writes, 0, "{}", proxy.log_text());
}

/// A referrers tag that holds an image manifest, not an index: a clear error, exit 1, the
/// tag left as it was, and the image and its tag pushed.
#[test]
fn a_referrers_tag_that_is_not_an_index_is_never_clobbered() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let (host, w, img, pm) = one_spdx_image(&reg);
    let tag = format!("sha256-{}", hex(&img.digest));
    ok(&w.push(&pm, &host, "refs0.json", &["--attach", "none"]));
    let image_manifest = std::fs::read(w.path("img/manifest.json")).unwrap();
    put_manifest(&reg, "team/api", &tag, OCI_MANIFEST, &image_manifest);

    let err = failed(&w.push(&pm, &host, "refs.json", &[]));
    assert!(
        err.contains(&format!(
            "the referrers tag {host}/team/api:{tag} holds a {OCI_MANIFEST} ({})",
            img.digest
        )) && err.contains("not an OCI image index")
            && err.contains("--attach cosign-tag")
            && err.contains(&format!(
                "{host}/team/api@{} and its tags are pushed",
                img.digest
            )),
        "{err}"
    );
    assert_eq!(
        reg.tag_digest("team/api", &tag).as_deref(),
        Some(img.digest.as_str())
    );
    assert_eq!(
        reg.tag_digest("team/api", "v1").as_deref(),
        Some(img.digest.as_str())
    );
    assert!(
        !w.path("refs.json").exists(),
        "a failed run writes no report"
    );
}

/// A registry that refuses the artifact manifest (the fault proxy answers its PUT with
/// 400): a clear error naming what was sent and what to do, exit 1; the image and its tag
/// are pushed and stay.
#[test]
fn a_refused_artifact_manifest_is_a_clear_error() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let w = Work::new();
    let img = w.image("img", "amd64");
    // The artifact manifest's digest does not depend on the repository.
    w.one(
        "probe.json",
        &img,
        "127.0.0.1:1/team/api",
        &["app.spdx.json"],
    );
    let probe = read_json(w.path("probe.json"));
    let artifact = probe["attachments"][0]["manifest"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let rule = FaultRule::always(
        "PUT",
        &format!("/manifests/{artifact}"),
        Fault::Status(400, None),
    );
    let proxy = FaultProxy::for_registry(&reg, vec![rule]);
    let host = proxy.addr();
    let pm = w.one(
        "push.json",
        &img,
        &format!("{host}/team/api"),
        &["app.spdx.json"],
    );
    let err = failed(&w.push(&pm, &host, "refs.json", &[]));
    assert!(
        err.contains(&format!(
            "refused the artifact manifest {artifact} (application/spdx+json, for {})",
            img.digest
        )) && err.contains(&format!(
            "PUT /v2/team/api/manifests/{artifact}: HTTP 400: (no body)"
        )) && err.contains("--attach cosign-tag")
            && err.contains("--attach none")
            && err.contains("The image and its tags are pushed and stay"),
        "{err}"
    );
    assert_eq!(proxy.faults_applied(), 1, "{}", proxy.log_text());
    assert_eq!(
        reg.tag_digest("team/api", "v1").as_deref(),
        Some(img.digest.as_str())
    );
    assert!(!reg.has_manifest("team/api", &artifact));
}

/// Build time: the push manifest's attachments (format, relative document paths, the same
/// bytes on every run), an explicit media type, and the refusals: a document of no known
/// type, a subject that is not part of the push, an index as subject. `rko resolve` still
/// reads a push manifest with attachments.
#[test]
fn push_manifest_attachments_and_their_errors() {
    let w = Work::new();
    let img = w.image("img", "amd64");
    let other = w.image("other", "arm64");
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::fs::copy(fixture("app.spdx.json"), w.path("sbom.spdx.json")).unwrap();
    let attach = [
        format!("{}=sbom.spdx.json", img.desc),
        format!(
            "{}={}=application/vnd.example.report+json",
            img.desc,
            fixture("not-an-sbom.json")
        ),
    ];
    ok(&w.push_manifest(
        "out/push.json",
        &img.desc,
        &[],
        &[&img],
        "r.example.com/a",
        &attach,
    ));
    let first = std::fs::read(w.path("out/push.json")).unwrap();
    ok(&w.push_manifest(
        "out/push.json",
        &img.desc,
        &[],
        &[&img],
        "r.example.com/a",
        &attach,
    ));
    assert_eq!(
        std::fs::read(w.path("out/push.json")).unwrap(),
        first,
        "deterministic"
    );
    let pm = json(&first);
    let a = &pm["attachments"];
    assert_eq!(a.as_array().unwrap().len(), 2);
    assert_eq!(a[0]["subject"], subject_of(&w, &img));
    assert_eq!(a[0]["manifest"]["mediaType"], OCI_MANIFEST);
    assert_eq!(a[0]["manifest"]["artifactType"], SPDX);
    assert_eq!(
        a[0]["manifest"]["annotations"],
        serde_json::json!({"org.opencontainers.image.created": "2024-05-06T07:08:09Z"})
    );
    let spdx = fixture_bytes("app.spdx.json");
    assert_eq!(
        a[0]["document"],
        serde_json::json!({"mediaType": SPDX, "digest": format!("sha256:{}", sha256_hex(&spdx)),
            "size": spdx.len(), "path": "../sbom.spdx.json"})
    );
    assert_eq!(
        a[1]["manifest"]["artifactType"],
        "application/vnd.example.report+json"
    );
    assert_eq!(
        a[1]["document"]["mediaType"],
        "application/vnd.example.report+json"
    );

    // rko resolve reads it as before.
    std::fs::write(w.path("d.yaml"), "image: ko://example.com/svc/cmd/api\n").unwrap();
    let o = w.rko(&[
        "push-manifest",
        "--root",
        &img.desc,
        "--blob",
        "img/manifest.json",
        "--blob",
        "img/config.json",
        "--layer",
        "img/bin.json=img/bin.tgz",
        "--repository",
        "r.example.com/a",
        "--import-path",
        "example.com/svc/cmd/api",
        "--attach",
        &attach[0],
        "-o",
        "out/ip.json",
    ]);
    ok(&o);
    w.ok(&[
        "resolve",
        "-f",
        "d.yaml",
        "--image",
        "out/ip.json",
        "-o",
        "out/d.yaml",
    ]);
    let resolved = std::fs::read_to_string(w.path("out/d.yaml")).unwrap();
    assert!(resolved.contains(&img.digest), "{resolved}");

    // A document of no known type names the file and what was expected.
    let bad = format!("{}={}", img.desc, fixture("not-an-sbom.json"));
    let o = w.push_manifest(
        "out/bad.json",
        &img.desc,
        &[],
        &[&img],
        "r.example.com/a",
        &[bad],
    );
    let err = failed(&o);
    assert!(
        err.contains("cannot attach")
            && err.contains("not-an-sbom.json")
            && err.contains("expected an SPDX JSON document")
            && err.contains("the keys dependencies, name, version")
            && err.contains("=MEDIA_TYPE"),
        "{err}"
    );
    // A subject that is not one of the pushed images.
    let o = w.push_manifest(
        "out/bad.json",
        &img.desc,
        &[],
        &[&img],
        "r.example.com/a",
        &[format!("{}=sbom.spdx.json", other.desc)],
    );
    let err = failed(&o);
    assert!(
        err.contains(&format!("the subject {}", other.digest))
            && err.contains("is not an image of this push"),
        "{err}"
    );
    // An index as subject.
    let (idx_desc, _) = w.index("idx", &[&img]);
    let o = w.push_manifest(
        "out/bad.json",
        &idx_desc,
        &["idx/index.json".into()],
        &[&img],
        "r.example.com/a",
        &[format!("{idx_desc}=sbom.spdx.json")],
    );
    let err = failed(&o);
    assert!(err.contains("attach documents to image manifests"), "{err}");
    // A malformed --attach.
    let o = w.push_manifest(
        "out/bad.json",
        &img.desc,
        &[],
        &[&img],
        "r.example.com/a",
        &["nothing".into()],
    );
    assert!(failed(&o).contains("expected SUBJECT_DESCRIPTOR.json=DOCUMENT"));
    assert!(!Path::new(&w.path("out/bad.json")).exists());
}

/// `rko push --manifest A --manifest B`: each image's attachments go to its own repository,
/// after every image is pushed, and each image's report lists its own.
#[test]
fn a_multi_manifest_push_attaches_to_each_image() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    let api = w.image("api", "amd64");
    let web = w.image("web", "arm64");
    let a = w.one(
        "a.json",
        &api,
        &format!("{host}/team/api"),
        &["app.spdx.json"],
    );
    let b = w.one(
        "b.json",
        &web,
        &format!("{host}/team/web"),
        &["app.cdx.json"],
    );
    let o = w.rko(&[
        "push",
        "--manifest",
        &a,
        "--manifest",
        &b,
        "--insecure-registry",
        &host,
        "--image-refs",
        "refs.json",
    ]);
    ok(&o);
    let refs = read_json(w.path("refs.json"));
    let images = refs["images"].as_array().unwrap();
    for ((report, img, repo), (doc, ty)) in [
        (&images[0], &api, "team/api"),
        (&images[1], &web, "team/web"),
    ]
    .into_iter()
    .zip([("app.spdx.json", SPDX), ("app.cdx.json", CYCLONEDX)])
    {
        let attached = report["attached"].as_array().unwrap();
        assert_eq!(attached.len(), 1, "{refs}");
        assert_eq!(attached[0]["artifactType"], ty);
        assert_eq!(attached[0]["subject"], img.digest.as_str());
        let (_, bytes) = manifest(&reg, repo, &format!("sha256-{}", hex(&img.digest)));
        let idx = json(&bytes);
        let entries = idx["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{idx}");
        assert_eq!(entries[0]["digest"], attached[0]["digest"]);
        check_referrer(
            &reg,
            repo,
            &entries[0],
            &subject_of(&w, img),
            &fixture_bytes(doc),
        );
    }
}

/// Two pushes attaching different documents to the same image at the same moment both end
/// up in its referrers tag: each re-reads the tag before its PUT and checks its entry is
/// there after it, merging again when the other got in between.
#[test]
fn concurrent_pushes_to_one_referrers_tag_keep_both() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    let img = w.image("img", "amd64");
    let repo = format!("{host}/team/api");
    let docs = ["app.spdx.json", "app.cdx.json", "provenance.intoto.json"];
    let pms: Vec<String> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| w.one(&format!("p{i}.json"), &img, &repo, &[d]))
        .collect();
    // The image first, so the three runs race on the referrers tag alone.
    ok(&w.push(&pms[0], &host, "r.json", &["--attach", "none"]));
    let children: Vec<std::process::Child> = pms
        .iter()
        .map(|pm| {
            Command::new(common::RKO)
                .args(["push", "--manifest", pm, "--insecure-registry", &host])
                .current_dir(w.dir.path())
                .env("DOCKER_CONFIG", w.path("docker"))
                .env_remove("RKO_ATTACH")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        ok(&o);
    }
    let (_, bytes) = manifest(&reg, "team/api", &format!("sha256-{}", hex(&img.digest)));
    let idx = json(&bytes);
    let mut types: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, [SPDX, CYCLONEDX, IN_TOTO], "{idx}");
}

#[test]
fn rko_build_push_attaches_its_sbom_and_provenance() {
    common::require_tools!("go", "docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let w = Work::new();
    let bin = common::go_build(
        &w.path(""),
        "app",
        "package main\n\nfunc main() { println(\"hi\") }\n",
        "amd64",
    );
    let repo = format!("{}/built", reg.host());
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            bin.to_str().unwrap(),
            "--import-path",
            "example.com/x",
            "--push",
            "--repository",
            &repo,
            "--naming",
            "bare",
        ];
        args.extend_from_slice(extra);
        w.rko(&args)
    };

    // Like `ko build`: the SPDX SBOM by default, and the provenance when asked for, attached
    // as referrers after the image and its tag.
    let o = build(&[
        "--provenance",
        "prov.json",
        "--builder-id",
        "https://ci.example.com/b",
        "--image-refs",
        "refs.json",
    ]);
    ok(&o);
    let refs = read_json(w.path("refs.json"));
    let digest = refs["reference"]
        .as_str()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    let attached: Vec<&str> = refs["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(attached, [SPDX, IN_TOTO], "{refs}");
    let (_, index) = manifest(&reg, "built", &format!("sha256-{}", hex(&digest)));
    let index = json(&index);
    let mut types: Vec<String> = Vec::new();
    for d in index["manifests"].as_array().unwrap() {
        let (_, m) = manifest(&reg, "built", d["digest"].as_str().unwrap());
        let m = json(&m);
        assert_eq!(m["subject"]["digest"], digest.as_str());
        let doc = blob(&reg, "built", m["layers"][0]["digest"].as_str().unwrap());
        if m["artifactType"] == IN_TOTO {
            // The attached statement is the one written to --provenance.
            assert_eq!(doc, std::fs::read(w.path("prov.json")).unwrap());
        } else {
            let sbom = json(&doc);
            assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
            assert!(
                doc.windows(13).any(|x| x == b"example.com/x"),
                "the main module"
            );
        }
        types.push(m["artifactType"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(types, [SPDX, IN_TOTO]);

    // --attach none pushes the image only; a stand-in binary with Go's magic but no build
    // info pushes with a warning and no SBOM, unless an SBOM is asked for.
    let fake = w.path("fake");
    fake_go_binary(&fake, 62, 1 << 16);
    let push_fake = |extra: &[&str]| {
        let mut args = vec![
            "build",
            fake.to_str().unwrap(),
            "--import-path",
            "example.com/fake",
            "--push",
            "--repository",
            &repo,
            "--naming",
            "bare",
            "--push-tag",
            "fake",
            "--image-refs",
            "fake.json",
        ];
        args.extend_from_slice(extra);
        w.rko(&args)
    };
    let err = ok(&push_fake(&[]));
    assert!(
        err.contains("carries no Go build info, so the push attaches no SBOM"),
        "{err}"
    );
    let report = read_json(w.path("fake.json"));
    assert!(report.get("attached").is_none(), "{report}");
    let fake_digest = reg.tag_digest("built", "fake").unwrap();
    let (status, _, _) = get(
        &reg,
        &format!("/v2/built/manifests/sha256-{}", hex(&fake_digest)),
        OCI_INDEX,
    );
    assert_eq!(status, 404, "no referrers for the stand-in binary");
    let err = failed(&push_fake(&["--sbom", "spdx"]));
    assert!(
        err.contains("carries no Go build info") && err.contains("--allow-non-go"),
        "{err}"
    );
}

//! Independent checkers: the images rko writes are read, unpacked, loaded and run by other
//! tools (skopeo, umoci, Docker, Podman), and bases written by those tools are accepted.
//! A test skips when a tool it needs is missing (fails under `RKO_TEST_REQUIRE_TOOLS=1`).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    DockerImage, Podman, go_build, layout_blob, parse_json, read_json, rko_ok, run_ok, unique_ref,
};
use serde_json::Value;
use tempfile::TempDir;

const IMPORT_PATH: &str = "example.com/x/cmd/app";

/// Prints the kodata file greeting.txt (found through $KO_DATA_PATH) and the user id.
const APP: &str = r#"package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	b, err := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "greeting.txt"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("kodata=%s uid=%d\n", b, os.Getuid())
}
"#;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A test's working directory with the app built for amd64 and a kodata tree whose
/// greeting.txt holds `greeting`.
struct Fixture {
    tmp: TempDir,
    app: PathBuf,
    kodata: PathBuf,
}

impl Fixture {
    fn new(greeting: &str) -> Self {
        let tmp = TempDir::new().unwrap();
        let app = go_build(tmp.path(), "app", APP, "amd64");
        let kodata = tmp.path().join("kodata");
        std::fs::create_dir_all(kodata.join("sub")).unwrap();
        std::fs::write(kodata.join("greeting.txt"), greeting).unwrap();
        std::fs::write(kodata.join("sub/nested.txt"), "nested\n").unwrap();
        Fixture { tmp, app, kodata }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `rko build` of the app with the kodata and `extra` flags; returns the digest.
    fn build(&self, extra: &[&str]) -> String {
        let mut args: Vec<String> = vec![
            "build".into(),
            self.app.display().to_string(),
            "--import-path".into(),
            IMPORT_PATH.into(),
            "--kodata".into(),
            self.kodata.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let digest = rko_ok(&args);
        assert_digest(&digest);
        digest
    }
}

fn assert_digest(s: &str) {
    assert!(
        s.len() == 71
            && s.starts_with("sha256:")
            && s[7..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "not a sha256 digest: {s:?}"
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn skopeo(args: &[&str]) -> String {
    run_ok(Command::new("skopeo").args(args))
}

fn skopeo_json(args: &[&str]) -> Value {
    parse_json(&skopeo(args))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The root manifest digest of a single-image OCI layout written by skopeo or umoci.
fn layout_root_digest(layout: &Path) -> String {
    let index = read_json(layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    manifests[0]["digest"].as_str().unwrap().to_string()
}

/// The manifest `digest` in `layout`.
fn layout_manifest(layout: &Path, digest: &str) -> Value {
    read_json(layout_blob(layout, digest))
}

fn expected_output(greeting: &str, uid: u32) -> String {
    format!("kodata={greeting} uid={uid}\n")
}

#[test]
fn skopeo_reads_the_tarball_as_oci_and_docker_archive() {
    common::require_tools!("go", "skopeo");
    let f = Fixture::new("skopeo");
    let tar = f.path("t.tar");
    let digest_file = f.path("digest");
    let digest = f.build(&[
        "--tag",
        "rko-test/skopeo:v1",
        "--tarball",
        p(&tar),
        "--digest-file",
        p(&digest_file),
    ]);
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        digest
    );

    let oci_archive = format!("oci-archive:{}", p(&tar));
    let docker_archive = format!("docker-archive:{}", p(&tar));

    let oci = skopeo_json(&["inspect", &oci_archive]);
    assert_eq!(oci["Digest"], digest.as_str(), "{oci}");
    assert_eq!(oci["Os"], "linux");
    assert_eq!(oci["Architecture"], "amd64");
    // static base + kodata + binary
    assert_eq!(oci["Layers"].as_array().unwrap().len(), 3, "{oci}");

    let raw = skopeo_json(&["inspect", "--raw", &oci_archive]);
    assert_eq!(raw["mediaType"], OCI_MANIFEST);
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    for l in raw["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    let config = skopeo_json(&["inspect", "--config", &oci_archive]);
    let c = &config["config"];
    assert_eq!(strings(&c["Entrypoint"]), ["/ko-app/app"]);
    assert_eq!(c["User"], "65532");
    assert_eq!(c["WorkingDir"], "/home/nonroot");
    let env = strings(&c["Env"]);
    assert!(
        env.contains(&"KO_DATA_PATH=/var/run/ko".to_string()),
        "{env:?}"
    );
    let path = env.iter().find(|e| e.starts_with("PATH=")).expect("PATH");
    assert!(path.ends_with(":/ko-app"), "{path}");
    let diff_ids = strings(&config["rootfs"]["diff_ids"]);
    assert_eq!(diff_ids.len(), 3);

    // The docker-archive view (manifest.json) names the same image: its layers are the
    // uncompressed diff_ids of the config.
    let docker = skopeo_json(&["inspect", &docker_archive]);
    assert_eq!(docker["Os"], "linux");
    assert_eq!(docker["Architecture"], "amd64");
    assert_eq!(strings(&docker["Layers"]), diff_ids, "{docker}");
    let docker_config = skopeo_json(&["inspect", "--config", &docker_archive]);
    assert_eq!(docker_config["config"], config["config"]);

    // skopeo copies the image unchanged into its own OCI layout.
    let copy = f.path("copy");
    skopeo(&["copy", &oci_archive, &format!("oci:{}:x", p(&copy))]);
    let copied = skopeo_json(&["inspect", &format!("oci:{}:x", p(&copy))]);
    assert_eq!(copied["Digest"], digest.as_str());
    assert!(layout_blob(&copy, &digest).is_file());

    let copy2 = f.path("copy2");
    skopeo(&["copy", &docker_archive, &format!("oci:{}:y", p(&copy2))]);
    let copied2 = skopeo_json(&["inspect", &format!("oci:{}:y", p(&copy2))]);
    assert_eq!(copied2["Layers"].as_array().unwrap().len(), 3);
}

fn mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn umoci_unpacks_the_layout() {
    common::require_tools!("go", "umoci");
    let f = Fixture::new("umoci");
    let layout = f.path("layout");
    let digest = f.build(&["--tag", "rko-test/umoci:v1", "--layout", p(&layout)]);

    let index = read_json(layout.join("index.json"));
    let m = &index["manifests"][0];
    assert_eq!(m["digest"], digest.as_str(), "{index}");
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");

    let bundle = f.path("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", p(&layout)))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");

    assert_eq!(mode(&rootfs.join("ko-app/app")), (0o555, 0, 0));
    assert_eq!(
        std::fs::read(rootfs.join("ko-app/app")).unwrap(),
        std::fs::read(&f.app).unwrap()
    );
    let ko = rootfs.join("var/run/ko");
    assert_eq!(mode(&ko), (0o555, 0, 0));
    assert_eq!(mode(&ko.join("sub")), (0o555, 0, 0));
    assert_eq!(mode(&ko.join("greeting.txt")), (0o555, 0, 0));
    assert_eq!(mode(&ko.join("sub/nested.txt")), (0o555, 0, 0));
    assert_eq!(
        std::fs::read_to_string(ko.join("greeting.txt")).unwrap(),
        "umoci"
    );
    assert_eq!(
        std::fs::read_to_string(ko.join("sub/nested.txt")).unwrap(),
        "nested\n"
    );

    assert_eq!(mode(&rootfs.join("tmp")), (0o1777, 0, 0));
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:"), "{passwd}");
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("nonroot:x:65532:"), "{group}");
    let (_, uid, gid) = mode(&rootfs.join("home/nonroot"));
    assert_eq!((uid, gid), (65532, 65532));
    let certs = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(certs.contains("-----BEGIN CERTIFICATE-----"));

    // umoci's runtime config carries the image config.
    let runtime = read_json(bundle.join("config.json"));
    assert_eq!(strings(&runtime["process"]["args"]), ["/ko-app/app"]);
    assert_eq!(runtime["process"]["user"]["uid"], 65532);
    assert_eq!(runtime["process"]["cwd"], "/home/nonroot");
}

#[test]
fn docker_loads_and_runs_the_tarball() {
    common::require_tools!("go", "docker");
    let f = Fixture::new("docker");
    let tar = f.path("t.tar");
    let layout = f.path("layout");
    let reference = unique_ref("docker");
    let digest = f.build(&[
        "--tag",
        &reference,
        "--tarball",
        p(&tar),
        "--layout",
        p(&layout),
    ]);

    let image = DockerImage::load(&tar, &reference);
    assert_eq!(image.run(&[]), expected_output("docker", 65532));

    // Docker's image id is the config digest.
    let manifest = layout_manifest(&layout, &digest);
    assert_eq!(
        image.inspect("{{.Id}}"),
        manifest["config"]["digest"].as_str().unwrap()
    );
    assert_eq!(
        image.inspect("{{json .Config.Entrypoint}}"),
        r#"["/ko-app/app"]"#
    );
    assert_eq!(image.inspect("{{.Config.User}}"), "65532");
}

#[test]
fn podman_loads_and_runs_the_tarball() {
    common::require_tools!("go", "podman");
    let f = Fixture::new("podman");
    let tar = f.path("t.tar");
    let reference = unique_ref("podman");
    let digest = f.build(&["--tag", &reference, "--tarball", p(&tar)]);

    let podman = Podman::new();
    let loaded = podman.ok(&["load", "-i", p(&tar)]);
    assert!(loaded.contains(&reference), "{loaded}");
    assert_eq!(
        podman
            .ok(&["image", "inspect", "--format", "{{.Digest}}", &reference])
            .trim(),
        digest
    );
    assert_eq!(
        podman.ok(&["run", "--rm", &reference]),
        expected_output("podman", 65532)
    );
}

/// Builds an image with rko on the static base and copies it with skopeo into an OCI
/// layout `dir` (tag `base`), in `format` (`oci` or `v2s2`). Returns the base's digest.
fn skopeo_base(f: &Fixture, dir: &Path, format: &str) -> String {
    let tar = f.path(&format!("base-{format}.tar"));
    let kodata = f.path("base-kodata");
    std::fs::create_dir_all(&kodata).unwrap();
    std::fs::write(kodata.join("greeting.txt"), "from the base").unwrap();
    rko_ok([
        "build",
        p(&f.app),
        "--import-path",
        "example.com/x/cmd/base",
        "--kodata",
        p(&kodata),
        "--tag",
        "rko-test/base:v1",
        "--tarball",
        p(&tar),
    ]);
    skopeo(&[
        "copy",
        "--format",
        format,
        &format!("oci-archive:{}", p(&tar)),
        &format!("oci:{}:base", p(dir)),
    ]);
    layout_root_digest(dir)
}

/// Checks that `derived` (an image in an rko layout) is `base` (an image in another
/// layout) plus kodata and binary layers.
fn assert_on_base(base_layout: &Path, base_digest: &str, layout: &Path, digest: &str) -> Value {
    let base = layout_manifest(base_layout, base_digest);
    let derived = layout_manifest(layout, digest);
    let base_layers = base["layers"].as_array().unwrap();
    let layers = derived["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 2, "{derived}");
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    assert_eq!(
        derived["annotations"]["org.opencontainers.image.base.digest"],
        base_digest
    );
    let base_config = read_json(layout_blob(
        base_layout,
        base["config"]["digest"].as_str().unwrap(),
    ));
    let config = read_json(layout_blob(
        layout,
        derived["config"]["digest"].as_str().unwrap(),
    ));
    let base_diff_ids = strings(&base_config["rootfs"]["diff_ids"]);
    let diff_ids = strings(&config["rootfs"]["diff_ids"]);
    assert_eq!(diff_ids.len(), base_diff_ids.len() + 2);
    assert_eq!(diff_ids[..base_diff_ids.len()], base_diff_ids[..]);
    config
}

/// An image built on a layout base, written as a tarball and a layout, and checked to be
/// the base plus kodata and binary layers.
struct OnBase {
    tar: PathBuf,
    layout: PathBuf,
    reference: String,
    digest: String,
    config: Value,
}

fn build_on_base(f: &Fixture, base_dir: &Path, base_digest: &str, name: &str) -> OnBase {
    let (tar, layout, reference) = (f.path("t.tar"), f.path("layout"), unique_ref(name));
    let digest = f.build(&[
        "--base",
        &format!("{}@{base_digest}", p(base_dir)),
        "--tag",
        &reference,
        "--tarball",
        p(&tar),
        "--layout",
        p(&layout),
    ]);
    let config = assert_on_base(base_dir, base_digest, &layout, &digest);
    OnBase {
        tar,
        layout,
        reference,
        digest,
        config,
    }
}

#[test]
fn base_written_by_skopeo() {
    common::require_tools!("go", "skopeo", "docker");
    let f = Fixture::new("derived");
    let base_dir = f.path("base");
    let base_digest = skopeo_base(&f, &base_dir, "oci");
    assert_eq!(
        layout_manifest(&base_dir, &base_digest)["mediaType"],
        OCI_MANIFEST
    );

    let OnBase {
        tar,
        reference,
        digest,
        ..
    } = build_on_base(&f, &base_dir, &base_digest, "skopeo-base");
    let inspected = skopeo_json(&["inspect", &format!("oci-archive:{}", p(&tar))]);
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 5);

    // The derived kodata layer shadows the base's greeting.txt.
    let image = DockerImage::load(&tar, &reference);
    assert_eq!(image.run(&[]), expected_output("derived", 65532));
}

#[test]
fn base_written_by_umoci() {
    common::require_tools!("go", "umoci", "docker");
    let f = Fixture::new("on umoci");
    let base_dir = f.path("base");
    let umoci = |args: &[&str]| run_ok(Command::new("umoci").args(args));
    let image = format!("{}:base", p(&base_dir));
    umoci(&["init", "--layout", p(&base_dir)]);
    umoci(&["new", "--image", &image]);
    let bundle = f.path("base-bundle");
    umoci(&["unpack", "--image", &image, p(&bundle)]);
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::write(
        bundle.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\napp:x:1234:1234::/:/sbin/nologin\n",
    )
    .unwrap();
    umoci(&["repack", "--image", &image, p(&bundle)]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.user",
        "1234",
        "--config.env",
        "FOO=bar",
        "--config.workingdir",
        "/",
    ]);
    let base_digest = layout_root_digest(&base_dir);

    let OnBase {
        tar,
        reference,
        config,
        ..
    } = build_on_base(&f, &base_dir, &base_digest, "umoci-base");
    assert_eq!(config["config"]["User"], "1234");
    assert_eq!(config["config"]["WorkingDir"], "/");
    let env = strings(&config["config"]["Env"]);
    assert!(env.contains(&"FOO=bar".to_string()), "{env:?}");
    assert!(
        env.contains(&"KO_DATA_PATH=/var/run/ko".to_string()),
        "{env:?}"
    );
    let path = env.iter().find(|e| e.starts_with("PATH=")).expect("PATH");
    assert!(path.ends_with("/ko-app"), "{path}");
    // umoci's history has an empty_layer entry; the derived history keeps it and adds two.
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        3,
        "{config}"
    );

    let image = DockerImage::load(&tar, &reference);
    assert_eq!(image.run(&[]), expected_output("on umoci", 1234));
}

#[test]
fn base_with_docker_media_types() {
    common::require_tools!("go", "skopeo", "docker");
    let f = Fixture::new("docker typed");
    let base_dir = f.path("base");
    let base_digest = skopeo_base(&f, &base_dir, "v2s2");
    let base = layout_manifest(&base_dir, &base_digest);
    assert_eq!(
        base["mediaType"], DOCKER_MANIFEST,
        "skopeo wrote no Docker manifest: {base}"
    );

    let OnBase {
        tar,
        layout,
        reference,
        digest,
        ..
    } = build_on_base(&f, &base_dir, &base_digest, "docker-base");

    let index = read_json(layout.join("index.json"));
    assert_eq!(
        index["manifests"][0]["mediaType"], DOCKER_MANIFEST,
        "{index}"
    );
    let manifest = layout_manifest(&layout, &digest);
    assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], DOCKER_CONFIG);
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], DOCKER_LAYER, "{manifest}");
    }

    let raw = skopeo(&["inspect", "--raw", &format!("oci-archive:{}", p(&tar))]);
    assert_eq!(parse_json(&raw), manifest);
    let inspected = skopeo_json(&["inspect", &format!("docker-archive:{}", p(&tar))]);
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 5);

    let image = DockerImage::load(&tar, &reference);
    assert_eq!(image.run(&[]), expected_output("docker typed", 65532));
}

#[test]
fn multi_platform_index() {
    common::require_tools!("go", "skopeo", "docker");
    let f = Fixture::new("multi");
    let t = |name: &str| f.path(name);
    let app_arm64 = go_build(f.tmp.path(), "app-arm64", APP, "arm64");

    rko_ok([
        "layer",
        "kodata",
        "--dir",
        p(&f.kodata),
        "--import-path",
        IMPORT_PATH,
        "--output",
        p(&t("kodata.tgz")),
        "--descriptor",
        p(&t("kodata.json")),
    ]);
    let mut digests = Vec::new();
    let mut blob_args: Vec<String> = Vec::new();
    let mut layer_args: Vec<String> = vec![
        "--layer".into(),
        format!("{}={}", p(&t("kodata.json")), p(&t("kodata.tgz"))),
    ];
    for (arch, bin) in [("amd64", &f.app), ("arm64", &app_arm64)] {
        let platform = format!("linux/{arch}");
        let bin_blob = t(&format!("bin-{arch}.tgz"));
        let bin_desc = t(&format!("bin-{arch}.json"));
        rko_ok([
            "layer",
            "binary",
            "--binary",
            p(bin),
            "--import-path",
            IMPORT_PATH,
            "--platform",
            &platform,
            "--output",
            p(&bin_blob),
            "--descriptor",
            p(&bin_desc),
        ]);
        let config = t(&format!("config-{arch}.json"));
        let manifest = t(&format!("manifest-{arch}.json"));
        let digest_out = t(&format!("digest-{arch}"));
        rko_ok([
            "image",
            "--platform",
            &platform,
            "--layer",
            p(&t("kodata.json")),
            "--layer",
            p(&bin_desc),
            "--config-out",
            p(&config),
            "--manifest-out",
            p(&manifest),
            "--descriptor-out",
            p(&t(&format!("desc-{arch}.json"))),
            "--digest-out",
            p(&digest_out),
        ]);
        let digest = std::fs::read_to_string(&digest_out)
            .unwrap()
            .trim()
            .to_string();
        assert_digest(&digest);
        digests.push(digest);
        blob_args.extend(["--blob".into(), p(&manifest).into()]);
        blob_args.extend(["--blob".into(), p(&config).into()]);
        layer_args.extend([
            "--layer".into(),
            format!("{}={}", p(&bin_desc), p(&bin_blob)),
        ]);
    }
    // The low-level actions give the same amd64 image as `rko build`.
    assert_eq!(f.build(&[]), digests[0]);

    rko_ok([
        "index",
        "--image",
        p(&t("desc-amd64.json")),
        "--image",
        p(&t("desc-arm64.json")),
        "--index-out",
        p(&t("index.json")),
        "--descriptor-out",
        p(&t("index-desc.json")),
        "--digest-out",
        p(&t("index-digest")),
    ]);
    let index_digest = std::fs::read_to_string(t("index-digest"))
        .unwrap()
        .trim()
        .to_string();
    assert_digest(&index_digest);
    blob_args.extend(["--blob".into(), p(&t("index.json")).into()]);

    let write = |action: &str, out: &Path, reference: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            action.into(),
            "--root".into(),
            p(&t("index-desc.json")).into(),
            "--tag".into(),
            reference.into(),
            "--output".into(),
            p(out).into(),
        ];
        args.extend(blob_args.iter().cloned());
        args.extend(layer_args.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        rko_ok(&args);
    };
    let reference = unique_ref("multi");
    let layout = t("layout");
    let tar = t("t.tar");
    write("layout", &layout, &reference, &[]);
    write("tarball", &tar, &reference, &[]);

    let top = read_json(layout.join("index.json"));
    assert_eq!(top["manifests"][0]["mediaType"], OCI_INDEX, "{top}");
    assert_eq!(
        top["manifests"][0]["digest"],
        index_digest.as_str(),
        "{top}"
    );
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        reference.split_once(':').unwrap().1
    );
    let oci = format!("oci:{}", p(&layout));
    assert_eq!(
        skopeo_json(&["inspect", &oci])["Digest"],
        index_digest.as_str()
    );
    let index = skopeo_json(&["inspect", "--raw", &oci]);
    assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    for (m, (arch, digest)) in manifests
        .iter()
        .zip(["amd64", "arm64"].iter().zip(&digests))
    {
        assert_eq!(m["platform"]["os"], "linux");
        assert_eq!(m["platform"]["architecture"], *arch);
        assert_eq!(m["digest"], digest.as_str());
        assert_eq!(m["mediaType"], OCI_MANIFEST);
    }
    let archive_index = skopeo_json(&["inspect", "--raw", &format!("oci-archive:{}", p(&tar))]);
    assert_eq!(archive_index, index);
    for (arch, digest) in ["amd64", "arm64"].iter().zip(&digests) {
        let img = skopeo_json(&[
            "inspect",
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            &oci,
        ]);
        assert_eq!(img["Architecture"], *arch, "{img}");
        assert_eq!(img["Layers"].as_array().unwrap().len(), 3);
        assert_eq!(layout_manifest(&layout, digest)["mediaType"], OCI_MANIFEST);
    }
    // skopeo copies the whole index.
    let copy = t("copy");
    skopeo(&["copy", "--all", &oci, &format!("oci:{}:all", p(&copy))]);
    // (skopeo 1.9 re-serializes the index, dropping fields it does not know, such as the
    // descriptors' artifactType, so compare the images it lists.)
    let copied = skopeo_json(&["inspect", "--raw", &format!("oci:{}:all", p(&copy))]);
    let listed = |index: &Value| -> Vec<(Value, Value)> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["digest"].clone(), m["platform"].clone()))
            .collect()
    };
    assert_eq!(listed(&copied), listed(&index));
    for digest in &digests {
        assert!(layout_blob(&copy, digest).is_file());
    }

    // docker load takes the amd64 image by default ...
    let image = DockerImage::load(&tar, &reference);
    assert_eq!(image.inspect("{{.Architecture}}"), "amd64");
    assert_eq!(image.run(&[]), expected_output("multi", 65532));
    drop(image);

    // ... or the one asked for.
    let reference_arm = unique_ref("multi-arm64");
    let tar_arm = t("t-arm64.tar");
    write(
        "tarball",
        &tar_arm,
        &reference_arm,
        &["--load-platform", "linux/arm64"],
    );
    let image = DockerImage::load(&tar_arm, &reference_arm);
    assert_eq!(image.inspect("{{.Architecture}}"), "arm64");
}

//! End to end: the Bazel rules under the real Bazel (Debian `bazel-bootstrap` 4.2.3) on
//! copies of tests/e2e/ws, with a docker-registry on loopback holding the two-platform base
//! that `ko_base` pulls, nginx WebDAV (HTTP) and BuildGrid (gRPC) as remote caches, and
//! skopeo, umoci, docker and podman checking what comes out. Bazel runs one build at a time
//! (see `bazel::serial`).

mod buck2_contract;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::bazel::{self, CacheServer, Spawn, Workspace};
use common::buildgrid::BuildGrid;
use common::registry::{Registry, RegistryOptions};
use common::{DockerImage, Podman, read_json, run_ok};

fn e2e_src() -> PathBuf {
    bazel::repo_root().join("tests/e2e/ws")
}

/// A registry with the base, and a workspace copy pointed at them.
struct Setup {
    reg: Registry,
    base_digest: String,
    _scratch: tempfile::TempDir,
}

fn setup() -> Setup {
    let reg = Registry::start(RegistryOptions::plain());
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch.path());
    Setup {
        reg,
        base_digest,
        _scratch: scratch,
    }
}

impl Setup {
    fn workspace(&self, subpath: &str) -> Workspace {
        let ws = Workspace::copy(&e2e_src(), subpath);
        let host = self.reg.host();
        ws.write("e2e.bzl", &common::e2e_bzl(&host, &host, &self.base_digest));
        ws
    }
}

fn digest_of(ws: &Workspace, rel: &str) -> String {
    std::fs::read_to_string(ws.bin(rel))
        .unwrap()
        .trim()
        .to_string()
}

fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(Command::new("skopeo").args(["inspect", "--tls-verify=false", reference]));
    common::parse_json(&out)["Digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Unpacks the image in an OCI layout with umoci (via a tagged copy, as umoci needs a tag);
/// returns the rootfs.
fn umoci_unpack(layout: &Path, work: &Path) -> PathBuf {
    let tagged = work.join("tagged");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}", layout.display()),
        &format!("oci:{}:img", tagged.display()),
    ]));
    let bundle = work.join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:img", tagged.display()))
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

#[test]
fn bazel_builds_checks_pushes_and_loads_images() {
    common::require_tools!(
        "bazel",
        "go",
        "docker-registry",
        "skopeo",
        "umoci",
        "docker",
        "podman"
    );
    let _serial = bazel::serial();
    let s = setup();
    let mut ws = s.workspace("ws");
    let podman = Podman::new();
    for (k, v) in podman.env() {
        ws.env(k, v);
    }
    ws.ok(&[
        "build",
        "//cmd/foo:image",
        "//cmd/foo:image_index",
        "//cmd/bar:image",
        "--output_groups=+tarball,+layout",
    ]);
    let foo = digest_of(&ws, "cmd/foo/image.digest");

    // The tarball and the layout are the image the digest names, and unpack to ko's layout.
    assert_eq!(
        skopeo_digest(&format!(
            "oci-archive:{}",
            ws.bin("cmd/foo/image.tar").display()
        )),
        foo
    );
    let work = tempfile::tempdir().unwrap();
    let rootfs = umoci_unpack(&ws.bin("cmd/foo/image.layout"), work.path());
    assert!(rootfs.join("ko-app/foo").is_file());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("var/run/ko/greeting.txt")).unwrap(),
        "hello from kodata"
    );
    assert!(rootfs.join("var/run/ko/static/site.css").is_file());
    // The base's own file and static base content are there too.
    assert!(rootfs.join("var/run/ko/base-release.txt").is_file());
    assert!(rootfs.join("etc/passwd").is_file());
    let config = read_json(ws.bin("cmd/foo/image.config.json"));
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING_STYLE=plain"), "{env:?}");
    assert!(env.contains(&"KO_DATA_PATH=/var/run/ko"), "{env:?}");
    assert_eq!(config["config"]["Entrypoint"][0], "/ko-app/foo");

    // The index: amd64 then arm64, and the arm64 image carries an arm64 binary.
    let index = read_json(ws.bin("cmd/foo/image_index.index.json"));
    let platforms = common::index_platforms(&index);
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // The transitioned amd64 image is the same image as the plain one.
    assert_eq!(index["manifests"][0]["digest"], foo.as_str());
    let arm_layout = work.path().join("arm");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--override-arch",
        "arm64",
        &format!("oci:{}", ws.bin("cmd/foo/image_index.layout").display()),
        &format!("oci:{}:img", arm_layout.display()),
    ]));
    let arm_bundle = work.path().join("arm-bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:img", arm_layout.display()))
            .arg(&arm_bundle),
    );
    let elf = std::fs::read(arm_bundle.join("rootfs/ko-app/foo")).unwrap();
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        183,
        "not an arm64 ELF"
    );

    // bazel run :image.push, then the registry has it under its digest and tag.
    let (stdout, _) = ws.ok(&["run", "//cmd/foo:image.push"]);
    assert!(
        stdout.contains(&format!("{}/foo@{foo}", s.reg.host())),
        "{stdout}"
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{}/foo:latest", s.reg.host())),
        foo
    );
    let (_, stderr) = ws.ok(&["run", "//cmd/foo:image_index.push"]);
    assert!(
        stderr.contains("mounted"),
        "base layers not mounted:\n{stderr}"
    );
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/e2e:multi", s.reg.host()),
    ]));
    assert_eq!(
        format!("sha256:{}", common::sha256_hex(raw.as_bytes())),
        digest_of(&ws, "cmd/foo/image_index.digest")
    );
    // The run-time --repository override.
    let (stdout, _) = ws.ok(&[
        "run",
        "//cmd/foo:image.push",
        "--",
        "--repository",
        &format!("{}/elsewhere", s.reg.host()),
        "--image-refs",
        "refs.json",
    ]);
    assert!(stdout.contains("/elsewhere@"), "{stdout}");
    // A relative path is where the user ran bazel, not in the runfiles tree.
    let refs = read_json(ws.dir.join("refs.json"));
    assert!(
        refs.to_string()
            .contains(&format!("{}/elsewhere@{foo}", s.reg.host())),
        "{refs}"
    );

    // Tags from the workspace status: refused unstamped, expanded with --stamp.
    let stderr = ws.fail(&["build", "//cmd/foo:image_stamped.push"]);
    assert!(
        stderr
            .contains("uses the workspace status key STABLE_RELEASE but the build is not stamped"),
        "{stderr}"
    );
    let status = format!(
        "--workspace_status_command={}",
        ws.dir.join("status.sh").display()
    );
    let (stdout, _) = ws.ok(&["run", "--stamp", &status, "//cmd/foo:image_stamped.push"]);
    assert!(
        stdout.contains(&format!("{}/foo:release-v9.8.7@{foo}", s.reg.host())),
        "{stdout}"
    );

    // ko_image with platforms, pushed with ko's preserve-import-paths naming.
    ws.ok(&["run", "//cmd/bar:image_multi.push"]);
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/ko/example.com/e2e/cmd/bar:multi", s.reg.host()),
    ]));
    let multi = common::parse_json(&raw);
    assert_eq!(multi["manifests"].as_array().unwrap().len(), 2, "{raw}");
    assert_eq!(
        format!("sha256:{}", common::sha256_hex(raw.as_bytes())),
        digest_of(&ws, "cmd/bar/image_multi.digest")
    );

    // bazel run :image.load into docker, and the image runs.
    let image = DockerImage {
        reference: "rko-e2e/foo:latest".into(),
    };
    let (_, stderr) = ws.ok(&["run", "//cmd/foo:image.load"]);
    assert!(stderr.contains("loaded with docker"), "{stderr}");
    assert_eq!(
        image.run(&[]).trim(),
        "foo linux/amd64 says hello from kodata (style plain)"
    );

    // ... and into podman.
    let (_, stderr) = ws.ok(&["run", "//cmd/foo:image.load", "--", "--tool", "podman"]);
    assert!(stderr.contains("loaded with podman"), "{stderr}");
    let out = podman.ok(&["run", "--rm", "rko-e2e/foo:latest"]);
    assert_eq!(
        out.trim(),
        "foo linux/amd64 says hello from kodata (style plain)"
    );
}

#[test]
fn bazel_eager_base_builds_a_tarball_with_the_registry_gone() {
    common::require_tools!("bazel", "go", "docker-registry", "skopeo");
    let _serial = bazel::serial();
    let s = setup();
    let ws = s.workspace("ws");
    // The first build pulls the base, layers and all.
    ws.ok(&["build", "//cmd/bar:image_eager"]);
    let digest = digest_of(&ws, "cmd/bar/image_eager.digest");
    // The same image as on the shallow base.
    ws.ok(&["build", "//cmd/bar:image"]);
    assert_eq!(digest_of(&ws, "cmd/bar/image.digest"), digest);
    // An image for a platform the base was not pulled for fails analysis, naming both.
    let stderr = ws.fail(&["build", "//bad/base_lacks_platform:index"]);
    assert!(
        stderr.contains(
            "ko_image //cmd/bar:image_eager: attribute 'base': expected a base with an image for linux/arm64, found @e2e_base_eager//:image with only linux/amd64"
        ),
        "{stderr}"
    );
    let Setup { reg, .. } = s;
    drop(reg);
    ws.ok(&["build", "//cmd/bar:image_eager", "--output_groups=+tarball"]);
    assert_eq!(
        skopeo_digest(&format!(
            "oci-archive:{}",
            ws.bin("cmd/bar/image_eager.tar").display()
        )),
        digest
    );
    let layers = run_ok(
        Command::new("tar")
            .arg("-tf")
            .arg(ws.bin("cmd/bar/image_eager.tar")),
    );
    assert_eq!(
        layers
            .lines()
            .filter(|l| l.starts_with("blobs/sha256/"))
            .count(),
        // manifest, config, static base, base kodata, base binary, kodata, binary
        7,
        "{layers}"
    );
}

/// `rko pull`'s arguments with the output directory (Bazel's repository-relative `layout`,
/// Buck2's buck-out directory) as `LAYOUT`.
fn pull_argv(args: &[String]) -> Vec<String> {
    let mut v = args.to_vec();
    if let Some(i) = v.iter().position(|a| a == "-o") {
        v[i + 1] = "LAYOUT".into();
    }
    v
}

#[test]
fn bazel_ko_base_pulls_through_its_mirror_with_nothing_at_the_origin() {
    common::require_tools!("bazel", "go", "docker-registry");
    let _serial = bazel::serial();
    // The base only in the mirror; nothing listens at the origin.
    let mirror = Registry::start(RegistryOptions::plain());
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&mirror, scratch.path());
    let origin = format!("127.0.0.1:{}", common::registry::free_port());
    let e2e_bzl = common::e2e_bzl(&origin, &mirror.host(), &base_digest);
    let ws = Workspace::copy(&e2e_src(), "ws");
    ws.write("e2e.bzl", &e2e_bzl);
    // @e2e_base_mirrored pulls with a wrapper that records rko's arguments, then runs rko.
    let argv_log = scratch.path().join("pull-argv");
    ws.write(
        "pull_rko.sh",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexec '{}' \"$@\"\n",
            argv_log.display(),
            common::RKO
        ),
    );
    std::fs::set_permissions(
        ws.dir.join("pull_rko.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let workspace = ws.read("WORKSPACE");
    let named = "    name = \"e2e_base_mirrored\",\n";
    assert!(workspace.contains(named), "{workspace}");
    ws.write(
        "WORKSPACE",
        &workspace.replace(named, &format!("{named}    rko = \"//:pull_rko.sh\",\n")),
    );
    std::fs::create_dir_all(ws.dir.join("mirror")).unwrap();
    ws.write(
        "mirror/BUILD.bazel",
        "load(\"@rules_ko//rules/bazel:defs.bzl\", \"ko_image\")\n\n\
         ko_image(\n    name = \"image\",\n    base = \"@e2e_base_mirrored\",\n    \
         binary = \"//cmd/bar\",\n    importpath = \"example.com/e2e/cmd/bar\",\n)\n",
    );

    ws.ok(&["build", "//mirror:image"]);
    assert!(
        digest_of(&ws, "mirror/image.digest").starts_with("sha256:"),
        "an image on the mirrored base"
    );
    let log = mirror.log();
    assert!(
        log.contains(&format!("/v2/base/manifests/{base_digest}")),
        "the mirror served the base's index:\n{log}"
    );

    // The arguments are Buck2's for //base:e2e_mirrored (the same ko_base), from the
    // shared pull_args in starlark/ko.bzl.
    let bazel_argv: Vec<String> = std::fs::read_to_string(&argv_log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mirror_arg = format!("{origin}={}", mirror.host());
    assert!(
        bazel_argv
            .windows(2)
            .any(|w| w[0] == "--mirror" && w[1] == mirror_arg),
        "{bazel_argv:?}"
    );
    let buck2_project = buck2_contract::TestProject::new(&e2e_src(), Path::new(common::RKO));
    std::fs::write(buck2_project.root().join("e2e.bzl"), &e2e_bzl).unwrap();
    let cfg = buck2_project.project.default_config().unwrap();
    let a = buck2_project
        .project
        .analyze(
            &buck2_contract::TargetLabel::parse("root//base:e2e_mirrored", "root", "").unwrap(),
            &cfg,
        )
        .unwrap();
    let pulls: Vec<_> = a
        .actions
        .iter()
        .filter(|a| a.category == "ko_pull")
        .collect();
    assert_eq!(pulls.len(), 1);
    assert_eq!(
        pull_argv(&bazel_argv),
        pull_argv(&pulls[0].argv()[1..]),
        "Bazel's and Buck2's ko_base give rko pull different arguments"
    );
}

/// Runs `cmd` with `RKO_ETC_DIR=etc`; returns (success, stdout + stderr).
fn with_etc(cmd: &mut Command, etc: &Path) -> (bool, String) {
    let out = cmd.env("RKO_ETC_DIR", etc).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bazel_trust_from_the_environment_reaches_ko_base_and_the_push_launcher() {
    common::require_tools!("bazel", "go", "docker-registry", "openssl");
    let _serial = bazel::serial();
    // A TLS registry whose CA only the per-registry directory under $RKO_ETC_DIR holds.
    let reg = Registry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch.path());
    let etc = scratch.path().join("etc");
    let certs = etc.join("docker/certs.d").join(reg.host());
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(reg.ca_cert().unwrap(), certs.join("ca.crt")).unwrap();
    let untrusting = scratch.path().join("empty-etc");
    std::fs::create_dir_all(&untrusting).unwrap();

    let ws = Workspace::copy(&e2e_src(), "ws");
    ws.write(
        "e2e.bzl",
        &common::e2e_bzl(&reg.host(), &reg.host(), &base_digest),
    );
    // A base and a push with no insecure_registries: rko verifies the registry's TLS.
    ws.write(
        "WORKSPACE",
        &(ws.read("WORKSPACE")
            + "\nko_base(\n    name = \"trusted_base\",\n    digest = E2E_BASE_DIGEST,\n    \
               image = E2E_REGISTRY + \"/base\",\n)\n"),
    );
    std::fs::create_dir_all(ws.dir.join("trusted")).unwrap();
    ws.write(
        "trusted/BUILD.bazel",
        "load(\"@rules_ko//rules/bazel:defs.bzl\", \"ko_image\", \"ko_push\")\n\
         load(\"//:e2e.bzl\", \"E2E_REGISTRY\")\n\n\
         ko_image(\n    name = \"image\",\n    base = \"@trusted_base\",\n    \
         binary = \"//cmd/bar\",\n    importpath = \"example.com/e2e/cmd/bar\",\n)\n\n\
         ko_push(\n    name = \"image.push\",\n    image = \":image\",\n    \
         remote_tags = [\"latest\"],\n    repository = E2E_REGISTRY + \"/trusted\",\n)\n",
    );

    // The repository rule runs rko pull with the client's environment.
    let untrusted = |out: &str| out.contains("TLS verification of") && out.contains("certs.d");
    let (ok, out) = with_etc(&mut ws.bazel(&["build", "//trusted:image"]), &untrusting);
    assert!(!ok && out.contains("rko pull") && untrusted(&out), "{out}");
    let (ok, out) = with_etc(&mut ws.bazel(&["build", "//trusted:image"]), &etc);
    assert!(ok, "{out}");

    // bazel run hands the client's environment to the launcher, which hands it to rko.
    let (ok, out) = with_etc(&mut ws.bazel(&["run", "//trusted:image.push"]), &etc);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{}/trusted@sha256:", reg.host())),
        "{out}"
    );
    let launcher = ws.bin("trusted/image.push.sh");
    let (ok, out) = with_etc(Command::new(&launcher).current_dir(&ws.dir), &untrusting);
    assert!(
        !ok && untrusted(&out),
        "the launcher pushed without the CA:\n{out}"
    );
    let (ok, out) = with_etc(Command::new(&launcher).current_dir(&ws.dir), &etc);
    assert!(ok, "{out}");

    // ko_base declares RKO_ETC_DIR in `environ`: a change re-runs the pull (which now fails).
    let (ok, out) = with_etc(&mut ws.bazel(&["build", "//trusted:image"]), &untrusting);
    assert!(
        !ok && out.contains("rko pull") && untrusted(&out),
        "the pull was not re-run:\n{out}"
    );
}

fn ko_spawns(log: &[Spawn]) -> Vec<&Spawn> {
    log.iter()
        .filter(|s| s.mnemonic.starts_with("Ko"))
        .collect()
}

fn ran(log: &[Spawn]) -> Vec<String> {
    let mut v: Vec<String> = ko_spawns(log)
        .into_iter()
        .filter(|s| !s.remote_cache_hit)
        .map(|s| s.progress.clone())
        .collect();
    v.sort();
    v
}

/// The remote cache a round of [`remote_cache_round`] builds with, and what the test can see
/// of what it holds.
enum RemoteCache<'a> {
    /// nginx WebDAV: every entry is a file, so the cache's growth is counted in bytes.
    Http(&'a CacheServer),
    /// BuildGrid's in-memory CAS: blobs are read back by digest over ByteStream.
    Grpc(&'a BuildGrid),
}

impl RemoteCache<'_> {
    fn url(&self) -> String {
        match self {
            RemoteCache::Http(c) => c.url(),
            RemoteCache::Grpc(g) => g.url(),
        }
    }
}

/// (sha256 hex, size) of every output of the rules_ko spawns of `log`.
fn ko_outputs(log: &[Spawn]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = ko_spawns(log)
        .iter()
        .flat_map(|s| s.outputs.iter().map(|o| (o.1.clone(), o.2)))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// (runner, outputs) of each rules_ko spawn, by progress message.
type KoRuns = BTreeMap<String, (String, Vec<(String, String, u64)>)>;

fn ko_runs(log: &[Spawn]) -> KoRuns {
    ko_spawns(log)
        .into_iter()
        .map(|s| (s.progress.clone(), (s.runner.clone(), s.outputs.clone())))
        .collect()
}

#[test]
fn bazel_persistent_workers_make_the_bytes_sandboxed_actions_make() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    let logs = tempfile::tempdir().unwrap();
    let targets = [
        "//analysis:subject",
        "//analysis:subject.push",
        "//analysis:multi",
    ];
    let build = |ws: &Workspace, name: &str, strategy: &[&str]| {
        let log = logs.path().join(name);
        let flag = format!("--execution_log_json_file={}", log.display());
        let mut args = vec!["build", flag.as_str()];
        args.extend(strategy);
        args.extend(targets);
        ws.ok(&args);
        ko_runs(&bazel::read_execution_log(&log))
    };
    // Two checkouts, so two output bases: every action runs in both.
    let a = Workspace::copy(&e2e_src(), "ws");
    let by_worker = build(&a, "worker.json", &[]);
    let b = Workspace::copy(&e2e_src(), "elsewhere/ws");
    let sandboxed = build(&b, "sandboxed.json", &["--spawn_strategy=sandboxed"]);
    assert_eq!(
        by_worker.keys().collect::<Vec<_>>(),
        sandboxed.keys().collect::<Vec<_>>()
    );
    let workers = [
        "KoLayer",
        "KoImage",
        "KoIndex",
        "KoSbom",
        "KoProvenance",
        "KoPushManifest",
    ];
    let mut kinds = BTreeSet::new();
    for (progress, (runner, outputs)) in &by_worker {
        // Every rules_ko action of an offline build runs as a worker.
        assert_eq!(runner, "worker", "{progress}");
        kinds.insert(progress.split(' ').next().unwrap());
        let (other_runner, other_outputs) = &sandboxed[progress];
        assert_ne!(other_runner, "worker", "{progress}");
        assert_eq!(
            outputs, other_outputs,
            "{progress}: a worker ({runner}) and a sandbox ({other_runner}) wrote different bytes"
        );
    }
    assert!(workers.iter().all(|w| kinds.contains(w)), "{kinds:?}");

    // A failing request: the build fails with rko's own message (the worker's response)
    // and leaves none of the action's outputs; the worker serves the next build.
    std::fs::create_dir_all(a.dir.join("notgo")).unwrap();
    a.write("notgo/notgo.sh", "#!/bin/sh\necho hello\n");
    std::fs::set_permissions(
        a.dir.join("notgo/notgo.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    a.write(
        "notgo/BUILD.bazel",
        "load(\"@rules_ko//rules/bazel:defs.bzl\", \"ko_image\")\n\
         sh_binary(name = \"notgo\", srcs = [\"notgo.sh\"])\n\
         ko_image(name = \"image\", binary = \":notgo\", importpath = \"example.com/notgo\")\n",
    );
    let stderr = a.fail(&["build", "//notgo:image"]);
    assert!(
        stderr.contains("rko: error:")
            && stderr.contains("notgo is not an executable: expected an ELF, Mach-O or PE file"),
        "{stderr}"
    );
    assert!(!a.bin("notgo/image.ko/binary.json").exists());
    assert!(!a.bin("notgo/image.ko/binary.tar.gz").exists());
    a.write("analysis/kodata/a.txt", "changed\n");
    let again = build(&a, "again.json", &[]);
    let kodata = again
        .iter()
        .find(|(p, _)| p.starts_with("KoLayer kodata //analysis:subject"))
        .expect("the kodata layer re-ran");
    assert_eq!(kodata.1.0, "worker");

    // An argument starting with '@' (a user's cmd): Bazel would take it for a parameter
    // file in a worker's, so that action runs sandboxed, its arguments still in a parameter
    // file (the '@' doubled there, as on a command line); the value reaches the config
    // intact.
    std::fs::create_dir_all(a.dir.join("at")).unwrap();
    a.write(
        "at/BUILD.bazel",
        "load(\"@rules_ko//rules/bazel:defs.bzl\", \"ko_image\")\n\
         ko_image(name = \"image\", binary = \"//cmd/bar\", \
         importpath = \"example.com/e2e/cmd/bar\", cmd = [\"@literal\"])\n",
    );
    let log = logs.path().join("at.json");
    let flag = format!("--execution_log_json_file={}", log.display());
    a.ok(&["build", &flag, "//at:image"]);
    let spawns = spawn_argvs(&log);
    let runs = ko_runs(&bazel::read_execution_log(&log));
    for (progress, (runner, _)) in runs.iter().filter(|(p, _)| p.contains("//at:image")) {
        let image = progress.starts_with("KoImage");
        assert_eq!(runner == "worker", !image, "{progress}: {runner}");
    }
    let (_, _, argv) = spawns
        .iter()
        .find(|(m, p, _)| m == "KoImage" && p.contains("//at:image"))
        .expect("a KoImage spawn");
    assert!(argv.len() == 2 && argv[1].starts_with('@'), "{argv:?}");
    let config = read_json(a.bin("at/image.config.json"));
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["@literal"]));
}

#[test]
fn bazel_remote_cache_hits_across_checkouts_and_rebuilds_only_what_changed() {
    common::require_tools!("bazel", "go", "docker-registry", "nginx");
    let _serial = bazel::serial();
    let cache = CacheServer::start();
    remote_cache_round(RemoteCache::Http(&cache));
}

/// The same round with Bazel's gRPC remote cache (`--remote_cache=grpc://...`, REAPI CAS,
/// ByteStream and ActionCache) served by BuildGrid.
#[test]
fn bazel_grpc_remote_cache_hits_across_checkouts_and_rebuilds_only_what_changed() {
    common::require_tools!(
        "bazel",
        "go",
        "docker-registry",
        "pyvenv:bgd",
        "pyvenv:python"
    );
    // Started before the lock: BuildGrid takes ~15 s to open its port.
    let started = std::time::Instant::now();
    let grid = BuildGrid::start();
    eprintln!(
        "BuildGrid opened {} in {:.1} s",
        grid.url(),
        started.elapsed().as_secs_f64()
    );
    let _serial = bazel::serial();
    remote_cache_round(RemoteCache::Grpc(&grid));
}

/// Checkout A fills `cache`; checkout B, elsewhere, gets every rules_ko action from it and
/// the same images; then a Go change re-runs only the binary layer and the image, and an
/// env change only the image.
fn remote_cache_round(cache: RemoteCache) {
    let s = setup();
    let logs = tempfile::tempdir().unwrap();
    let log = |name: &str| logs.path().join(name).display().to_string();
    let remote = format!("--remote_cache={}", cache.url());
    let targets = [
        "//cmd/foo:image",
        "//cmd/foo:image_index",
        "//cmd/bar:image",
    ];
    let build = |ws: &Workspace, log_name: &str, targets: &[&str]| -> (Vec<Spawn>, String) {
        let exec_log = format!("--execution_log_json_file={}", log(log_name));
        let mut args = vec!["build", remote.as_str(), exec_log.as_str()];
        args.extend_from_slice(targets);
        let started = std::time::Instant::now();
        let (_, stderr) = ws.ok(&args);
        eprintln!(
            "{}: build {log_name} took {:.1} s",
            cache.url(),
            started.elapsed().as_secs_f64()
        );
        (bazel::read_execution_log(Path::new(&log(log_name))), stderr)
    };

    let digests = |ws: &Workspace| -> Vec<String> {
        [
            "cmd/foo/image.digest",
            "cmd/foo/image_index.digest",
            "cmd/bar/image.digest",
        ]
        .iter()
        .map(|p| digest_of(ws, p))
        .collect()
    };

    // Checkout A fills the cache.
    let a = s.workspace("a/ws");
    let (log_a, _) = build(&a, "a.json", &targets);
    assert!(
        ko_spawns(&log_a).len() >= 10,
        "expected rules_ko actions in A's log: {log_a:?}"
    );
    if let RemoteCache::Grpc(grid) = &cache {
        // Every output of every rules_ko action is in BuildGrid's CAS, and a made-up blob
        // is not (the check can fail).
        let outputs = ko_outputs(&log_a);
        assert!(outputs.len() >= 20, "{outputs:?}");
        let missing = grid.missing_blobs(&outputs);
        assert!(
            missing.is_empty(),
            "rules_ko outputs missing from BuildGrid's CAS: {missing:?}"
        );
        let made_up = "0".repeat(64);
        let missing = grid.missing_blobs(&[(made_up.clone(), 1)]);
        assert_eq!(missing, [made_up]);
    }
    let digests_a = digests(&a);
    a.expunge();
    drop(a);

    // Checkout B, elsewhere and deeper, after A's output base is gone: every rules_ko
    // action is a remote cache hit and the images are the same.
    let b = s.workspace("somewhere/else/b/ws");
    let (log_b, stderr_b) = build(&b, "b.json", &targets);
    let ko_b = ko_spawns(&log_b);
    assert!(ko_b.len() >= 10, "{log_b:?}");
    let misses: Vec<&&Spawn> = ko_b.iter().filter(|s| !s.remote_cache_hit).collect();
    assert!(
        misses.is_empty(),
        "rules_ko actions missed the cache in B: {misses:?}"
    );
    for m in ["KoLayer", "KoImage", "KoIndex"] {
        assert!(ko_b.iter().any(|s| s.mnemonic == m), "no {m} in B's log");
    }
    assert!(
        bazel::remote_cache_hits(&stderr_b) >= ko_b.len(),
        "Bazel's summary shows fewer hits than rules_ko actions:\n{stderr_b}"
    );
    let digests_b = digests(&b);
    assert_eq!(digests_a, digests_b);

    // One Go source line changes: only the binary layer and the image re-run, and the cache
    // grows by the new layer plus a little metadata (and the new Go binary, which is
    // rules_go's output here, not ours).
    let before = match &cache {
        RemoteCache::Http(c) => c.entries(),
        RemoteCache::Grpc(_) => BTreeMap::new(),
    };
    b.write(
        "cmd/foo/main.go",
        &b.read("cmd/foo/main.go").replace(" says ", " still says "),
    );
    let (log_go, _) = build(&b, "go.json", &["//cmd/foo:image"]);
    assert_eq!(
        ran(&log_go),
        [
            "KoImage //cmd/foo:image (linux/amd64)",
            "KoLayer binary //cmd/foo:image (linux/amd64)"
        ]
    );
    let layer = log_go
        .iter()
        .find(|s| s.progress.starts_with("KoLayer binary"))
        .unwrap()
        .outputs
        .iter()
        .find(|o| o.0.ends_with("binary.tar.gz"))
        .unwrap()
        .clone();
    match &cache {
        RemoteCache::Http(c) => {
            let after = c.entries();
            let added: Vec<(&String, &u64)> = after
                .iter()
                .filter(|(k, _)| !before.contains_key(*k))
                .collect();
            let go_binary = log_go
                .iter()
                .find(|s| s.mnemonic == "HostGoBuild")
                .expect("the Go binary was rebuilt")
                .outputs[0]
                .1
                .clone();
            assert!(
                added.iter().any(|(k, _)| k.ends_with(&layer.1)),
                "the new layer is not in the cache: {added:?}"
            );
            let ours: u64 = added
                .iter()
                .filter(|(k, _)| !k.ends_with(&go_binary))
                .map(|(_, v)| **v)
                .sum();
            eprintln!(
                "cache growth after a Go change: {ours} bytes from rules_ko (layer {} bytes), {} entries",
                layer.2,
                added.len()
            );
            assert!(
                ours >= layer.2 && ours <= layer.2 + 64 * 1024,
                "rules_ko added {ours} bytes for a {}-byte layer: {added:?}",
                layer.2
            );
        }
        RemoteCache::Grpc(grid) => {
            // The new layer and the new image's metadata were uploaded.
            let outputs = ko_outputs(&log_go);
            assert!(outputs.contains(&(layer.1.clone(), layer.2)), "{outputs:?}");
            let missing = grid.missing_blobs(&outputs);
            assert!(
                missing.is_empty(),
                "the re-run actions' outputs are not in BuildGrid's CAS: {missing:?}"
            );
        }
    }

    // Only env changes: only the image action re-runs.
    b.write(
        "cmd/foo/BUILD.bazel",
        &b.read("cmd/foo/BUILD.bazel").replace(
            "\"GREETING_STYLE\": \"plain\"",
            "\"GREETING_STYLE\": \"fancy\"",
        ),
    );
    let (log_env, _) = build(&b, "env.json", &["//cmd/foo:image"]);
    assert_eq!(ran(&log_env), ["KoImage //cmd/foo:image (linux/amd64)"]);
    assert!(log_env.iter().all(|s| s.mnemonic != "HostGoBuild"));
    let config = read_json(b.bin("cmd/foo/image.config.json"));
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING_STYLE=fancy")
    );
}

#[test]
fn bazel_analysis_checks_and_bad_configuration_messages() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    // No registry: nothing here fetches the e2e base.
    let ws = Workspace::copy(&e2e_src(), "ws");
    // The actions the rules register, their mnemonics and arguments
    // (tests/e2e/ws/analysis/actions_check.bzl fails analysis on any mismatch).
    ws.ok(&["build", "//analysis:all"]);
    // The same messages as the Buck2 rules (tests/buck2.rs), from the neutral starlark/ko.bzl.
    for (target, rule, message) in common::BAD_CONFIGURATION {
        let stderr = ws.fail(&["build", target]);
        assert!(
            stderr.contains(message),
            "bazel build {target}: expected {message:?} in:\n{stderr}"
        );
        assert!(
            stderr.contains(rule),
            "bazel build {target}: expected the rule {rule} named in:\n{stderr}"
        );
    }
}

#[test]
fn bazel_toolchain_from_a_url_or_built_from_source() {
    common::require_tools!("bazel", "go", "cargo");
    let _serial = bazel::serial();
    // A prebuilt rko "downloaded" from a file:// URL, as users get a release binary.
    let rko = std::fs::read(common::RKO).unwrap();
    let sha = common::sha256_hex(&rko);
    let src = tempfile::tempdir().unwrap();
    let d = src.path();
    std::fs::create_dir_all(d.join("app")).unwrap();
    let workspace = |toolchain: &str| {
        format!(
            "workspace(name = \"url_toolchain\")\n\
             local_repository(name = \"rules_ko\", path = \"{}\")\n\
             load(\"@rules_ko//rules/bazel:repositories.bzl\", \"rules_ko_dependencies\", \"rules_ko_register_toolchains\")\n\
             rules_ko_dependencies()\n\
             {toolchain}\n",
            bazel::repo_root().display(),
        )
    };
    let from_url = |sha: &str| {
        format!(
            "rules_ko_register_toolchains(urls = [\"file://{}\"], sha256 = \"{sha}\")",
            common::RKO
        )
    };
    std::fs::write(
        d.join(".bazelrc"),
        "build --nosandbox_debug\ntry-import %workspace%/user.bazelrc\n",
    )
    .unwrap();
    std::fs::write(d.join("BUILD.bazel"), "").unwrap();
    std::fs::write(
        d.join("app/main.go"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"app\") }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("app/BUILD.bazel"),
        "load(\"@rules_ko//rules/bazel:defs.bzl\", \"ko_image\")\n\
         load(\"@rules_ko//rules/bazel/testing:host_go.bzl\", \"host_go_binary\")\n\
         host_go_binary(name = \"app\", srcs = [\"main.go\"], importpath = \"example.com/app\")\n\
         ko_image(name = \"image\", binary = \":app\", importpath = \"example.com/app\")\n",
    )
    .unwrap();

    std::fs::write(d.join("WORKSPACE"), workspace(&from_url(&"0".repeat(64)))).unwrap();
    let ws = Workspace::copy(d, "ws");
    let stderr = ws.fail(&["build", "//app:image"]);
    assert!(
        stderr.contains(&format!("Checksum was {sha} but wanted {}", "0".repeat(64))),
        "a wrong sha256 was not refused:\n{stderr}"
    );
    drop(ws);

    std::fs::write(d.join("WORKSPACE"), workspace(&from_url(&sha))).unwrap();
    let ws = Workspace::copy(d, "ws");
    ws.ok(&["build", "//app:image"]);
    let digest = digest_of(&ws, "app/image.digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    let manifest = read_json(ws.bin("app/image.manifest.json"));
    // The static base's layer, kodata (empty, as ko always adds it), the binary.
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    drop(ws);

    // No URL and no $RKO_BINARY: rko is built from this checkout by `cargo build --release`
    // (into its target/), and that optimized rko makes the very same image.
    std::fs::write(
        d.join("WORKSPACE"),
        workspace("rules_ko_register_toolchains()"),
    )
    .unwrap();
    let ws = Workspace::copy_with(d, "ws", false);
    ws.ok(&["build", "//app:image"]);
    let (output_base, _) = ws.ok(&["info", "output_base"]);
    let rko_build =
        std::fs::read_to_string(Path::new(output_base.trim()).join("external/rko/BUILD.bazel"))
            .unwrap();
    assert!(
        rko_build.starts_with("# rko, built by cargo from "),
        "{rko_build}"
    );
    assert_eq!(digest_of(&ws, "app/image.digest"), digest);
}

#[test]
fn bazel_example_monorepo_builds_pushes_and_loads() {
    common::require_tools!("bazel", "go", "docker-registry", "skopeo", "docker");
    let _serial = bazel::serial();
    let reg = Registry::start(RegistryOptions::plain());
    let ws = Workspace::copy(&bazel::repo_root().join("examples/monorepo"), "monorepo");
    ws.ok(&[
        "build",
        "//cmd/foo:image",
        "//cmd/foo:image_index",
        "//cmd/bar:image",
    ]);
    let foo = digest_of(&ws, "cmd/foo/image.digest");
    let index = read_json(ws.bin("cmd/foo/image_index.index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    // Both services share //base: the same first layer.
    let foo_m = read_json(ws.bin("cmd/foo/image.manifest.json"));
    let bar_m = read_json(ws.bin("cmd/bar/image.manifest.json"));
    assert_eq!(foo_m["layers"][0], bar_m["layers"][0]);

    // A registry on loopback needs no flag; --repository redirects the push.
    let repo = format!("{}/monorepo/foo", reg.host());
    let (stdout, _) = ws.ok(&["run", "//cmd/foo:image.push", "--", "--repository", &repo]);
    assert!(stdout.contains(&format!("{repo}@{foo}")), "{stdout}");
    assert_eq!(skopeo_digest(&format!("docker://{repo}:latest")), foo);

    let image = DockerImage {
        reference: "monorepo/foo:latest".into(),
    };
    ws.ok(&["run", "//cmd/foo:image.load"]);
    let out = image.run(&[]);
    assert!(out.contains("foo (linux/amd64"), "{out}");
}

/// A path of either build system's output tree as `OUT/<package>/<declared name>`: Bazel's
/// `bazel-out/<config>/bin/` and Buck2's `buck-out/v2/gen/<cell>/<config>/` with its
/// `__<target>__/` directory both drop out.
fn normalize_arg(arg: &str) -> String {
    let piece = |p: &str| -> String {
        let comps: Vec<&str> = p.split('/').collect();
        if comps.first() == Some(&"bazel-out") && comps.len() > 3 {
            format!("OUT/{}", comps[3..].join("/"))
        } else if comps.first() == Some(&"buck-out") && comps.len() > 5 {
            let rest: Vec<&str> = comps[5..]
                .iter()
                .copied()
                .filter(|c| !(c.starts_with("__") && c.ends_with("__")))
                .collect();
            format!("OUT/{}", rest.join("/"))
        } else {
            p.to_string()
        }
    };
    arg.split('=').map(piece).collect::<Vec<_>>().join("=")
}

/// rko's arguments per (target, action), normalized; argv[0] (the rko binary) dropped.
type Actions = BTreeMap<(String, String), Vec<String>>;

fn bazel_actions(ws: &Workspace, targets: &[&str]) -> Actions {
    let query = format!("mnemonic(\"Ko.*\", {})", targets.join(" + "));
    let (out, _) = ws.ok(&["aquery", &query, "--output=jsonproto"]);
    let json = common::parse_json(&out);
    let labels: BTreeMap<String, String> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].to_string(),
                t["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut actions = Actions::new();
    for a in json["actions"].as_array().unwrap() {
        let args: Vec<String> = a["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        let category = match a["mnemonic"].as_str().unwrap() {
            // Extra layers: Buck2's identifier tar-N is the blob's name, as in Bazel.
            "KoLayer" if args[2] == "tar" => {
                let at = args.iter().position(|a| a == "-o").unwrap();
                let blob = Path::new(&args[at + 1])
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap();
                format!("ko_layer:{}", blob.split('.').next().unwrap())
            }
            // ko's debug image: Delve's layer is `rko layer binary --delve`.
            "KoLayer" if args.iter().any(|a| a == "--delve") => "ko_layer:delve".into(),
            "KoLayer" => format!("ko_layer:{}", args[2]),
            "KoImage" => "ko_image".into(),
            "KoIndex" => "ko_index".into(),
            "KoTarball" => "ko_tarball".into(),
            "KoLayout" => "ko_layout".into(),
            "KoPushManifest" => "ko_push_manifest".into(),
            "KoResolve" => "ko_resolve".into(),
            "KoSbom" => {
                let at = args.iter().position(|a| a == "--format").unwrap();
                format!("ko_sbom:{}", args[at + 1])
            }
            "KoProvenance" => "ko_provenance".into(),
            other => panic!("unexpected mnemonic {other}"),
        };
        // --path-map places blobs in Bazel's runfiles; Buck2 has none (paths are relative
        // to the push manifest).
        let mut kept = Vec::new();
        let mut it = args[1..].iter();
        while let Some(x) = it.next() {
            if x == "--path-map" {
                it.next();
            } else {
                kept.push(normalize_arg(x));
            }
        }
        let label = labels[&a["targetId"].to_string()].clone();
        actions.insert((label, category), kept);
    }
    actions
}

fn buck2_actions(p: &buck2_contract::TestProject, targets: &[&str]) -> Actions {
    let cfg = p.project.default_config().unwrap();
    let mut actions = Actions::new();
    for t in targets {
        let label = buck2_contract::TargetLabel::parse(&format!("root{t}"), "root", "").unwrap();
        let a = p.project.analyze(&label, &cfg).unwrap();
        for act in &a.actions {
            let category = match &act.identifier {
                Some(i) => format!("{}:{i}", act.category),
                None => act.category.clone(),
            };
            actions.insert(
                (t.to_string(), category),
                act.argv()[1..].iter().map(|a| normalize_arg(a)).collect(),
            );
        }
    }
    actions
}

#[test]
fn bazel_and_buck2_give_rko_the_same_arguments_and_the_same_image() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    let ws = Workspace::copy(&e2e_src(), "ws");
    let targets = [
        "//analysis:subject",
        "//analysis:subject.push",
        "//analysis:subject.resolve",
        "//analysis:multi",
        "//cmd/bar:image_debug",
        "//analysis:windows",
    ];
    let bazel = bazel_actions(&ws, &targets);
    let buck2_project = buck2_contract::TestProject::new(&e2e_src(), Path::new(common::RKO));
    let buck2 = buck2_actions(&buck2_project, &targets);
    assert_eq!(
        bazel.keys().collect::<Vec<_>>(),
        buck2.keys().collect::<Vec<_>>(),
        "the two build systems register different rko actions"
    );
    for (key, args) in &bazel {
        assert_eq!(
            args, &buck2[key],
            "{key:?}: Bazel and Buck2 give rko different arguments"
        );
    }
    // ko_resolve's one action too: `rko resolve -f … --image … -o …` alike; and the subject's
    // two SBOMs, its provenance and its extra layer.
    // And the debug image's: its three layers (Delve's after the binary's), image, SBOM,
    // tarball and layout. And the Windows index's index, tarball and layout.
    assert_eq!(bazel.len(), 24, "{:?}", bazel.keys());

    // The same image: Bazel's build, the Buck2 actions run through rko, and rko build.
    ws.ok(&["build", "//analysis:subject"]);
    let by_bazel = digest_of(&ws, "analysis/subject.digest");
    let cfg = buck2_project.project.default_config().unwrap();
    let subject = buck2_project
        .project
        .analyze(
            &buck2_contract::TargetLabel::parse("root//analysis:subject", "root", "").unwrap(),
            &cfg,
        )
        .unwrap();
    let digest = subject
        .actions
        .iter()
        .find(|a| a.category == "ko_image")
        .unwrap()
        .outputs
        .iter()
        .find(|o| o.short_path.ends_with(".digest"))
        .unwrap()
        .clone();
    buck2_contract::Builder::default()
        .build(&buck2_project.project, std::slice::from_ref(&digest))
        .unwrap();
    let by_buck2 = std::fs::read_to_string(buck2_project.root().join(&digest.path))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(by_bazel, by_buck2);
    let bin = ws.bin("cmd/bar/bar");
    let by_rko_build = common::rko_build_analysis_subject(&bin, &e2e_src().join("analysis"));
    assert_eq!(by_bazel, by_rko_build);

    // The debug image runs the app under Delve, as ko's does.
    ws.ok(&["build", "//cmd/bar:image_debug"]);
    let config = read_json(ws.bin("cmd/bar/image_debug.config.json"));
    assert_eq!(
        config["config"]["Entrypoint"],
        common::delve_entrypoint("/ko-app/bar")
    );
    let manifest = read_json(ws.bin("cmd/bar/image_debug.manifest.json"));
    let layers = manifest["layers"].as_array().unwrap();
    let delve = read_json(ws.bin("cmd/bar/image_debug.ko/delve.json"));
    assert_eq!(layers.last().unwrap()["digest"], delve["digest"]);

    // ko's Windows image: the index's one image is windows/amd64, its layers laid out for
    // Windows, and Buck2 makes the same image (the layers' bytes against ko's are
    // tests/ko_compat.rs's).
    ws.ok(&["build", "//analysis:windows"]);
    let index = read_json(ws.bin("analysis/windows.index.json"));
    assert_eq!(common::index_platforms(&index), ["windows/amd64"]);
    let image = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // The image's own outputs are in the transition's configuration: search bazel-out.
    let bazel_out = std::fs::canonicalize(ws.bin("analysis")).unwrap();
    let bazel_out = bazel_out.ancestors().nth(3).unwrap();
    let spawns_bin = find_file(bazel_out, "windows", "binary.json");
    let binary_layer = read_json(&spawns_bin);
    assert_eq!(binary_layer["content"]["windows"], true);
    let kodata_layer = read_json(spawns_bin.with_file_name("kodata.json"));
    assert_eq!(kodata_layer["content"]["windows"], true);
    let by_buck2 = buck2_index_image(&buck2_project, "root//analysis:windows");
    assert_eq!(image, by_buck2);
}

/// The one file named `name` below `dir` whose path has a component `part`.
fn find_file(dir: &Path, part: &str, name: &str) -> PathBuf {
    let found: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().to_path_buf())
        .filter(|p| {
            p.file_name().is_some_and(|n| n == name)
                && p.iter().any(|c| c.to_string_lossy().contains(part))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} under {}: {found:?}", dir.display());
    found.into_iter().next().unwrap()
}

/// Builds a Buck2 ko_image with `platforms` through rko and returns its one image's digest.
fn buck2_index_image(p: &buck2_contract::TestProject, target: &str) -> String {
    let cfg = p.project.default_config().unwrap();
    let label = buck2_contract::TargetLabel::parse(target, "root", "").unwrap();
    let index = p.project.analyze(&label, &cfg).unwrap();
    let out = index
        .actions
        .iter()
        .flat_map(|a| a.outputs.iter())
        .find(|o| o.short_path.ends_with(".index.json"))
        .unwrap_or_else(|| panic!("{target}: no index output"))
        .clone();
    buck2_contract::Builder::with_go_cache(&common::go_cache())
        .build(&p.project, std::slice::from_ref(&out))
        .unwrap();
    let index = read_json(p.root().join(&out.path));
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The spawns of Bazel's JSON execution log with their argv: (mnemonic, progress, argv).
fn spawn_argvs(log: &Path) -> Vec<(String, String, Vec<String>)> {
    let text = std::fs::read_to_string(log).unwrap();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .map(|v| {
            let v = v.expect("execution log is JSON");
            let argv = v["commandArgs"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                v["mnemonic"].as_str().unwrap_or("").to_string(),
                v["progressMessage"].as_str().unwrap_or("").to_string(),
                argv,
            )
        })
        .collect()
}

#[test]
fn bazel_long_command_lines_go_through_a_param_file() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    let ws = Workspace::copy(&e2e_src(), "ws");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("exec.json");
    let exec_log = format!("--execution_log_json_file={}", log.display());
    // 400 kodata files: one `--file PATH=FILE` each, ~80 KB of arguments.
    ws.ok(&["build", &exec_log, "//params:image"]);
    let spawns = spawn_argvs(&log);
    let (_, _, argv) = spawns
        .iter()
        .find(|(m, p, _)| m == "KoLayer" && p.starts_with("KoLayer kodata //params:image"))
        .unwrap_or_else(|| panic!("no kodata KoLayer spawn in {spawns:?}"));
    // rko ran with one argument, the parameter file, not 800 --file arguments.
    assert_eq!(argv.len(), 2, "{argv:?}");
    assert!(
        argv[1].starts_with("@bazel-out/") && argv[1].ends_with(".params"),
        "{argv:?}"
    );
    let params = std::fs::read_to_string(ws.dir.join(&argv[1][1..])).unwrap();
    let lines: Vec<&str> = params.lines().collect();
    assert_eq!(lines[..2], ["layer", "kodata"]);
    assert_eq!(lines.iter().filter(|l| **l == "--file").count(), 400);
    // A short command line goes through one too: the actions run as persistent workers,
    // and Bazel hands a worker its arguments from the parameter file.
    let (_, _, binary) = spawns
        .iter()
        .find(|(_, p, _)| p.starts_with("KoLayer binary //params:image"))
        .unwrap();
    assert_eq!(binary.len(), 2, "{binary:?}");
    let params = std::fs::read_to_string(ws.dir.join(&binary[1][1..])).unwrap();
    assert!(params.lines().any(|l| l == "--binary"), "{params}");

    // ... and rko read every file from it into the layer.
    let listing = run_ok(
        Command::new("tar")
            .arg("-tzf")
            .arg(ws.bin("params/image.ko/kodata.tar.gz")),
    );
    let pages: Vec<&str> = listing.lines().filter(|l| l.contains("/page-")).collect();
    assert_eq!(pages.len(), 400, "{listing}");
    assert!(
        pages.contains(
            &"/var/run/ko/pages/a-rather-long-directory-name-so-each-argument-counts/page-399.txt"
        ),
        "{pages:?}"
    );
    let manifest = read_json(ws.bin("params/image.manifest.json"));
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
}

/// A blob of an OCI layout, as JSON.
fn layout_json(layout: &Path, digest: &serde_json::Value) -> serde_json::Value {
    let digest = digest.as_str().unwrap();
    read_json(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
}

/// (os/arch, config Env) of each image of an index, in order, from its layout.
fn index_images(ws: &Workspace, name: &str) -> Vec<(String, Vec<String>)> {
    let index = read_json(ws.bin(&format!("{name}.index.json")));
    let layout = ws.bin(&format!("{name}.layout"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let manifest = layout_json(&layout, &m["digest"]);
            let config = layout_json(&layout, &manifest["config"]["digest"]);
            let platform = format!("{}/{}", config["os"], config["architecture"]).replace('"', "");
            assert_eq!(
                platform,
                format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"])
                    .replace('"', "")
            );
            let env = config["config"]["Env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().to_string())
                .collect();
            (platform, env)
        })
        .collect()
}

#[test]
fn bazel_index_of_user_platforms_keeps_their_constraints() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    let ws = Workspace::copy(&e2e_src(), "ws");
    ws.ok(&[
        "build",
        "//user_platforms:index",
        "//user_platforms:multi",
        "--output_groups=+layout",
    ]);
    // "linux/amd64" and the user's :linux_arm64_fancy, in the order given; the select() on
    // the user's flavor constraint saw it in the arm64 image only.
    let images = index_images(&ws, "user_platforms/index");
    let flavor = |env: &[String]| -> String {
        env.iter()
            .find(|e| e.starts_with("FLAVOR="))
            .cloned()
            .unwrap_or_default()
    };
    let got: Vec<(&str, String)> = images
        .iter()
        .map(|(p, env)| (p.as_str(), flavor(env)))
        .collect();
    assert_eq!(
        got,
        [
            ("linux/amd64", "FLAVOR=plain".to_string()),
            ("linux/arm64", "FLAVOR=fancy".to_string())
        ]
    );
    // ko_image(platforms = [...]) takes labels too.
    let multi: Vec<String> = index_images(&ws, "user_platforms/multi")
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(multi, ["linux/arm64", "linux/amd64"]);

    // A platform whose OS rules_ko cannot map: the platform is named, and what to add.
    let stderr = ws.fail(&["build", "//bad/platform_unknown_os:index"]);
    assert!(
        stderr.contains(
            "ko_image //bad/platform_unknown_os:image: attribute 'platform': expected a target platform whose constraint values rules_ko maps to an OCI platform: "
        ) && stderr.contains(
            "@platforms//os:linux with @platforms//cpu:x86_64 (linux/amd64), "
        ) && stderr.contains(
            "found //bad/platform_unknown_os:freebsd_amd64, which has none of these os/cpu pairs. Add one pair to the constraint_values of //bad/platform_unknown_os:freebsd_amd64"
        ),
        "{stderr}"
    );
}

/// The .bzl files `file` (below the checkout) loads, transitively, itself included.
fn bzl_closure(file: &str) -> std::collections::BTreeSet<String> {
    let root = bazel::repo_root();
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![file.to_string()];
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&f)).unwrap();
        let dir = Path::new(&f)
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for part in text.split("load(\"").skip(1) {
            let label = part.split('"').next().unwrap();
            let path = if let Some(rest) = label.strip_prefix("//") {
                rest.replace(':', "/")
            } else if let Some(rest) = label.strip_prefix(':') {
                format!("{dir}/{rest}")
            } else {
                continue; // @bazel_tools, or a load in generated BUILD text
            };
            todo.push(path);
        }
    }
    seen
}

#[test]
fn bazel_bzl_libraries_and_a_toolchain_per_exec_platform() {
    common::require_tools!("bazel", "go");
    let _serial = bazel::serial();
    let ws = Workspace::copy(&e2e_src(), "ws");
    // The bzl_library targets build (with Debian's bazel-skylib as @bazel_skylib), and each
    // public one holds every .bzl file its file loads.
    ws.ok(&[
        "build",
        "@rules_ko//rules/bazel:all",
        "@rules_ko//rules/bazel/private:all",
        "@rules_ko//rules/bazel/testing:all",
        "@rules_ko//starlark/...",
    ]);
    for name in ["defs", "base", "repositories", "extensions", "toolchain"] {
        let (out, _) = ws.ok(&[
            "cquery",
            &format!("deps(@rules_ko//rules/bazel:{name})"),
            "--output=label",
        ]);
        let files: std::collections::BTreeSet<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|l| l.strip_prefix("@rules_ko//"))
            .filter(|l| l.ends_with(".bzl"))
            .map(|l| l.replace(':', "/"))
            .collect();
        let needed = bzl_closure(&format!("rules/bazel/{name}.bzl"));
        let missing: Vec<&String> = needed.difference(&files).collect();
        assert!(
            missing.is_empty(),
            "bzl_library {name} lacks {missing:?} (has {files:?})"
        );
    }

    // @rko declares a toolchain for linux and macOS on x86_64 and aarch64; this machine's
    // builds, and an execution platform without an rko gets the message saying what to set.
    ws.ok(&["build", "//analysis:subject"]);
    let (output_base, _) = ws.ok(&["info", "output_base"]);
    let rko_build =
        std::fs::read_to_string(Path::new(output_base.trim()).join("external/rko/BUILD.bazel"))
            .unwrap();
    for platform in [
        "linux_x86_64",
        "linux_aarch64",
        "macos_x86_64",
        "macos_aarch64",
    ] {
        assert!(
            rko_build.contains(&format!("name = \"toolchain_{platform}\"")),
            "{rko_build}"
        );
    }
    let host_cpu = match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    };
    let stderr = ws.fail(&[
        "build",
        "--extra_execution_platforms=//exec:macos_arm64",
        "//analysis:subject",
    ]);
    assert!(
        stderr.contains(&format!(
            "rules_ko: no rko for this platform: expected an rko binary for the execution platform macos/aarch64, found only @rko's for linux/{host_cpu}"
        )) && stderr.contains("Set urls and sha256 (and os/cpu) of an rko built for macos/aarch64"),
        "{stderr}"
    );
}

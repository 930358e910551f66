//! `rko push` of several push manifests in one run, against a real docker-registry on
//! 127.0.0.1 (through the loopback proxy, which counts the requests): a blob that several
//! images share is uploaded once per registry and mounted into every other repository,
//! the embedded base layer included; every image reads back with skopeo; a second run
//! makes HEAD requests only; a tag another push moved is put back; the `--image-refs`
//! JSON holds every image.

mod common;

use std::path::Path;
use std::process::Command;

use common::registry::{FaultProxy, Registry, RegistryOptions};
use common::scratch::Scratch;
use common::{fake_go_binary, read_json, run_ok};

/// A scratch directory with the images a test pushes.
struct Work(Scratch);

impl std::ops::Deref for Work {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Work {
    fn new() -> Work {
        Work(Scratch::new())
    }

    /// [`Work::image`] of the binary `api` as example.com/svc/cmd/api.
    fn api(&self, name: &str, repository: &str) -> (String, String) {
        self.image(name, "api", "example.com/svc/cmd/api", repository)
    }

    /// Builds an image of `binary` named by `import_path` on the embedded base, and its
    /// push manifest for `repository` (tag v1); returns (push manifest path, digest).
    fn image(
        &self,
        name: &str,
        binary: &str,
        import_path: &str,
        repository: &str,
    ) -> (String, String) {
        let d = |f: &str| format!("{name}/{f}");
        std::fs::create_dir_all(self.path(name)).unwrap();
        self.ok(&[
            "layer",
            "binary",
            "--binary",
            binary,
            "--import-path",
            import_path,
            "--platform",
            "linux/amd64",
            "-o",
            &d("bin.tgz"),
            "--descriptor",
            &d("bin.json"),
        ]);
        self.ok(&[
            "image",
            "--platform",
            "linux/amd64",
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
        let layer = format!("{}={}", d("bin.json"), d("bin.tgz"));
        self.ok(&[
            "push-manifest",
            "--root",
            &d("desc.json"),
            "--blob",
            &d("manifest.json"),
            "--blob",
            &d("config.json"),
            "--layer",
            &layer,
            "--repository",
            repository,
            "--tag",
            "v1",
            "-o",
            &d("push.json"),
        ]);
        let digest = std::fs::read_to_string(self.path(&d("digest"))).unwrap();
        (d("push.json"), digest.trim().to_string())
    }
}

fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    format!("sha256:{}", common::sha256_hex(out.as_bytes()))
}

/// (existed, mounted, uploaded) over one image's report.
fn outcomes(report: &serde_json::Value) -> (usize, usize, usize) {
    let blobs = report["blobs"].as_array().unwrap();
    let count = |o: &str| blobs.iter().filter(|b| b[1] == o).count();
    (count("existed"), count("mounted"), count("uploaded"))
}

fn push_args<'a>(manifests: &'a [(String, String)], host: &'a str, refs: &'a str) -> Vec<&'a str> {
    let mut args = vec!["push", "--insecure-registry", host, "--image-refs", refs];
    for (m, _) in manifests {
        args.extend(["--manifest", m.as_str()]);
    }
    args
}

/// Three images into three repositories of one registry, in one run: `a` and `b` are
/// the same image (the same service deployed twice), `c` another binary. Every distinct
/// blob is uploaded once; `b` mounts all three of its blobs from `a`, and `c` mounts the
/// embedded base layer. A second run sends nothing.
#[test]
fn shared_blobs_go_up_once_and_are_mounted_everywhere_else() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    fake_go_binary(&w.path("api"), 62, 1 << 20);
    fake_go_binary(&w.path("web"), 62, 3 << 19);
    let images = [
        w.api("a", &format!("{host}/team/a")),
        w.api("b", &format!("{host}/team/b")),
        w.image(
            "c",
            "web",
            "example.com/svc/cmd/web",
            &format!("{host}/team/c"),
        ),
    ];
    assert_eq!(images[0].1, images[1].1, "a and b are the same image");
    let out = w.ok(&push_args(&images, &host, "refs.json"));

    // stdout: each image's reference and its tag, in order.
    let expected: Vec<String> = ["a", "b", "c"]
        .iter()
        .zip(&images)
        .flat_map(|(r, (_, d))| {
            [
                format!("{host}/team/{r}@{d}"),
                format!("{host}/team/{r}:v1@{d}"),
            ]
        })
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    // The registry's access log names the client.
    let agent = concat!("\"rko/", env!("CARGO_PKG_VERSION"), "\"");
    assert!(reg.log().contains(agent), "{}", reg.log());
    for (r, (_, d)) in ["a", "b", "c"].iter().zip(&images) {
        assert_eq!(&skopeo_digest(&format!("{}/team/{r}:v1", reg.host())), d);
    }

    // 5 distinct blobs (the base layer, two binary layers, two configs) uploaded once each.
    let refs = read_json(w.path("refs.json"));
    let reports = refs["images"].as_array().expect("an images array");
    assert_eq!(reports.len(), 3);
    assert_eq!(outcomes(&reports[0]), (0, 0, 3), "{refs}");
    assert_eq!(
        outcomes(&reports[1]),
        (0, 3, 0),
        "b mounts everything: {refs}"
    );
    assert_eq!(
        outcomes(&reports[2]),
        (0, 1, 2),
        "c mounts the base: {refs}"
    );
    assert_eq!(
        proxy.count("PUT", "/blobs/uploads/"),
        5,
        "{}",
        proxy.log_text()
    );
    assert_eq!(reports[1]["reference"], expected[2]);

    // Again: every blob is found, nothing is uploaded or mounted.
    let before = proxy.request_log().len();
    w.ok(&push_args(&images, &host, "refs2.json"));
    let again = &proxy.request_log()[before..];
    let writes = |m: &str, p: &str| {
        again
            .iter()
            .filter(|(rm, rp, _)| rm == m && rp.contains(p))
            .count()
    };
    // HEAD-only: no upload, no manifest and no tag written.
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        assert_eq!(writes(m, "/"), 0, "{m}: {}", proxy.log_text());
    }
    assert_eq!(writes("HEAD", "/manifests/"), 6, "3 by digest, 3 tags");
    let refs = read_json(w.path("refs2.json"));
    for r in refs["images"].as_array().unwrap() {
        assert_eq!(outcomes(r), (3, 0, 0), "{refs}");
    }
}

/// One `--manifest` keeps the report's shape of a single push (no `images` array).
#[test]
fn one_manifest_keeps_the_single_image_report() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    fake_go_binary(&w.path("api"), 62, 1 << 20);
    let one = [w.api("a", &format!("{host}/team/a"))];
    w.ok(&push_args(&one, &host, "refs.json"));
    let refs = read_json(w.path("refs.json"));
    assert_eq!(refs["reference"], format!("{host}/team/a@{}", one[0].1));
    assert!(refs.get("images").is_none(), "{refs}");
}

/// `--repository` replaces one manifest's repository; with several it is refused before
/// anything is sent, saying what to do.
#[test]
fn repository_override_needs_exactly_one_manifest() {
    let w = Work::new();
    fake_go_binary(&w.path("api"), 62, 1 << 16);
    let host = "127.0.0.1:1";
    let images = [
        w.api("a", &format!("{host}/team/a")),
        w.api("b", &format!("{host}/team/b")),
    ];
    let mut args = push_args(&images, host, "refs.json");
    args.extend(["--repository", "127.0.0.1:1/other"]);
    let o = w.rko(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--repository 127.0.0.1:1/other replaces the repository of one push manifest, but 2 were given"),
        "{err}"
    );
    assert!(!Path::new(&w.path("refs.json")).exists());
}

/// `--print FILE` (a deployment's resolved YAML): after the push the file's bytes are all
/// of stdout, the references go to stderr; `--push=false` sends no request and only
/// prints; a missing file fails before anything is sent.
#[test]
fn print_after_the_push_or_instead_of_it() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    fake_go_binary(&w.path("api"), 62, 1 << 18);
    let one = [w.api("a", &format!("{host}/team/a"))];
    let yaml = "# resolved\r\nimage: x@sha256:00\r\n---\nkind: Service\n";
    std::fs::write(w.path("prod.yaml"), yaml).unwrap();
    let with = |extra: &[&str]| {
        let mut args = push_args(&one, &host, "refs.json");
        args.extend_from_slice(extra);
        w.rko(&args)
    };

    let o = with(&["--print", "prod.yaml", "--push=false"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, yaml.as_bytes());
    assert!(proxy.request_log().is_empty(), "{}", proxy.log_text());
    assert!(!w.path("refs.json").exists(), "nothing pushed, no report");

    let o = with(&["--print", "prod.yaml"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(o.stdout, yaml.as_bytes(), "stdout is the file alone");
    assert!(
        err.contains(&format!("{host}/team/a@{}", one[0].1)),
        "{err}"
    );

    let before = proxy.request_log().len();
    let o = with(&["--print", "missing.yaml"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("missing.yaml"), "{err}");
    assert_eq!(proxy.request_log().len(), before, "nothing sent");
}

/// A tag that another push moved to another image is put back on a re-push; one that
/// still names the image is left alone unless `--force-tags`.
#[test]
fn tags_are_put_only_when_they_name_something_else() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    fake_go_binary(&w.path("api"), 62, 1 << 18);
    fake_go_binary(&w.path("web"), 62, 1 << 17);
    let repo = format!("{host}/team/app");
    let a = [w.image("a", "api", "example.com/svc/cmd/api", &repo)];
    let b = [w.image("b", "web", "example.com/svc/cmd/web", &repo)];
    let tag_puts = |from: usize| {
        proxy.request_log()[from..]
            .iter()
            .filter(|(m, p, _)| m == "PUT" && p.ends_with("/manifests/v1"))
            .count()
    };
    let tagged = || skopeo_digest(&format!("{}/team/app:v1", reg.host()));

    w.ok(&push_args(&a, &host, "r1.json"));
    assert_eq!(tagged(), a[0].1);
    w.ok(&push_args(&b, &host, "r2.json"));
    assert_eq!(tagged(), b[0].1, "b moved v1");
    let n = proxy.request_log().len();
    w.ok(&push_args(&a, &host, "r3.json"));
    assert_eq!(tagged(), a[0].1, "the re-push of a put v1 back");
    assert_eq!(tag_puts(n), 1, "{}", proxy.log_text());

    let n = proxy.request_log().len();
    w.ok(&push_args(&a, &host, "r4.json"));
    assert_eq!(tag_puts(n), 0, "v1 already names a");
    let mut forced = push_args(&a, &host, "r5.json");
    forced.push("--force-tags");
    let n = proxy.request_log().len();
    w.ok(&forced);
    assert_eq!(tag_puts(n), 1, "--force-tags puts it anyway");
}

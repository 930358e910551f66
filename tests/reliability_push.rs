//! Pushes under adversity, measured (issue 14, items 3 and 4):
//! - a fault campaign: many `rko push`es of small multi-layer images through the
//!   fault-injecting proxy in front of a real docker-registry, one random fault each (drawn
//!   from a printed seed): connections dropped mid-body or after the registry handled the
//!   request, 500/503, 429 with Retry-After, slow answers (under and past the push's
//!   `--registry-timeout`), truncated manifest bodies, wrong
//!   `Docker-Content-Digest`s. Each push must end
//!   with the right digest (skopeo agrees, every blob readable) or fail with a clear error,
//!   and never leave a manifest (by digest or by tag) whose blobs are missing;
//! - one regression test per fault kind that showed (or could show) a bug;
//! - concurrency: 8 `rko push` processes at once into one repository and into sibling ones.
//!
//! `RKO_FAULT_SEED=N` replays a campaign; `RKO_FAULT_PUSHES=N` sets its size (default 100).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{
    Fault, FaultProxy, FaultRule, Registry, RegistryOptions, WRONG_DIGEST, http_request,
};
use common::{RKO, fake_go_binary, read_json, run_ok};

/// How long one `rko push` may take before the test calls it hung.
const PUSH_DEADLINE: Duration = Duration::from_secs(60);
/// Attempts per request and per blob in the campaign (`rko push --attempts`).
const ATTEMPTS: u32 = 3;

/// Writes past the test harness's capture, so the seed and figures always show.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// splitmix64: a small deterministic generator, so a seed replays a campaign.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A working directory with no credentials, where images are built.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let w = Work {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(w.path("docker")).unwrap();
        fake_go_binary(&w.path("app"), 62, 256 << 10);
        w.ok(&[
            "layer",
            "binary",
            "--binary",
            "app",
            "--import-path",
            "example.com/faults/app",
            "--platform",
            "linux/amd64",
            "-o",
            "bin.tgz",
            "--descriptor",
            "bin.json",
        ]);
        w
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RKO);
        c.args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("docker/none.json"))
            .env_remove("KO_DOCKER_REPO");
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args))
    }

    /// An image on the static base with the shared binary layer and two kodata layers
    /// whose files are `name`'s own (so its blobs are new to the registry), and its push
    /// manifest (tag `v1`) for `repository`.
    fn image(&self, name: &str, repository: &str) -> Image {
        self.image_tagged(name, repository, "v1")
    }

    /// As [`Work::image`], tagged `tag`.
    fn image_tagged(&self, name: &str, repository: &str, tag: &str) -> Image {
        let d = format!("img/{name}");
        std::fs::create_dir_all(self.path(&d)).unwrap();
        let mut layers = vec!["bin.json".to_string()];
        for k in ["a", "b"] {
            let kd = self.path(&format!("{d}/kodata-{k}"));
            std::fs::create_dir_all(&kd).unwrap();
            let text = format!("{name}/{k}\n").repeat(200);
            std::fs::write(kd.join(format!("{k}.txt")), text).unwrap();
            self.ok(&[
                "layer",
                "kodata",
                "--dir",
                &format!("{d}/kodata-{k}"),
                "--import-path",
                "example.com/faults/app",
                "-o",
                &format!("{d}/{k}.tgz"),
                "--descriptor",
                &format!("{d}/{k}.json"),
            ]);
            layers.push(format!("{d}/{k}.json"));
        }
        let mut args: Vec<String> = ["image", "--platform", "linux/amd64"]
            .map(String::from)
            .to_vec();
        for l in &layers {
            args.extend(["--layer".into(), l.clone()]);
        }
        for (flag, f) in [
            ("--config-out", "config.json"),
            ("--manifest-out", "manifest.json"),
            ("--descriptor-out", "desc.json"),
            ("--digest-out", "digest"),
        ] {
            args.extend([flag.into(), format!("{d}/{f}")]);
        }
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut pm: Vec<String> = [
            "push-manifest",
            "--root",
            &format!("{d}/desc.json"),
            "--blob",
            &format!("{d}/manifest.json"),
            "--blob",
            &format!("{d}/config.json"),
            "--layer",
            "bin.json=bin.tgz",
            "--repository",
            repository,
            "--tag",
            tag,
            "-o",
            &format!("{d}/push.json"),
        ]
        .map(String::from)
        .to_vec();
        for k in ["a", "b"] {
            pm.extend(["--layer".into(), format!("{d}/{k}.json={d}/{k}.tgz")]);
        }
        self.ok(&pm.iter().map(String::as_str).collect::<Vec<_>>());
        let manifest = read_json(self.path(&format!("{d}/manifest.json")));
        let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
        for l in manifest["layers"].as_array().unwrap() {
            blobs.push(l["digest"].as_str().unwrap().to_string());
        }
        Image {
            push_manifest: self.path(&format!("{d}/push.json")),
            digest: std::fs::read_to_string(self.path(&format!("{d}/digest")))
                .unwrap()
                .trim()
                .to_string(),
            blobs,
        }
    }

    /// Starts `rko push` of `img` to `host/repo`.
    fn spawn_push(&self, img: &Image, host: &str, repo: &str) -> std::process::Child {
        self.spawn_push_with(img, host, repo, &[])
    }

    /// [`Work::spawn_push`] with `extra` flags.
    fn spawn_push_with(
        &self,
        img: &Image,
        host: &str,
        repo: &str,
        extra: &[&str],
    ) -> std::process::Child {
        let repository = format!("{host}/{repo}");
        let attempts = ATTEMPTS.to_string();
        let mut args = vec![
            "push",
            "--manifest",
            img.push_manifest.to_str().unwrap(),
            "--repository",
            &repository,
            "--insecure-registry",
            host,
            "--attempts",
            &attempts,
            "--jobs",
            "2",
        ];
        args.extend_from_slice(extra);
        self.cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `rko push` of `img` to `host/repo`; `None` if it did not end within
    /// [`PUSH_DEADLINE`] (it is killed then).
    fn push(&self, img: &Image, host: &str, repo: &str) -> Option<Output> {
        wait_bounded(self.spawn_push(img, host, repo), PUSH_DEADLINE)
    }

    /// [`Work::push`] with the campaign's `--registry-timeout`.
    fn push_timed(&self, img: &Image, host: &str, repo: &str) -> Option<Output> {
        let timeout = CAMPAIGN_TIMEOUT_S.to_string();
        let extra = ["--registry-timeout", timeout.as_str()];
        wait_bounded(self.spawn_push_with(img, host, repo, &extra), PUSH_DEADLINE)
    }
}

/// Waits for `child` at most `deadline`, reading its output; kills it past the deadline.
fn wait_bounded(mut child: std::process::Child, deadline: Duration) -> Option<Output> {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Image {
    push_manifest: PathBuf,
    digest: String,
    /// The config's and the layers' digests.
    blobs: Vec<String>,
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
}

/// The manifest `repo:reference` as the registry serves it, if it has it.
fn get_manifest(reg: &Registry, repo: &str, reference: &str) -> Option<Vec<u8>> {
    let target = format!("/v2/{repo}/manifests/{reference}");
    let r = http_request(&reg.host(), "GET", &target, &[("Accept", ACCEPT)], b"").unwrap();
    match r.status {
        200 => Some(r.body),
        404 => None,
        s => panic!("GET {target}: HTTP {s}"),
    }
}

/// Which of a manifest's blobs (config and layers) the registry cannot serve from `repo`,
/// each checked with a HEAD.
fn missing_blobs(reg: &Registry, repo: &str, manifest: &[u8]) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_else(|e| {
        panic!(
            "the registry serves a manifest that is not JSON ({e}): {}",
            String::from_utf8_lossy(manifest)
        )
    });
    let mut digests = vec![m["config"]["digest"].as_str().unwrap_or("").to_string()];
    for l in m["layers"].as_array().into_iter().flatten() {
        digests.push(l["digest"].as_str().unwrap_or("").to_string());
    }
    digests
        .into_iter()
        .filter(|d| {
            let r = http_request(
                &reg.host(),
                "HEAD",
                &format!("/v2/{repo}/blobs/{d}"),
                &[],
                b"",
            );
            !matches!(r, Ok(r) if r.status == 200)
        })
        .collect()
}

/// Problems with what the registry holds for `img` in `repo`: the manifest (by digest and
/// by tag `v1`) must, if present, be intact and have every blob.
fn integrity_problems(reg: &Registry, repo: &str, img: &Image) -> Vec<String> {
    let mut problems = Vec::new();
    for reference in [img.digest.as_str(), "v1"] {
        let Some(m) = get_manifest(reg, repo, reference) else {
            continue;
        };
        let missing = missing_blobs(reg, repo, &m);
        if !missing.is_empty() {
            problems.push(format!("{repo}:{reference} lacks blobs {missing:?}"));
        }
        if reference.starts_with("sha256:") && format!("sha256:{}", sha256_hex(&m)) != reference {
            problems.push(format!("{repo}@{reference} serves other bytes"));
        }
    }
    problems
}

/// The digest of `reference` as skopeo reads it (of the raw manifest).
fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    format!("sha256:{}", sha256_hex(out.as_bytes()))
}

/// Checks a successful push: it printed `repo@digest` with the image's digest, skopeo reads
/// that digest by tag, and every blob is there.
fn check_success(reg: &Registry, repo: &str, img: &Image, out: &Output) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{repo}@{}", img.digest);
    if !stdout.lines().any(|l| l.ends_with(&want)) {
        return Err(format!("printed {stdout:?}, expected …{want}"));
    }
    let got = skopeo_digest(&format!("{}/{repo}:v1", reg.host()));
    if got != img.digest {
        return Err(format!(
            "skopeo reads {repo}:v1 as {got}, pushed {}",
            img.digest
        ));
    }
    let m = get_manifest(reg, repo, &img.digest).ok_or("no manifest by digest")?;
    let missing = missing_blobs(reg, repo, &m);
    if !missing.is_empty() {
        return Err(format!(
            "blobs missing after a successful push: {missing:?}"
        ));
    }
    for b in &img.blobs {
        let r = http_request(
            &reg.host(),
            "HEAD",
            &format!("/v2/{repo}/blobs/{b}"),
            &[],
            b"",
        );
        if !matches!(r, Ok(r) if r.status == 200) {
            return Err(format!("blob {b} is not readable"));
        }
    }
    Ok(())
}

/// Whether a failed push's stderr is a clear error naming its cause: rko's error line
/// (exit 1, no panic) naming an HTTP status, an unreachable registry or a digest mismatch.
fn clear_failure(out: &Output) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    let names_cause = [
        "HTTP 4",
        "HTTP 5",
        "cannot reach",
        "Docker-Content-Digest",
        "timed out",
        "timeout",
        "stalled",
    ]
    .iter()
    .any(|c| err.contains(c));
    if out.status.code() == Some(1) && err.contains("rko: error:") && names_cause {
        Ok(())
    } else {
        Err(format!("exit {:?}, stderr:\n{err}", out.status.code()))
    }
}

/// The fault kinds of the campaign.
const KINDS: [&str; 9] = [
    "drop-mid-body",
    "drop-before-response",
    "500",
    "503",
    "429+Retry-After",
    "slow",
    "slow-past-timeout",
    "truncated-manifest",
    "wrong-digest",
];

/// The requests of a push that faults hit: (method, path part).
const TARGETS: [(&str, &str); 4] = [
    ("HEAD", "/blobs/"),
    ("POST", "/blobs/uploads/"),
    ("PUT", "/blobs/uploads/"),
    ("PUT", "/manifests/"),
];

/// The campaign's `--registry-timeout`, in seconds: how long rko waits for a registry
/// that sends nothing before it gives the attempt up.
const CAMPAIGN_TIMEOUT_S: u64 = 2;

/// How long a "slow" answer is held (`RKO_FAULT_SLOW_MS`, default 500 ms): under
/// [`CAMPAIGN_TIMEOUT_S`], so rko must wait it out.
fn slow() -> Duration {
    Duration::from_millis(env_u64("RKO_FAULT_SLOW_MS").unwrap_or(500))
}

/// How long a "slow-past-timeout" answer is held: a second past [`CAMPAIGN_TIMEOUT_S`], so
/// rko must give the attempt up and try again (or, when every attempt is slow, fail
/// naming the stall).
fn past_timeout() -> Duration {
    Duration::from_secs(CAMPAIGN_TIMEOUT_S + 1)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A fault of `kind` at a random request of a push, described for the log.
fn draw(rng: &mut Rng, kind: &str) -> (FaultRule, String) {
    let nth = 1 + rng.below(3) as usize;
    let (m, p) = *rng.pick(&TARGETS);
    let (rule, what) = match kind {
        "drop-mid-body" => {
            let (m, p) = *rng.pick(&[("PUT", "/blobs/uploads/"), ("PUT", "/manifests/")]);
            (
                FaultRule::nth(m, p, nth, Fault::DropMidBody),
                format!("{m} {p}"),
            )
        }
        "drop-before-response" => (
            FaultRule::nth(m, p, nth, Fault::DropBeforeResponse),
            format!("{m} {p}"),
        ),
        "500" | "503" => {
            let code = kind.parse().unwrap();
            // Up to one more in a row than rko's attempts per request: some give up.
            let times = 1 + rng.below(ATTEMPTS as u64 + 1) as usize;
            let rule = FaultRule::nth(m, p, nth, Fault::Status(code, None)).times(times);
            (rule, format!("{m} {p} x{times}"))
        }
        // Once: each costs the full second of its Retry-After.
        "429+Retry-After" => (
            FaultRule::nth(m, p, nth, Fault::Status(429, Some(1))),
            format!("{m} {p}"),
        ),
        "slow" => (
            FaultRule::nth(m, p, nth, Fault::Delay(slow())),
            format!("{m} {p}"),
        ),
        // Like 500: up to one more in a row than rko's attempts, so some give up.
        "slow-past-timeout" => {
            let times = 1 + rng.below(ATTEMPTS as u64 + 1) as usize;
            let rule = FaultRule::nth(m, p, nth, Fault::Delay(past_timeout())).times(times);
            (rule, format!("{m} {p} x{times}"))
        }
        "truncated-manifest" => {
            let n = 1 + rng.below(2) as usize; // by digest, then by tag
            let rule = FaultRule::nth("PUT", "/manifests/", n, Fault::TruncateBody);
            (rule, format!("PUT /manifests/ #{n}"))
        }
        "wrong-digest" => {
            let (m, p) = *rng.pick(&[
                ("HEAD", "/blobs/"),
                ("PUT", "/blobs/uploads/"),
                ("PUT", "/manifests/"),
            ]);
            (
                FaultRule::nth(m, p, nth, Fault::WrongDigest),
                format!("{m} {p}"),
            )
        }
        k => panic!("unknown fault kind {k}"),
    };
    let what = match what.contains('#') {
        true => what,
        false => format!("{what} #{nth}"),
    };
    (rule, format!("{kind} on {what}"))
}

#[derive(Default)]
struct Tally {
    drawn: usize,
    injected: usize,
    success: usize,
    clean_failure: usize,
}

#[test]
fn fault_campaign_every_push_is_right_or_fails_cleanly() {
    common::require_tools!("docker-registry", "skopeo");
    let seed = env_u64("RKO_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_007
    });
    let pushes = env_u64("RKO_FAULT_PUSHES").unwrap_or(100) as usize;
    say(&format!(
        "fault campaign: RKO_FAULT_SEED={seed} RKO_FAULT_PUSHES={pushes}"
    ));
    let mut rng = Rng(seed);
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    let start = Instant::now();
    let mut tally: std::collections::BTreeMap<&str, Tally> = Default::default();
    let (mut success, mut clean, mut corrupt, mut hung, mut unclear) = (0, 0, 0, 0, 0);
    let mut problems = Vec::new();
    // Fresh layer contents every push; a repository reused every 20 pushes, so some blobs
    // are already there and tags move. The next images are built while one is pushed.
    let repo_of = |i: usize| format!("camp/r{}", i % 20);
    let (tx, images) = std::sync::mpsc::sync_channel(4);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..pushes {
                let img = w.image(&format!("p{i}"), &format!("{host}/{}", repo_of(i)));
                if tx.send(img).is_err() {
                    return;
                }
            }
        });
        // By value: a panic here drops the receiver, which ends the builder thread.
        for (i, img) in images.into_iter().take(pushes).enumerate() {
            let repo = repo_of(i);
            let kind = *rng.pick(&KINDS);
            let (rule, what) = draw(&mut rng, kind);
            proxy.clear_faults();
            proxy.add_fault(rule);
            let before = proxy.faults_applied();
            let out = w.push_timed(&img, &host, &repo);
            let injected = proxy.faults_applied() - before;
            let t = tally.entry(kind).or_default();
            t.drawn += 1;
            t.injected += injected;
            let label = format!("push {i} ({what}, {injected} injected) to {repo}");
            let verdict = match &out {
                None => {
                    hung += 1;
                    format!("HUNG past {PUSH_DEADLINE:?}")
                }
                Some(o) if o.status.success() => match check_success(&reg, &repo, &img, o) {
                    Ok(()) => {
                        success += 1;
                        t.success += 1;
                        "ok".to_string()
                    }
                    Err(e) => {
                        corrupt += 1;
                        format!("WRONG after success: {e}")
                    }
                },
                Some(o) => match clear_failure(o) {
                    Ok(()) => {
                        clean += 1;
                        t.clean_failure += 1;
                        let err = String::from_utf8_lossy(&o.stderr);
                        let line = err.lines().find(|l| l.starts_with("rko: error:"));
                        format!("failed cleanly: {}", line.unwrap_or(""))
                    }
                    Err(e) => {
                        unclear += 1;
                        format!("UNCLEAR failure: {e}")
                    }
                },
            };
            let bad = integrity_problems(&reg, &repo, &img);
            if !bad.is_empty() {
                corrupt += 1;
            }
            if verdict != "ok" {
                say(&format!("  {label}: {verdict}"));
            }
            if !bad.is_empty() || verdict.starts_with(char::is_uppercase) {
                problems.push(format!("{label}: {verdict} {bad:?}\n{}", proxy.log_text()));
            }
        }
    });
    let elapsed = start.elapsed();
    say(&format!(
        "fault campaign (seed {seed}): {pushes} pushes in {:.1} s: {success} succeeded, \
         {clean} failed cleanly, {corrupt} corrupt, {unclear} unclear failures, {hung} hung",
        elapsed.as_secs_f64()
    ));
    for (kind, t) in &tally {
        say(&format!(
            "  {kind:18} drawn {:3}  injected {:3}  succeeded {:3}  failed cleanly {:3}",
            t.drawn, t.injected, t.success, t.clean_failure
        ));
    }
    let injected: usize = tally.values().map(|t| t.injected).sum();
    say(&format!("  faults injected in all: {injected}"));
    assert!(
        problems.is_empty(),
        "seed {seed}: {} bad pushes:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(success + clean, pushes);
    // Too few pushes to expect the mix (RKO_FAULT_PUSHES can be small).
    if pushes >= 20 {
        assert!(
            success * 2 > pushes,
            "most faults are recoverable: {success} of {pushes}"
        );
        assert!(injected >= pushes / 2, "faults were injected: {injected}");
    }
}

// ---- One test per fault kind that needed a fix or a precise expectation -----------------

fn one_push(rules: Vec<FaultRule>) -> (Registry, FaultProxy, Work, Image, Output) {
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, rules);
    let w = Work::new();
    let img = w.image("one", &format!("{}/one", proxy.addr()));
    let out = w.push(&img, &proxy.addr(), "one").expect("push hung");
    (reg, proxy, w, img, out)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Regression: rko ignored the `Docker-Content-Digest` of a blob upload's answer, so a
/// registry (or proxy) that stored other bytes than sent went unnoticed until pull time.
/// Now the upload is retried, fresh.
#[test]
fn wrong_digest_after_a_blob_upload_is_retried() {
    common::require_tools!("docker-registry", "skopeo");
    let (reg, proxy, _w, img, out) = one_push(vec![FaultRule::first(
        "PUT",
        "/blobs/uploads/",
        Fault::WrongDigest,
    )]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("Docker-Content-Digest {WRONG_DIGEST}")),
        "the retry names the cause: {err}"
    );
    assert_eq!(proxy.faults_applied(), 1);
    check_success(&reg, "one", &img, &out).unwrap();
}

/// Regression: a manifest PUT answered with another `Docker-Content-Digest` was reported
/// as pushed. It is now an error naming both digests.
#[test]
fn wrong_digest_after_a_manifest_put_is_a_clear_error() {
    common::require_tools!("docker-registry", "skopeo");
    let (reg, _proxy, _w, img, out) = one_push(vec![FaultRule::first(
        "PUT",
        "/manifests/",
        Fault::WrongDigest,
    )]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for part in ["Docker-Content-Digest", WRONG_DIGEST, img.digest.as_str()] {
        assert!(err.contains(part), "{part:?} in: {err}");
    }
    assert!(out.stdout.is_empty(), "nothing reported as pushed");
    assert!(integrity_problems(&reg, "one", &img).is_empty());
}

/// Regression: a 200 to a blob HEAD was taken as "the registry has it" whatever digest
/// and size the answer named. A HEAD naming other bytes no longer skips the upload.
#[test]
fn a_blob_head_naming_other_bytes_does_not_skip_the_upload() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    let host = proxy.addr();
    let w = Work::new();
    let img = w.image("one", &format!("{host}/one"));
    let first = w.push(&img, &host, "one").unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // The blobs are there now: HEADs answer 200, but with a wrong digest.
    proxy.add_fault(FaultRule::always("HEAD", "/blobs/", Fault::WrongDigest));
    let again = w.push(&img, &host, "one").unwrap();
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    let uploaded = proxy.count("PUT", "/blobs/uploads/");
    assert!(
        uploaded >= 2 * img.blobs.len(),
        "the second push uploads again: {}",
        proxy.log_text()
    );
    assert!(err.contains("0 blobs existed"), "{err}");
    check_success(&reg, "one", &img, &again).unwrap();
}

/// A truncated manifest body reaching the registry: the registry refuses it, rko fails
/// naming the registry's answer, and nothing broken is left.
#[test]
fn a_truncated_manifest_body_fails_clearly_and_leaves_nothing_broken() {
    common::require_tools!("docker-registry", "skopeo");
    for nth in [1, 2] {
        let (reg, _proxy, _w, img, out) = one_push(vec![FaultRule::nth(
            "PUT",
            "/manifests/",
            nth,
            Fault::TruncateBody,
        )]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("HTTP 400"), "{err}");
        assert!(err.contains("/manifests/"), "{err}");
        assert!(integrity_problems(&reg, "one", &img).is_empty());
        // By digest first, so a truncated tag PUT leaves the manifest itself intact.
        assert_eq!(reg.has_manifest("one", &img.digest), nth == 2);
        assert_eq!(reg.tag_digest("one", "v1"), None);
    }
}

/// A connection dropped in the middle of a manifest PUT is retried.
#[test]
fn a_manifest_put_dropped_mid_body_is_retried() {
    common::require_tools!("docker-registry", "skopeo");
    let (reg, proxy, _w, img, out) = one_push(vec![FaultRule::first(
        "PUT",
        "/manifests/",
        Fault::DropMidBody,
    )]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.faults_applied(), 1);
    check_success(&reg, "one", &img, &out).unwrap();
}

/// A registry that accepts the request and then never answers must not hang `rko push`:
/// it must give up within a bounded time naming the registry. Regression: rko's HTTP agent
/// set only a connect timeout, so this waited as long as the server held the connection;
/// now `--registry-timeout` (default 60 s, 2 s here) ends each attempt.
#[test]
fn a_stalled_registry_does_not_hang_the_push() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![FaultRule::always("PUT", "/blobs/uploads/", Fault::Stall)],
    );
    let w = Work::new();
    let img = w.image("one", &format!("{}/one", proxy.addr()));
    let start = Instant::now();
    let timeout = ["--registry-timeout", "2"];
    let out = wait_bounded(
        w.spawn_push_with(&img, &proxy.addr(), "one", &timeout),
        Duration::from_secs(90),
    );
    let out = out.unwrap_or_else(|| {
        panic!(
            "rko push still waiting on a stalled registry after {:?}",
            start.elapsed()
        )
    });
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&proxy.addr()), "names the registry: {err}");
    assert!(err.contains("stalled"), "says it stalled: {err}");
}

// ---- Concurrency -------------------------------------------------------------------------

/// Runs the pushes at once, each `(image, repository)`, and returns their outputs.
fn push_all_at_once(w: &Work, host: &str, jobs: &[(&Image, String)]) -> Vec<Output> {
    let children: Vec<_> = jobs
        .iter()
        .map(|(img, repo)| w.spawn_push(img, host, repo))
        .collect();
    children
        .into_iter()
        .map(|c| wait_bounded(c, PUSH_DEADLINE).expect("a concurrent push hung"))
        .collect()
}

fn pushed_digest(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let first = out.lines().next().unwrap_or_default();
    first.split('@').nth(1).unwrap_or_default().to_string()
}

/// 8 pushes at once into one repository: 4 of the same image (to the same tag), 4 of
/// sibling images sharing its base and binary layers (each to its own tag). All succeed,
/// each with its image's digest, and skopeo reads every tag.
#[test]
fn eight_concurrent_pushes_into_one_repository() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    let same = w.image_tagged("same", &format!("{host}/shared/app"), "same");
    let siblings: Vec<Image> = (0..4)
        .map(|i| {
            let name = format!("sib{i}");
            w.image_tagged(&name, &format!("{host}/shared/app"), &name)
        })
        .collect();
    // The siblings share the binary and base layers with `same`.
    for s in &siblings {
        assert_eq!(s.blobs[1..3], same.blobs[1..3]);
        assert_ne!(s.digest, same.digest);
    }
    let mut jobs: Vec<(&Image, String)> =
        (0..4).map(|_| (&same, "shared/app".to_string())).collect();
    jobs.extend(siblings.iter().map(|s| (s, "shared/app".to_string())));
    let start = Instant::now();
    let outs = push_all_at_once(&w, &host, &jobs);
    let took = start.elapsed();
    for (o, (img, _)) in outs.iter().zip(&jobs) {
        assert!(o.status.success(), "{}", stderr(o));
        assert_eq!(pushed_digest(o), img.digest);
        let m = get_manifest(&reg, "shared/app", &img.digest).expect("manifest by digest");
        assert!(missing_blobs(&reg, "shared/app", &m).is_empty());
        assert_eq!(
            skopeo_digest(&format!("{host}/shared/app@{}", img.digest)),
            img.digest
        );
    }
    // All four pushes of the same image agree.
    let same_digests: Vec<String> = outs[..4].iter().map(pushed_digest).collect();
    assert!(same_digests.iter().all(|d| *d == same.digest));
    // skopeo reads every tag as its image.
    assert_eq!(
        skopeo_digest(&format!("{host}/shared/app:same")),
        same.digest
    );
    for (i, s) in siblings.iter().enumerate() {
        assert_eq!(
            skopeo_digest(&format!("{host}/shared/app:sib{i}")),
            s.digest
        );
    }
    assert_eq!(reg.pending_uploads("shared/app"), 0);
    say(&format!(
        "concurrency: 8 pushes into one repository in {:.2} s, all succeeded",
        took.as_secs_f64()
    ));
}

/// 8 pushes at once of the same image into 8 sibling repositories of one registry: all
/// succeed with identical digests, and skopeo reads each repository's tag.
#[test]
fn eight_concurrent_pushes_into_sibling_repositories() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let w = Work::new();
    let img = w.image("same", &format!("{host}/team/placeholder"));
    let jobs: Vec<(&Image, String)> = (0..8).map(|i| (&img, format!("team/svc{i}"))).collect();
    let start = Instant::now();
    let outs = push_all_at_once(&w, &host, &jobs);
    let took = start.elapsed();
    for (o, (_, repo)) in outs.iter().zip(&jobs) {
        assert!(o.status.success(), "{}", stderr(o));
        assert_eq!(pushed_digest(o), img.digest);
        assert_eq!(skopeo_digest(&format!("{host}/{repo}:v1")), img.digest);
        assert!(integrity_problems(&reg, repo, &img).is_empty());
        assert_eq!(reg.pending_uploads(repo), 0);
    }
    say(&format!(
        "concurrency: 8 pushes into 8 sibling repositories in {:.2} s, all succeeded with {}",
        took.as_secs_f64(),
        img.digest
    ));
}

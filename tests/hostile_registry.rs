//! Registries that misbehave on purpose (a scripted fake, tests/common/hostile.rs, since a
//! real registry cannot be made to): oversized and endless bodies, stalls, redirects to
//! another host, a plain-HTTP token realm, bytes that do not match their digest. Each
//! case must end quickly with a clear error, and credentials never reach another host.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::registry::{Registry, RegistryOptions, TokenServer};
use common::{RKO, sha256_hex};
use hostile::{Hostile, Reply, Request};

const MANIFEST_MT: &str = "application/vnd.oci.image.manifest.v1+json";

/// A one-layer image as a registry serves it.
#[derive(Clone)]
struct Image {
    manifest: Vec<u8>,
    digest: String,
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

impl Image {
    /// The image; `config_size` overrides the size its manifest gives the config.
    fn new(config_size: Option<u64>) -> Image {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let layer: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let layer_digest = format!("sha256:{}", sha256_hex(&layer));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MT,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size.unwrap_or(config.len() as u64),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        })
        .to_string()
        .into_bytes();
        Image {
            digest: format!("sha256:{}", sha256_hex(&manifest)),
            manifest,
            config,
            config_digest,
            layer,
            layer_digest,
        }
    }

    /// The honest answer to `req`, if it is one of this image's paths.
    fn answer(&self, req: &Request) -> Reply {
        let p = req.path.as_str();
        if p == "/v2/" {
            return Reply::ok("{}", "application/json");
        }
        if p.ends_with(&format!("/manifests/{}", self.digest)) {
            return Reply::ok(self.manifest.clone(), MANIFEST_MT);
        }
        if p.ends_with(&format!("/blobs/{}", self.config_digest)) {
            return Reply::ok(self.config.clone(), "application/octet-stream");
        }
        if p.ends_with(&format!("/blobs/{}", self.layer_digest)) {
            return Reply::ok(self.layer.clone(), "application/octet-stream");
        }
        Reply::status(404, &[], r#"{"errors":[{"code":"NOT_FOUND"}]}"#)
    }

    fn is_manifest(&self, req: &Request) -> bool {
        req.path.contains("/manifests/")
    }
    fn is_config(&self, req: &Request) -> bool {
        req.path.ends_with(&self.config_digest)
    }
    fn is_layer(&self, req: &Request) -> bool {
        req.path.ends_with(&self.layer_digest)
    }
}

/// The outcome of one bounded `rko` run.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `rko pull` of `host/x@digest` (with `extra` flags) in `dir`, with DOCKER_CONFIG in
/// `dir/docker`; kills it if it runs past a minute (which fails the test).
fn pull(dir: &Path, host: &str, digest: &str, extra: &[&str]) -> Run {
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    let out = dir.join(format!(
        "out-{}",
        sha256_hex(format!("{extra:?}").as_bytes())
    ));
    let mut cmd = Command::new(RKO);
    cmd.args(["pull", &format!("{host}/x@{digest}"), "-o"])
        .arg(&out)
        .args(["--insecure-registry", host, "--attempts", "1"])
        .args(extra)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("REGISTRY_AUTH_FILE", dir.join("docker/none.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_bounded(&mut cmd)
}

fn run_bounded(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rko ran past a minute: not bounded");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        ok: status.success(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: start.elapsed(),
    }
}

/// Asserts the run failed within `secs` with every one of `expect` in its stderr.
fn fails_with(run: &Run, secs: u64, expect: &[&str]) {
    assert!(!run.ok, "rko succeeded:\n{}", run.stdout);
    for e in expect {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.stderr);
    }
    assert!(
        run.took < Duration::from_secs(secs),
        "took {:?}:\n{}",
        run.took,
        run.stderr
    );
    assert!(
        run.stderr.len() < 4000,
        "an unbounded message:\n{}",
        run.stderr
    );
}

fn endless(status: u16) -> Reply {
    Reply::Endless {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        chunk: vec![b' '; 64 << 10],
    }
}

#[test]
fn oversized_and_endless_manifests_are_refused_naming_the_limit_and_the_url() {
    let img = Image::new(None);
    for (name, reply) in [
        ("oversized", 0),
        ("endless", 1), // chunked, no end
    ] {
        let i = img.clone();
        let reg = Hostile::start(move |req| match i.is_manifest(req) {
            true if reply == 0 => Reply::ok(vec![b' '; 17 << 20], MANIFEST_MT),
            true => endless(200),
            false => i.answer(req),
        });
        let dir = tempfile::tempdir().unwrap();
        let run = pull(dir.path(), &reg.host(), &img.digest, &[]);
        let url = format!("GET http://{}/v2/x/manifests/{}", reg.host(), img.digest);
        fails_with(&run, 30, &["sent more than 16 MiB", &url, "refusing it"]);
        eprintln!("{name}: {}", run.stderr.trim());
    }
}

#[test]
fn an_oversized_config_is_refused_before_it_is_read() {
    let img = Image::new(Some(17 << 20));
    let i = img.clone();
    let reg = Hostile::start(move |req| i.answer(req));
    let dir = tempfile::tempdir().unwrap();
    let run = pull(dir.path(), &reg.host(), &img.digest, &[]);
    fails_with(
        &run,
        30,
        &["is 17825792 bytes by its manifest, more than the 16 MiB"],
    );
    assert!(
        !reg.requests().iter().any(|r| img.is_config(r)),
        "the config was requested"
    );
}

#[test]
fn endless_config_and_layer_bodies_stop_at_the_descriptor_size() {
    let img = Image::new(None);
    for (what, eager) in [("config", false), ("layer", true)] {
        let i = img.clone();
        let reg = Hostile::start(move |req| {
            let hit = if eager {
                i.is_layer(req)
            } else {
                i.is_config(req)
            };
            match hit {
                true => endless(200),
                false => i.answer(req),
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let extra: &[&str] = if eager { &["--eager"] } else { &[] };
        let run = pull(dir.path(), &reg.host(), &img.digest, extra);
        let digest = if eager {
            &img.layer_digest
        } else {
            &img.config_digest
        };
        fails_with(
            &run,
            30,
            &[
                &format!("blob {digest} from {}/x does not match", reg.host()),
                "the registry content changed or is corrupt",
            ],
        );
        eprintln!("{what}: {}", run.stderr.trim());
    }
}

#[test]
fn config_and_layer_bytes_that_do_not_match_their_digest_are_refused() {
    let img = Image::new(None);
    for eager in [false, true] {
        let i = img.clone();
        let reg = Hostile::start(move |req| {
            let hit = if eager {
                i.is_layer(req)
            } else {
                i.is_config(req)
            };
            if !hit {
                return i.answer(req);
            }
            // The right size, one byte changed.
            let mut b = if eager {
                i.layer.clone()
            } else {
                i.config.clone()
            };
            b[3] ^= 1;
            Reply::ok(b, "application/octet-stream")
        });
        let dir = tempfile::tempdir().unwrap();
        let extra: &[&str] = if eager { &["--eager"] } else { &[] };
        let run = pull(dir.path(), &reg.host(), &img.digest, extra);
        let digest = if eager {
            &img.layer_digest
        } else {
            &img.config_digest
        };
        fails_with(
            &run,
            30,
            &[&format!(
                "blob {digest} from {}/x does not match",
                reg.host()
            )],
        );
    }
    // And a manifest whose bytes are not the digest pinned.
    let i = img.clone();
    let reg = Hostile::start(move |req| match i.is_manifest(req) {
        true => Reply::ok(
            String::from_utf8(i.manifest.clone())
                .unwrap()
                .replace("\"schemaVersion\":2", "\"schemaVersion\": 2"),
            MANIFEST_MT,
        ),
        false => i.answer(req),
    });
    let dir = tempfile::tempdir().unwrap();
    let run = pull(dir.path(), &reg.host(), &img.digest, &[]);
    fails_with(&run, 30, &["does not match its descriptor"]);
}

#[test]
fn oversized_and_endless_error_bodies_are_cut_short() {
    let img = Image::new(None);
    for endless_body in [false, true] {
        let i = img.clone();
        let reg = Hostile::start(move |req| match i.is_manifest(req) {
            true if endless_body => endless(404),
            true => Reply::status(404, &[], vec![b'e'; 10 << 20]),
            false => i.answer(req),
        });
        let dir = tempfile::tempdir().unwrap();
        let run = pull(dir.path(), &reg.host(), &img.digest, &[]);
        let url = format!("GET {}/v2/x/manifests/{}", reg.host(), img.digest);
        fails_with(&run, 30, &[&url, "HTTP 404", "…"]);
    }
}

#[test]
fn oversized_and_endless_token_answers_are_refused() {
    let img = Image::new(None);
    for endless_body in [false, true] {
        let i = img.clone();
        let reg = Hostile::start_with_self(move |host, req| {
            if req.path.starts_with("/token") {
                return match endless_body {
                    true => endless(200),
                    false => Reply::ok(vec![b' '; 2 << 20], "application/json"),
                };
            }
            if req.header("authorization").is_none() && req.path != "/v2/" {
                let c = format!("Bearer realm=\"http://{host}/token\",service=\"s\"");
                return Reply::status(401, &[("WWW-Authenticate", &c)], "");
            }
            i.answer(req)
        });
        let dir = tempfile::tempdir().unwrap();
        let run = pull(dir.path(), &reg.host(), &img.digest, &[]);
        let realm = format!("the token service http://{}/token", reg.host());
        fails_with(&run, 30, &[&realm, "sent more than 1 MiB"]);
    }
}

#[test]
fn stalled_connections_time_out_naming_the_host() {
    let img = Image::new(None);
    // (what stalls, eager, how)
    let cases: [(&str, bool, bool); 5] = [
        ("manifest", false, false),
        ("manifest", false, true),
        ("config", false, true),
        ("layer", true, true),
        ("token", false, false),
    ];
    for (what, eager, mid_body) in cases {
        let i = img.clone();
        let reg = Hostile::start_with_self(move |host, req| {
            let stalls = match what {
                "manifest" => i.is_manifest(req),
                "config" => i.is_config(req),
                "layer" => i.is_layer(req),
                _ => req.path.starts_with("/token"),
            };
            if stalls && !mid_body {
                return Reply::Stall;
            }
            if stalls {
                return Reply::StallMidBody {
                    status: 200,
                    headers: vec![("Content-Type".into(), MANIFEST_MT.into())],
                    length: 1 << 20,
                    sent: vec![b'{'; 10],
                };
            }
            if what == "token" && req.header("authorization").is_none() && req.path != "/v2/" {
                let c = format!("Bearer realm=\"http://{host}/token\",service=\"s\"");
                return Reply::status(401, &[("WWW-Authenticate", &c)], "");
            }
            i.answer(req)
        });
        let dir = tempfile::tempdir().unwrap();
        let extra: &[&str] = match eager {
            true => &["--eager", "--registry-timeout", "2"],
            false => &["--registry-timeout", "2"],
        };
        let run = pull(dir.path(), &reg.host(), &img.digest, extra);
        let host = reg.host();
        let expect: &[&str] = match (what, mid_body) {
            ("token", _) => &["token service", "sent nothing for 2 s"],
            (_, false) => &["the connection to", "stalled", "sent nothing for 2 s"],
            (_, true) => &["reading the answer of", "sent nothing for 2 s"],
        };
        fails_with(&run, 20, expect);
        assert!(run.stderr.contains(&host), "{}", run.stderr);
        assert!(run.stderr.contains("--registry-timeout"), "{}", run.stderr);
        eprintln!(
            "{what} (mid-body {mid_body}) in {:?}: {}",
            run.took,
            run.stderr.trim()
        );
    }
}

/// Every header value the second host received, lower-cased names with values.
fn headers_seen(reg: &Hostile) -> String {
    reg.requests()
        .iter()
        .flat_map(|r| r.headers.iter().map(|(k, v)| format!("{k}: {v}\n")))
        .collect()
}

/// Serves `img`'s blobs at `/blob/<digest>` (the "bucket" a registry redirects to).
fn bucket(img: &Image) -> Hostile {
    let i = img.clone();
    Hostile::start(move |req| {
        let d = req.path.trim_start_matches("/blob/");
        let d = d.split('?').next().unwrap();
        let path = format!("/v2/x/blobs/{d}");
        i.answer(&Request {
            path,
            ..req.clone()
        })
    })
}

fn login(dir: &Path, host: &str, user: &str, pass: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let cfg = serde_json::json!({"auths": {host: {"auth": auth}}});
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    std::fs::write(dir.join("docker/config.json"), cfg.to_string()).unwrap();
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let img = Image::new(None);
    let (user, pass, token) = ("redir-user", "redir-Pass-81", "tok-Redir-Secret-27");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    for bearer in [false, true] {
        let store = bucket(&img);
        let store_host = store.host();
        let i = img.clone();
        let basic = format!("Basic {b64}");
        let reg = Hostile::start_with_self(move |host, req| {
            if req.path.starts_with("/token") {
                return match req.header("authorization") == Some(basic.as_str()) {
                    true => Reply::ok(format!("{{\"token\":\"{token}\"}}"), "application/json"),
                    false => Reply::status(401, &[], ""),
                };
            }
            let authed = match bearer {
                true => req.header("authorization") == Some(&format!("Bearer {token}")),
                false => req.header("authorization") == Some(basic.as_str()),
            };
            if !authed {
                let c = match bearer {
                    true => format!("Bearer realm=\"http://{host}/token\",service=\"s\""),
                    false => "Basic realm=\"r\"".to_string(),
                };
                return Reply::status(401, &[("WWW-Authenticate", &c)], "");
            }
            if req.path.contains("/blobs/") {
                let d = req.path.rsplit('/').next().unwrap();
                let to = format!("http://{store_host}/blob/{d}?X-Signature=abc");
                return Reply::status(307, &[("Location", &to)], "");
            }
            i.answer(req)
        });
        let dir = tempfile::tempdir().unwrap();
        login(dir.path(), &reg.host(), user, pass);
        let run = pull(dir.path(), &reg.host(), &img.digest, &["--eager"]);
        assert!(run.ok, "{}", run.stderr);
        // The registry got the credentials; the bucket served both blobs and saw none.
        let got_blobs = store.requests().len();
        assert_eq!(got_blobs, 2, "{:?}", store.requests());
        let seen = headers_seen(&store);
        for secret in [pass, token, b64.as_str(), "authorization"] {
            assert!(
                !seen.to_lowercase().contains(&secret.to_lowercase()),
                "the other host received {secret:?}:\n{seen}"
            );
        }
        let registry_seen = headers_seen(&reg);
        let expect = if bearer { token } else { b64.as_str() };
        assert!(registry_seen.contains(expect), "{registry_seen}");
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains(pass) && !out.contains(token) && !out.contains(&b64));
        }
    }
}

#[test]
fn a_plain_http_token_realm_for_a_tls_registry_is_refused() {
    common::require_tools!("go", "openssl", "docker-registry");
    let tokens = TokenServer::start("realm-user", "realm-pass");
    let reg = Registry::start(RegistryOptions {
        tls: true,
        ..tokens.registry_options()
    });
    let dir = tempfile::tempdir().unwrap();
    login(dir.path(), &reg.host(), "realm-user", "realm-pass");
    let ca = reg.ca_cert().unwrap();
    let digest = format!("sha256:{}", "0".repeat(64));
    let reference = format!("{}/x@{digest}", reg.host());
    let mut cmd = Command::new(RKO);
    cmd.args(["pull", &reference, "-o"])
        .arg(dir.path().join("out"))
        .arg("--ca-file")
        .arg(&ca)
        .env("DOCKER_CONFIG", dir.path().join("docker"))
        .env("REGISTRY_AUTH_FILE", dir.path().join("docker/none.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = run_bounded(&mut cmd);
    fails_with(
        &run,
        30,
        &[
            &format!("{} sends its token requests to http://", reg.host()),
            "over plain HTTP",
            &format!("--insecure-registry {}", reg.host()),
        ],
    );
    // Named insecure by the user, the same registry gets its token (and then answers
    // that the manifest is unknown).
    cmd.args(["--insecure-registry", &reg.host()]);
    let run = run_bounded(&mut cmd);
    assert!(!run.ok);
    assert!(!run.stderr.contains("plain HTTP"), "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
}

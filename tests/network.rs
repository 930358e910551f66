//! Corporate networks (issue 15), against real components on 127.0.0.1: a real forward
//! proxy (Debian's tinyproxy) in front of a TLS docker-registry; the private CA given
//! through each trust source (SSL_CERT_FILE, SSL_CERT_DIR, the system bundle, docker's and
//! containers' certs.d); a registry that requires a client certificate (mTLS); and mirrors
//! for pulls (`--mirror`, registries.conf), one of which serves a forged manifest.
//!
//! Every rko run gets its own HOME and RKO_ETC_DIR (temporary directories) and none of the
//! proxy, trust or mirror variables of the environment the tests run in, so the machine's
//! own files and settings never interfere.
//!
//! Clients never proxy loopback addresses (Go's httpproxy, docker, ko, rko), so a test that
//! must go through the proxy addresses the registry, which listens on 127.0.0.1, as
//! `0.0.0.0:PORT`: Linux connects 0.0.0.0 to the local listeners, and 0.0.0.0 is not a
//! loopback address. The registry's certificate names 0.0.0.0 for that.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{
    Fault, FaultProxy, FaultRule, Registry, RegistryOptions, free_port, http_request,
};
use common::tinyproxy::Tinyproxy;
use common::{RKO, fake_go_binary, read_json, run, run_ok};

/// Variables of the outer environment that would change what rko trusts, proxies or mirrors.
const CLEARED: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CONTAINERS_REGISTRIES_CONF",
    "XDG_CONFIG_HOME",
    "KO_DOCKER_REPO",
    "DOCKER_CERT_PATH",
];

/// A test's directory: a small fake Go binary, an empty docker config, and the HOME and
/// RKO_ETC_DIR every rko run gets.
struct Net {
    dir: tempfile::TempDir,
}

impl Net {
    fn new() -> Net {
        let n = Net {
            dir: tempfile::Builder::new()
                .prefix("rko-net-")
                .tempdir()
                .unwrap(),
        };
        fake_go_binary(&n.path("app"), 62, 1 << 20);
        for d in ["docker", "home", "etc"] {
            std::fs::create_dir_all(n.path(d)).unwrap();
        }
        n
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `$RKO_ETC_DIR`.
    fn etc(&self) -> PathBuf {
        self.path("etc")
    }

    /// `$HOME`.
    fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// rko with `args`, the isolated environment, and `env` on top.
    fn rko(&self, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut c = Command::new(RKO);
        c.args(args).current_dir(self.dir.path());
        for v in CLEARED {
            c.env_remove(v);
        }
        c.env("HOME", self.home())
            .env("RKO_ETC_DIR", self.etc())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("docker/none.json"));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn output(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        run(&mut self.rko(args, env))
    }

    /// `rko build app --push --repository REPO --naming bare EXTRA…`; the output.
    fn push(&self, repo: &str, env: &[(&str, String)], extra: &[&str]) -> Output {
        let mut args = vec![
            "build",
            "app",
            "--import-path",
            "example.com/net/app",
            "--push",
            "--repository",
            repo,
            "--naming",
            "bare",
        ];
        args.extend_from_slice(extra);
        self.output(&args, env)
    }

    /// [`Net::push`], asserting success; returns the pushed digest.
    fn push_ok(&self, repo: &str, env: &[(&str, String)], extra: &[&str]) -> String {
        let o = self.push(repo, env, extra);
        let (out, err) = texts(&o);
        assert!(
            o.status.success(),
            "push to {repo} with {env:?} failed:\n{err}"
        );
        let reference = out.trim();
        let digest = reference
            .strip_prefix(&format!("{repo}@"))
            .unwrap_or_else(|| panic!("push printed {reference:?}, expected {repo}@sha256:…"));
        digest.to_string()
    }

    /// [`Net::push`], asserting it fails (exit 1); returns stderr.
    fn push_fails(&self, repo: &str, env: &[(&str, String)], extra: &[&str]) -> String {
        let o = self.push(repo, env, extra);
        let (out, err) = texts(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "push to {repo} with {env:?} should fail:\n{out}\n{err}"
        );
        err
    }
}

fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn var(k: &'static str, v: impl AsRef<Path>) -> (&'static str, String) {
    (k, v.as_ref().display().to_string())
}

/// skopeo without any proxy or trust settings of the outer environment.
fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    for v in CLEARED {
        c.env_remove(v);
    }
    c
}

/// The sha256 of the manifest `reference` (HOST/REPO:TAG) as skopeo reads it.
fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let out = run_ok(
        skopeo()
            .args(["inspect", "--raw"])
            .args(extra)
            .arg(format!("docker://{reference}")),
    );
    format!("sha256:{}", common::sha256_hex(out.as_bytes()))
}

/// skopeo's `--cert-dir=…` for `reg` (its CA, and its client certificate with mTLS).
fn cert_dir_arg(reg: &Registry) -> String {
    format!("--cert-dir={}", reg.cert_dir().unwrap().display())
}

/// Copies `reg`'s CA to `dir/name` (creating `dir`).
fn place_ca(reg: &Registry, dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(reg.ca_cert().unwrap(), dir.join(name)).unwrap();
}

/// Copies `reg`'s client certificate and key to `dir/NAME.cert` and `dir/NAME.key`.
fn place_client_cert(reg: &Registry, dir: &Path, name: &str) {
    let (cert, key) = reg.client_cert().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(cert, dir.join(format!("{name}.cert"))).unwrap();
    std::fs::copy(key, dir.join(format!("{name}.key"))).unwrap();
}

fn tls_any() -> RegistryOptions {
    RegistryOptions {
        any_address_san: true,
        ..RegistryOptions::tls()
    }
}

// --- The infrastructure, checked with skopeo (independent of rko) ---

#[test]
fn infra_tinyproxy_tunnels_skopeo_to_the_tls_registry_at_0_0_0_0() {
    common::require_tools!("docker-registry", "openssl", "tinyproxy", "skopeo");
    let reg = Registry::start(tls_any());
    let proxy = Tinyproxy::start();
    let o = run(skopeo()
        .env("HTTPS_PROXY", proxy.url())
        .args(["inspect", "--raw", &cert_dir_arg(&reg)])
        .arg(format!("docker://{}/none:1", reg.any_host())));
    // The registry answered (TLS verified against the 0.0.0.0 SAN), through the tunnel.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("manifest unknown"), "{err}");
    let connects = proxy.connects();
    assert!(
        !connects.is_empty() && connects.iter().all(|c| *c == reg.any_host()),
        "{}",
        proxy.all_output()
    );
    assert!(
        reg.log().contains("GET /v2/none/manifests/1"),
        "{}",
        reg.log()
    );
    // 127.0.0.1 is never proxied.
    let o = run(skopeo()
        .env("HTTPS_PROXY", proxy.url())
        .args(["inspect", "--raw", &cert_dir_arg(&reg)])
        .arg(format!("docker://{}/none:2", reg.host())));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest unknown"));
    assert_eq!(proxy.connects(), connects);
}

#[test]
fn infra_mtls_registry_refuses_skopeo_without_the_client_certificate() {
    common::require_tools!("docker-registry", "openssl", "skopeo");
    let reg = Registry::start(RegistryOptions {
        client_certs: true,
        ..RegistryOptions::tls()
    });
    let (cert, key) = reg.client_cert().unwrap();
    assert!(cert.is_file() && key.is_file());
    // With client.cert/client.key beside ca.crt: the registry answers.
    let o = run(skopeo()
        .args(["inspect", "--raw", &cert_dir_arg(&reg)])
        .arg(format!("docker://{}/none:1", reg.host())));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("manifest unknown"), "{err}");
    // With the CA only: refused in the handshake.
    let n = Net::new();
    place_ca(&reg, &n.path("ca-only"), "ca.crt");
    let o = run(skopeo()
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(n.path("ca-only"))
        .arg(format!("docker://{}/none:1", reg.host())));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad certificate"), "{err}");
    assert!(
        reg.log().contains("client didn't provide a certificate"),
        "{}",
        reg.log()
    );
}

// --- Proxies ---

#[test]
fn push_goes_through_tinyproxy_with_connect_to_the_tls_registry() {
    common::require_tools!("docker-registry", "openssl", "tinyproxy", "skopeo");
    let reg = Registry::start(tls_any());
    let proxy = Tinyproxy::start();
    let n = Net::new();
    let trust = var("SSL_CERT_FILE", reg.ca_cert().unwrap());
    let repo = format!("{}/net", reg.any_host());
    let digest = n.push_ok(&repo, &[trust.clone(), ("HTTPS_PROXY", proxy.url())], &[]);
    let connects = proxy.connects();
    assert!(!connects.is_empty(), "no CONNECT:\n{}", proxy.all_output());
    assert!(
        connects.iter().all(|c| *c == reg.any_host()),
        "{connects:?}"
    );
    assert!(
        proxy
            .log()
            .contains(&format!("CONNECT {} HTTP/1.1", reg.any_host())),
        "{}",
        proxy.log()
    );
    assert_eq!(
        skopeo_digest(
            &format!("{}/net:latest", reg.host()),
            &[&cert_dir_arg(&reg)]
        ),
        digest
    );

    // The lowercase variable works the same.
    let before = proxy.requests().len();
    let again = n.push_ok(&repo, &[trust.clone(), ("https_proxy", proxy.url())], &[]);
    assert_eq!(again, digest);
    assert!(proxy.connects().len() > before, "{}", proxy.log());

    // Loopback is never proxied: 127.0.0.1 and localhost go straight to the registry.
    let before = proxy.requests();
    for host in [reg.host(), format!("localhost:{}", reg.port())] {
        let d = n.push_ok(
            &format!("{host}/direct"),
            &[trust.clone(), ("HTTPS_PROXY", proxy.url())],
            &[],
        );
        assert_eq!(d, digest);
    }
    // HTTP_PROXY is for http:// URLs only: a TLS registry is reached directly.
    n.push_ok(
        &format!("{}/http-proxy-only", reg.any_host()),
        &[trust, ("HTTP_PROXY", proxy.url())],
        &[],
    );
    assert_eq!(proxy.requests(), before, "{}", proxy.log());
}

#[test]
fn no_proxy_sends_the_push_straight_to_the_registry() {
    common::require_tools!("docker-registry", "openssl", "tinyproxy", "skopeo");
    let reg = Registry::start(tls_any());
    let proxy = Tinyproxy::start();
    let n = Net::new();
    let trust = var("SSL_CERT_FILE", reg.ca_cert().unwrap());
    let repo = format!("{}/net", reg.any_host());
    let port = reg.port();
    let matching = [
        ("NO_PROXY", "0.0.0.0".to_string()),
        ("NO_PROXY", "0.0.0.0/32".to_string()),
        ("no_proxy", "example.com, 0.0.0.0/8".to_string()),
        ("NO_PROXY", format!("0.0.0.0:{port}")),
        ("NO_PROXY", "*".to_string()),
    ];
    let mut digest = None;
    for (k, v) in matching {
        let d = n.push_ok(
            &repo,
            &[trust.clone(), ("HTTPS_PROXY", proxy.url()), (k, v.clone())],
            &[],
        );
        assert!(
            proxy.requests().is_empty(),
            "{k}={v} should bypass the proxy:\n{}",
            proxy.log()
        );
        assert_eq!(digest.get_or_insert(d.clone()), &d);
    }
    assert_eq!(
        skopeo_digest(
            &format!("{}/net:latest", reg.host()),
            &[&cert_dir_arg(&reg)]
        ),
        digest.unwrap()
    );
    // Entries that do not match (other domain, other network, other port) leave the proxy on.
    let other_port = if port == 1 { 2 } else { port - 1 };
    let not_matching = format!("example.com,.example.org,10.0.0.0/8,0.0.0.0:{other_port}");
    n.push_ok(
        &repo,
        &[
            trust,
            ("HTTPS_PROXY", proxy.url()),
            ("NO_PROXY", not_matching),
        ],
        &[],
    );
    assert!(
        proxy.connects().contains(&reg.any_host()),
        "{}",
        proxy.all_output()
    );
}

#[test]
fn plain_http_registry_goes_through_http_proxy() {
    common::require_tools!("docker-registry", "tinyproxy", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = Tinyproxy::start();
    let n = Net::new();
    let any = reg.any_host();
    let digest = n.push_ok(
        &format!("{any}/plain"),
        &[("HTTP_PROXY", proxy.url())],
        &["--insecure-registry", &any],
    );
    let requests = proxy.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.contains(&any)),
        "the push should go through the proxy:\n{}",
        proxy.all_output()
    );
    assert_eq!(
        skopeo_digest(
            &format!("{}/plain:latest", reg.host()),
            &["--tls-verify=false"]
        ),
        digest
    );
}

/// Go's net/http (docker, skopeo, ko) sends a plain-HTTP request to the proxy as
/// `GET http://HOST/PATH`, and uses CONNECT for https only: a proxy that allows CONNECT to
/// port 443 only (Squid's default, here tinyproxy with `ConnectPort 443`) still carries a
/// push to a plain-HTTP registry on another port.
#[test]
fn plain_http_goes_to_the_proxy_as_absolute_urls_not_connect() {
    common::require_tools!("docker-registry", "tinyproxy", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = Tinyproxy::start_with_connect_ports(&[443]);
    let any = reg.any_host();
    // skopeo (Go) as the reference: absolute-form requests, no CONNECT.
    let o = run(skopeo()
        .env("HTTP_PROXY", proxy.url())
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{any}/none:1")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("manifest unknown"), "{err}");
    assert!(
        proxy
            .requests()
            .contains(&format!("GET http://{any}/v2/none/manifests/1 HTTP/1.1")),
        "{}",
        proxy.all_output()
    );
    let n = Net::new();
    let digest = n.push_ok(
        &format!("{any}/plain"),
        &[("HTTP_PROXY", proxy.url())],
        &["--insecure-registry", &any, "--attempts", "1"],
    );
    let requests = proxy.requests();
    assert!(
        requests.iter().all(|r| !r.starts_with("CONNECT ")),
        "plain HTTP should not be tunnelled: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("PUT http://{any}/v2/plain/manifests/"))),
        "{requests:?}"
    );
    assert_eq!(reg.tag_digest("plain", "latest"), Some(digest));
}

#[test]
fn an_unreachable_proxy_is_named_and_its_password_never_shown() {
    common::require_tools!("docker-registry", "openssl");
    let reg = Registry::start(tls_any());
    let plain = Registry::start(RegistryOptions::plain());
    let n = Net::new();
    let trust = var("SSL_CERT_FILE", reg.ca_cert().unwrap());
    let closed = free_port();
    let secret = "pr0xy-s3cret";
    let url = format!("http://rkouser:{secret}@127.0.0.1:{closed}");
    let tls_repo = format!("{}/net", reg.any_host());
    let plain_any = plain.any_host();
    let plain_repo = format!("{plain_any}/net");
    let cases = [
        ("HTTPS_PROXY", &tls_repo, vec![]),
        ("https_proxy", &tls_repo, vec![]),
        (
            "HTTP_PROXY",
            &plain_repo,
            vec!["--insecure-registry", &plain_any],
        ),
    ];
    for (k, repo, mut extra) in cases {
        extra.extend(["--attempts", "1"]);
        let err = n.push_fails(repo, &[trust.clone(), (k, url.clone())], &extra);
        assert!(
            err.contains(&format!("127.0.0.1:{closed}")),
            "{k}: the error should name the proxy:\n{err}"
        );
        assert!(
            err.contains(k),
            "{k}: the error should name the variable:\n{err}"
        );
        assert!(
            !err.contains(secret) && !err.contains("rkouser"),
            "{k}: the proxy's credentials must never be shown:\n{err}"
        );
    }
    // Nothing reached the registries: the proxy is never bypassed.
    assert!(!reg.log().contains("/v2/net/"), "{}", reg.log());
    assert!(!plain.log().contains("/v2/net/"), "{}", plain.log());
}

// --- Trust ---

#[test]
fn the_private_ca_is_trusted_from_each_trust_source_alone() {
    common::require_tools!("docker-registry", "openssl", "skopeo");
    let reg = Registry::start(RegistryOptions::tls());
    let host = reg.host();
    let port = reg.port();

    // None: the error lists what was tried and where to put the CA.
    let n = Net::new();
    let err = n.push_fails(&format!("{host}/none"), &[], &["--attempts", "1"]);
    let etc = n.etc().display().to_string();
    for want in [
        "Mozilla",
        // The system bundle looked for under RKO_ETC_DIR, and the registry's certs.d.
        &etc,
        &format!("{etc}/docker/certs.d/{host}"),
        "certs.d",
        "SSL_CERT_FILE",
        "--ca-file",
    ] {
        assert!(
            err.contains(want),
            "expected {want:?} in the TLS error:\n{err}"
        );
    }
    // Sources that are set but hold another CA are named as tried.
    let other = Registry::start(RegistryOptions::tls());
    let other_ca = other.ca_cert().unwrap();
    let err = n.push_fails(
        &format!("{host}/none"),
        &[
            var("SSL_CERT_FILE", &other_ca),
            var("SSL_CERT_DIR", other_ca.parent().unwrap()),
        ],
        &["--attempts", "1"],
    );
    for want in [
        format!("SSL_CERT_FILE {}", other_ca.display()),
        format!("SSL_CERT_DIR {}", other_ca.parent().unwrap().display()),
    ] {
        assert!(
            err.contains(&want),
            "expected {want:?} in the TLS error:\n{err}"
        );
    }
    assert!(reg.tag_digest("none", "latest").is_none());

    // Each source alone: (name, how to give the CA: environment and extra arguments).
    type Given = (Vec<(&'static str, String)>, Vec<String>);
    type Setup = fn(&Registry, &Net) -> Given;
    let sources: [(&str, Setup); 7] = [
        ("SSL_CERT_FILE", |reg, n| {
            place_ca(reg, &n.path("pki"), "private-ca.pem");
            (
                vec![var("SSL_CERT_FILE", n.path("pki/private-ca.pem"))],
                vec![],
            )
        }),
        ("SSL_CERT_DIR", |reg, n| {
            std::fs::create_dir_all(n.path("empty-certs")).unwrap();
            place_ca(reg, &n.path("pki"), "private-ca.pem");
            let dirs = format!(
                "{}:{}",
                n.path("empty-certs").display(),
                n.path("pki").display()
            );
            (vec![("SSL_CERT_DIR", dirs)], vec![])
        }),
        (
            "the system bundle $RKO_ETC_DIR/ssl/certs/ca-certificates.crt",
            |reg, n| {
                place_ca(reg, &n.etc().join("ssl/certs"), "ca-certificates.crt");
                (vec![], vec![])
            },
        ),
        ("$RKO_ETC_DIR/docker/certs.d/HOST:PORT/ca.crt", |reg, n| {
            let d = n.etc().join("docker/certs.d").join(reg.host());
            place_ca(reg, &d, "ca.crt");
            (vec![], vec![])
        }),
        (
            "$RKO_ETC_DIR/containers/certs.d/HOST:PORT/*.crt",
            |reg, n| {
                let d = n.etc().join("containers/certs.d").join(reg.host());
                place_ca(reg, &d, "corp-root.crt");
                (vec![], vec![])
            },
        ),
        (
            "$HOME/.config/containers/certs.d/HOST:PORT/ca.crt",
            |reg, n| {
                let d = n.home().join(".config/containers/certs.d").join(reg.host());
                place_ca(reg, &d, "ca.crt");
                (vec![], vec![])
            },
        ),
        ("--ca-file", |reg, _| {
            let f = reg.ca_cert().unwrap().display().to_string();
            (vec![], vec!["--ca-file".to_string(), f])
        }),
    ];
    let mut digest = None;
    for (i, (name, setup)) in sources.iter().enumerate() {
        let n = Net::new();
        let (env, args) = setup(&reg, &n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let repo = format!("{host}/trust-{i}");
        let o = n.push(&repo, &env, &args);
        let (_, err) = texts(&o);
        assert!(
            o.status.success(),
            "the CA given only through {name} should be trusted:\n{err}"
        );
        let d = reg.tag_digest(&format!("trust-{i}"), "latest").unwrap();
        assert_eq!(digest.get_or_insert(d.clone()), &d, "{name}");
    }
    assert_eq!(
        skopeo_digest(&format!("{host}/trust-0:latest"), &[&cert_dir_arg(&reg)]),
        digest.unwrap()
    );

    // A certs.d directory applies to its own HOST:PORT only.
    let n = Net::new();
    let other = if port == 1 { 2 } else { port - 1 };
    place_ca(
        &reg,
        &n.etc().join(format!("docker/certs.d/127.0.0.1:{other}")),
        "ca.crt",
    );
    place_ca(
        &reg,
        &n.etc().join("containers/certs.d/localhost"),
        "ca.crt",
    );
    n.push_fails(&format!("{host}/elsewhere"), &[], &["--attempts", "1"]);
}

#[test]
fn mtls_registry_takes_the_client_certificate_from_certs_d() {
    common::require_tools!("docker-registry", "openssl", "skopeo");
    let reg = Registry::start(RegistryOptions {
        client_certs: true,
        ..RegistryOptions::tls()
    });
    let host = reg.host();

    // The CA alone: a clear error about the missing client certificate.
    let n = Net::new();
    let docker_dir = n.etc().join("docker/certs.d").join(&host);
    place_ca(&reg, &docker_dir, "ca.crt");
    let err = n.push_fails(&format!("{host}/mtls"), &[], &["--attempts", "1"]);
    for want in ["client certificate", "client.cert", "client.key"] {
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    assert!(reg.tag_digest("mtls", "latest").is_none());

    // client.cert / client.key beside ca.crt in docker's certs.d.
    place_client_cert(&reg, &docker_dir, "client");
    let digest = n.push_ok(&format!("{host}/mtls"), &[], &[]);
    assert_eq!(
        skopeo_digest(&format!("{host}/mtls:latest"), &[&cert_dir_arg(&reg)]),
        digest
    );

    // Any NAME.cert with NAME.key, in containers' certs.d, the CA from SSL_CERT_FILE.
    let n = Net::new();
    place_client_cert(&reg, &n.etc().join("containers/certs.d").join(&host), "rko");
    let d = n.push_ok(
        &format!("{host}/mtls2"),
        &[var("SSL_CERT_FILE", reg.ca_cert().unwrap())],
        &[],
    );
    assert_eq!(d, digest);

    // A certificate without its key is not a client certificate.
    let n = Net::new();
    let dir = n.etc().join("docker/certs.d").join(&host);
    place_ca(&reg, &dir, "ca.crt");
    std::fs::copy(reg.client_cert().unwrap().0, dir.join("client.cert")).unwrap();
    n.push_fails(&format!("{host}/mtls3"), &[], &["--attempts", "1"]);
}

// --- Mirrors ---

/// The repository `rko-sources.json` of the layout `dir` names.
fn served_by(dir: &Path) -> String {
    read_json(dir.join("rko-sources.json"))["repository"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts the layout `dir` holds the manifest `digest` (its bytes hash to it).
fn assert_layout_has(dir: &Path, digest: &str) {
    let index = read_json(dir.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], digest, "{index}");
    let bytes = std::fs::read(common::layout_blob(dir, digest)).unwrap();
    assert_eq!(format!("sha256:{}", common::sha256_hex(&bytes)), digest);
}

#[test]
fn pull_through_a_mirror_flag_when_the_origin_is_down() {
    common::require_tools!("docker-registry", "skopeo");
    let mirror = Registry::start(RegistryOptions::plain());
    let n = Net::new();
    let m = mirror.host();
    // The base exists only in the mirror, under a namespace.
    let digest = n.push_ok(&format!("{m}/ns/team/base"), &[], &[]);
    // Nothing listens at the origin.
    let origin = format!("127.0.0.1:{}", free_port());
    let reference = format!("{origin}/team/base@{digest}");

    let o = n.output(
        &["pull", &reference, "-o", "direct", "--attempts", "1"],
        &[],
    );
    assert!(!o.status.success(), "the origin is down: {o:?}");

    let mirror_arg = format!("{origin}={m}/ns");
    let (out, _) = texts(&n.output(
        &["pull", &reference, "-o", "base", "--mirror", &mirror_arg],
        &[],
    ));
    assert_eq!(out.trim(), digest);
    assert_layout_has(&n.path("base"), &digest);
    assert_eq!(served_by(&n.path("base")), format!("{m}/ns/team/base"));

    // A dead mirror first: reported, skipped, the next one serves.
    let dead = format!("127.0.0.1:{}", free_port());
    let o = n.output(
        &[
            "pull",
            &reference,
            "-o",
            "base2",
            "--attempts",
            "1",
            "--mirror",
            &format!("{origin}={dead}"),
            "--mirror",
            &mirror_arg,
        ],
        &[],
    );
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), digest);
    assert!(
        err.contains("rko: mirror") && err.contains(&dead) && err.contains("failed"),
        "the failed mirror should be reported:\n{err}"
    );
    assert_eq!(served_by(&n.path("base2")), format!("{m}/ns/team/base"));

    // The pulled base builds: its layers come from the repository that served it.
    let base_arg = format!("base@{digest}");
    let app = n.push_ok(&format!("{m}/apps"), &[], &["--base", &base_arg]);
    assert_eq!(
        skopeo_digest(&format!("{m}/apps:latest"), &["--tls-verify=false"]),
        app
    );
}

#[test]
fn pull_through_mirrors_from_registries_conf_and_pushes_never_use_them() {
    common::require_tools!("docker-registry", "skopeo");
    let mirror = Registry::start(RegistryOptions::plain());
    let n = Net::new();
    let m = mirror.host();
    let digest = n.push_ok(&format!("{m}/mirrored/team/base"), &[], &[]);
    let origin = format!("127.0.0.1:{}", free_port());
    let reference = format!("{origin}/team/base@{digest}");
    let dead = format!("127.0.0.1:{}", free_port());
    let conf = format!(
        "unqualified-search-registries = []\n\
         \n\
         [[registry]]\n\
         prefix = \"{origin}\"\n\
         location = \"{origin}\"\n\
         \n\
         [[registry.mirror]]\n\
         location = \"{dead}\"\n\
         \n\
         [[registry.mirror]]\n\
         location = \"{m}/mirrored\"\n\
         insecure = true\n"
    );
    std::fs::write(n.path("registries.conf"), &conf).unwrap();

    // From CONTAINERS_REGISTRIES_CONF.
    let o = n.output(
        &["pull", &reference, "-o", "base", "--attempts", "1"],
        &[var("CONTAINERS_REGISTRIES_CONF", n.path("registries.conf"))],
    );
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), digest);
    assert!(
        err.contains(&dead),
        "the dead mirror should be reported:\n{err}"
    );
    assert_layout_has(&n.path("base"), &digest);
    assert_eq!(
        served_by(&n.path("base")),
        format!("{m}/mirrored/team/base")
    );

    // From $RKO_ETC_DIR/containers/registries.conf.
    std::fs::create_dir_all(n.etc().join("containers")).unwrap();
    std::fs::write(n.etc().join("containers/registries.conf"), &conf).unwrap();
    let o = n.output(&["pull", &reference, "-o", "base2", "--attempts", "1"], &[]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), digest);
    assert_eq!(
        served_by(&n.path("base2")),
        format!("{m}/mirrored/team/base")
    );

    // Pushes never go to a mirror: a live origin with a mirror configured for it gets the
    // push, the mirror (a logging proxy in front of another registry) sees no request.
    let origin2 = Registry::start(RegistryOptions::plain());
    let spy_target = Registry::start(RegistryOptions::plain());
    let spy = FaultProxy::for_registry(&spy_target, vec![]);
    let o2 = origin2.host();
    std::fs::write(
        n.etc().join("containers/registries.conf"),
        format!(
            "[[registry]]\nprefix = \"{o2}\"\nlocation = \"{o2}\"\n\n\
             [[registry.mirror]]\nlocation = \"{}\"\n",
            spy.addr()
        ),
    )
    .unwrap();
    let pushed = n.push_ok(&format!("{o2}/app"), &[], &[]);
    assert_eq!(origin2.tag_digest("app", "latest"), Some(pushed));
    assert!(spy.request_log().is_empty(), "{:?}", spy.request_log());
}

#[test]
fn a_mirror_serving_a_forged_manifest_is_refused_by_digest_and_the_origin_serves() {
    common::require_tools!("docker-registry");
    let origin = Registry::start(RegistryOptions::plain());
    let n = Net::new();
    let o = origin.host();
    let digest = n.push_ok(&format!("{o}/team/base"), &[], &[]);
    // Another image's manifest: valid JSON of the right type, other content.
    let other = n.push_ok(&format!("{o}/team/other"), &[], &["--env", "FORGED=1"]);
    assert_ne!(other, digest);
    let accept = "application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let r = http_request(
        &o,
        "GET",
        &format!("/v2/team/other/manifests/{other}"),
        &[("Accept", accept)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let media_type = r.header("content-type").unwrap().to_string();
    let forged = format!("sha256:{}", common::sha256_hex(&r.body));
    assert_eq!(forged, other);
    // The mirror: the origin's content, except that every manifest GET answers the forgery
    // (a HEAD still gives the true digest).
    let mirror = FaultProxy::start(
        &o,
        vec![FaultRule::always(
            "GET",
            "/manifests/",
            Fault::Respond(media_type, r.body.clone()),
        )],
    );
    let reference = format!("{o}/team/base@{digest}");
    let out = n.output(
        &[
            "pull",
            &reference,
            "-o",
            "base",
            "--mirror",
            &format!("{o}={}", mirror.addr()),
            // The fault proxy speaks plain HTTP only and closes a TLS attempt unanswered.
            "--insecure-registry",
            &mirror.addr(),
        ],
        &[],
    );
    let (stdout, err) = texts(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout.trim(), digest);
    assert!(
        mirror
            .request_log()
            .iter()
            .any(|(m, p, _)| m == "GET" && p.contains("/manifests/")),
        "the mirror was not asked: {:?}\n{err}",
        mirror.request_log()
    );
    assert!(
        err.contains("rko: mirror") && err.contains(&mirror.addr()) && err.contains("failed"),
        "the forged mirror should be reported:\n{err}"
    );
    assert!(
        err.contains("does not match") && err.contains(&digest) && err.contains(&forged),
        "the refusal should be by digest ({digest} expected, {forged} served):\n{err}"
    );
    assert!(err.contains("trying"), "{err}");
    // The real content, from the origin.
    assert_layout_has(&n.path("base"), &digest);
    assert_eq!(served_by(&n.path("base")), format!("{o}/team/base"));
}

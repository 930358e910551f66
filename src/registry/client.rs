//! A lean, synchronous registry client on `ureq`: the distribution API calls rko needs,
//! the auth challenge (Basic, or Bearer tokens from the realm the registry names, cached per
//! scope), TLS verified by default with an optional extra CA, plain HTTP or unverified TLS
//! only for hosts named insecure, and retries with backoff on connection errors, 5xx and 429
//! (honouring Retry-After), bounded in count.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body, SendBody};

use crate::registry::auth::{self, Credential};

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP or unverified TLS.
    pub insecure: Vec<String>,
    /// An extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Attempts per request on connection errors, 5xx and 429 (at least 1).
    pub attempts: u32,
}

/// A request body that can be made again for a retry.
pub enum Payload {
    Empty,
    Bytes(Arc<Vec<u8>>),
    Reader(Box<dyn Read + Send>),
}

impl Payload {
    pub fn len(&self) -> Option<u64> {
        match self {
            Payload::Empty => Some(0),
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Reader(_) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{registry} refused the credentials ({status}): check the user and password in your docker/podman login for {registry} (docker login {registry})"
    )]
    Unauthorized { registry: String, status: u16 },
    #[error(
        "{registry} requires authentication and no credentials are configured for it: run `docker login {registry}` (or podman login)"
    )]
    NoCredentials { registry: String },
    #[error(
        "TLS verification of {registry} failed: {detail}; pass --ca-file with the CA that signed the registry's certificate, or --insecure-registry {registry} to skip verification"
    )]
    Tls { registry: String, detail: String },
    #[error(
        "cannot reach {registry}: {detail}; check the host and port, that the registry is running, and --insecure-registry for plain HTTP"
    )]
    Unreachable { registry: String, detail: String },
    #[error("{method} {url} failed: HTTP {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
}

enum Scheme {
    Https,
    Http,
}

/// A response: status, the headers rko reads, and the body.
pub struct Response {
    pub status: u16,
    headers: http::HeaderMap,
    pub body: Body,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn read_to_vec(&mut self, limit: u64) -> Result<Vec<u8>> {
        Ok(self.body.with_config().limit(limit).read_to_vec()?)
    }

    pub fn text(&mut self) -> String {
        self.body
            .with_config()
            .limit(8192)
            .read_to_string()
            .unwrap_or_default()
            .chars()
            .take(400)
            .collect()
    }
}

pub struct Client {
    verified: Agent,
    unverified: Agent,
    opts: ClientOptions,
    schemes: Mutex<HashMap<String, bool>>,
    tokens: Mutex<HashMap<(String, String), String>>,
    basic: Mutex<HashMap<String, bool>>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
}

fn agent(tls: TlsConfig) -> Agent {
    Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .max_redirects(10)
        .build()
        .new_agent()
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let roots = match &opts.ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                let pem = fs_err::read(path)?;
                let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                let mut n = 0;
                for item in ureq::tls::parse_pem(&pem) {
                    if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                        certs.push(c);
                        n += 1;
                    }
                }
                if n == 0 {
                    bail!(
                        "{} holds no PEM certificate; expected the registry's CA certificate",
                        path.display()
                    );
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let verified = agent(TlsConfig::builder().root_certs(roots).build());
        let unverified = agent(TlsConfig::builder().disable_verification(true).build());
        let opts = ClientOptions {
            attempts: opts.attempts.max(1),
            ..opts
        };
        Ok(Client {
            verified,
            unverified,
            opts,
            schemes: Mutex::default(),
            tokens: Mutex::default(),
            basic: Mutex::default(),
            creds: Mutex::default(),
        })
    }

    fn insecure(&self, registry: &str) -> bool {
        self.opts.insecure.iter().any(|h| h == registry)
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = self.creds.lock().expect("lock").get(registry) {
            return Ok(c.clone());
        }
        let c = auth::lookup(registry)?;
        self.creds
            .lock()
            .expect("lock")
            .insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// The base URL of a registry: https, or for an insecure host whichever of https
    /// (unverified) and http answers.
    /// A registry on this machine (localhost, 127.x, ::1) gets verified https, or plain http
    /// when its server does not speak TLS at all, as docker and ko allow.
    fn base(&self, registry: &str) -> Result<(String, Scheme)> {
        let insecure = self.insecure(registry);
        if !insecure && !is_loopback(registry) {
            return Ok((format!("https://{registry}"), Scheme::Https));
        }
        if let Some(https) = self.schemes.lock().expect("lock").get(registry) {
            return Ok(if *https {
                (format!("https://{registry}"), Scheme::Https)
            } else {
                (format!("http://{registry}"), Scheme::Http)
            });
        }
        let https = if insecure {
            self.unverified
                .get(format!("https://{registry}/v2/"))
                .call()
                .is_ok()
        } else {
            // Only a server that answers TLS with plain HTTP drops to http: a certificate
            // problem stays https, so it is reported as one.
            match self.verified.get(format!("https://{registry}/v2/")).call() {
                Ok(_) => true,
                Err(e) => !format!("{e:#}").contains("InvalidContentType"),
            }
        };
        self.schemes
            .lock()
            .expect("lock")
            .insert(registry.to_string(), https);
        self.base(registry)
    }

    fn agent_for(&self, registry: &str) -> &Agent {
        if self.insecure(registry) {
            &self.unverified
        } else {
            &self.verified
        }
    }

    /// Sends a request to `path` on `registry` (or to an absolute `Location`), with auth for
    /// `scopes` and retries. `payload` makes the body again for each attempt.
    pub fn send(
        &self,
        registry: &str,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, String)],
        scopes: &[String],
        payload: &mut dyn FnMut() -> Result<Payload>,
    ) -> Result<Response> {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base(registry)?.0)
        };
        let scope_key = scopes.join(" ");
        let mut authed_once = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth_header = self.auth_header(registry, &scope_key)?;
            let result = self.once(
                registry,
                method,
                &url,
                headers,
                auth_header.as_deref(),
                payload()?,
            );
            match result {
                Ok(resp) if resp.status == 401 && !authed_once => {
                    authed_once = true;
                    let challenge = resp.header("www-authenticate").unwrap_or_default();
                    self.answer_challenge(registry, &challenge, scopes, &scope_key)?;
                    attempt -= 1;
                }
                Ok(resp) if resp.status == 401 || resp.status == 403 => {
                    if self.credential(registry)?.is_none() {
                        bail!(RegistryError::NoCredentials {
                            registry: registry.to_string()
                        });
                    }
                    bail!(RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        status: resp.status
                    });
                }
                Ok(resp)
                    if (resp.status == 429 || resp.status >= 500)
                        && attempt < self.opts.attempts =>
                {
                    let wait = resp
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(30)))
                        .unwrap_or_else(|| backoff(attempt));
                    std::thread::sleep(wait);
                }
                Ok(resp) => return Ok(resp),
                Err(e) if is_tls(&e) => {
                    return Err(anyhow!(RegistryError::Tls {
                        registry: registry.to_string(),
                        detail: format!("{e:#}")
                    }));
                }
                Err(e) if attempt < self.opts.attempts && is_transient(&e) => {
                    std::thread::sleep(backoff(attempt))
                }
                Err(e) => {
                    return Err(anyhow!(RegistryError::Unreachable {
                        registry: registry.to_string(),
                        detail: format!("{e:#}")
                    }));
                }
            }
        }
    }

    fn once(
        &self,
        registry: &str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        payload: Payload,
    ) -> Result<Response> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let agent = self.agent_for(registry);
        let resp = match payload {
            Payload::Empty if method == "GET" || method == "HEAD" || method == "DELETE" => {
                agent.run(b.body(()).context("building a request")?)?
            }
            Payload::Empty => agent.run(b.header("content-length", "0").body(SendBody::none())?)?,
            Payload::Bytes(bytes) => agent.run(b.body(bytes.as_slice().to_vec())?)?,
            Payload::Reader(r) => agent.run(b.body(SendBody::from_owned_reader(r))?)?,
        };
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    fn auth_header(&self, registry: &str, scope_key: &str) -> Result<Option<String>> {
        if let Some(t) = self
            .tokens
            .lock()
            .expect("lock")
            .get(&(registry.to_string(), scope_key.to_string()))
        {
            return Ok(Some(format!("Bearer {t}")));
        }
        if self
            .basic
            .lock()
            .expect("lock")
            .get(registry)
            .copied()
            .unwrap_or(false)
            && let Some(Credential::Basic { username, password }) = self.credential(registry)?
        {
            return Ok(Some(basic(&username, &password)));
        }
        Ok(None)
    }

    fn answer_challenge(
        &self,
        registry: &str,
        challenge: &str,
        scopes: &[String],
        scope_key: &str,
    ) -> Result<()> {
        let (kind, params) = parse_challenge(challenge);
        if kind.eq_ignore_ascii_case("basic") {
            if self.credential(registry)?.is_none() {
                bail!(RegistryError::NoCredentials {
                    registry: registry.to_string()
                });
            }
            self.basic
                .lock()
                .expect("lock")
                .insert(registry.to_string(), true);
            return Ok(());
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            bail!(
                "{registry} asked for {kind:?} authentication, which rko does not speak (expected Basic or Bearer)"
            );
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| anyhow!("{registry} sent a Bearer challenge without a realm"))?;
        let mut url = format!("{realm}?");
        if let Some(s) = params.get("service") {
            url.push_str(&format!("service={}&", urlencode(s)));
        }
        for s in scopes {
            url.push_str(&format!("scope={}&", urlencode(s)));
        }
        let mut req = http::Request::builder()
            .method("GET")
            .uri(url.trim_end_matches(['&', '?']));
        let cred = self.credential(registry)?;
        if let Some(Credential::Basic { username, password }) = &cred {
            req = req.header("authorization", basic(username, password));
        }
        let agent = self.agent_for(registry);
        let resp = match &cred {
            Some(Credential::IdentityToken(t)) => {
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id=rko",
                    urlencode(t),
                    urlencode(params.get("service").map(String::as_str).unwrap_or("")),
                    urlencode(&scopes.join(" "))
                );
                let r = http::Request::builder()
                    .method("POST")
                    .uri(realm.as_str())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.into_bytes())?;
                agent.run(r)
            }
            _ => agent.run(req.body(())?),
        }
        .map_err(|e| RegistryError::Unreachable {
            registry: realm.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        if (status == 401 || status == 403) && cred.is_none() {
            bail!(RegistryError::NoCredentials {
                registry: registry.to_string()
            });
        }
        if status == 401 || status == 403 {
            bail!(RegistryError::Unauthorized {
                registry: registry.to_string(),
                status
            });
        }
        let mut body = resp.into_body();
        let text = body.with_config().limit(1 << 20).read_to_string()?;
        if status != 200 {
            bail!(
                "the token service {realm} answered HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let t: Token =
            serde_json::from_str(&text).context("parsing the registry's token answer")?;
        let token = t
            .token
            .or(t.access_token)
            .ok_or_else(|| anyhow!("the token service {realm} sent no token"))?;
        self.tokens
            .lock()
            .expect("lock")
            .insert((registry.to_string(), scope_key.to_string()), token);
        Ok(())
    }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5000))
}

/// A certificate problem: retrying cannot fix it.
/// Whether `registry` (`host[:port]`) names this machine.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_tls(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_lowercase();
    text.contains("certificate")
        || text.contains("tls handshake")
        || matches!(e.downcast_ref::<ureq::Error>(), Some(ureq::Error::Tls(_)))
}

fn is_transient(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Io(_))
        | Some(ureq::Error::Timeout(_))
        | Some(ureq::Error::ConnectionFailed) => true,
        Some(ureq::Error::Protocol(_)) => true,
        Some(_) => false,
        None => true,
    }
}

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", {realm, service, scope}).
pub fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let (kind, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, after)) = s.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, rest) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        params.insert(k, v.to_string());
        s = rest.trim_start_matches([',', ' ']);
    }
    (kind.to_string(), params)
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        for r in [
            "localhost:5000",
            "localhost",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "x.localhost:1",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn challenge_parsing() {
        let (k, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(k, "Bearer");
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (k, p) = parse_challenge(r#"Basic realm="r""#);
        assert_eq!((k.as_str(), p["realm"].as_str()), ("Basic", "r"));
    }
}

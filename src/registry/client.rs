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

use anyhow::{Result, anyhow, bail};
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
    pub(super) verified: Agent,
    pub(super) unverified: Agent,
    pub(super) opts: ClientOptions,
    pub(super) schemes: Mutex<HashMap<String, bool>>,
    pub(super) tokens: Mutex<HashMap<(String, String), String>>,
    pub(super) basic: Mutex<HashMap<String, bool>>,
    pub(super) creds: Mutex<HashMap<String, Option<Credential>>>,
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

    pub(super) fn credential(&self, registry: &str) -> Result<Option<Credential>> {
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
    fn base(&self, registry: &str) -> String {
        let insecure = self.insecure(registry);
        if !insecure && !is_loopback(registry) {
            return format!("https://{registry}");
        }
        if let Some(https) = self.schemes.lock().expect("lock").get(registry) {
            let scheme = if *https { "https" } else { "http" };
            return format!("{scheme}://{registry}");
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
                Err(e) => !answers_tls_with_plain_http(&e),
            }
        };
        self.schemes
            .lock()
            .expect("lock")
            .insert(registry.to_string(), https);
        self.base(registry)
    }

    pub(super) fn agent_for(&self, registry: &str) -> &Agent {
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
            format!("{}{path_or_url}", self.base(registry))
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
                    return Err(self.refused(registry, resp.status));
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
                Err(e) if !is_tls(&e) && attempt < self.opts.attempts && is_transient(&e) => {
                    std::thread::sleep(backoff(attempt))
                }
                Err(e) => return Err(failed(registry, e)),
            }
        }
    }

    /// A 401 or 403 after the challenge was answered.
    fn refused(&self, registry: &str, status: u16) -> anyhow::Error {
        let registry = registry.to_string();
        match self.credential(&registry) {
            Ok(None) => anyhow!(RegistryError::NoCredentials { registry }),
            Ok(Some(_)) => anyhow!(RegistryError::Unauthorized { registry, status }),
            Err(e) => e,
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
    ) -> Result<Response, ureq::Error> {
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
                agent.run(b.body(())?)?
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
}

/// A request that failed without a response, by what went wrong.
fn failed(registry: &str, e: ureq::Error) -> anyhow::Error {
    let (registry, detail) = (registry.to_string(), format!("{e:#}"));
    match is_tls(&e) {
        true => anyhow!(RegistryError::Tls { registry, detail }),
        false => anyhow!(RegistryError::Unreachable { registry, detail }),
    }
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

/// The TLS library's error inside a ureq error: its own variant, or (during the handshake)
/// wrapped in an I/O error.
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// A TLS problem (a certificate, the handshake): retrying cannot fix it.
fn is_tls(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Tls(_) | ureq::Error::Pem(_)) || rustls_error(e).is_some()
}

/// A server that answered the TLS handshake with something that is not TLS: a registry
/// that only speaks plain HTTP.
fn answers_tls_with_plain_http(e: &ureq::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// A failure another attempt may not meet: the connection, a timeout, a broken response.
fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
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
}

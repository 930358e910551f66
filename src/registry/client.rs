//! A lean, synchronous registry client on `ureq`: the distribution API calls rko needs,
//! the auth challenge (Basic, or Bearer tokens from the realm the registry names, cached per
//! scope), TLS verified by default against what `trust` collects (with the host's certs.d
//! CAs and client certificate), proxies as `proxy` chooses them from the environment, plain
//! HTTP or unverified TLS only for hosts named insecure, and retries with backoff on
//! connection errors, 5xx and 429 (honouring Retry-After), bounded in count. One agent per
//! scheme, host and verification, made on first use.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body, Proxy, SendBody};

use crate::registry::absolute;
use crate::registry::auth::{self, Credential};
pub use crate::registry::error::RegistryError;
use crate::registry::error::{answers_tls_with_plain_http, is_tls, is_transient};
use crate::registry::proxy::{Chosen, ProxyEnv, redact};
use crate::registry::trust::{HostTrust, Roots, host_dirs};

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP or unverified TLS.
    pub insecure: Vec<String>,
    /// An extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Attempts per request on connection errors, 5xx and 429 (at least 1).
    pub attempts: u32,
    /// The longest wait for a registry to send (or take) the next bytes of a request or a
    /// response: an idle timeout per read and per write, not a deadline for the whole
    /// request, so a large blob takes as long as it keeps moving. `None`: wait forever.
    pub idle_timeout: Option<Duration>,
}

/// The most rko reads of a token service's answer (as containers/image; manifests and
/// configs are bounded by `oci::json::JSON_LIMIT`).
pub const TOKEN_LIMIT: u64 = 1 << 20;
/// The most rko reads of an error answer (it quotes the first 400 characters).
pub const ERROR_LIMIT: u64 = 8 << 10;

/// `n` bytes for a message: `16 MiB`, `8 KiB`, `100 bytes`.
pub fn bytes_shown(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// A request body that can be made again for a retry.
pub enum Payload {
    Empty,
    Bytes(Arc<Vec<u8>>),
    Reader(Box<dyn Read + Send>),
}

/// A response: status, the headers rko reads, and the body.
pub struct Response {
    pub status: u16,
    headers: http::HeaderMap,
    pub body: Body,
    /// `METHOD URL` of the request, for messages.
    request: String,
    /// The registry (`host[:port]`) asked, for messages.
    registry: String,
    idle_timeout: Option<Duration>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The whole body, refused (naming the limit and the request) past `limit` bytes, so a
    /// hostile or broken registry cannot make rko hold an endless answer in memory.
    pub fn read_to_vec(&mut self, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::copy(&mut self.reader().take(limit + 1), &mut out)?;
        if out.len() as u64 > limit {
            bail!(
                "{} sent more than {} in answer to {}, the most rko reads there: \
                 refusing it (a broken or hostile registry)",
                self.registry,
                bytes_shown(limit),
                self.request
            );
        }
        Ok(out)
    }

    /// The start of an error answer for a message: at most [`ERROR_LIMIT`] bytes are read,
    /// and 400 characters kept.
    pub fn text(&mut self) -> String {
        let mut buf = Vec::new();
        let _ = self
            .body
            .as_reader()
            .take(ERROR_LIMIT)
            .read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        let mut shown: String = text.chars().take(400).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        shown
    }

    /// The body as a reader whose errors name the registry and the request: a stall says
    /// how long nothing arrived.
    pub fn reader(&mut self) -> impl Read + '_ {
        BodyReader {
            inner: self.body.as_reader(),
            registry: &self.registry,
            request: &self.request,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// A body reader whose errors say which registry and request they come from.
struct BodyReader<'a, R> {
    inner: R,
    registry: &'a str,
    request: &'a str,
    idle_timeout: Option<Duration>,
}

impl<R: Read> Read for BodyReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                || e.get_ref()
                    .and_then(|i| i.downcast_ref::<ureq::Error>())
                    .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
            let detail = match timed_out {
                true => stalled(self.registry, self.idle_timeout),
                false => format!("{e}"),
            };
            std::io::Error::new(
                e.kind(),
                format!(
                    "reading the answer of {} to {}: {detail}",
                    self.registry, self.request
                ),
            )
        })
    }
}

/// What a stall looks like in a message.
fn stalled(registry: &str, idle: Option<Duration>) -> String {
    let secs = idle.map(|d| d.as_secs()).unwrap_or_default();
    format!(
        "{registry} sent nothing for {secs} s; retry, or raise --registry-timeout if the \
         registry is that slow"
    )
}

/// An agent and the proxy it goes through.
type Route = (Agent, Option<Chosen>);

pub struct Client {
    pub(super) opts: ClientOptions,
    roots: Arc<Vec<Certificate<'static>>>,
    tried: Vec<String>,
    proxies: ProxyEnv,
    /// Agents by `scheme://authority` and whether they verify TLS, each with its proxy.
    agents: Mutex<HashMap<(String, bool), Route>>,
    pub(super) schemes: Mutex<HashMap<String, bool>>,
    pub(super) tokens: Mutex<HashMap<(String, String), String>>,
    pub(super) basic: Mutex<HashMap<String, bool>>,
    pub(super) creds: Mutex<HashMap<String, Option<Credential>>>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let roots = Roots::load(opts.ca_file.as_deref())?;
        let opts = ClientOptions {
            attempts: opts.attempts.max(1),
            ..opts
        };
        Ok(Client {
            opts,
            roots: Arc::new(roots.certs),
            tried: roots.tried,
            proxies: ProxyEnv::from_env(),
            agents: Mutex::default(),
            schemes: Mutex::default(),
            tokens: Mutex::default(),
            basic: Mutex::default(),
            creds: Mutex::default(),
        })
    }

    /// The agent for requests to `url` on behalf of `registry`: its TLS trust (the roots
    /// plus the host's certs.d, and its client certificate), verification unless the
    /// registry is insecure, and the proxy the environment names for it.
    pub(super) fn agent(&self, registry: &str, url: &str) -> Result<Route> {
        let uri: http::Uri = url.parse().with_context(|| format!("the URL {url:?}"))?;
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(registry);
        let verified = !self.insecure(registry);
        let key = (format!("{scheme}://{authority}"), verified);
        if let Some(a) = self.agents.lock().expect("lock").get(&key) {
            return Ok(a.clone());
        }
        let host = uri.host().unwrap_or(registry).trim_matches(['[', ']']);
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let trust = HostTrust::load(authority)?;
        let mut tls = TlsConfig::builder().client_cert(trust.client);
        tls = match verified {
            true => {
                let mut certs = self.roots.as_ref().clone();
                certs.extend(trust.cas);
                tls.root_certs(RootCerts::Specific(Arc::new(certs)))
            }
            false => tls.disable_verification(true),
        };
        let chosen = self.proxies.choose(&scheme, host, port);
        let config = Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            // Registries log it: `rko/0.1.0`, as ko sends `ko/<version>`.
            .user_agent(concat!("rko/", env!("CARGO_PKG_VERSION")))
            .timeout_per_read(self.opts.idle_timeout)
            .timeout_per_write(self.opts.idle_timeout)
            // A redirect (e.g. a blob GET sent to a storage bucket) never carries the
            // Authorization header, to any host: ureq drops it, and rko keeps it that way
            // (tests/hostile_registry.rs checks what the other host receives).
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .max_redirects(10);
        let not_a_proxy =
            |c: &Chosen, e| anyhow!("{} is not a proxy URL rko can use: {e}", c.shown());
        let agent = match &chosen {
            None => config.proxy(None).build().new_agent(),
            // Plain HTTP goes to the proxy in absolute form, as Go sends it.
            Some(c) if scheme == "http" => {
                let config = config.proxy(None).max_idle_connections(0).build();
                absolute::agent(config, &c.url).map_err(|e| not_a_proxy(c, e))?
            }
            Some(c) => {
                let proxy = Proxy::new(&c.url).map_err(|e| not_a_proxy(c, e))?;
                config.proxy(Some(proxy)).build().new_agent()
            }
        };
        let made = (agent, chosen);
        self.agents.lock().expect("lock").insert(key, made.clone());
        Ok(made)
    }

    /// A rustls configuration for a gRPC cache at `authority` (ALPN `h2`): the same roots
    /// as the registries plus the host's certs.d CAs and client certificate.
    pub(super) fn grpc_tls(&self, authority: &str) -> Result<Arc<rustls::ClientConfig>> {
        let trust = HostTrust::load(authority)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in self.roots.iter().chain(&trust.cas) {
            // A certificate rustls cannot parse is skipped, as ureq's own store does.
            let _ = roots.add(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS setup for the gRPC cache")?
            .with_root_certificates(roots);
        let mut config = match trust.client {
            None => builder.with_no_client_auth(),
            Some(c) => {
                let chain = c
                    .certs()
                    .iter()
                    .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .collect();
                let key =
                    rustls::pki_types::PrivateKeyDer::try_from(c.private_key().der().to_vec())
                        .map_err(|e| anyhow!("the client key for {authority}: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .with_context(|| format!("the client certificate for {authority}"))?
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// How long a server may send nothing (`--registry-timeout`); 5 minutes when unlimited.
    pub(super) fn idle_timeout(&self) -> Duration {
        self.opts.idle_timeout.unwrap_or(Duration::from_secs(300))
    }

    pub(super) fn insecure(&self, registry: &str) -> bool {
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
    pub(super) fn base(&self, registry: &str) -> Result<String> {
        let insecure = self.insecure(registry);
        if !insecure && !is_loopback(registry) {
            return Ok(format!("https://{registry}"));
        }
        if let Some(https) = self.schemes.lock().expect("lock").get(registry) {
            let scheme = if *https { "https" } else { "http" };
            return Ok(format!("{scheme}://{registry}"));
        }
        let url = format!("https://{registry}/v2/");
        let (agent, _) = self.agent(registry, &url)?;
        let https = match agent.get(&url).call() {
            Ok(_) => true,
            // Insecure: whichever answers. Otherwise only a server that answers TLS with
            // plain HTTP drops to http: a certificate problem stays https, so it is
            // reported as one.
            Err(_) if insecure => false,
            Err(e) => !answers_tls_with_plain_http(&e),
        };
        self.schemes
            .lock()
            .expect("lock")
            .insert(registry.to_string(), https);
        self.base(registry)
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
            format!("{}{path_or_url}", self.base(registry)?)
        };
        let (agent, proxy) = self.agent(registry, &url)?;
        let scope_key = scopes.join(" ");
        let mut authed_once = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth_header = self.auth_header(registry, &scope_key)?;
            let result = once(
                &agent,
                method,
                &url,
                headers,
                auth_header.as_deref(),
                payload()?,
            )
            .map(|(status, headers, body)| Response {
                status,
                headers,
                body,
                request: format!("{method} {url}"),
                registry: registry.to_string(),
                idle_timeout: self.opts.idle_timeout,
            });
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
                Err(e) => return Err(self.failed(registry, proxy.as_ref(), e)),
            }
        }
    }

    /// A request that failed without a response, by what went wrong: TLS (naming what
    /// was trusted), else the connection (naming the proxy, if one was used).
    pub(super) fn failed(
        &self,
        registry: &str,
        proxy: Option<&Chosen>,
        e: ureq::Error,
    ) -> anyhow::Error {
        let (registry, detail) = (registry.to_string(), format!("{e:#}"));
        if let ureq::Error::Timeout(ureq::Timeout::PerRead | ureq::Timeout::PerWrite) = e {
            let via = proxy.map(|p| format!(" through the proxy {}", p.shown()));
            return anyhow!(RegistryError::Stalled {
                via: via.unwrap_or_default(),
                detail: stalled(&registry, self.opts.idle_timeout),
                registry,
            });
        }
        if is_tls(&e) {
            let dirs = host_dirs(&registry);
            let certs_d = dirs[0].display().to_string();
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let tried = format!("{}, {}", self.tried.join(", "), dirs.join(", "));
            return anyhow!(RegistryError::Tls {
                registry,
                detail,
                tried,
                certs_d,
            });
        }
        let (via, proxy_hint) = match proxy {
            Some(p) => (
                format!(" through the proxy {}", p.shown()),
                format!(
                    ", that the proxy is up (or that NO_PROXY lists {})",
                    registry.split(':').next().unwrap_or(&registry)
                ),
            ),
            None => (String::new(), String::new()),
        };
        anyhow!(RegistryError::Unreachable {
            registry,
            via,
            proxy_hint,
            detail: redact_all(&detail, proxy),
        })
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
}

/// One request, without retries: status, headers and body.
fn once(
    agent: &Agent,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    auth: Option<&str>,
    payload: Payload,
) -> Result<(u16, http::HeaderMap, Body), ureq::Error> {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let resp = match payload {
        Payload::Empty if method == "GET" || method == "HEAD" || method == "DELETE" => {
            agent.run(b.body(())?)?
        }
        Payload::Empty => agent.run(b.header("content-length", "0").body(SendBody::none())?)?,
        Payload::Bytes(bytes) => agent.run(b.body(bytes.as_slice().to_vec())?)?,
        Payload::Reader(r) => agent.run(b.body(SendBody::from_owned_reader(r))?)?,
    };
    let (parts, body) = resp.into_parts();
    Ok((parts.status.as_u16(), parts.headers, body))
}

/// `text` without the proxy's credentials, should the error quote its URL.
fn redact_all(text: &str, proxy: Option<&Chosen>) -> String {
    match proxy {
        Some(p) => text.replace(&p.url, &redact(&p.url)),
        None => text.to_string(),
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

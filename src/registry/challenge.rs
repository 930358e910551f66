//! Answering a registry's authentication challenge: Basic with the stored credentials, or a
//! Bearer token from the realm the registry names (with the credentials, or an identity
//! token exchanged by the OAuth2 refresh-token grant), cached per registry and scope.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;

use crate::registry::auth::Credential;
use crate::registry::client::{Client, RegistryError, TOKEN_LIMIT, bytes_shown};

impl Client {
    /// The Authorization header for `registry` and the scopes of `scope_key`, once a
    /// challenge has been answered.
    pub(super) fn auth_header(&self, registry: &str, scope_key: &str) -> Result<Option<String>> {
        let key = (registry.to_string(), scope_key.to_string());
        if let Some(t) = self.tokens.lock().expect("lock").get(&key) {
            return Ok(Some(format!("Bearer {t}")));
        }
        let basic_ok = self.basic.lock().expect("lock").get(registry).copied();
        if basic_ok.unwrap_or(false)
            && let Some(Credential::Basic { username, password }) = self.credential(registry)?
        {
            return Ok(Some(basic(&username, &password)));
        }
        Ok(None)
    }

    /// Answers a `WWW-Authenticate` challenge, so the next attempt carries credentials.
    pub(super) fn answer_challenge(
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
            let mut basic = self.basic.lock().expect("lock");
            basic.insert(registry.to_string(), true);
            return Ok(());
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            bail!(
                "{registry} asked for {kind:?} authentication, which rko does not speak \
                 (expected Basic or Bearer)"
            );
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| anyhow!("{registry} sent a Bearer challenge without a realm"))?;
        let service = params.get("service").map(String::as_str);
        let token = self.fetch_token(registry, realm, service, scopes)?;
        let key = (registry.to_string(), scope_key.to_string());
        self.tokens.lock().expect("lock").insert(key, token);
        Ok(())
    }

    /// Asks the token service at `realm` for a token for `scopes`.
    fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String> {
        self.check_realm(registry, realm)?;
        let cred = self.credential(registry)?;
        let (agent, proxy) = self.agent(registry, realm)?;
        let sent = match &cred {
            Some(Credential::IdentityToken(t)) => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", t)
                    .append_pair("service", service.unwrap_or(""))
                    .append_pair("scope", &scopes.join(" "))
                    .append_pair("client_id", "rko")
                    .finish();
                let r = http::Request::builder()
                    .method("POST")
                    .uri(realm)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.into_bytes())?;
                agent.run(r)
            }
            _ => {
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(s) = service {
                    query.append_pair("service", s);
                }
                for s in scopes {
                    query.append_pair("scope", s);
                }
                let query = query.finish();
                let sep = if query.is_empty() { "" } else { "?" };
                let mut req = http::Request::builder()
                    .method("GET")
                    .uri(format!("{realm}{sep}{query}"));
                if let Some(Credential::Basic { username, password }) = &cred {
                    req = req.header("authorization", basic(username, password));
                }
                agent.run(req.body(())?)
            }
        };
        let host = realm.split("://").nth(1).and_then(|r| r.split('/').next());
        let resp = sent.map_err(|e| {
            self.failed(host.unwrap_or(realm), proxy.as_ref(), e)
                .context(format!("asking the token service {realm} for a token"))
        })?;
        read_token(registry, realm, cred.is_some(), resp)
    }
}

impl Client {
    /// Refuses a plain-HTTP token realm for a registry reached over TLS: the credentials
    /// (and the token) would cross the network in clear. A registry the user named
    /// insecure, or one on this machine that only speaks plain HTTP, may use one.
    fn check_realm(&self, registry: &str, realm: &str) -> Result<()> {
        let plain = realm
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        if plain && !self.insecure(registry) && self.base(registry)?.starts_with("https://") {
            bail!(RegistryError::PlainHttpRealm {
                registry: registry.to_string(),
                realm: realm.to_string(),
            });
        }
        Ok(())
    }
}

/// The token in a token service's answer, or why there is none.
fn read_token(
    registry: &str,
    realm: &str,
    had_credentials: bool,
    resp: http::Response<ureq::Body>,
) -> Result<String> {
    let status = resp.status().as_u16();
    if (status == 401 || status == 403) && !had_credentials {
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
    let mut bytes = Vec::new();
    let mut body = resp.into_body();
    body.as_reader()
        .take(TOKEN_LIMIT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the answer of the token service {realm}"))?;
    if bytes.len() as u64 > TOKEN_LIMIT {
        bail!(
            "the token service {realm} sent more than {} (the most rko reads of a token \
             answer): refusing it (a broken or hostile token service)",
            bytes_shown(TOKEN_LIMIT)
        );
    }
    let text = String::from_utf8_lossy(&bytes);
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
    let t: Token = serde_json::from_str(&text).context("parsing the registry's token answer")?;
    // An empty `token` is no token: fall back to `access_token`, as go-containerregistry does.
    let nonempty = |t: Option<String>| t.filter(|t| !t.is_empty());
    nonempty(t.token)
        .or(nonempty(t.access_token))
        .ok_or_else(|| anyhow!("the token service {realm} sent no token"))
}

fn basic(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", {realm, service, scope}).
fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
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

/// What the fuzz targets call: the challenge parser, and the token answer reader on a
/// response made from the fuzzer's bytes.
#[cfg(fuzzing)]
pub(crate) mod fuzz {
    /// Parses a `WWW-Authenticate` value; parameter names come out lowercase.
    pub fn challenge(h: &str) {
        let (_, params) = super::parse_challenge(h);
        for k in params.keys() {
            assert_eq!(k, &k.to_ascii_lowercase(), "{h:?}");
        }
    }

    /// Reads a token service's answer of `status` with `body`.
    pub fn token(status: u16, had_credentials: bool, body: &[u8]) -> Option<String> {
        let resp = http::Response::builder()
            .status(status)
            .body(ureq::Body::builder().data(body.to_vec()))
            .ok()?;
        super::read_token(
            "reg.example",
            "https://auth.example/token",
            had_credentials,
            resp,
        )
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn answer(body: &str) -> Result<String> {
        let resp = http::Response::builder()
            .status(200)
            .body(ureq::Body::builder().data(body))
            .unwrap();
        read_token("reg", "https://auth/token", true, resp)
    }

    /// Found by fuzzing (fuzz/fuzz_targets/token.rs): `"token":""` beside an
    /// `access_token` gave an empty Bearer token.
    #[test]
    fn empty_tokens_are_no_tokens() {
        assert_eq!(answer(r#"{"token":"","access_token":"x"}"#).unwrap(), "x");
        assert_eq!(answer(r#"{"token":"t","access_token":"x"}"#).unwrap(), "t");
        for none in [r#"{"token":""}"#, r#"{"token":"","access_token":""}"#, "{}"] {
            let e = answer(none).unwrap_err().to_string();
            assert!(e.contains("sent no token"), "{none}: {e}");
        }
    }
}

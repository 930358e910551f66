//! Why a registry request failed: the error rko reports, and the classification of the
//! HTTP library's errors (TLS, a plain-HTTP server, a transient failure) by their kinds.

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
        "TLS verification of {registry} failed: {detail}; trusted: {tried}; put the CA that \
         signed the registry's certificate in {certs_d}/ca.crt (or SSL_CERT_FILE, or pass \
         --ca-file), a client certificate as client.cert and client.key there if the registry \
         asks for one, or pass --insecure-registry {registry} to skip verification"
    )]
    Tls {
        registry: String,
        detail: String,
        tried: String,
        certs_d: String,
    },
    #[error(
        "cannot reach {registry}{via}: {detail}; check the host and port, that the registry is \
         running{proxy_hint}, and --insecure-registry for plain HTTP"
    )]
    Unreachable {
        registry: String,
        /// ` through the proxy …` when one was used.
        via: String,
        proxy_hint: String,
        detail: String,
    },
    #[error("the connection to {registry}{via} stalled: {detail}")]
    Stalled {
        registry: String,
        via: String,
        detail: String,
    },
    #[error(
        "{registry} sends its token requests to {realm}, over plain HTTP: rko will not send \
         credentials or accept tokens in clear for a TLS registry. Fix the registry's token \
         realm (https), or pass --insecure-registry {registry} if this registry is trusted \
         without TLS"
    )]
    PlainHttpRealm { registry: String, realm: String },
    #[error("{method} {url} failed: HTTP {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
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
pub fn is_tls(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Tls(_) | ureq::Error::Pem(_)) || rustls_error(e).is_some()
}

/// A server that answered the TLS handshake with something that is not TLS: a registry
/// that only speaks plain HTTP.
pub fn answers_tls_with_plain_http(e: &ureq::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// A failure another attempt may not meet: the connection, a timeout, a broken response.
pub fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

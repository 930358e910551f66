//! Plain-HTTP requests through a forward proxy the way Go (and so docker, skopeo and ko)
//! sends them: to the proxy, with the absolute URL as the request target
//! (`GET http://host:port/v2/ HTTP/1.1`), not through a CONNECT tunnel, which many proxies
//! allow to port 443 only. ureq tunnels every proxied request, so for these agents rko
//! resolves the target to the proxy's address and rewrites the request line of each
//! connection's one request (the agent keeps no idle connections, so none is reused).

use std::fmt;

use base64::Engine;
use http::Uri;
use ureq::config::Config;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};
use ureq::{Agent, Error};

/// An agent that sends plain-HTTP requests to `proxy` (`http://[user:pass@]host:port`) in
/// absolute form. `config` must have no proxy of its own.
pub fn agent(config: Config, proxy: &str) -> Result<Agent, Error> {
    let uri: Uri = proxy.parse().map_err(|_| Error::InvalidProxyUrl)?;
    let host = uri.host().ok_or(Error::InvalidProxyUrl)?;
    let port = uri.port_u16().unwrap_or(80);
    let proxy_uri: Uri = format!("http://{host}:{port}/")
        .parse()
        .map_err(|_| Error::InvalidProxyUrl)?;
    let authorization = uri.authority().and_then(|a| {
        let (userinfo, _) = a.as_str().rsplit_once('@')?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(userinfo);
        Some(format!("Proxy-Authorization: Basic {b64}\r\n"))
    });
    let connector = TcpConnector::default().chain(AbsoluteForm { authorization });
    Ok(Agent::with_parts(config, connector, ToProxy(proxy_uri)))
}

/// Resolves every target to the proxy.
#[derive(Debug)]
struct ToProxy(Uri);

impl Resolver for ToProxy {
    fn resolve(
        &self,
        _uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        DefaultResolver::default().resolve(&self.0, config, timeout)
    }
}

/// Wraps the connection to the proxy so its request goes in absolute form.
struct AbsoluteForm {
    /// The `Proxy-Authorization` header line, when the proxy URL has credentials.
    authorization: Option<String>,
}

impl fmt::Debug for AbsoluteForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        f.debug_struct("AbsoluteForm").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for AbsoluteForm {
    type Out = Rewriting<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        let Some(inner) = chained else {
            return Ok(None);
        };
        let authority = details.uri.authority().map(|a| a.as_str()).unwrap_or("");
        Ok(Some(Rewriting {
            inner,
            target: format!("http://{authority}"),
            authorization: self.authorization.clone(),
            done: false,
        }))
    }
}

/// A connection whose first request line is rewritten to absolute form.
pub struct Rewriting<T> {
    inner: T,
    /// `http://host:port`, put before the request's path.
    target: String,
    authorization: Option<String>,
    done: bool,
}

impl<T> fmt::Debug for Rewriting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewriting")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Transport for Rewriting<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if self.done {
            return self.inner.transmit_output(amount, timeout);
        }
        self.done = true;
        let out = self.inner.buffers().output();
        let auth = self.authorization.as_deref();
        let Some(len) = rewrite(out, amount, &self.target, auth) else {
            return Err(unrewritable());
        };
        self.inner.transmit_output(len, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// Rewrites the request head in `out[..amount]`: `target` before the path of the request
/// line, and the `authorization` header line after it. Returns the new length; `None` when
/// it is no request head or the buffer has no room.
fn rewrite(out: &mut [u8], amount: usize, target: &str, auth: Option<&str>) -> Option<usize> {
    let head = &out[..amount];
    let space = head.iter().position(|b| *b == b' ')?;
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let mut inserts = vec![(space + 1, target.as_bytes())];
    if let Some(a) = auth {
        inserts.push((line_end + 2, a.as_bytes()));
    }
    let extra: usize = inserts.iter().map(|(_, b)| b.len()).sum();
    if amount + extra > out.len() {
        return None;
    }
    // From the last insertion point back, so the earlier offsets stay valid.
    let mut end = amount;
    for (i, (at, bytes)) in inserts.iter().enumerate().rev() {
        let shift: usize = inserts[..=i].iter().map(|(_, b)| b.len()).sum();
        out.copy_within(*at..end, at + shift);
        out[at + shift - bytes.len()..at + shift].copy_from_slice(bytes);
        end = *at;
    }
    Some(amount + extra)
}

fn unrewritable() -> Error {
    Error::BadUri("a request head rko cannot rewrite into absolute form for the proxy".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_gets_the_absolute_url_and_the_proxy_credentials() {
        let head = b"GET /v2/x/blobs/sha256:ab HTTP/1.1\r\nhost: 0.0.0.0:5000\r\n\r\n";
        let mut buf = vec![0u8; 200];
        buf[..head.len()].copy_from_slice(head);
        let auth = "Proxy-Authorization: Basic dTpw\r\n";
        let n = rewrite(&mut buf, head.len(), "http://0.0.0.0:5000", Some(auth)).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "GET http://0.0.0.0:5000/v2/x/blobs/sha256:ab HTTP/1.1\r\n\
             Proxy-Authorization: Basic dTpw\r\nhost: 0.0.0.0:5000\r\n\r\n"
        );
        let n = rewrite(&mut buf[..head.len() + 8], head.len(), "http://h", None);
        assert!(n.is_some());
        assert_eq!(
            rewrite(&mut buf[..head.len()], head.len(), "http://h", None),
            None
        );
    }
}

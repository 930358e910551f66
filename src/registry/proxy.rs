//! HTTP proxies from the environment, with the semantics of Go's
//! `golang.org/x/net/http/httpproxy` (so rko routes exactly as docker, ko and skopeo do):
//! `HTTPS_PROXY` for https URLs and `HTTP_PROXY` for http ones (upper case first, then lower
//! case), `localhost` and loopback addresses never proxied, and `NO_PROXY` as a comma list
//! of `*`, IPs, CIDRs, and domains (`example.com` is itself and its subdomains,
//! `.example.com` and `*.example.com` only subdomains), each with an optional `:port`.

use std::net::IpAddr;

/// The proxy settings of the environment.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnv {
    https: Option<(String, &'static str)>,
    http: Option<(String, &'static str)>,
    no_proxy: Vec<NoProxy>,
    all: bool,
}

/// A proxy chosen for a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The proxy URL, with any credentials (for the connection only).
    pub url: String,
    /// The variable it came from.
    pub var: &'static str,
}

impl Chosen {
    /// `http://host:port (from HTTPS_PROXY)`, without credentials.
    pub fn shown(&self) -> String {
        format!("{} (from {})", redact(&self.url), self.var)
    }
}

#[derive(Clone, Debug)]
enum NoProxy {
    Ip(IpAddr, Option<u16>),
    Cidr(IpAddr, u8),
    /// `.suffix`, and whether the bare domain matches too.
    Domain(String, bool, Option<u16>),
}

fn var(names: [&'static str; 2]) -> Option<(String, &'static str)> {
    names.into_iter().find_map(|n| {
        let v = std::env::var(n).ok().filter(|v| !v.is_empty())?;
        Some((v, n))
    })
}

impl ProxyEnv {
    pub fn from_env() -> ProxyEnv {
        let no_proxy = var(["NO_PROXY", "no_proxy"])
            .map(|(v, _)| v)
            .unwrap_or_default();
        ProxyEnv::new(
            var(["HTTPS_PROXY", "https_proxy"]),
            var(["HTTP_PROXY", "http_proxy"]),
            &no_proxy,
        )
    }

    fn new(
        https: Option<(String, &'static str)>,
        http: Option<(String, &'static str)>,
        no_proxy: &str,
    ) -> ProxyEnv {
        let with_scheme = |(url, var): (String, &'static str)| match url.contains("://") {
            true => (url, var),
            false => (format!("http://{url}"), var),
        };
        let mut env = ProxyEnv {
            https: https.map(with_scheme),
            http: http.map(with_scheme),
            ..ProxyEnv::default()
        };
        for entry in no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()) {
            match entry.as_str() {
                "" => {}
                "*" => env.all = true,
                e => env.no_proxy.extend(parse_entry(e)),
            }
        }
        env
    }

    /// The proxy for a URL of `scheme` to `host` (a name or IP, no brackets) and `port`.
    pub fn choose(&self, scheme: &str, host: &str, port: u16) -> Option<Chosen> {
        let (url, var) = match scheme {
            "https" => self.https.clone()?,
            _ => self.http.clone()?,
        };
        let host = host.to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if self.all || host == "localhost" || ip.is_some_and(|i| i.is_loopback()) {
            return None;
        }
        let bypass = self.no_proxy.iter().any(|n| match n {
            NoProxy::Ip(i, p) => ip == Some(*i) && p.is_none_or(|p| p == port),
            NoProxy::Cidr(net, bits) => ip.is_some_and(|i| in_cidr(i, *net, *bits)),
            NoProxy::Domain(suffix, bare, p) => {
                let name = host.ends_with(suffix.as_str()) || (*bare && host == suffix[1..]);
                name && p.is_none_or(|p| p == port)
            }
        });
        (!bypass).then_some(Chosen { url, var })
    }
}

fn parse_entry(e: &str) -> Option<NoProxy> {
    if let Some((net, bits)) = e.split_once('/') {
        return Some(NoProxy::Cidr(net.parse().ok()?, bits.parse().ok()?));
    }
    if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Some(NoProxy::Ip(ip, None));
    }
    let (host, port) = match e.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().ok()),
        _ => (e, None),
    };
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Some(NoProxy::Ip(ip, port));
    }
    let host = host.strip_prefix('*').unwrap_or(host);
    match host.strip_prefix('.') {
        Some(_) => Some(NoProxy::Domain(host.to_string(), false, port)),
        None => Some(NoProxy::Domain(format!(".{host}"), true, port)),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A proxy URL without its credentials.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let hostpart = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("{scheme}://{}", hostpart.trim_end_matches('/'))
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> ProxyEnv {
        let p = |v: &str, n| Some((v.to_string(), n));
        ProxyEnv::new(
            p("u:secret@proxy:3128", "HTTPS_PROXY"),
            p("http://hp:80", "HTTP_PROXY"),
            no_proxy,
        )
    }

    #[test]
    fn chooses_by_scheme_and_never_for_loopback() {
        let e = env("");
        let c = e.choose("https", "reg.example", 443).unwrap();
        assert_eq!(c.url, "http://u:secret@proxy:3128");
        assert_eq!(c.shown(), "http://proxy:3128 (from HTTPS_PROXY)");
        assert_eq!(
            e.choose("http", "reg.example", 80).unwrap().var,
            "HTTP_PROXY"
        );
        for local in ["localhost", "127.0.0.1", "127.9.9.9", "::1"] {
            assert_eq!(e.choose("https", local, 5000), None, "{local}");
        }
        // 0.0.0.0 is no loopback address: it is proxied.
        assert!(e.choose("https", "0.0.0.0", 5000).is_some());
    }

    #[test]
    fn no_proxy_forms_match_as_in_go() {
        let e = env("example.com, .internal, *.corp:8443, 10.0.0.0/8, 192.168.1.5, [fd00::1]:5000");
        let via = |h: &str, p: u16| e.choose("https", h, p).is_some();
        assert!(!via("example.com", 443) && !via("a.example.com", 443));
        assert!(via("badexample.com", 443));
        assert!(!via("x.internal", 443) && via("internal", 443));
        assert!(!via("a.corp", 8443) && via("a.corp", 443) && via("corp", 8443));
        assert!(!via("10.1.2.3", 443) && via("11.1.2.3", 443));
        assert!(!via("192.168.1.5", 1) && via("192.168.1.6", 1));
        assert!(!via("fd00::1", 5000) && via("fd00::1", 5001));
        assert!(env("*").choose("https", "anything", 1).is_none());
    }
}

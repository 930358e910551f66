//! What rko trusts for TLS, as docker and containers/image do: Mozilla's roots (built in),
//! the system bundle, `SSL_CERT_FILE` and `SSL_CERT_DIR`, `--ca-file`, and per registry the
//! certificate directories docker (`/etc/docker/certs.d/HOST[:PORT]/`) and podman/skopeo
//! (`/etc/containers/certs.d/HOST[:PORT]/`, `~/.config/containers/certs.d/…`) users keep:
//! every `*.crt` there is a CA, and `NAME.cert` with `NAME.key` is a client certificate
//! for registries that ask for one (mTLS). `RKO_ETC_DIR` moves every `/etc` path.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

/// Where `/etc` is (`RKO_ETC_DIR`, for tests and unusual installs).
pub fn etc_dir() -> PathBuf {
    match std::env::var_os("RKO_ETC_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/etc"),
    }
}

/// The system CA bundles, as distributions place them; the first that exists is used.
const SYSTEM_BUNDLES: &[&str] = &[
    "ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
    "pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "ssl/ca-bundle.pem",             // openSUSE
    "ssl/cert.pem",                  // macOS, BSDs
];

/// The roots every registry is checked against, and the list of where they came from.
pub struct Roots {
    pub certs: Vec<Certificate<'static>>,
    /// The sources tried, for messages: each with how many certificates it gave.
    pub tried: Vec<String>,
}

impl Roots {
    /// Mozilla's roots, the system bundle, SSL_CERT_FILE, SSL_CERT_DIR and `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Roots> {
        let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let mut tried = vec![format!("Mozilla's roots ({})", certs.len())];
        let etc = etc_dir();
        match SYSTEM_BUNDLES
            .iter()
            .map(|b| etc.join(b))
            .find(|p| p.is_file())
        {
            Some(p) => tried.push(add_file(&mut certs, &p, "the system bundle")),
            None => tried.push(format!("no system bundle under {}", etc.display())),
        }
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            tried.push(add_file(&mut certs, Path::new(&f), "SSL_CERT_FILE"));
        }
        if let Some(dirs) = std::env::var_os("SSL_CERT_DIR").filter(|d| !d.is_empty()) {
            for d in std::env::split_paths(&dirs) {
                let found: Vec<_> = pem_files(&d, |_| true)
                    .iter()
                    .flat_map(|f| certificates(f))
                    .collect();
                tried.push(format!("SSL_CERT_DIR {} ({})", d.display(), found.len()));
                certs.extend(found);
            }
        }
        if let Some(path) = ca_file {
            let found = certificates(path);
            if found.is_empty() {
                bail!(
                    "{} holds no PEM certificate; expected the registry's CA certificate",
                    path.display()
                );
            }
            tried.push(format!("--ca-file {} ({})", path.display(), found.len()));
            certs.extend(found);
        }
        Ok(Roots { certs, tried })
    }
}

fn add_file(certs: &mut Vec<Certificate<'static>>, path: &Path, what: &str) -> String {
    let found = certificates(path);
    let line = format!("{what} {} ({})", path.display(), found.len());
    certs.extend(found);
    line
}

/// What the certificate directories say about one host.
#[derive(Default)]
pub struct HostTrust {
    /// Extra CAs for this host.
    pub cas: Vec<Certificate<'static>>,
    /// A client certificate and key.
    pub client: Option<ClientCert>,
    /// The directories looked in, for messages.
    pub dirs: Vec<PathBuf>,
}

/// The certs.d directories for `host` (`HOST` or `HOST:PORT`, as in the URL).
pub fn host_dirs(host: &str) -> Vec<PathBuf> {
    let etc = etc_dir();
    let mut dirs = vec![
        etc.join("docker/certs.d").join(host),
        etc.join("containers/certs.d").join(host),
    ];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(
            Path::new(&home)
                .join(".config/containers/certs.d")
                .join(host),
        );
    }
    dirs
}

impl HostTrust {
    /// Reads the certificate directories of `host`.
    pub fn load(host: &str) -> Result<HostTrust> {
        let mut t = HostTrust {
            dirs: host_dirs(host),
            ..HostTrust::default()
        };
        for dir in t.dirs.clone() {
            for f in pem_files(&dir, |n| n.ends_with(".crt")) {
                t.cas.extend(certificates(&f));
            }
            for cert in pem_files(&dir, |n| n.ends_with(".cert")) {
                let key = cert.with_extension("key");
                if t.client.is_none() {
                    t.client = Some(client_cert(&cert, &key)?);
                }
            }
        }
        Ok(t)
    }
}

/// A client certificate chain and its key, as docker reads `client.cert` and `client.key`.
fn client_cert(cert: &Path, key: &Path) -> Result<ClientCert> {
    let chain = certificates(cert);
    if chain.is_empty() {
        bail!(
            "{} holds no PEM certificate; expected the client certificate for the registry",
            cert.display()
        );
    }
    let pem = fs_err::read(key).map_err(|e| {
        anyhow::anyhow!(
            "{} has no key beside it: expected {} ({e}); docker's certs.d pairs NAME.cert with \
             NAME.key",
            cert.display(),
            key.display()
        )
    })?;
    let key_item = ureq::tls::parse_pem(&pem).find_map(|i| match i {
        Ok(PemItem::PrivateKey(k)) => Some(k),
        _ => None,
    });
    let Some(k): Option<PrivateKey<'static>> = key_item else {
        bail!(
            "{} holds no PEM private key; expected the key of {}",
            key.display(),
            cert.display()
        );
    };
    Ok(ClientCert::new_with_certs(&chain, k))
}

/// The PEM certificates in a file; none when it cannot be read.
fn certificates(path: &Path) -> Vec<Certificate<'static>> {
    let Ok(pem) = std::fs::read(path) else {
        return Vec::new();
    };
    ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// The files of `dir` whose names pass `keep`, sorted; none when it is not a directory.
fn pem_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_dirs_follow_docker_and_containers() {
        let dirs = host_dirs("reg.example:5000");
        assert!(
            dirs[0].ends_with("docker/certs.d/reg.example:5000"),
            "{dirs:?}"
        );
        assert!(
            dirs[1].ends_with("containers/certs.d/reg.example:5000"),
            "{dirs:?}"
        );
    }
}

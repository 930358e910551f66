//! The embedded default base, `static`: made by rko itself, with no network and the same
//! bytes on every machine. One layer holds `/etc/passwd` and `/etc/group` (root, nobody and
//! nonroot 65532), `/etc/nsswitch.conf`, `/home/nonroot`, `/root`, `/tmp` (1777) and
//! Mozilla's CA roots (from the `webpki-root-certs` crate) at
//! `/etc/ssl/certs/ca-certificates.crt`; the config runs as 65532.

use std::io::Write;
use std::sync::OnceLock;

use base64::Engine;

use crate::image::base::Base;
use crate::layer::compress::{Algorithm, Compression, LayerSink};
use crate::layer::tar::{self, Entry, EntryKind};
use crate::oci::Descriptor;
use crate::oci::config::{Config, History, RootFs, rfc3339};
use crate::oci::digest::Sha256Digest;
use crate::oci::media;
use crate::oci::platform::Platform;

pub const NONROOT: u32 = 65532;
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The static base's one layer: compressed bytes, digest and diff_id.
pub struct StaticLayer {
    pub blob: Vec<u8>,
    pub digest: Sha256Digest,
    pub diff_id: Sha256Digest,
}

/// The CA bundle in PEM, in the crate's order.
pub fn ca_bundle() -> String {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The layer, made once per process.
pub fn layer() -> &'static StaticLayer {
    static LAYER: OnceLock<StaticLayer> = OnceLock::new();
    LAYER.get_or_init(build_layer)
}

fn build_layer() -> StaticLayer {
    let passwd = "root:x:0:0:root:/root:/sbin/nologin\n\
                  nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                  nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
    let group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
    let nsswitch = "hosts: files dns\n";
    let ca = ca_bundle();
    // Sorted by path, parents first.
    let entries: Vec<(&str, u32, u32, Option<&[u8]>)> = vec![
        ("etc", 0o755, 0, None),
        ("etc/group", 0o644, 0, Some(group.as_bytes())),
        ("etc/nsswitch.conf", 0o644, 0, Some(nsswitch.as_bytes())),
        ("etc/passwd", 0o644, 0, Some(passwd.as_bytes())),
        ("etc/ssl", 0o755, 0, None),
        ("etc/ssl/certs", 0o755, 0, None),
        (
            "etc/ssl/certs/ca-certificates.crt",
            0o644,
            0,
            Some(ca.as_bytes()),
        ),
        ("home", 0o755, 0, None),
        ("home/nonroot", 0o700, NONROOT, None),
        ("root", 0o700, 0, None),
        ("tmp", 0o1777, 0, None),
    ];
    let compression = Compression::new(Algorithm::Gzip, Some(6)).expect("valid level");
    let mut sink = LayerSink::new(Vec::new(), &compression, 1).expect("in-memory sink");
    for (name, mode, owner, content) in entries {
        let (kind, size) = match content {
            Some(c) => (EntryKind::File, c.len() as u64),
            None => (EntryKind::Dir, 0),
        };
        let mut e = Entry::new(name, kind, mode, size, 0);
        e.uid = owner;
        e.gid = owner;
        tar::write_file(&mut sink, &e, content.unwrap_or_default()).expect("in-memory write");
    }
    sink.write_all(&tar::TRAILER).expect("in-memory write");
    let (w, blob) = sink.finish().expect("in-memory sink");
    StaticLayer {
        blob,
        digest: w.digest,
        diff_id: w.diff_id,
    }
}

/// The static base for `platform`: scratch plus the one layer and its config.
pub fn base(platform: &Platform) -> Base {
    let l = layer();
    let epoch = rfc3339(0);
    let mut b = crate::image::base::scratch(platform);
    b.config.created = Some(epoch.clone());
    b.config.history = vec![History {
        created: Some(epoch),
        created_by: Some("rko static base".to_string()),
        comment: Some(
            "passwd, group, nsswitch.conf, /home/nonroot, /tmp and Mozilla's CA roots".to_string(),
        ),
        ..Default::default()
    }];
    b.config.rootfs = RootFs {
        kind: "layers".to_string(),
        diff_ids: vec![l.diff_id],
    };
    b.config.config = Config {
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            format!("SSL_CERT_FILE={CA_BUNDLE_PATH}"),
        ],
        user: NONROOT.to_string(),
        working_dir: "/home/nonroot".to_string(),
        ..Default::default()
    };
    b.layers = vec![Descriptor::new(
        media::OCI_LAYER_GZIP,
        l.digest,
        l.blob.len() as u64,
    )];
    b
}

/// The static base layer, when `digest` is its digest.
pub fn layer_if(digest: &Sha256Digest) -> Option<&'static StaticLayer> {
    let l = layer();
    (l.digest == *digest).then_some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// (name, mode, uid, size) of every entry of the static layer, read back with a
    /// standard tar reader.
    fn entries() -> Vec<(String, u32, u64, u64)> {
        let mut tar_bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(&layer().blob[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Sha256Digest::of(&tar_bytes), layer().diff_id);
        let mut ar = ::tar::Archive::new(&tar_bytes[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn static_base_has_users_certs_and_tmp() {
        let es = entries();
        let find = |n: &str| {
            es.iter()
                .find(|e| e.0 == n)
                .unwrap_or_else(|| panic!("{n} missing from {es:?}"))
        };
        assert_eq!(find("tmp").1, 0o1777);
        assert_eq!(find("home/nonroot").2, 65532);
        assert_eq!(find("home/nonroot").1, 0o700);
        assert!(find("etc/ssl/certs/ca-certificates.crt").3 > 100_000);
        let certs = ca_bundle().matches("-----BEGIN CERTIFICATE-----").count();
        assert!(certs > 100, "only {certs} CA certificates");
        let b = base(&"linux/arm64".parse().unwrap());
        assert_eq!(b.config.config.user, "65532");
        assert_eq!(b.config.architecture, "arm64");
        assert_eq!(b.config.rootfs.diff_ids, vec![layer().diff_id]);
    }

    #[test]
    fn static_layer_is_the_same_on_every_call_and_platform() {
        let a = base(&"linux/amd64".parse().unwrap());
        let b = base(&"linux/arm64".parse().unwrap());
        assert_eq!(a.layers, b.layers);
        assert_eq!(build_layer().digest, layer().digest);
    }
}

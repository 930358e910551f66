//! Assembling an image from a base and layer descriptors, with ko's config semantics. Only
//! metadata is read: the cost does not depend on the size of the base or the layers.

pub mod archive;
pub mod config;
pub mod descriptor;
pub mod index;

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::base::Base;
use crate::digest::Sha256Digest;
use crate::layer::kodata::KODATA_ROOT;
use crate::layer::{Algorithm, LayerContent, LayerDescriptor};
use crate::media;
use config::{History, rfc3339};
use descriptor::{Descriptor, Manifest, to_go_json};

/// How Go's encoding/json writes a zero `time.Time`.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What a user may set on the image beyond ko's defaults.
#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    /// `SOURCE_DATE_EPOCH`: the config's and the binary layer history's `created`.
    pub created: Option<u64>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub exposed_ports: Vec<String>,
}

/// An image's metadata: what `rko image` writes.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// The manifest's descriptor, with the platform.
    pub descriptor: Descriptor,
    /// Layer descriptors as they appear in the manifest (base first).
    pub layers: Vec<Descriptor>,
}

impl BuiltImage {
    pub fn digest(&self) -> Sha256Digest {
        self.descriptor.digest
    }

    pub fn config_descriptor(&self) -> Result<Descriptor> {
        let m: Manifest = serde_json::from_slice(&self.manifest)?;
        Ok(m.config)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid {what} {found:?}: expected {expected}")]
    Invalid {
        what: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error(
        "the base uses Docker media types, which have no zstd layer type; use --compression gzip, or an OCI base (skopeo copy --format oci)"
    )]
    ZstdOnDocker,
    #[error("no binary layer given: expected one layer descriptor made by `rko layer binary`")]
    NoBinary,
    #[error("{count} binary layers given: expected exactly one")]
    ManyBinaries { count: usize },
}

/// Builds the config and manifest of an image: the base plus `layers` (in order).
pub fn assemble(
    base: &Base,
    layers: &[LayerDescriptor],
    opts: &ImageOptions,
) -> Result<BuiltImage> {
    let docker = media::is_docker(&base.media_type);
    let binaries: Vec<(&str, &str)> = layers
        .iter()
        .filter_map(|l| match &l.content {
            LayerContent::Binary { import_path, path } => {
                Some((import_path.as_str(), path.as_str()))
            }
            _ => None,
        })
        .collect();
    let (import_path, app_path) = match binaries.as_slice() {
        [] => bail!(ImageError::NoBinary),
        [one] => *one,
        many => bail!(ImageError::ManyBinaries { count: many.len() }),
    };

    let mut cfg = base.config.clone();
    let mut manifest_layers = base.layers.clone();
    for l in layers {
        if docker && l.compression.algorithm == Algorithm::Zstd {
            bail!(ImageError::ZstdOnDocker);
        }
        let media_type = if docker {
            media::DOCKER_LAYER_GZIP.to_string()
        } else {
            l.media_type.clone()
        };
        manifest_layers.push(Descriptor {
            media_type,
            size: l.size,
            digest: l.digest,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        });
        cfg.rootfs.diff_ids.push(l.diff_id);
        let (created, comment) = match &l.content {
            LayerContent::Binary { path, .. } => {
                (opts.created, format!("go build output, at {path}"))
            }
            LayerContent::Kodata { mtime, .. } => {
                (*mtime, "kodata contents, at $KO_DATA_PATH".to_string())
            }
        };
        cfg.history.push(History {
            author: Some("ko".to_string()),
            // ko leaves an unset time as Go's zero time, which serializes like this.
            created: Some(
                created
                    .map(rfc3339)
                    .unwrap_or_else(|| GO_ZERO_TIME.to_string()),
            ),
            created_by: Some(format!("ko build ko://{import_path}")),
            comment: Some(comment),
            empty_layer: false,
        });
    }

    let c = &mut cfg.config;
    c.entrypoint = Some(vec![app_path.to_string()]);
    c.cmd = None;
    c.append_path("/ko-app");
    c.env.push(format!("KO_DATA_PATH={KODATA_ROOT}"));
    cfg.author = "github.com/ko-build/ko".to_string();
    for e in &opts.env {
        if !e.contains('=') || e.starts_with('=') {
            bail!(ImageError::Invalid {
                what: "env entry",
                found: e.clone(),
                expected: "KEY=VALUE"
            });
        }
        c.set_env(e);
    }
    c.labels
        .extend(opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(u) = &opts.user {
        c.user = u.clone();
    }
    if let Some(w) = &opts.workdir {
        if !w.starts_with('/') {
            bail!(ImageError::Invalid {
                what: "workdir",
                found: w.clone(),
                expected: "an absolute path such as /app"
            });
        }
        c.working_dir = w.clone();
    }
    if let Some(e) = &opts.entrypoint {
        c.entrypoint = Some(e.clone());
    }
    if let Some(cmd) = &opts.cmd {
        c.cmd = Some(cmd.clone());
    }
    for p in &opts.exposed_ports {
        let port = normalize_port(p)?;
        c.exposed_ports.insert(port, serde_json::json!({}));
    }
    if let Some(t) = opts.created {
        cfg.created = Some(rfc3339(t));
    }

    let config_bytes = to_go_json(&cfg);
    let config_mt = if docker {
        media::DOCKER_CONFIG
    } else {
        media::OCI_CONFIG
    };
    let manifest_mt = if docker {
        media::DOCKER_MANIFEST
    } else {
        media::OCI_MANIFEST
    };
    let mut annotations = base.manifest_annotations.clone();
    if let Some(n) = &base.name {
        annotations.insert(ANNOTATION_BASE_NAME.to_string(), n.clone());
    }
    if let Some(d) = &base.pinned_digest {
        annotations.insert(ANNOTATION_BASE_DIGEST.to_string(), d.to_string());
    }
    annotations.extend(opts.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    let manifest = Manifest {
        schema_version: 2,
        media_type: manifest_mt.to_string(),
        config: Descriptor::new(config_mt, &config_bytes),
        layers: manifest_layers.clone(),
        annotations,
    };
    let manifest_bytes = to_go_json(&manifest);
    let mut descriptor = Descriptor::new(manifest_mt, &manifest_bytes);
    let mut platform = crate::platform::Platform::new(&cfg.os, &cfg.architecture);
    platform.variant = cfg.variant.clone();
    platform.os_version = cfg.os_version.clone();
    descriptor.platform = Some(platform);
    // go-containerregistry records the config media type on descriptors of images.
    descriptor.artifact_type = Some(config_mt.to_string());
    Ok(BuiltImage {
        config: config_bytes,
        manifest: manifest_bytes,
        descriptor,
        layers: manifest_layers,
    })
}

/// `8080` → `8080/tcp`; `53/udp` stays.
fn normalize_port(p: &str) -> Result<String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let ok = num.parse::<u16>().is_ok_and(|n| n > 0) && matches!(proto, "tcp" | "udp" | "sctp");
    if !ok {
        bail!(ImageError::Invalid {
            what: "port",
            found: p.to_string(),
            expected: "PORT[/tcp|udp|sctp] with PORT in 1..65535"
        });
    }
    Ok(format!("{num}/{proto}"))
}

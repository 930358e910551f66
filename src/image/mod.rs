//! The image stage: assembling an image's config and manifest from a base and layer
//! descriptors with ko's config semantics, indexes over per-platform images, and the bases
//! themselves (`base/`). Only metadata is read: the cost does not depend on the size of the
//! base or the layers. Writing blobs anywhere is the archive stage's job.

pub mod base;
pub mod index;

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::image::base::Base;
use crate::layer::kodata::KODATA_ROOT;
use crate::layer::{Algorithm, LayerContent, LayerDescriptor};
use crate::oci::config::{Config, ConfigFile, History, rfc3339};
use crate::oci::{Descriptor, Manifest, Platform, Sha256Digest, json, media};

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
}

impl BuiltImage {
    pub fn digest(&self) -> Sha256Digest {
        self.descriptor.digest
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
    #[error(
        "{count} Delve layers given (rko layer binary --delve): expected at most one, for a debug image"
    )]
    ManyDelves { count: usize },
    #[error(
        "the {what} layer is laid out for {layer_os} (ko's {layout}), but the base is a {base_os} \
         image; make the layer with `--platform` of the base's OS ({base_os}/...), or use a \
         {layer_os} base"
    )]
    OsMismatch {
        what: &'static str,
        layer_os: &'static str,
        layout: &'static str,
        base_os: String,
    },
    #[error(
        "a Delve layer (rko layer binary --delve) was given for a {base_os} base, but ko's \
         debug image is Linux-only (Delve debugs linux/amd64 and linux/arm64); build this \
         image without it"
    )]
    DelveNotLinux { base_os: String },
}

fn os_name(windows: bool) -> &'static str {
    match windows {
        true => "windows",
        false => "linux",
    }
}

/// Each of ko's layers must be laid out for the base's OS: Windows layers hold their files
/// under `Files/`, Linux layers at the root.
fn check_layer_os(base_windows: bool, base_os: &str, layers: &[LayerDescriptor]) -> Result<()> {
    for l in layers {
        let what = match &l.content {
            LayerContent::Binary { .. } => "binary",
            LayerContent::Kodata { .. } => "kodata",
            LayerContent::Delve { .. } if base_windows => bail!(ImageError::DelveNotLinux {
                base_os: base_os.to_string(),
            }),
            LayerContent::Delve { .. } => "Delve",
            LayerContent::Tar { .. } => continue,
        };
        let windows = l.content.windows();
        if windows != base_windows {
            bail!(ImageError::OsMismatch {
                what,
                layer_os: os_name(windows),
                layout: match windows {
                    true => "Files/ and Hives/ layout",
                    false => "layout at the root",
                },
                base_os: base_os.to_string(),
            });
        }
    }
    Ok(())
}

/// Where ko puts the app on Windows, and its kodata there.
const WINDOWS_APP_DIR: &str = r"C:\ko-app";
const WINDOWS_KODATA: &str = r"C:\var\run\ko";

/// Builds the config and manifest of an image: the base plus `layers` (in order).
pub fn assemble(
    base: &Base,
    layers: &[LayerDescriptor],
    opts: &ImageOptions,
) -> Result<BuiltImage> {
    let docker = media::is_docker(&base.media_type);
    let (import_path, app_path) = the_binary(layers)?;
    let windows = base.config.os == "windows";
    check_layer_os(windows, &base.config.os, layers)?;
    let mut cfg = base.config.clone();
    let mut manifest_layers = base.layers.clone();
    for l in layers {
        if docker && l.compression.algorithm == Algorithm::Zstd {
            bail!(ImageError::ZstdOnDocker);
        }
        let media_type = match docker {
            true => media::DOCKER_LAYER_GZIP,
            false => l.media_type.as_str(),
        };
        manifest_layers.push(Descriptor::new(media_type, l.digest, l.size));
        cfg.rootfs.diff_ids.push(l.diff_id);
        cfg.history.push(ko_history(l, import_path, opts.created));
    }
    let c = &mut cfg.config;
    if windows {
        // ko: `C:\ko-app\<name>` (no .exe), PATH extended with ':' as on Linux.
        let name = app_path.rsplit('/').next().unwrap_or(app_path);
        c.entrypoint = Some(vec![format!(r"{WINDOWS_APP_DIR}\{name}")]);
        c.cmd = None;
        c.append_path(WINDOWS_APP_DIR);
        c.env.push(format!("KO_DATA_PATH={WINDOWS_KODATA}"));
    } else {
        c.entrypoint = Some(match the_delve(layers)? {
            Some(dlv) => std::iter::once(dlv)
                .chain(DELVE_ARGS.iter().copied())
                .chain([app_path])
                .map(String::from)
                .collect(),
            None => vec![app_path.to_string()],
        });
        c.cmd = None;
        c.append_path("/ko-app");
        c.env.push(format!("KO_DATA_PATH={KODATA_ROOT}"));
    }
    cfg.author = "github.com/ko-build/ko".to_string();
    apply_options(&mut cfg.config, opts)?;
    if let Some(t) = opts.created {
        cfg.created = Some(rfc3339(t));
    }
    Ok(write_manifest(base, &cfg, manifest_layers, opts, docker))
}

/// The import path and in-image path of the one binary layer.
fn the_binary(layers: &[LayerDescriptor]) -> Result<(&str, &str)> {
    let binaries: Vec<(&str, &str)> = layers
        .iter()
        .filter_map(|l| match &l.content {
            LayerContent::Binary {
                import_path, path, ..
            } => Some((import_path.as_str(), path.as_str())),
            _ => None,
        })
        .collect();
    match binaries.as_slice() {
        [] => bail!(ImageError::NoBinary),
        [one] => Ok(*one),
        many => bail!(ImageError::ManyBinaries { count: many.len() }),
    }
}

/// How ko's debug image starts the app: `dlv exec` these, then the app's path.
pub const DELVE_ARGS: [&str; 7] = [
    "exec",
    "--listen=:40000",
    "--headless",
    "--log",
    "--accept-multiclient",
    "--api-version=2",
    "--",
];

/// The in-image path of Delve, for a debug image (at most one Delve layer).
fn the_delve(layers: &[LayerDescriptor]) -> Result<Option<&str>> {
    let delves: Vec<&str> = layers
        .iter()
        .filter_map(|l| match &l.content {
            LayerContent::Delve { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    match delves.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => bail!(ImageError::ManyDelves { count: many.len() }),
    }
}

/// ko's history entry for one of its layers.
fn ko_history(l: &LayerDescriptor, import_path: &str, created: Option<u64>) -> History {
    let (created, comment) = match &l.content {
        LayerContent::Binary { path, .. } => (created, format!("go build output, at {path}")),
        LayerContent::Delve { path } => (created, format!("Delve debugger, at {path}")),
        LayerContent::Kodata { mtime, .. } => {
            (*mtime, "kodata contents, at $KO_DATA_PATH".to_string())
        }
        LayerContent::Tar { name, mtime } => (*mtime, format!("extra layer, from {name}")),
    };
    History {
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
    }
}

/// The user's settings on top of ko's config.
fn apply_options(c: &mut Config, opts: &ImageOptions) -> Result<()> {
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
        c.exposed_ports
            .insert(normalize_port(p)?, serde_json::json!({}));
    }
    Ok(())
}

/// Serializes the config and the manifest (OCI or Docker media types, as the base).
fn write_manifest(
    base: &Base,
    cfg: &ConfigFile,
    layers: Vec<Descriptor>,
    opts: &ImageOptions,
    docker: bool,
) -> BuiltImage {
    let config_bytes = json::go(cfg);
    let (config_mt, manifest_mt) = match docker {
        true => (media::DOCKER_CONFIG, media::DOCKER_MANIFEST),
        false => (media::OCI_CONFIG, media::OCI_MANIFEST),
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
        config: Descriptor::of_bytes(config_mt, &config_bytes),
        layers,
        annotations,
    };
    let manifest_bytes = json::go(&manifest);
    let mut descriptor = Descriptor::of_bytes(manifest_mt, &manifest_bytes);
    descriptor.platform = Some(Platform::of_config(cfg));
    // go-containerregistry records the config media type on descriptors of images.
    descriptor.artifact_type = Some(config_mt.to_string());
    BuiltImage {
        config: config_bytes,
        manifest: manifest_bytes,
        descriptor,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(content: serde_json::Value, n: u8) -> LayerDescriptor {
        let digest = format!("sha256:{}", format!("{n:02x}").repeat(32));
        serde_json::from_value(serde_json::json!({
            "mediaType": media::OCI_LAYER_GZIP,
            "digest": digest,
            "size": 1,
            "diffID": digest,
            "uncompressedSize": 1024,
            "compression": {"algorithm": "gzip", "level": 1, "chunkSize": 1048576,
                            "implementation": "libdeflate"},
            "content": content,
        }))
        .unwrap()
    }

    fn layers(windows: bool) -> Vec<LayerDescriptor> {
        vec![
            layer(
                serde_json::json!({"kind": "kodata", "importPath": "example.com/w/cmd/app",
                                   "windows": windows}),
                1,
            ),
            layer(
                serde_json::json!({"kind": "binary", "importPath": "example.com/w/cmd/app",
                                   "path": "/ko-app/app", "windows": windows}),
                2,
            ),
        ]
    }

    fn config(img: &BuiltImage) -> serde_json::Value {
        serde_json::from_slice(&img.config).unwrap()
    }

    #[test]
    fn windows_image_gets_kos_windows_entrypoint_path_and_kodata_path() {
        let mut base = base::scratch(&Platform::new("windows", "amd64"));
        base.config.config.env = vec![r"PATH=C:\Windows\system32;C:\Windows".to_string()];
        let img = assemble(&base, &layers(true), &ImageOptions::default()).unwrap();
        let c = config(&img);
        assert_eq!(c["os"], "windows");
        assert_eq!(
            c["config"]["Entrypoint"],
            serde_json::json!([r"C:\ko-app\app"])
        );
        // ko appends with ':' whatever the OS, and names kodata's Windows path.
        assert_eq!(
            c["config"]["Env"],
            serde_json::json!([
                r"PATH=C:\Windows\system32;C:\Windows:C:\ko-app",
                r"KO_DATA_PATH=C:\var\run\ko"
            ])
        );
        assert_eq!(
            c["history"][1]["comment"],
            "go build output, at /ko-app/app"
        );
        // Linux is unchanged.
        let linux = base::scratch(&Platform::new("linux", "amd64"));
        let c = config(&assemble(&linux, &layers(false), &ImageOptions::default()).unwrap());
        assert_eq!(
            c["config"]["Entrypoint"],
            serde_json::json!(["/ko-app/app"])
        );
        assert_eq!(
            c["config"]["Env"],
            serde_json::json!(["PATH=/ko-app", "KO_DATA_PATH=/var/run/ko"])
        );
    }

    #[test]
    fn layers_laid_out_for_another_os_than_the_base_are_refused() {
        let windows = base::scratch(&Platform::new("windows", "amd64"));
        let linux = base::scratch(&Platform::new("linux", "amd64"));
        let opts = ImageOptions::default();
        let e = assemble(&linux, &layers(true), &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the kodata layer is laid out for windows"),
            "{e}"
        );
        assert!(e.contains("the base is a linux image"), "{e}");
        let e = assemble(&windows, &layers(false), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("laid out for linux"), "{e}");
        assert!(
            e.contains("`--platform` of the base's OS (windows/...)"),
            "{e}"
        );
        // One layer of each: still refused, naming the odd one.
        let mut mixed = layers(true);
        mixed[1] = layers(false).remove(1);
        let e = assemble(&windows, &mixed, &opts).unwrap_err().to_string();
        assert!(e.contains("the binary layer is laid out for linux"), "{e}");
        // Delve exists only for Linux images.
        let mut debug = layers(true);
        debug.push(layer(
            serde_json::json!({"kind": "delve", "path": "/ko-app/dlv"}),
            3,
        ));
        let e = assemble(&windows, &debug, &opts).unwrap_err().to_string();
        assert!(e.contains("ko's debug image is Linux-only"), "{e}");
    }
}

//! Mirrors for pulls, as containers/image configures them: `[[registry.mirror]]` entries of
//! a `registries.conf` (v2, TOML; `$CONTAINERS_REGISTRIES_CONF`, else
//! `/etc/containers/registries.conf`) and `--mirror HOST=MIRROR` flags, which come first.
//! A reference whose name starts with a registry's `prefix` (its `location` when there is
//! no prefix) is tried at each mirror with that prefix replaced by the mirror's location,
//! then at the origin. Pushes never use mirrors.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::oci::Reference;
use crate::registry::trust::etc_dir;

/// One place to pull a reference from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub reference: Reference,
    /// Whether the host may be reached over plain HTTP or unverified TLS.
    pub insecure: bool,
    /// Whether this is a mirror rather than the origin.
    pub mirror: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Conf {
    #[serde(default)]
    registry: Vec<RegistryConf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryConf {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<MirrorConf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct MirrorConf {
    location: String,
    #[serde(default)]
    insecure: bool,
    /// `all` (default), `digest-only` or `tag-only`.
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

/// The mirror configuration: flags first, then registries.conf.
#[derive(Clone, Debug, Default)]
pub struct Mirrors {
    flags: Vec<(String, String)>,
    conf: Conf,
    /// Where the configuration was read from, for messages.
    pub conf_path: Option<PathBuf>,
}

impl Mirrors {
    /// `--mirror HOST=MIRROR` flags and the registries.conf in effect.
    pub fn load(flags: &[String]) -> Result<Mirrors> {
        let mut m = Mirrors::default();
        for f in flags {
            match f.split_once('=') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    let to = to.trim_end_matches('/');
                    m.flags
                        .push((normalize(from.trim_end_matches('/')), to.to_string()));
                }
                _ => bail!(
                    "invalid --mirror {f:?}: expected HOST[/PATH]=MIRROR_HOST[:PORT][/PATH], \
                     such as docker.io=mirror.example.com:5000"
                ),
            }
        }
        let path = match std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => Some(etc_dir().join("containers/registries.conf")).filter(|p| p.is_file()),
        };
        if let Some(p) = path {
            let text = fs_err::read_to_string(&p)?;
            m.conf = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a registries.conf rko can read: expected containers' v2 TOML \
                     format ([[registry]] tables); fix it, or point CONTAINERS_REGISTRIES_CONF \
                     elsewhere",
                    p.display()
                )
            })?;
            m.conf_path = Some(p);
        }
        Ok(m)
    }

    /// Where to pull `r` from: its mirrors in order, then the origin.
    pub fn sources(&self, r: &Reference) -> Result<Vec<Source>> {
        let name = normalize(&r.name());
        let by_digest = r.digest.is_some();
        let mut out = Vec::new();
        let mut origin_insecure = false;
        for (from, to) in &self.flags {
            if let Some(rest) = under(&name, from) {
                out.push(source(r, &format!("{to}{rest}"), false, true)?);
            }
        }
        if let Some(reg) = self.best(&name) {
            let prefix = reg
                .prefix
                .as_deref()
                .or(reg.location.as_deref())
                .unwrap_or("");
            let rest = under(&name, &normalize(prefix)).unwrap_or_default();
            origin_insecure = reg.insecure;
            for m in &reg.mirror {
                let wanted = match m.pull_from_mirror.as_deref() {
                    Some("digest-only") => by_digest,
                    Some("tag-only") => !by_digest,
                    _ => by_digest || !reg.mirror_by_digest_only,
                };
                if wanted {
                    out.push(source(
                        r,
                        &format!("{}{rest}", m.location),
                        m.insecure,
                        true,
                    )?);
                }
            }
            if let Some(loc) = reg.location.as_deref().filter(|l| !l.is_empty()) {
                out.push(source(r, &format!("{loc}{rest}"), reg.insecure, false)?);
                return Ok(out);
            }
        }
        out.push(Source {
            reference: r.clone(),
            insecure: origin_insecure,
            mirror: false,
        });
        Ok(out)
    }

    /// The `[[registry]]` whose prefix matches `name` longest.
    fn best(&self, name: &str) -> Option<&RegistryConf> {
        self.conf
            .registry
            .iter()
            .filter_map(|reg| {
                let p = reg.prefix.as_deref().or(reg.location.as_deref())?;
                under(name, &normalize(p)).map(|_| (p.len(), reg))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, reg)| reg)
    }
}

/// What the fuzz target calls: a registries.conf from text (plus `--mirror` flags), and
/// where each of `refs` would be pulled from.
#[cfg(fuzzing)]
pub fn fuzz_sources(text: &str, flags: &[(String, String)], refs: &[Reference]) {
    let Ok(conf) = toml::from_str::<Conf>(text) else {
        return;
    };
    let m = Mirrors {
        flags: flags.to_vec(),
        conf,
        conf_path: None,
    };
    for r in refs {
        if let Ok(sources) = m.sources(r) {
            let last = sources.last().expect("the origin is always last");
            assert!(!last.mirror);
        }
    }
}

/// `registry/repository` with Docker Hub as `docker.io`, as registries.conf names it.
fn normalize(name: &str) -> String {
    match name.strip_prefix("index.docker.io") {
        Some(rest) => format!("docker.io{rest}"),
        None => name.to_string(),
    }
}

/// The rest of `name` after `prefix` when `prefix` is a whole-component prefix of it (a
/// `*.domain` prefix matches any subdomain's host).
fn under(name: &str, prefix: &str) -> Option<String> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let (host, rest) = name.split_once('/').unwrap_or((name, ""));
        let hostname = host.split(':').next().unwrap_or(host);
        return hostname
            .ends_with(&format!(".{domain}"))
            .then(|| format!("/{rest}"));
    }
    let rest = name.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| rest.to_string())
}

/// `r` at `name` instead of its own name.
fn source(r: &Reference, name: &str, insecure: bool, mirror: bool) -> Result<Source> {
    let mut s = name.to_string();
    if let Some(t) = &r.tag {
        s.push_str(&format!(":{t}"));
    }
    if let Some(d) = &r.digest {
        s.push_str(&format!("@{d}"));
    }
    let reference = Reference::parse(&s)
        .with_context(|| format!("the mirror location {name:?} for {}", r.name()))?;
    Ok(Source {
        reference,
        insecure,
        mirror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirrors(flags: &[&str], conf: &str) -> Mirrors {
        Mirrors {
            flags: flags
                .iter()
                .map(|f| {
                    let (a, b) = f.split_once('=').unwrap();
                    (a.to_string(), b.to_string())
                })
                .collect(),
            conf: toml::from_str(conf).unwrap(),
            conf_path: None,
        }
    }

    fn names(m: &Mirrors, r: &str) -> Vec<String> {
        let r = Reference::parse(r).unwrap();
        m.sources(&r)
            .unwrap()
            .iter()
            .map(|s| s.reference.to_string())
            .collect()
    }

    #[test]
    fn flags_then_conf_mirrors_then_the_origin() {
        let d = format!("sha256:{}", "a".repeat(64));
        let conf = r#"
            [[registry]]
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.corp:5000/hub"
            insecure = true
            [[registry.mirror]]
            location = "tags.corp"
            pull-from-mirror = "tag-only"
            [[registry]]
            prefix = "ghcr.io/team"
            location = "ghcr.io/team"
            [[registry.mirror]]
            location = "ghcr-mirror.corp/team"
        "#;
        let m = mirrors(&["docker.io=flag.corp"], conf);
        assert_eq!(
            names(&m, &format!("alpine@{d}")),
            [
                format!("flag.corp/library/alpine@{d}"),
                format!("mirror.corp:5000/hub/library/alpine@{d}"),
                format!("index.docker.io/library/alpine@{d}"),
            ]
        );
        assert_eq!(
            names(&m, "alpine:3").len(),
            4,
            "a tag also goes to the tag-only mirror"
        );
        assert_eq!(
            names(&m, &format!("ghcr.io/team/app@{d}")),
            [
                format!("ghcr-mirror.corp/team/app@{d}"),
                format!("ghcr.io/team/app@{d}")
            ]
        );
        assert_eq!(names(&m, &format!("ghcr.io/teamx/app@{d}")).len(), 1);
        let r = Reference::parse(&format!("alpine@{d}")).unwrap();
        assert!(m.sources(&r).unwrap()[1].insecure);
    }
}

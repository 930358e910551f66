//! Bases named by registry reference on the command line (`rko build --base
//! HOST/REPO@sha256:…`, as `ko build` takes them): pulled shallow (manifests and configs
//! only, as `rko pull` does) into a content-addressed cache, once, so a later build of the
//! same base needs no network. The cache is `$XDG_CACHE_HOME/rko/bases/<hex>/<platform>`
//! (else `$HOME/.cache/rko/…`), one OCI layout per pinned digest and platform; an entry is
//! written to a temporary directory beside it and renamed into place, so a killed pull
//! leaves nothing a later build would take for a base.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::oci::{Platform, Reference, Sha256Digest};
use crate::registry::client::Client;
use crate::registry::mirrors::Mirrors;
use crate::registry::pull::Puller;

/// Where cached bases live.
pub fn cache_root() -> Result<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (from("XDG_CACHE_HOME"), from("HOME")) {
        (Some(x), _) => Ok(x.join("rko")),
        (None, Some(h)) => Ok(h.join(".cache/rko")),
        (None, None) => bail!(
            "no cache directory for pulled bases: expected $XDG_CACHE_HOME or $HOME to be set; \
             set one, or pull the base with `rko pull` and pass the layout as --base DIR@sha256:…"
        ),
    }
}

/// Whether `s` names an image in a registry (HOST/REPO, with a tag or digest), not a
/// directory: it parses as a reference whose first part is a host (it has a `.` or a `:`,
/// or is `localhost`), and no file or directory of that name exists.
pub fn is_registry_reference(s: &str) -> bool {
    let dir = s.rsplit_once('@').map_or(s, |(d, _)| d);
    if Path::new(dir).exists() {
        return false;
    }
    let Some((host, _)) = s.split_once('/') else {
        return false;
    };
    crate::oci::tag::is_registry_host(host) && Reference::parse(s).is_ok()
}

fn platform_dir(p: &Platform) -> String {
    p.to_string().replace(['/', ':'], "-")
}

/// The layout directory and pinned digest of the base `r` for `platform`: from the cache
/// when a pinned reference is there, else pulled shallow (through the mirrors
/// registries.conf names) and cached. A reference without a digest is resolved by the pull,
/// and the digest to pin is printed on stderr, as `ko` does.
pub fn cached_base(
    client: &Client,
    r: &Reference,
    platform: &Platform,
) -> Result<(PathBuf, Sha256Digest)> {
    let root = cache_root()?;
    let entry = |d: &Sha256Digest| {
        root.join("bases")
            .join(d.to_string().replace(':', "-"))
            .join(platform_dir(platform))
    };
    if let Some(d) = &r.digest {
        let dir = entry(d);
        if dir.join("index.json").is_file() {
            return Ok((dir, *d));
        }
    }
    std::fs::create_dir_all(&root)
        .with_context(|| format!("creating the base cache {}", root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&root)
        .with_context(|| format!("creating a directory in the base cache {}", root.display()))?;
    let sources = Mirrors::load(&[])?.sources(r)?;
    let puller = Puller { client };
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout)?;
    let pulled = puller
        .pull_from(
            &sources,
            std::slice::from_ref(platform),
            true,
            false,
            &layout,
        )
        .with_context(|| format!("pulling the base {r}"))?;
    if r.digest.is_none() {
        eprintln!(
            "rko: the base {r} resolved to {}; pin it as {}@{}",
            pulled.digest,
            r.name(),
            pulled.digest
        );
    }
    let dir = entry(&pulled.digest);
    if !dir.join("index.json").is_file() {
        let parent = dir.parent().expect("a cache entry has a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        // Another build may have put the same entry there meanwhile: theirs is as good.
        if let Err(e) = std::fs::rename(&layout, &dir)
            && !dir.join("index.json").is_file()
        {
            return Err(e).with_context(|| format!("moving the pulled base to {}", dir.display()));
        }
    }
    Ok((dir, pulled.digest))
}

/// The platforms `--platform all` builds on the base `r`, as ko takes them: those of its
/// index (less Docker's `unknown/unknown` attestations), or for a single image the one its
/// config names; and the digest of the base read, so the images are made of that one
/// even if a tag moves meanwhile (a tag is resolved once, and the digest to pin printed).
/// A pinned base already in the cache is read from there, with no network.
pub fn all_platforms(client: &Client, r: &Reference) -> Result<(Vec<Platform>, Sha256Digest)> {
    use crate::image::base::layout;
    if let Some(d) = &r.digest {
        let dir = cache_root()?
            .join("bases")
            .join(d.to_string().replace(':', "-"));
        let cached = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        if let Some(entry) = cached
            .map(|e| e.path())
            .find(|p| p.join("index.json").is_file())
        {
            return Ok((layout::all_platforms(&entry, Some(d))?, *d));
        }
    }
    let sources = Mirrors::load(&[])?.sources(r)?;
    let puller = Puller { client };
    let mut last = None;
    for s in &sources {
        match platforms_from(&puller, &s.reference) {
            Ok((p, digest)) => {
                if r.digest.is_none() {
                    eprintln!(
                        "rko: the base {r} resolved to {digest}; pin it as {}@{digest}",
                        r.name()
                    );
                }
                return Ok((p, digest));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no source to read the base from"))
        .context(format!(
            "reading the platforms of the base {r} for --platform all"
        )))
}

fn platforms_from(puller: &Puller<'_>, r: &Reference) -> Result<(Vec<Platform>, Sha256Digest)> {
    use crate::oci::{ConfigFile, Index, Manifest, media};
    let (bytes, mt, digest) = puller.top(r)?;
    if media::is_index(&mt) {
        let idx: Index = serde_json::from_slice(&bytes).context("parsing the base index")?;
        let platforms = idx
            .buildable_platforms()
            .with_context(|| format!("--platform all on the base index {r} ({digest})"))?;
        return Ok((platforms, digest));
    }
    let m: Manifest = serde_json::from_slice(&bytes).context("parsing the base manifest")?;
    if m.config.size > crate::oci::json::JSON_LIMIT {
        bail!(
            "the config of {r} is {} bytes by its manifest, more than rko reads of an image \
             config: refusing it (a broken or hostile manifest)",
            m.config.size
        );
    }
    let mut cfg = Vec::new();
    puller.blob(r, &m.config, &mut cfg)?;
    let config: ConfigFile = serde_json::from_slice(&cfg).context("parsing the base config")?;
    let platform = crate::image::base::layout::platform_of_single(&config);
    Ok((vec![platform], digest))
}

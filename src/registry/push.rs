//! Pushing an image or index from a push manifest: blobs first (skipping what the target
//! has, mounting across repositories of the same registry, streaming base blobs from their
//! source registry straight into the upload), then the manifests of children before the
//! index, then tags. A manifest is never written before all its blobs exist, so a failed
//! push leaves no broken image, and a re-run sends only what is missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::archive::push_manifest::{BlobRef, PushManifest};
use crate::oci::media::MANIFEST_ACCEPT;
use crate::oci::verify::verify_bytes;
use crate::oci::{Descriptor, Reference, Sha256Digest};
use crate::registry::client::{Client, Payload, RegistryError, Response};

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    Existed,
    Mounted,
    Uploaded,
    Copied,
}

/// The result of a push; as JSON, the `--image-refs` file for CI.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// `repo@sha256:…`.
    pub reference: String,
    /// `repo:tag@sha256:…`, one per tag.
    pub tagged: Vec<String>,
    pub blobs: Vec<(Sha256Digest, BlobOutcome, u64)>,
    /// Bytes sent to the target (uploads and copies).
    pub bytes_sent: u64,
    /// The documents attached to the image as referrers (absent when none were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<crate::registry::attach::Attached>,
}

/// Live counts for a progress display.
#[derive(Default)]
pub struct Counters {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub existed: AtomicUsize,
    pub mounted: AtomicUsize,
    pub bytes_sent: AtomicU64,
}

pub struct Pusher<'a> {
    pub client: &'a Client,
    pub counters: Arc<Counters>,
    pub jobs: usize,
    /// Attempts per blob, each a fresh upload.
    pub attempts: u32,
    /// Upload blobs larger than this in chunks of this size (PATCH with Content-Range);
    /// `None` sends every blob in one streamed PUT, which is fastest on a good link.
    pub chunk_size: Option<u64>,
    /// Put every tag even when the registry already has it on the image (`--force-tags`).
    pub force_tags: bool,
    /// Where blobs that are not on disk are read from (`--remote-cache`).
    pub remote_cache: Option<&'a crate::registry::cache::RemoteCache>,
    /// Called with a line of progress for each blob as it finishes.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

pub(super) fn scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

pub(super) fn expect(resp: &mut Response, ok: &[u16], method: &str, url: &str) -> Result<()> {
    if ok.contains(&resp.status) {
        return Ok(());
    }
    bail!(RegistryError::Status {
        method: method.into(),
        url: url.into(),
        status: resp.status,
        body: resp.text()
    })
}

impl Pusher<'_> {
    /// Counts a finished blob and reports it.
    pub(super) fn record(&self, b: &BlobRef, outcome: BlobOutcome) {
        self.counters.done.fetch_add(1, Ordering::Relaxed);
        match outcome {
            BlobOutcome::Existed => self.counters.existed.fetch_add(1, Ordering::Relaxed),
            BlobOutcome::Mounted => self.counters.mounted.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        (self.progress)(&format!(
            "{:9} {} ({})",
            format!("{outcome:?}").to_lowercase(),
            b.digest,
            human(b.size)
        ));
    }

    /// The manifests, children first and the root last; then the tags. Each is HEADed
    /// first and put only when the registry lacks it (a tag: when it names anything else),
    /// so a re-push of an unchanged image writes nothing.
    pub(super) fn push_manifests(&self, target: &Reference, m: &PushManifest) -> Result<()> {
        let scopes = [scope(&target.repository, "pull,push")];
        let mut pushed_root = false;
        for mref in &m.manifests {
            self.ensure_manifest(target, mref, &mref.digest.to_string(), &scopes)?;
            pushed_root |= mref.digest == m.root.digest;
        }
        if !pushed_root {
            self.ensure_manifest(target, &m.root, &m.root.digest.to_string(), &scopes)?;
        }
        for t in &m.tags {
            match self.force_tags {
                true => self.put_manifest(target, &m.root, t, &scopes)?,
                false => self.ensure_manifest(target, &m.root, t, &scopes)?,
            }
        }
        Ok(())
    }

    /// Puts `mref` as `reference` unless the registry already has it there.
    fn ensure_manifest(
        &self,
        target: &Reference,
        mref: &BlobRef,
        reference: &str,
        scopes: &[String],
    ) -> Result<()> {
        if !self.has_manifest(target, mref, reference, scopes)? {
            self.put_manifest(target, mref, reference, scopes)?;
        }
        Ok(())
    }

    /// Whether `reference` (a digest or a tag) names `mref` in the target: a HEAD answered
    /// 200 with `mref`'s `Docker-Content-Digest`. Without that header only a digest
    /// reference counts (the registry found it by its digest); a tag is put again.
    pub(super) fn has_manifest(
        &self,
        target: &Reference,
        mref: &BlobRef,
        reference: &str,
        scopes: &[String],
    ) -> Result<bool> {
        let url = format!("/v2/{}/manifests/{reference}", target.repository);
        let accept = [("accept", MANIFEST_ACCEPT.to_string())];
        let empty = &mut || Ok(Payload::Empty);
        let resp = self
            .client
            .send(&target.registry, "HEAD", &url, &accept, scopes, empty)?;
        if resp.status != 200 {
            return Ok(false);
        }
        Ok(match resp.header("docker-content-digest") {
            Some(d) => d.trim() == mref.digest.to_string(),
            None => reference == mref.digest.to_string(),
        })
    }

    fn put_manifest(
        &self,
        target: &Reference,
        mref: &BlobRef,
        reference: &str,
        scopes: &[String],
    ) -> Result<()> {
        let path = mref.path.as_ref().with_context(|| {
            format!(
                "manifest {} has no local file in the push manifest",
                mref.digest
            )
        })?;
        let bytes = Arc::new(match self.remote_cache {
            Some(cache) if !path.is_file() => self.cache_bytes(cache, mref)?,
            _ => fs_err::read(path)?,
        });
        let desc = Descriptor::new(&mref.media_type, mref.digest, mref.size);
        let subject = || format!("manifest {}", path.display());
        verify_bytes(&desc, &bytes, subject, "rebuild before pushing")?;
        let url = format!("/v2/{}/manifests/{reference}", target.repository);
        let mut resp = self.send_manifest(target, &mref.media_type, reference, bytes, scopes)?;
        expect(&mut resp, &[200, 201], "PUT", &url)?;
        stored_as(
            &resp,
            &mref.digest.to_string(),
            &target.registry,
            &format!("PUT {url}"),
        )
    }

    /// PUTs `bytes` of `media_type` as the manifest `reference` (a digest or a tag) and
    /// returns the answer, whatever its status.
    pub(super) fn send_manifest(
        &self,
        target: &Reference,
        media_type: &str,
        reference: &str,
        bytes: Arc<Vec<u8>>,
        scopes: &[String],
    ) -> Result<Response> {
        let url = format!("/v2/{}/manifests/{reference}", target.repository);
        self.client.send(
            &target.registry,
            "PUT",
            &url,
            &[("content-type", media_type.to_string())],
            scopes,
            &mut || Ok(Payload::Bytes(bytes.clone())),
        )
    }

    /// Pushes one blob, starting over with a fresh upload (and without chunks) when an
    /// attempt fails: a broken upload session may hold a partial body. `mount_from` is a
    /// repository of the target's registry that has the blob (another image of this run).
    pub(super) fn push_blob(
        &self,
        target: &Reference,
        b: &BlobRef,
        mount_from: Option<&Reference>,
    ) -> Result<(BlobOutcome, u64)> {
        let attempts = self.attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.try_push_blob(target, b, mount_from, attempt == 1) {
                Ok(r) => return Ok(r),
                Err(e) if is_final(&e) || attempt >= attempts => return Err(e),
                Err(e) => {
                    (self.progress)(&format!("retrying {} after: {e:#}", b.digest));
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt as u64));
                    attempt += 1;
                }
            }
        }
    }
}

/// Checks the `Docker-Content-Digest` of a registry's answer to a PUT of `expected`: a
/// registry that names other bytes than rko sent stored something else (a proxy or the
/// registry altered them), so the push must not report success. No header is fine: the
/// header is optional.
/// `what` names the request, e.g. `PUT /v2/…/manifests/v1`.
pub(super) fn stored_as(resp: &Response, expected: &str, registry: &str, what: &str) -> Result<()> {
    match resp.header("docker-content-digest") {
        Some(d) if d.trim() != expected => bail!(
            "{registry} answered {what} with Docker-Content-Digest {}, but rko sent {expected}: \
             the registry stored other bytes than were sent (a proxy or the registry altered \
             them); push again, and check what sits between rko and {registry} if it persists",
            d.trim()
        ),
        _ => Ok(()),
    }
}

/// Whether a 200 to a HEAD of blob `b` really says the registry has it: a
/// `Docker-Content-Digest` or `Content-Length` naming another blob does not (the blob is
/// sent then; an upload of bytes the registry has is harmless).
pub(super) fn head_confirms(resp: &Response, b: &BlobRef) -> bool {
    let digest_ok = resp
        .header("docker-content-digest")
        .is_none_or(|d| d.trim() == b.digest.to_string());
    let size_ok = resp
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
        .is_none_or(|l| l == b.size);
    digest_ok && size_ok
}

/// A manifest refused because the registry does not know one of its blobs (the
/// distribution spec's `MANIFEST_BLOB_UNKNOWN` error code).
pub(super) fn blob_unknown(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<RegistryError>(),
        Some(RegistryError::Status { status: 400, body, .. })
            if body.contains("\"MANIFEST_BLOB_UNKNOWN\"") || body.contains("\"BLOB_UNKNOWN\"")
    )
}

/// Errors a retry cannot fix: refused credentials, a missing local file, a mismatch.
fn is_final(e: &anyhow::Error) -> bool {
    if let Some(RegistryError::Status { status, .. }) = e.downcast_ref::<RegistryError>() {
        return *status < 500
            && *status != 429
            && *status != 400
            && *status != 416
            && *status != 404;
    }
    matches!(
        e.downcast_ref::<RegistryError>(),
        Some(RegistryError::Unauthorized { .. })
            | Some(RegistryError::NoCredentials { .. })
            | Some(RegistryError::Tls { .. })
    ) || e.downcast_ref::<std::io::Error>().is_some()
        || e.downcast_ref::<crate::registry::cache::CacheError>()
            .is_some()
}

pub fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

//! Pushing an image or index from a push manifest: blobs first (skipping what the target
//! has, mounting across repositories of the same registry, streaming base blobs from their
//! source registry straight into the upload), then the manifests of children before the
//! index, then tags. A manifest is never written before all its blobs exist, so a failed
//! push leaves no broken image, and a re-run sends only what is missing.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::registry::client::{Client, Payload, RegistryError, Response};
use crate::registry::reference::Reference;

/// The `source` of a blob that is the embedded static base's layer.
pub const STATIC_SOURCE: &str = "rko:static";

/// The push manifest: everything `rko push` needs, written at build time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PushManifest {
    /// `host[:port]/repository` to push to.
    pub repository: String,
    /// Tags to point at the root, pushed last.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The image or index that is pushed.
    pub root: BlobRef,
    /// Manifests and indexes, children before parents, the root last.
    pub manifests: Vec<BlobRef>,
    /// Every config and layer blob.
    pub blobs: Vec<BlobRef>,
}

/// A blob and where its bytes are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlobRef {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    /// A local file with the bytes. In a push manifest file a relative path is relative to
    /// the directory holding that file, not to the working directory: build systems run the
    /// push from elsewhere than the build (Bazel in the runfiles tree, Buck2 in the user's
    /// directory), and only the manifest's own location is known to both.
    /// [`PushManifest::read`] resolves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Or a repository (`host[:port]/repo`) where the blob can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a push manifest file cannot be pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushManifestError {
    /// (`main` prints the parser's message after this one, as the error's source.)
    #[error("{manifest} is not a push manifest: expected the JSON `rko push-manifest` writes")]
    NotAPushManifest {
        manifest: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the push manifest {manifest} records blob {digest} at {recorded}, which resolves \
         (relative paths against the manifest's directory) to {resolved}, but no file is there; \
         rebuild the push target, and run it through the build system (`bazel run`, `buck2 run`) \
         so that the blobs sit where the manifest says"
    )]
    MissingBlobFile {
        manifest: PathBuf,
        digest: Sha256Digest,
        recorded: PathBuf,
        resolved: PathBuf,
    },
}

impl PushManifest {
    /// Reads a push manifest file and resolves its relative blob paths against the file's
    /// directory, by joining names (symlinks are not resolved: under Bazel the manifest sits
    /// in a runfiles tree of symlinks, and the blobs must be found through that tree).
    /// Every blob file must exist, so a wrong location fails before anything is sent.
    pub fn read(manifest: &Path) -> Result<PushManifest> {
        let bytes = fs_err::read(manifest)?;
        let mut pm: PushManifest = serde_json::from_slice(&bytes).map_err(|source| {
            PushManifestError::NotAPushManifest {
                manifest: manifest.to_path_buf(),
                source,
            }
        })?;
        let dir = manifest.parent().unwrap_or(Path::new(""));
        for b in std::iter::once(&mut pm.root)
            .chain(pm.manifests.iter_mut())
            .chain(pm.blobs.iter_mut())
        {
            let Some(recorded) = b.path.take() else {
                continue;
            };
            let resolved = dir.join(&recorded);
            if !resolved.is_file() {
                bail!(PushManifestError::MissingBlobFile {
                    manifest: manifest.to_path_buf(),
                    digest: b.digest,
                    recorded,
                    resolved,
                });
            }
            b.path = Some(resolved);
        }
        Ok(pm)
    }
}

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    Existed,
    Mounted,
    Uploaded,
    Copied,
}

/// The result of a push.
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    /// `repo@sha256:…`.
    pub reference: String,
    /// `repo:tag@sha256:…`, one per tag.
    pub tagged: Vec<String>,
    pub blobs: Vec<(Sha256Digest, BlobOutcome, u64)>,
    /// Bytes sent to the target (uploads and copies).
    pub bytes_sent: u64,
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

/// Counts the bytes read through it into `Counters::bytes_sent`.
struct Counting<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters
            .bytes_sent
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
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
    /// Called with a line of progress for each blob as it finishes.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

fn scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

fn expect(resp: &mut Response, ok: &[u16], method: &str, url: &str) -> Result<()> {
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
    pub fn push(&self, m: &PushManifest) -> Result<PushReport> {
        let target =
            Reference::parse(&m.repository).with_context(|| "the push manifest's repository")?;
        if target.tag.is_some() || target.digest.is_some() {
            bail!(
                "the push repository {} has a tag or digest; expected only HOST/REPOSITORY (tags go in \"tags\")",
                m.repository
            );
        }
        for t in &m.tags {
            crate::reference::parse_tag(&format!("{}:{t}", target.name()))?;
        }
        self.counters.total.store(m.blobs.len(), Ordering::Relaxed);
        // Blobs, in parallel, bounded.
        let queue = Mutex::new(m.blobs.iter().rev().cloned().collect::<Vec<_>>());
        let results = Mutex::new(Vec::new());
        let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..self.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        if first_error.lock().expect("lock").is_some() {
                            return;
                        }
                        let Some(b) = queue.lock().expect("lock").pop() else {
                            return;
                        };
                        match self.push_blob(&target, &b) {
                            Ok((outcome, sent)) => {
                                self.counters.done.fetch_add(1, Ordering::Relaxed);
                                match outcome {
                                    BlobOutcome::Existed => {
                                        self.counters.existed.fetch_add(1, Ordering::Relaxed)
                                    }
                                    BlobOutcome::Mounted => {
                                        self.counters.mounted.fetch_add(1, Ordering::Relaxed)
                                    }
                                    _ => 0,
                                };
                                (self.progress)(&format!(
                                    "{:9} {} ({})",
                                    format!("{outcome:?}").to_lowercase(),
                                    b.digest,
                                    human(b.size)
                                ));
                                results
                                    .lock()
                                    .expect("lock")
                                    .push((b.digest, outcome, sent));
                            }
                            Err(e) => {
                                first_error
                                    .lock()
                                    .expect("lock")
                                    .get_or_insert(e.context(format!("pushing blob {}", b.digest)));
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().expect("lock") {
            return Err(e);
        }
        // Manifests, children first; the root last. Then tags.
        let repo = &target.repository;
        let scopes = [scope(repo, "pull,push")];
        let mut pushed_root = false;
        for mref in &m.manifests {
            self.put_manifest(&target, mref, &mref.digest.to_string(), &scopes)?;
            pushed_root |= mref.digest == m.root.digest;
        }
        if !pushed_root {
            self.put_manifest(&target, &m.root, &m.root.digest.to_string(), &scopes)?;
        }
        for t in &m.tags {
            self.put_manifest(&target, &m.root, t, &scopes)?;
        }
        let mut blobs = results.into_inner().expect("lock");
        blobs.sort_by_key(|b| b.0);
        let bytes_sent = blobs.iter().map(|b| b.2).sum();
        let name = target.name();
        Ok(PushReport {
            reference: format!("{name}@{}", m.root.digest),
            tagged: m
                .tags
                .iter()
                .map(|t| format!("{name}:{t}@{}", m.root.digest))
                .collect(),
            blobs,
            bytes_sent,
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
        let bytes = Arc::new(fs_err::read(path)?);
        if Sha256Digest::of(&bytes) != mref.digest || bytes.len() as u64 != mref.size {
            bail!(
                "{} does not match its digest {} in the push manifest; rebuild before pushing",
                path.display(),
                mref.digest
            );
        }
        let url = format!("/v2/{}/manifests/{reference}", target.repository);
        let mut resp = self.client.send(
            &target.registry,
            "PUT",
            &url,
            &[("content-type", mref.media_type.clone())],
            scopes,
            &mut || Ok(Payload::Bytes(bytes.clone())),
        )?;
        expect(&mut resp, &[200, 201], "PUT", &url)
    }

    /// Pushes one blob, starting over with a fresh upload (and without chunks) when an
    /// attempt fails: a broken upload session may hold a partial body.
    fn push_blob(&self, target: &Reference, b: &BlobRef) -> Result<(BlobOutcome, u64)> {
        let attempts = self.attempts.max(1);
        let mut last = None;
        for attempt in 1..=attempts {
            match self.try_push_blob(target, b, attempt == 1) {
                Ok(r) => return Ok(r),
                Err(e) if is_final(&e) => return Err(e),
                Err(e) => {
                    (self.progress)(&format!("retrying {} after: {e:#}", b.digest));
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt as u64));
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn try_push_blob(
        &self,
        target: &Reference,
        b: &BlobRef,
        chunked: bool,
    ) -> Result<(BlobOutcome, u64)> {
        let repo = &target.repository;
        let reg = &target.registry;
        let is_static = b.source.as_deref() == Some(STATIC_SOURCE);
        let source = match b.source.as_deref() {
            Some(s) if s != STATIC_SOURCE => Some(Reference::parse(s)?),
            _ => None,
        };
        let mut scopes = vec![scope(repo, "pull,push")];
        if let Some(s) = &source
            && s.registry == *reg
            && s.repository != *repo
        {
            scopes.push(scope(&s.repository, "pull"));
        }
        let head_url = format!("/v2/{repo}/blobs/{}", b.digest);
        let resp = self
            .client
            .send(reg, "HEAD", &head_url, &[], &scopes, &mut || {
                Ok(Payload::Empty)
            })?;
        if resp.status == 200 {
            return Ok((BlobOutcome::Existed, 0));
        }
        // Mount from the source repository on the same registry; a 202 means the registry
        // declined and opened an ordinary upload instead.
        let start = match &source {
            Some(s) if s.registry == *reg && s.repository != *repo => {
                let url = format!(
                    "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                    b.digest, s.repository
                );
                let mut resp = self
                    .client
                    .send(reg, "POST", &url, &[], &scopes, &mut || Ok(Payload::Empty))?;
                if resp.status == 201 {
                    return Ok((BlobOutcome::Mounted, 0));
                }
                expect(&mut resp, &[202], "POST", &url)?;
                resp
            }
            _ => {
                let url = format!("/v2/{repo}/blobs/uploads/");
                let mut resp = self
                    .client
                    .send(reg, "POST", &url, &[], &scopes, &mut || Ok(Payload::Empty))?;
                expect(&mut resp, &[202], "POST", &url)?;
                resp
            }
        };
        let location = start
            .header("location")
            .context("the registry opened an upload without a Location")?;
        if is_static {
            let l = crate::base::static_base::layer();
            if l.digest != b.digest {
                bail!(
                    "blob {} is marked as the static base layer, but this rko's static layer is {}; rebuild with this rko",
                    b.digest,
                    l.digest
                );
            }
            let url = format!(
                "{location}{}digest={}",
                if location.contains('?') { '&' } else { '?' },
                b.digest
            );
            let bytes = Arc::new(l.blob.clone());
            let headers = [("content-type", "application/octet-stream".to_string())];
            let mut resp = self
                .client
                .send(reg, "PUT", &url, &headers, &scopes, &mut || {
                    Ok(Payload::Bytes(bytes.clone()))
                })?;
            expect(&mut resp, &[201], "PUT", &url)?;
            return Ok((BlobOutcome::Uploaded, b.size));
        }
        match (&b.path, &source) {
            (Some(path), _) => {
                self.upload_file(reg, &scopes, &location, path, b, chunked)?;
                Ok((BlobOutcome::Uploaded, b.size))
            }
            (None, Some(s)) => {
                self.copy_from(reg, &scopes, &location, s, b)?;
                Ok((BlobOutcome::Copied, b.size))
            }
            (None, None) => bail!(
                "blob {} has neither a file nor a source in the push manifest",
                b.digest
            ),
        }
    }

    fn upload_file(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        path: &PathBuf,
        b: &BlobRef,
        chunked: bool,
    ) -> Result<()> {
        let open = |offset: u64, len: u64| -> Result<Payload> {
            let mut f = fs_err::File::open(path)?;
            f.seek(SeekFrom::Start(offset))?;
            Ok(Payload::Reader(Box::new(Counting {
                inner: f.take(len),
                counters: self.counters.clone(),
            })))
        };
        let actual = fs_err::metadata(path)?.len();
        if actual != b.size {
            bail!(
                "{} is {actual} bytes, but the push manifest says {} for {}; rebuild before pushing",
                path.display(),
                b.size,
                b.digest
            );
        }
        let mut location = location.to_string();
        let mut offset = 0;
        let chunk = self.chunk_size.filter(|c| chunked && *c > 0 && b.size > *c);
        if let Some(chunk) = chunk {
            while offset < b.size {
                let len = chunk.min(b.size - offset);
                let range = format!("{}-{}", offset, offset + len - 1);
                let headers = [
                    ("content-type", "application/octet-stream".to_string()),
                    ("content-length", len.to_string()),
                    ("content-range", range),
                ];
                let mut r =
                    self.client
                        .send(reg, "PATCH", &location, &headers, scopes, &mut || {
                            open(offset, len)
                        })?;
                expect(&mut r, &[202], "PATCH", &location)?;
                location = r.header("location").unwrap_or(location);
                offset += len;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", b.digest);
        let remaining = b.size - offset;
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", remaining.to_string()),
        ];
        let mut resp = self
            .client
            .send(reg, "PUT", &url, &headers, scopes, &mut || {
                open(offset, remaining)
            })?;
        expect(&mut resp, &[201], "PUT", &url)
    }

    fn copy_from(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        source: &Reference,
        b: &BlobRef,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", b.digest);
        let src_scope = [scope(&source.repository, "pull")];
        let get_url = format!("/v2/{}/blobs/{}", source.repository, b.digest);
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", b.size.to_string()),
        ];
        let mut resp = self
            .client
            .send(reg, "PUT", &url, &headers, scopes, &mut || {
                let mut r = self.client.send(
                    &source.registry,
                    "GET",
                    &get_url,
                    &[],
                    &src_scope,
                    &mut || Ok(Payload::Empty),
                )?;
                expect(&mut r, &[200], "GET", &get_url)?;
                Ok(Payload::Reader(Box::new(Counting {
                    inner: r.body.into_reader(),
                    counters: self.counters.clone(),
                })))
            })?;
        expect(&mut resp, &[201], "PUT", &url)
    }
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
}

pub fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

//! Sending one blob: HEAD to skip what the target has, a cross-repository mount from a
//! source on the same registry, else an upload — from a file (streamed, or in chunks), from
//! the embedded static layer, or streamed straight from another registry.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};

use crate::archive::push_manifest::{BlobRef, STATIC_SOURCE};
use crate::archive::store::static_blob;
use crate::oci::Reference;
use crate::registry::cache::RemoteCache;
use crate::registry::client::{Payload, Response};
use crate::registry::push::{
    BlobOutcome, Counters, Pusher, expect, head_confirms, scope, stored_as,
};

/// Counts the bytes read through it into `Counters::bytes_sent`.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) counters: Arc<Counters>,
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

/// Where a blob's bytes come from when the target lacks it.
enum From<'a> {
    File(&'a Path),
    Static(&'static [u8]),
    Registry(Reference),
    Cache(&'a RemoteCache),
}

/// Where the bytes of `b` come from, by its push manifest entry: its file, or with a
/// remote cache and no file there, the cache.
fn source_of<'a>(b: &'a BlobRef, cache: Option<&'a RemoteCache>) -> Result<From<'a>> {
    Ok(match (&b.path, b.source.as_deref()) {
        (Some(p), _) => match cache {
            Some(c) if !p.is_file() => From::Cache(c),
            _ => From::File(p),
        },
        (None, Some(STATIC_SOURCE)) => match static_blob(&b.digest) {
            Some(bytes) => From::Static(bytes),
            None => bail!(
                "blob {} is marked as the static base layer ({STATIC_SOURCE}), but this \
                 rko's static layer differs; rebuild the push target with this rko",
                b.digest,
            ),
        },
        (None, Some(s)) => From::Registry(Reference::parse(s)?),
        (None, None) => bail!(
            "blob {} has neither a file nor a source in the push manifest; rebuild it with \
             `rko push-manifest`",
            b.digest
        ),
    })
}

impl Pusher<'_> {
    /// One attempt at pushing `b` to `target`; `chunked` allows chunks (first attempts only).
    /// A mount is tried from `mount_from`, else from the blob's source repository when that
    /// is on the target's registry; when the registry declines, the bytes are sent.
    pub(super) fn try_push_blob(
        &self,
        target: &Reference,
        b: &BlobRef,
        mount_from: Option<&Reference>,
        chunked: bool,
    ) -> Result<(BlobOutcome, u64)> {
        let from = source_of(b, self.remote_cache)?;
        let (repo, reg) = (&target.repository, &target.registry);
        let mount = match (&from, mount_from) {
            (_, Some(m)) if m.registry == *reg && m.repository != *repo => Some(m),
            (From::Registry(s), _) if s.registry == *reg && s.repository != *repo => Some(s),
            _ => None,
        };
        let mut scopes = vec![scope(repo, "pull,push")];
        if let Some(s) = mount {
            scopes.push(scope(&s.repository, "pull"));
        }
        let head_url = format!("/v2/{repo}/blobs/{}", b.digest);
        let empty = &mut || Ok(Payload::Empty);
        let head = self
            .client
            .send(reg, "HEAD", &head_url, &[], &scopes, empty)?;
        if head.status == 200 && head_confirms(&head, b) {
            return Ok((BlobOutcome::Existed, 0));
        }
        if let From::Cache(c) = &from {
            // Before an upload is opened: a blob the cache lacks fails the push cleanly.
            self.cache_has(c, b)?;
        }
        let Some(location) = self.start_upload(target, b, mount, &scopes)? else {
            return Ok((BlobOutcome::Mounted, 0));
        };
        let outcome = match &from {
            From::File(path) => {
                self.upload_file(reg, &scopes, &location, path, b, chunked)?;
                BlobOutcome::Uploaded
            }
            From::Static(bytes) => {
                let bytes = Arc::new(bytes.to_vec());
                let payload = &mut || Ok(Payload::Bytes(bytes.clone()));
                self.put_blob(reg, &scopes, &location, b, None, payload)?;
                BlobOutcome::Uploaded
            }
            From::Registry(s) => {
                self.copy_from(reg, &scopes, &location, s, b)?;
                BlobOutcome::Copied
            }
            From::Cache(c) => {
                self.copy_from_cache(reg, &scopes, &location, c, b)?;
                BlobOutcome::Copied
            }
        };
        Ok((outcome, b.size))
    }

    /// Pushes a small blob held in memory (an empty config, a cosign config): HEAD first,
    /// then one upload.
    pub(super) fn push_bytes(
        &self,
        target: &Reference,
        b: &BlobRef,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(BlobOutcome, u64)> {
        let scopes = vec![scope(&target.repository, "pull,push")];
        let head_url = format!("/v2/{}/blobs/{}", target.repository, b.digest);
        let empty = &mut || Ok(Payload::Empty);
        let head = self
            .client
            .send(&target.registry, "HEAD", &head_url, &[], &scopes, empty)?;
        if head.status == 200 && head_confirms(&head, b) {
            return Ok((BlobOutcome::Existed, 0));
        }
        let location = self
            .start_upload(target, b, None, &scopes)?
            .context("the registry mounted a blob it was not asked to mount")?;
        let len = bytes.len() as u64;
        let payload = &mut || Ok(Payload::Bytes(bytes.clone()));
        self.put_blob(&target.registry, &scopes, &location, b, Some(len), payload)?;
        self.counters.bytes_sent.fetch_add(len, Ordering::Relaxed);
        Ok((BlobOutcome::Uploaded, len))
    }

    /// Mounts `b` from `mount` (`None` when that worked) or opens an upload; returns the
    /// upload's location. A 202 to a mount means the registry declined and opened an
    /// ordinary upload instead.
    fn start_upload(
        &self,
        target: &Reference,
        b: &BlobRef,
        mount: Option<&Reference>,
        scopes: &[String],
    ) -> Result<Option<String>> {
        let (repo, reg) = (&target.repository, &target.registry);
        let url = match mount {
            Some(s) => format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                b.digest, s.repository
            ),
            None => format!("/v2/{repo}/blobs/uploads/"),
        };
        let empty = &mut || Ok(Payload::Empty);
        let mut resp = self.client.send(reg, "POST", &url, &[], scopes, empty)?;
        if mount.is_some() && resp.status == 201 {
            return Ok(None);
        }
        expect(&mut resp, &[202], "POST", &url)?;
        let location = resp
            .header("location")
            .context("the registry opened an upload without a Location")?;
        Ok(Some(location))
    }

    /// The final PUT of an upload at `location`, with `len` bytes (if known) of `payload`.
    pub(super) fn put_blob(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        b: &BlobRef,
        len: Option<u64>,
        payload: &mut dyn FnMut() -> Result<Payload>,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", b.digest);
        let mut headers = vec![("content-type", "application/octet-stream".to_string())];
        if let Some(n) = len {
            headers.push(("content-length", n.to_string()));
        }
        let mut resp = self
            .client
            .send(reg, "PUT", &url, &headers, scopes, payload)?;
        expect(&mut resp, &[201], "PUT", &url)?;
        let what = format!("the upload of blob {}", b.digest);
        stored_as(&resp, &b.digest.to_string(), reg, &what)
    }

    /// Uploads a file: in chunks of `chunk_size` when asked (and `chunked`), then the rest
    /// in the final PUT.
    fn upload_file(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        path: &Path,
        b: &BlobRef,
        chunked: bool,
    ) -> Result<()> {
        let actual = fs_err::metadata(path)?.len();
        if actual != b.size {
            bail!(
                "{} is {actual} bytes, but the push manifest says {} for {}; rebuild before pushing",
                path.display(),
                b.size,
                b.digest
            );
        }
        let (mut location, mut offset) = (location.to_string(), 0);
        let chunk = self.chunk_size.filter(|c| chunked && *c > 0 && b.size > *c);
        if let Some(chunk) = chunk {
            while offset < b.size {
                let len = chunk.min(b.size - offset);
                location = self.patch_chunk(reg, scopes, &location, path, offset, len)?;
                offset += len;
            }
        }
        let remaining = b.size - offset;
        let payload = &mut || self.open_counted(path, offset, remaining);
        self.put_blob(reg, scopes, &location, b, Some(remaining), payload)
    }

    /// Sends `len` bytes of `path` from `offset` as one chunk; returns the next location.
    fn patch_chunk(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        path: &Path,
        offset: u64,
        len: u64,
    ) -> Result<String> {
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", len.to_string()),
            ("content-range", format!("{}-{}", offset, offset + len - 1)),
        ];
        let payload = &mut || self.open_counted(path, offset, len);
        let mut r = self
            .client
            .send(reg, "PATCH", location, &headers, scopes, payload)?;
        expect(&mut r, &[202], "PATCH", location)?;
        Ok(r.header("location").unwrap_or_else(|| location.to_string()))
    }

    /// `len` bytes of `path` from `offset`, counted as sent.
    fn open_counted(&self, path: &Path, offset: u64, len: u64) -> Result<Payload> {
        let mut f = fs_err::File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Payload::Reader(Box::new(Counting {
            inner: f.take(len),
            counters: self.counters.clone(),
        })))
    }

    /// Streams the blob from another registry's repository into the upload.
    fn copy_from(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        source: &Reference,
        b: &BlobRef,
    ) -> Result<()> {
        let src_scope = [scope(&source.repository, "pull")];
        let get_url = format!("/v2/{}/blobs/{}", source.repository, b.digest);
        let payload = &mut || {
            let empty = &mut || Ok(Payload::Empty);
            let mut r: Response =
                self.client
                    .send(&source.registry, "GET", &get_url, &[], &src_scope, empty)?;
            expect(&mut r, &[200], "GET", &get_url)?;
            Ok(Payload::Reader(Box::new(Counting {
                inner: r.body.into_reader(),
                counters: self.counters.clone(),
            })))
        };
        self.put_blob(reg, scopes, location, b, Some(b.size), payload)
    }
}

//! Blobs from a build system's remote cache: a blob's CAS key is the sha256 of its bytes,
//! which is exactly its OCI digest, so a push can stream a layer the runner never
//! downloaded straight from the cache into the registry upload (`rko push --remote-cache`).
//! Two protocols, as Bazel's `--remote_cache` takes them: HTTP (`GET URL/cas/<hex>`) and
//! gRPC (REAPI: CAS `FindMissingBlobs`, then ByteStream `Read` of
//! `[INSTANCE/]blobs/<hex>/<size>`, see [`crate::registry::grpc`]), with the same
//! `NAME=VALUE` headers Bazel's `--remote_header` takes (gRPC metadata, lower-cased).

use std::io::Read;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use crate::archive::push_manifest::BlobRef;
use crate::oci::Sha256Digest;
use crate::registry::client::{Payload, Response};
use crate::registry::grpc::{self, GrpcError, Messages, Target};
use crate::registry::push::{Pusher, expect};
use crate::registry::upload::Counting;

/// A remote cache to read blobs from.
#[derive(Clone)]
pub struct RemoteCache {
    /// `http[s]://host[:port][/prefix]` or `grpc[s]://host[:port][/instance]`, without a
    /// trailing slash.
    url: String,
    /// The gRPC cache, when the URL is `grpc://` or `grpcs://`.
    grpc: Option<Target>,
    /// Sent with every request; never printed (they usually carry credentials).
    pub(super) headers: Vec<(String, String)>,
    /// The TLS configuration of a `grpcs://` cache, made on first use.
    tls: Arc<Mutex<Option<Arc<rustls::ClientConfig>>>>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|h| h.0.as_str()).collect();
        write!(f, "RemoteCache({}, headers {names:?})", self.url)
    }
}

impl RemoteCache {
    /// `url` as Bazel's `--remote_cache` takes it for the HTTP protocol; `headers` as
    /// `NAME=VALUE`.
    pub fn parse(url: &str, headers: &[String]) -> Result<RemoteCache> {
        let url = url.trim_end_matches('/');
        let grpc = match Target::parse(url) {
            Some(Ok(t)) => Some(t),
            Some(Err(why)) => bail!(
                "--remote-cache {url:?}: {why}; expected grpc[s]://HOST[:PORT][/INSTANCE_NAME]"
            ),
            None => None,
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if grpc.is_none() && rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            bail!(
                "--remote-cache {url:?}: expected the URL of a Bazel remote cache: http[s]:// \
                 (such as https://cache.example.com/prefix) or grpc[s]:// (such as \
                 grpcs://cache.example.com:443/INSTANCE_NAME)"
            );
        }
        // A header's text is never shown: it usually holds a credential.
        let headers = headers
            .iter()
            .enumerate()
            .map(|(i, h)| match h.split_once('=') {
                Some((n, v)) if !n.trim().is_empty() => {
                    let name = n.trim();
                    // gRPC metadata names are lower-case HTTP/2 header names.
                    let name = match grpc {
                        Some(_) => name.to_ascii_lowercase(),
                        None => name.to_string(),
                    };
                    if grpc.is_some()
                        && (http::HeaderName::from_bytes(name.as_bytes()).is_err()
                            || http::HeaderValue::from_str(v).is_err())
                    {
                        bail!(
                            "--remote-header number {}: not valid gRPC metadata (a name of \
                             letters, digits and -_. and a printable value); its text is not \
                             shown",
                            i + 1
                        );
                    }
                    Ok((name, v.to_string()))
                }
                _ => bail!(
                    "--remote-header number {}: expected NAME=VALUE, as Bazel's \
                     --remote_header (e.g. Authorization=Bearer …); its text is not shown",
                    i + 1
                ),
            })
            .collect::<Result<_>>()?;
        Ok(RemoteCache {
            url: url.to_string(),
            grpc,
            headers,
            tls: Arc::default(),
        })
    }

    /// What the cache answers a request for `b` with when it lacks it, for messages.
    fn missing_answer(&self, b: &BlobRef) -> String {
        match &self.grpc {
            Some(t) => format!(
                "NOT_FOUND for {}",
                resource_name(t, &b.digest, b.size).replace(&b.digest.hex(), "<its sha256>")
            ),
            None => format!("404 for {}/cas/<its sha256>", self.url),
        }
    }

    /// The URL of a blob in the cache.
    pub fn blob_url(&self, digest: &Sha256Digest) -> String {
        format!("{}/cas/{}", self.url, digest.hex())
    }

    /// `host[:port]` of the cache, what the HTTP client keys its connections by.
    pub fn authority(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |r| r.1);
        rest.split('/').next().unwrap_or(rest)
    }

    /// The cache as shown in messages: its URL, no headers.
    pub fn shown(&self) -> &str {
        &self.url
    }
}

impl Pusher<'_> {
    /// `method` of `b` in the cache, answered 200; a 404 is [`CacheError::Missing`].
    fn cache_request(&self, cache: &RemoteCache, b: &BlobRef, method: &str) -> Result<Response> {
        let url = cache.blob_url(&b.digest);
        let headers: Vec<(&str, String)> = cache
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let empty = &mut || Ok(Payload::Empty);
        let mut r = self
            .client
            .send(cache.authority(), method, &url, &headers, &[], empty)?;
        if r.status == 404 {
            bail!(CacheError::Missing {
                digest: b.digest,
                path: b.path.clone().unwrap_or_default(),
                cache: cache.shown().to_string(),
                answer: cache.missing_answer(b),
            });
        }
        expect(&mut r, &[200], method, &url)?;
        Ok(r)
    }

    /// A manifest's bytes from the cache (at most [`crate::oci::json::JSON_LIMIT`]).
    pub(super) fn cache_bytes(&self, cache: &RemoteCache, b: &BlobRef) -> Result<Vec<u8>> {
        let limit = crate::oci::json::JSON_LIMIT;
        if cache.grpc.is_none() {
            return self.cache_request(cache, b, "GET")?.read_to_vec(limit);
        }
        if b.size > limit {
            bail!(
                "manifest {} is {} bytes, more than the {limit} rko reads",
                b.digest,
                b.size
            );
        }
        let failure = Failure::default();
        let mut bytes = Vec::with_capacity(b.size as usize);
        match self
            .grpc_reader(cache, b, &failure)?
            .read_to_end(&mut bytes)
        {
            Ok(_) => Ok(bytes),
            Err(e) => Err(failure.take().unwrap_or_else(|| e.into())),
        }
    }

    /// Fails with [`CacheError::Missing`] unless the cache has `b`.
    pub(super) fn cache_has(&self, cache: &RemoteCache, b: &BlobRef) -> Result<()> {
        let Some(target) = &cache.grpc else {
            return self.cache_request(cache, b, "HEAD").map(drop);
        };
        let request = grpc::proto::find_missing_request(&target.instance, &b.digest.hex(), b.size);
        let call = self.grpc_call(cache, FIND_MISSING, request)?;
        let fail = |e| grpc_failure(cache, b, e);
        let mut messages = grpc::start(call).map_err(fail)?;
        let mut missing = Vec::new();
        while let Some(m) = messages.next() {
            let m = m.map_err(fail)?;
            let hashes = grpc::proto::missing_hashes(&m).map_err(|e| malformed(cache, e))?;
            missing.extend(hashes);
        }
        if missing.contains(&b.digest.hex()) {
            bail!(cache.missing(b));
        }
        Ok(())
    }

    /// Streams `b` from the remote cache straight into the upload at `location`.
    pub(super) fn copy_from_cache(
        &self,
        reg: &str,
        scopes: &[String],
        location: &str,
        cache: &RemoteCache,
        b: &BlobRef,
    ) -> Result<()> {
        let failure = Failure::default();
        let payload = &mut || {
            let inner: Box<dyn Read + Send> = match cache.grpc {
                Some(_) => Box::new(self.grpc_reader(cache, b, &failure)?),
                None => Box::new(self.cache_request(cache, b, "GET")?.body.into_reader()),
            };
            Ok(Payload::Reader(Box::new(Counting {
                inner,
                counters: self.counters.clone(),
            })))
        };
        let put = self.put_blob(reg, scopes, location, b, Some(b.size), payload);
        // The upload only saw an I/O error; the cache's own failure says more.
        put.map_err(|e| failure.take().unwrap_or(e))
    }

    /// A gRPC call to `cache` with its metadata, TLS and the client's idle timeout.
    fn grpc_call(
        &self,
        cache: &RemoteCache,
        method: &'static str,
        request: Vec<u8>,
    ) -> Result<grpc::Call> {
        let target = cache.grpc.clone().expect("a gRPC cache");
        let tls = match target.tls {
            false => None,
            true => {
                let mut made = cache.tls.lock().expect("lock");
                if made.is_none() {
                    // certs.d is keyed by the authority as written (HOST or HOST:PORT),
                    // as docker keys it.
                    *made = Some(self.client.grpc_tls(cache.authority())?);
                }
                made.clone()
            }
        };
        Ok(grpc::Call {
            target,
            method,
            request,
            metadata: cache.headers.clone(),
            tls,
            idle: self.client.idle_timeout(),
        })
    }

    /// A ByteStream Read of `b`, as a reader that checks the size and digest of what the
    /// cache sends; its failures are kept in `failure` too (an upload sees only I/O errors).
    fn grpc_reader(
        &self,
        cache: &RemoteCache,
        b: &BlobRef,
        failure: &Failure,
    ) -> Result<BlobReader> {
        let target = cache.grpc.as_ref().expect("a gRPC cache");
        let name = resource_name(target, &b.digest, b.size);
        let call = self.grpc_call(cache, BYTESTREAM_READ, grpc::proto::read_request(&name))?;
        let messages = grpc::start(call).map_err(|e| grpc_failure(cache, b, e))?;
        Ok(BlobReader {
            messages: Some(messages),
            chunk: bytes::Bytes::new(),
            read: 0,
            hasher: Sha256::new(),
            blob: b.clone(),
            cache: cache.clone(),
            failure: failure.clone(),
        })
    }
}

const FIND_MISSING: &str =
    "/build.bazel.remote.execution.v2.ContentAddressableStorage/FindMissingBlobs";
const BYTESTREAM_READ: &str = "/google.bytestream.ByteStream/Read";

/// ByteStream's name of a blob: `[INSTANCE/]blobs/<hex>/<size>`.
fn resource_name(t: &Target, digest: &Sha256Digest, size: u64) -> String {
    match t.instance.as_str() {
        "" => format!("blobs/{}/{size}", digest.hex()),
        i => format!("{i}/blobs/{}/{size}", digest.hex()),
    }
}

impl RemoteCache {
    fn missing(&self, b: &BlobRef) -> CacheError {
        CacheError::Missing {
            digest: b.digest,
            path: b.path.clone().unwrap_or_default(),
            cache: self.shown().to_string(),
            answer: self.missing_answer(b),
        }
    }
}

/// A gRPC failure while reading `b` from `cache`, as a message: NOT_FOUND is
/// [`CacheError::Missing`]; refused credentials say so without showing the headers.
fn grpc_failure(cache: &RemoteCache, b: &BlobRef, e: GrpcError) -> anyhow::Error {
    let shown = cache.shown();
    match e {
        GrpcError::Status {
            code: grpc::NOT_FOUND,
            ..
        } => cache.missing(b).into(),
        GrpcError::Status { code, message }
            if code == grpc::UNAUTHENTICATED || code == grpc::PERMISSION_DENIED =>
        {
            CacheError::Refused {
                digest: b.digest,
                cache: shown.to_string(),
                status: format!("{} ({message})", grpc::code_name(code)),
                headers: match cache.headers.len() {
                    0 => "rko sent no --remote-header: give the credential the cache expects \
                          (e.g. --remote-header authorization=Bearer …)"
                        .to_string(),
                    n => format!(
                        "the cache refused the {n} --remote-header value(s) rko sent (not \
                         shown); check the credential"
                    ),
                },
            }
            .into()
        }
        GrpcError::Status { code, message } => anyhow::anyhow!(
            "the remote cache {shown} answered gRPC status {code} {} for blob {}: {message}",
            grpc::code_name(code),
            b.digest
        ),
        GrpcError::Transport(why) => anyhow::anyhow!(
            "cannot read blob {} from the remote cache {shown}: {why}",
            b.digest
        ),
    }
}

fn malformed(cache: &RemoteCache, why: String) -> anyhow::Error {
    anyhow::anyhow!(
        "the remote cache {} sent a malformed message: {why}",
        cache.shown()
    )
}

/// The first failure of a cache read, kept for the error message.
#[derive(Clone, Default)]
struct Failure(Arc<Mutex<Option<anyhow::Error>>>);

impl Failure {
    fn io(&self, e: anyhow::Error) -> std::io::Error {
        let io = std::io::Error::other(format!("{e:#}"));
        self.0.lock().expect("lock").get_or_insert(e);
        io
    }

    fn take(&self) -> Option<anyhow::Error> {
        self.0.lock().expect("lock").take()
    }
}

/// A blob as the cache streams it: the chunks of ByteStream Read, checked to add up to the
/// blob's size and digest before the last byte is handed on (so an upload of the wrong bytes
/// never completes), and to end with status OK.
struct BlobReader {
    /// `None` once the call ended.
    messages: Option<Messages>,
    chunk: bytes::Bytes,
    read: u64,
    hasher: Sha256,
    blob: BlobRef,
    cache: RemoteCache,
    failure: Failure,
}

impl BlobReader {
    /// The next chunk of data; `None` at the end of the call.
    fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>> {
        let Some(messages) = &mut self.messages else {
            return Ok(None);
        };
        match messages.next() {
            None => {
                self.messages = None;
                Ok(None)
            }
            Some(Err(e)) => Err(grpc_failure(&self.cache, &self.blob, e)),
            Some(Ok(m)) => grpc::proto::read_response_data(&m)
                .map(Some)
                .map_err(|e| malformed(&self.cache, e)),
        }
    }

    /// After the blob's last byte: the call must end (OK) without more data, and the bytes
    /// must have the blob's digest.
    fn finish(&mut self) -> Result<()> {
        while let Some(c) = self.next_chunk()? {
            if !c.is_empty() {
                bail!(self.wrong(format!(
                    "more than the {} bytes of the blob",
                    self.blob.size
                )));
            }
        }
        let got = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if got != self.blob.digest.hex() {
            bail!(self.wrong(format!("bytes whose sha256 is {got}")));
        }
        Ok(())
    }

    fn wrong(&self, what: String) -> anyhow::Error {
        anyhow::anyhow!(
            "the remote cache {} sent {what} for blob {}: the cache holds other bytes under \
             that digest; it is corrupt, so nothing was pushed",
            self.cache.shown(),
            self.blob.digest
        )
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize> {
        let size = self.blob.size;
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                if self.read + n as u64 > size {
                    bail!(self.wrong(format!("more than the {size} bytes of the blob")));
                }
                buf[..n].copy_from_slice(&self.chunk[..n]);
                self.hasher.update(&buf[..n]);
                self.chunk = self.chunk.slice(n..);
                self.read += n as u64;
                if self.read == size {
                    self.finish()?;
                }
                return Ok(n);
            }
            if self.read == size {
                if size == 0 && self.messages.is_some() {
                    self.finish()?;
                }
                return Ok(0);
            }
            match self.next_chunk()? {
                Some(c) => self.chunk = c,
                None => bail!(
                    "the remote cache {} ended the stream of blob {} after {} of its {size} \
                     bytes (with status OK), so the upload was abandoned; push again, and \
                     check the cache if it persists",
                    self.cache.shown(),
                    self.blob.digest,
                    self.read
                ),
            }
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_inner(buf).map_err(|e| self.failure.io(e))
    }
}

/// A blob a lazy push needs that is nowhere to be found.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "blob {digest} is neither on disk ({path}) nor in the remote cache {cache} \
         ({answer}): build the image with this remote cache so that its \
         outputs are uploaded to it (Bazel: --remote_cache, with --remote_upload_local_results), \
         or push from a build that has the file"
    )]
    Missing {
        digest: Sha256Digest,
        path: std::path::PathBuf,
        cache: String,
        /// What the cache answered, e.g. `404 for URL/cas/<its sha256>`.
        answer: String,
    },
    /// A gRPC cache refused the credentials (UNAUTHENTICATED, PERMISSION_DENIED).
    #[error("the remote cache {cache} answered {status} for blob {digest}: {headers}")]
    Refused {
        digest: Sha256Digest,
        cache: String,
        status: String,
        /// What the headers were, never their text.
        headers: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_headers_and_what_is_refused() {
        let c = RemoteCache::parse("http://127.0.0.1:9090/ci/", &["X-Key=a=b".into()]).unwrap();
        let d: Sha256Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(
            c.blob_url(&d),
            format!("http://127.0.0.1:9090/ci/cas/{}", "ab".repeat(32))
        );
        assert_eq!(c.authority(), "127.0.0.1:9090");
        assert_eq!(c.headers, [("X-Key".to_string(), "a=b".to_string())]);
        assert!(!format!("{c:?}").contains("a=b"), "{c:?}");
        let g = RemoteCache::parse("grpc://cache:8980/main/", &["X-Key=k".into()]).unwrap();
        assert_eq!(g.headers, [("x-key".to_string(), "k".to_string())]);
        let b = BlobRef {
            digest: d,
            size: 7,
            media_type: String::new(),
            path: None,
            source: None,
        };
        let e = g.missing(&b).to_string();
        assert!(
            e.contains(
                "remote cache grpc://cache:8980/main (NOT_FOUND for main/blobs/<its sha256>/7)"
            ),
            "{e}"
        );
        let e = RemoteCache::parse("grpc://cache:8980", &["bad name=s3cret\n".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not valid gRPC metadata") && !e.contains("s3cret"),
            "{e}"
        );
        let e = RemoteCache::parse("grpcs://cache:http", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("the port is not a number"), "{e}");
        let e = RemoteCache::parse("cache:8080", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected the URL of a Bazel remote cache"),
            "{e}"
        );
        let e = RemoteCache::parse("http://c", &["Authorization secret".into()]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("expected NAME=VALUE") && !e.contains("secret"),
            "{e}"
        );
    }
}

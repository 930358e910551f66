//! Blobs from a build system's remote cache: a blob's CAS key is the sha256 of its bytes,
//! which is exactly its OCI digest, so a push can stream a layer the runner never
//! downloaded straight from the cache into the registry upload (`rko push --remote-cache`).
//! Bazel's HTTP cache protocol: `GET URL/cas/<hex>`, with the same `NAME=VALUE` headers
//! Bazel's `--remote_header` takes.

use anyhow::{Result, bail};

use crate::archive::push_manifest::BlobRef;
use crate::oci::Sha256Digest;
use crate::registry::client::{Payload, Response};
use crate::registry::push::{Pusher, expect};
use crate::registry::upload::Counting;

/// A remote cache to read blobs from.
#[derive(Clone)]
pub struct RemoteCache {
    /// `http[s]://host[:port][/prefix]`, without a trailing slash.
    url: String,
    /// Sent with every request; never printed (they usually carry credentials).
    pub(super) headers: Vec<(String, String)>,
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
        if url.starts_with("grpc://") || url.starts_with("grpcs://") {
            bail!(
                "--remote-cache {url}: rko reads blobs over Bazel's HTTP cache protocol only \
                 (GET URL/cas/<sha256>); a gRPC (REAPI) cache is not supported yet. Give the \
                 cache's HTTP endpoint (http:// or https://) if it has one"
            );
        }
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            bail!(
                "--remote-cache {url:?}: expected an http:// or https:// URL of a Bazel HTTP \
                 cache, such as https://cache.example.com/prefix"
            );
        }
        // A header's text is never shown: it usually holds a credential.
        let headers = headers
            .iter()
            .enumerate()
            .map(|(i, h)| match h.split_once('=') {
                Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
                _ => bail!(
                    "--remote-header number {}: expected NAME=VALUE, as Bazel's \
                     --remote_header (e.g. Authorization=Bearer …); its text is not shown",
                    i + 1
                ),
            })
            .collect::<Result<_>>()?;
        Ok(RemoteCache {
            url: url.to_string(),
            headers,
        })
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
            });
        }
        expect(&mut r, &[200], method, &url)?;
        Ok(r)
    }

    /// A manifest's bytes from the cache (at most [`crate::oci::json::JSON_LIMIT`]).
    pub(super) fn cache_bytes(&self, cache: &RemoteCache, b: &BlobRef) -> Result<Vec<u8>> {
        self.cache_request(cache, b, "GET")?
            .read_to_vec(crate::oci::json::JSON_LIMIT)
    }

    /// Fails with [`CacheError::Missing`] unless the cache has `b`.
    pub(super) fn cache_has(&self, cache: &RemoteCache, b: &BlobRef) -> Result<()> {
        self.cache_request(cache, b, "HEAD").map(drop)
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
        let payload = &mut || {
            let r = self.cache_request(cache, b, "GET")?;
            Ok(Payload::Reader(Box::new(Counting {
                inner: r.body.into_reader(),
                counters: self.counters.clone(),
            })))
        };
        self.put_blob(reg, scopes, location, b, Some(b.size), payload)
    }
}

/// A blob a lazy push needs that is nowhere to be found.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "blob {digest} is neither on disk ({path}) nor in the remote cache {cache} (404 for \
         {cache}/cas/<its sha256>): build the image with this remote cache so that its \
         outputs are uploaded to it (Bazel: --remote_cache, with --remote_upload_local_results), \
         or push from a build that has the file"
    )]
    Missing {
        digest: Sha256Digest,
        path: std::path::PathBuf,
        cache: String,
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
        let e = RemoteCache::parse("grpc://cache:8980", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("gRPC (REAPI) cache is not supported yet"), "{e}");
        let e = RemoteCache::parse("cache:8080", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected an http:// or https:// URL"), "{e}");
        let e = RemoteCache::parse("http://c", &["Authorization secret".into()]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("expected NAME=VALUE") && !e.contains("secret"),
            "{e}"
        );
    }
}

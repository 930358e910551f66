//! Attaching SBOMs and provenance statements to pushed images, after the images and their
//! tags are pushed (so a failure here never leaves an image half pushed):
//!
//! - `referrers` (the default): the empty config, the document and the artifact manifest
//!   go up by digest, HEAD first. A registry with the referrers API (the manifest PUT answers
//!   with `OCI-Subject`, or `GET /v2/NAME/referrers/DIGEST` answers with an index) indexes
//!   them itself; on any other (distribution 2.8, for one) the artifact is added to the
//!   referrers tag schema's index `sha256-<hex>`, read, merged (every other entry kept) and
//!   put back, checked against a concurrent writer before and after the PUT.
//! - `cosign-tag`: ko's layout, the SBOMs of an image as one image tagged
//!   `sha256-<hex>.sbom`; provenance statements are skipped (cosign keeps attestations as
//!   signed DSSE envelopes in `.att`, and rko signs nothing).
//! - `none`: nothing is attached.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::archive::attachment::Attachment;
use crate::archive::push_manifest::BlobRef;
use crate::oci::json::{self, JSON_LIMIT};
use crate::oci::media::{self, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST};
use crate::oci::referrer::{self, EMPTY_JSON};
use crate::oci::{Descriptor, Reference, Sha256Digest};
use crate::registry::cache::RemoteCache;
use crate::registry::client::{Client, Payload};
use crate::registry::progress::PushSettings;
use crate::registry::push::{Counters, Pusher, expect, scope, stored_as};

/// How attachments are pushed (`rko push --attach`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// OCI 1.1 referrers: the referrers API where the registry has it, else the
    /// referrers tag schema (`sha256-<hex>`).
    #[default]
    Referrers,
    /// ko's and cosign's layout: SBOMs as an image tagged `sha256-<hex>.sbom`.
    CosignTag,
    /// Push no attachments.
    None,
}

/// One document attached to a pushed image, for the push report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attached {
    /// The image it is about.
    pub subject: Sha256Digest,
    /// The manifest that carries it (the artifact manifest; for cosign-tag the `.sbom` image).
    pub digest: Sha256Digest,
    pub artifact_type: String,
    /// How readers find it: `referrers-api`, `referrers-tag` or `cosign-tag`.
    pub via: &'static str,
    /// `repo@digest`, or `repo:tag@digest` when a tag names it.
    pub reference: String,
}

/// Why an attachment was not pushed. Each says that the image itself is pushed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "{registry} refused the artifact manifest {digest} ({artifact_type}, for {subject}) \
         sent as PUT {url}: HTTP {status}: {body}. The image and its tags are pushed and \
         stay; only the attachment is missing. If this registry does not take OCI 1.1 \
         artifact manifests (with `subject` and `artifactType`), push again with \
         --attach cosign-tag (ko's and cosign's `sha256-<hex>.sbom` tag) or --attach none"
    )]
    ManifestRefused {
        registry: String,
        url: String,
        digest: Sha256Digest,
        artifact_type: String,
        subject: Sha256Digest,
        status: u16,
        body: String,
    },
    #[error(
        "the referrers tag {repository}:{tag} holds {found}, not an OCI image index, so rko \
         cannot add referrers of {subject} to it, and leaves it as it is. The image and its \
         tags are pushed and stay; remove or move that tag and push again, or push with \
         --attach cosign-tag or --attach none"
    )]
    NotAReferrersIndex {
        repository: String,
        tag: String,
        subject: Sha256Digest,
        found: String,
    },
    #[error(
        "{registry} refused the referrers index sent as PUT {url} ({count} referrers of \
         {subject}, the new one {digest}): HTTP {status}: {body}. The image, its tags and the \
         artifact manifest are pushed and stay; push again with --attach cosign-tag or \
         --attach none if this registry does not take such an index under a tag"
    )]
    IndexRefused {
        registry: String,
        url: String,
        count: usize,
        subject: Sha256Digest,
        digest: Sha256Digest,
        status: u16,
        body: String,
    },
    #[error(
        "the referrers tag {repository}:{tag} changed under rko {attempts} times while it \
         was adding {digest} (another push is writing the same tag); push again"
    )]
    TagKeptChanging {
        repository: String,
        tag: String,
        digest: Sha256Digest,
        attempts: u32,
    },
    #[error(
        "{registry} refused the SBOM image sent as PUT {url}: HTTP {status}: {body}. The \
         image and its tags are pushed and stay; push with --attach referrers or \
         --attach none"
    )]
    CosignRefused {
        registry: String,
        url: String,
        status: u16,
        body: String,
    },
}

/// Reads and writes of the referrers tag before rko gives up on a tag that keeps changing.
const TAG_ATTEMPTS: u32 = 5;

/// Attaches `attachments` to the images already pushed to `repository`
/// (`host[:port]/repo`), as `mode` says; the documents' files are read as the push
/// manifest records them (or from `cache`). The one entry point for `rko push` and
/// `rko build --push`: a build that made an SBOM for its image calls
/// `attach(&client, settings, None, &repository, &[Attachment::new(&image.descriptor,
/// &sbom_path, None)?], AttachMode::Referrers)` after pushing the image.
pub fn attach(
    client: &Client,
    settings: PushSettings,
    cache: Option<&RemoteCache>,
    repository: &str,
    attachments: &[Attachment],
    mode: AttachMode,
) -> Result<Vec<Attached>> {
    if attachments.is_empty() || mode == AttachMode::None {
        return Ok(Vec::new());
    }
    let target = Reference::parse(repository).context("the push manifest's repository")?;
    let tty = std::io::stderr().is_terminal();
    let progress = |line: &str| {
        if !tty {
            eprintln!("rko: {line}");
        }
    };
    let pusher = Pusher {
        client,
        counters: Arc::new(Counters::default()),
        jobs: settings.jobs,
        attempts: settings.attempts,
        chunk_size: settings.chunk_size,
        force_tags: false,
        remote_cache: cache,
        progress: &progress,
    };
    match mode {
        AttachMode::Referrers => pusher.attach_referrers(&target, attachments),
        AttachMode::CosignTag => pusher.attach_cosign(&target, attachments),
        AttachMode::None => Ok(Vec::new()),
    }
}

/// `items` in their order, grouped by subject (first appearance first).
fn by_subject(items: &[Attachment]) -> Vec<(Sha256Digest, Vec<&Attachment>)> {
    let mut groups: Vec<(Sha256Digest, Vec<&Attachment>)> = Vec::new();
    for a in items {
        match groups.iter_mut().find(|(s, _)| *s == a.subject.digest) {
            Some((_, g)) => g.push(a),
            None => groups.push((a.subject.digest, vec![a])),
        }
    }
    groups
}

/// A blob reference with no file (its bytes are in memory).
fn memory_ref(d: &Descriptor) -> BlobRef {
    BlobRef {
        media_type: d.media_type.clone(),
        digest: d.digest,
        size: d.size,
        path: None,
        source: None,
    }
}

/// A referrers tag as read: its bytes' digest, its ETag, and its entries verbatim.
struct TagIndex {
    digest: Sha256Digest,
    etag: Option<String>,
    entries: Vec<Box<RawValue>>,
    /// Top-level fields other than schemaVersion, mediaType and manifests (annotations…).
    rest: serde_json::Map<String, serde_json::Value>,
}

impl TagIndex {
    fn lists(&self, digest: &Sha256Digest) -> bool {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            digest: String,
        }
        let d = digest.to_string();
        self.entries
            .iter()
            .any(|e| serde_json::from_str::<Entry>(e.get()).is_ok_and(|entry| entry.digest == d))
    }
}

/// The referrers index of `old` (or a new one) with `entries` added after every other
/// entry, which stay byte for byte.
fn merged(old: Option<&TagIndex>, entries: &[&Descriptor]) -> Vec<u8> {
    let mut out =
        format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[").into_bytes();
    let mut first = true;
    for e in old.iter().flat_map(|o| o.entries.iter()) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(e.get().as_bytes());
    }
    for entry in entries {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&json::go(*entry));
    }
    out.push(b']');
    for (k, v) in old.iter().flat_map(|o| o.rest.iter()) {
        out.push(b',');
        out.extend_from_slice(&json::go(k));
        out.push(b':');
        out.extend_from_slice(&json::go(v));
    }
    out.push(b'}');
    out
}

/// A registry's error body for a message; an empty one said as such.
fn shown(body: String) -> String {
    match body.trim().is_empty() {
        true => "(no body)".to_string(),
        false => body,
    }
}

/// Up to 100 ms, different in every process and call, so that writers racing for one
/// referrers tag fall out of step.
fn jitter() -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    std::time::Duration::from_millis(h.finish() % 100)
}

impl Pusher<'_> {
    /// Pushes the attachments as OCI 1.1 referrers: each subject's artifacts, then (where the
    /// registry has no referrers API) one update of that subject's referrers tag adding all
    /// of them. Subjects go in parallel, up to the push's job limit, so the tag updates'
    /// settling pauses overlap instead of adding up.
    fn attach_referrers(&self, target: &Reference, all: &[Attachment]) -> Result<Vec<Attached>> {
        let groups = by_subject(all);
        let attached = crate::pool::pool(self.jobs, &groups, |(subject, group)| {
            self.attach_subject(target, subject, group)
        })?;
        Ok(attached.into_iter().flatten().collect())
    }

    /// One subject's attachments: every artifact, then the referrers tag once for all.
    fn attach_subject(
        &self,
        target: &Reference,
        subject: &Sha256Digest,
        group: &[&Attachment],
    ) -> Result<Vec<Attached>> {
        let mut pushed = Vec::new();
        for a in group {
            pushed.push((self.push_artifact(target, a)?, *a));
        }
        let api = pushed.iter().any(|(indexed, _)| *indexed)
            || self.has_referrers_api(target, subject)?;
        if !api {
            let entries: Vec<&Descriptor> = group.iter().map(|a| &a.manifest).collect();
            self.add_to_referrers_tag(target, subject, &entries)?;
        }
        let via = if api {
            "referrers-api"
        } else {
            "referrers-tag"
        };
        Ok(pushed
            .into_iter()
            .map(|(_, a)| {
                let digest = a.manifest.digest;
                let artifact_type = a.manifest.artifact_type.clone().unwrap_or_default();
                eprintln!(
                    "rko: attached {artifact_type} {digest} to {}@{} ({via})",
                    target.name(),
                    a.subject.digest
                );
                Attached {
                    subject: a.subject.digest,
                    digest,
                    artifact_type,
                    via,
                    reference: format!("{}@{digest}", target.name()),
                }
            })
            .collect())
    }

    /// Pushes one attachment's blobs and artifact manifest (HEAD first); whether the
    /// registry said it indexed it as a referrer (`OCI-Subject`).
    fn push_artifact(&self, target: &Reference, a: &Attachment) -> Result<bool> {
        let scopes = [scope(&target.repository, "pull,push")];
        let bytes = Arc::new(a.manifest_bytes()?);
        let empty = memory_ref(&referrer::empty_descriptor());
        let (outcome, _) = self
            .push_bytes(target, &empty, Arc::new(EMPTY_JSON.to_vec()))
            .with_context(|| format!("pushing the empty config to {}", target.name()))?;
        self.record(&empty, outcome);
        self.push_document(target, &a.document)?;
        let digest = a.manifest.digest;
        let artifact_type = a.manifest.artifact_type.clone().unwrap_or_default();
        let mref = memory_ref(&a.manifest);
        let reference = digest.to_string();
        let mut indexed = false;
        if !self.has_manifest(target, &mref, &reference, &scopes)? {
            let mut resp =
                self.send_manifest(target, OCI_MANIFEST, &reference, bytes.clone(), &scopes)?;
            let url = format!("/v2/{}/manifests/{reference}", target.repository);
            if resp.status != 200 && resp.status != 201 {
                bail!(AttachError::ManifestRefused {
                    registry: target.registry.clone(),
                    url,
                    digest,
                    artifact_type,
                    subject: a.subject.digest,
                    status: resp.status,
                    body: shown(resp.text()),
                });
            }
            stored_as(&resp, &reference, &target.registry, &format!("PUT {url}"))?;
            indexed = resp
                .header("oci-subject")
                .is_some_and(|s| s.trim() == a.subject.digest.to_string());
        }
        Ok(indexed)
    }

    /// Pushes an attached document's blob (HEAD first).
    fn push_document(&self, target: &Reference, doc: &BlobRef) -> Result<()> {
        let where_ = doc
            .path
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default();
        let (outcome, _) = self.push_blob(target, doc, None).with_context(|| {
            format!(
                "pushing the attached document {}{where_} to {}",
                doc.digest,
                target.name()
            )
        })?;
        self.record(doc, outcome);
        Ok(())
    }

    /// Whether the registry answers the referrers API for `subject` with an index.
    fn has_referrers_api(&self, target: &Reference, subject: &Sha256Digest) -> Result<bool> {
        let url = format!("/v2/{}/referrers/{subject}", target.repository);
        let scopes = [scope(&target.repository, "pull")];
        let accept = [("accept", OCI_INDEX.to_string())];
        let empty = &mut || Ok(Payload::Empty);
        let mut resp = self
            .client
            .send(&target.registry, "GET", &url, &accept, &scopes, empty)?;
        if resp.status != 200 {
            return Ok(false);
        }
        let body = resp.read_to_vec(JSON_LIMIT)?;
        Ok(media::probe(&body).as_deref() == Some(OCI_INDEX)
            && serde_json::from_slice::<crate::oci::Index>(&body).is_ok())
    }

    /// The referrers tag `tag` as it is now: `None` when there is no such tag; an error when
    /// it holds something that is not an OCI index.
    fn read_tag_index(
        &self,
        target: &Reference,
        tag: &str,
        subject: &Sha256Digest,
    ) -> Result<Option<TagIndex>> {
        let url = format!("/v2/{}/manifests/{tag}", target.repository);
        let scopes = [scope(&target.repository, "pull,push")];
        let accept = [("accept", MANIFEST_ACCEPT.to_string())];
        let empty = &mut || Ok(Payload::Empty);
        let mut resp = self
            .client
            .send(&target.registry, "GET", &url, &accept, &scopes, empty)?;
        if resp.status == 404 {
            return Ok(None);
        }
        expect(&mut resp, &[200], "GET", &url)?;
        let etag = resp.header("etag");
        let content_type = resp.header("content-type");
        let body = resp.read_to_vec(JSON_LIMIT)?;
        let digest = Sha256Digest::of(&body);
        let declared = media::probe(&body);
        let not_index = |found: String| AttachError::NotAReferrersIndex {
            repository: target.name(),
            tag: tag.to_string(),
            subject: *subject,
            found,
        };
        #[derive(Deserialize)]
        struct Entries {
            manifests: Vec<Box<RawValue>>,
        }
        let media_type = declared
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().into()));
        let parsed = serde_json::from_slice::<Entries>(&body);
        let top = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body);
        match (media_type.as_deref(), parsed, top) {
            (Some(OCI_INDEX), Ok(entries), Ok(mut top)) => {
                for k in ["schemaVersion", "mediaType", "manifests"] {
                    top.remove(k);
                }
                Ok(Some(TagIndex {
                    digest,
                    etag,
                    entries: entries.manifests,
                    rest: top,
                }))
            }
            (Some(mt), _, _) => bail!(not_index(format!("a {mt} ({digest})"))),
            (None, _, _) => bail!(not_index(format!("{} bytes that are not JSON", body.len()))),
        }
    }

    /// Adds `a`'s artifact manifest to the referrers tag of its subject, keeping every
    /// other entry. Read, merge, read again (the tag must not have moved), put (with
    /// If-Match when the registry gave an ETag), then, after a pause longer than that
    /// read-to-put window, read once more to see the entry still there: another writer in
    /// between starts the round again, at most [`TAG_ATTEMPTS`] times. Without a registry
    /// that honours If-Match no client can make this atomic; the pause makes a lost entry
    /// need a writer slower than twice this one's round trips.
    fn add_to_referrers_tag(
        &self,
        target: &Reference,
        subject: &Sha256Digest,
        entries: &[&Descriptor],
    ) -> Result<()> {
        let subject = *subject;
        let tag = referrer::referrers_tag(&subject);
        let scopes = [scope(&target.repository, "pull,push")];
        let digest = entries
            .first()
            .map(|e| e.digest)
            .expect("one entry at least");
        let url = format!("/v2/{}/manifests/{tag}", target.repository);
        let missing = |r: &Option<TagIndex>| -> Vec<&Descriptor> {
            entries
                .iter()
                .copied()
                .filter(|e| !r.as_ref().is_some_and(|r| r.lists(&e.digest)))
                .collect()
        };
        for _ in 0..TAG_ATTEMPTS {
            let read = self.read_tag_index(target, &tag, &subject)?;
            let adding = missing(&read);
            if adding.is_empty() {
                return Ok(());
            }
            let bytes = Arc::new(merged(read.as_ref(), &adding));
            let window = std::time::Instant::now();
            let now = self.read_tag_index(target, &tag, &subject)?;
            if now.as_ref().map(|n| n.digest) != read.as_ref().map(|r| r.digest) {
                continue;
            }
            let mut headers = vec![("content-type", OCI_INDEX.to_string())];
            if let Some(etag) = read.as_ref().and_then(|r| r.etag.clone()) {
                headers.push(("if-match", etag));
            }
            let mut resp = self.client.send(
                &target.registry,
                "PUT",
                &url,
                &headers,
                &scopes,
                &mut || Ok(Payload::Bytes(bytes.clone())),
            )?;
            match resp.status {
                200 | 201 => {}
                412 => {
                    std::thread::sleep(jitter());
                    continue;
                }
                status => bail!(AttachError::IndexRefused {
                    registry: target.registry.clone(),
                    url,
                    count: read.map_or(0, |r| r.entries.len()) + adding.len(),
                    subject,
                    digest,
                    status,
                    body: shown(resp.text()),
                }),
            }
            // Another writer that read the tag before this PUT may put its own index after
            // it; its read-to-PUT window is about as long as this one's. Checking once that
            // much later (twice over, at least 250 ms) catches it; a registry that honours
            // If-Match needs none of this, but distribution 2.8 ignores it.
            let settle = (window.elapsed() * 2).max(std::time::Duration::from_millis(250));
            std::thread::sleep(settle + jitter());
            let after = self.read_tag_index(target, &tag, &subject)?;
            if missing(&after).is_empty() {
                return Ok(());
            }
        }
        bail!(AttachError::TagKeptChanging {
            repository: target.name(),
            tag,
            digest,
            attempts: TAG_ATTEMPTS,
        })
    }

    /// Pushes the SBOMs of each subject as one image tagged `sha256-<hex>.sbom`, as ko and
    /// cosign do; in-toto statements are skipped, with a note.
    fn attach_cosign(&self, target: &Reference, all: &[Attachment]) -> Result<Vec<Attached>> {
        let scopes = [scope(&target.repository, "pull,push")];
        let mut by_subject: BTreeMap<Sha256Digest, Vec<&Attachment>> = BTreeMap::new();
        for a in all {
            by_subject.entry(a.subject.digest).or_default().push(a);
        }
        let mut attached = Vec::new();
        for (subject, group) in by_subject {
            let mut sboms = Vec::new();
            for a in group {
                let artifact_type = a.manifest.artifact_type.as_deref().unwrap_or_default();
                match referrer::cosign_layer_type(artifact_type) {
                    Some(mt) => {
                        sboms.push((a, Descriptor::new(mt, a.document.digest, a.document.size)))
                    }
                    None => eprintln!(
                        "rko: note: not attaching the {artifact_type} document {} to {subject}: \
                         --attach cosign-tag keeps only SBOMs (cosign's `.att` tag holds signed \
                         DSSE envelopes, and rko signs nothing); push with --attach referrers to \
                         attach it",
                        a.document.digest
                    ),
                }
            }
            if sboms.is_empty() {
                continue;
            }
            let layers: Vec<Descriptor> = sboms.iter().map(|(_, l)| l.clone()).collect();
            let (config, manifest) = referrer::cosign_sbom_image(&layers);
            let config_ref = memory_ref(&Descriptor::of_bytes(media::OCI_CONFIG, &config));
            let (outcome, _) = self.push_bytes(target, &config_ref, Arc::new(config))?;
            self.record(&config_ref, outcome);
            for (a, _) in &sboms {
                self.push_document(target, &a.document)?;
            }
            let mdesc = Descriptor::of_bytes(OCI_MANIFEST, &manifest);
            let tag = referrer::cosign_sbom_tag(&subject);
            let mref = memory_ref(&mdesc);
            if !self.has_manifest(target, &mref, &tag, &scopes)? {
                let bytes = Arc::new(manifest);
                let mut resp = self.send_manifest(target, OCI_MANIFEST, &tag, bytes, &scopes)?;
                let url = format!("/v2/{}/manifests/{tag}", target.repository);
                if resp.status != 200 && resp.status != 201 {
                    bail!(AttachError::CosignRefused {
                        registry: target.registry.clone(),
                        url,
                        status: resp.status,
                        body: shown(resp.text()),
                    });
                }
                stored_as(&resp, &mdesc.digest.to_string(), &target.registry, &url)?;
            }
            eprintln!(
                "rko: attached {} SBOM(s) to {}@{subject} as {tag}",
                sboms.len(),
                target.name()
            );
            for (a, _) in &sboms {
                attached.push(Attached {
                    subject,
                    digest: mdesc.digest,
                    artifact_type: a.manifest.artifact_type.clone().unwrap_or_default(),
                    via: "cosign-tag",
                    reference: format!("{}:{tag}@{}", target.name(), mdesc.digest),
                });
            }
        }
        Ok(attached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_entries_verbatim_and_top_level_fields() {
        let other = format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":7,"artifactType":"application/x.other","annotations":{{"z":"1","a":"2"}}}}"#,
            Sha256Digest::of(b"other")
        );
        let old = TagIndex {
            digest: Sha256Digest::of(b""),
            etag: None,
            entries: vec![RawValue::from_string(other.clone()).unwrap()],
            rest: serde_json::from_str(r#"{"annotations":{"k":"v"}}"#).unwrap(),
        };
        let entry = Descriptor {
            artifact_type: Some(referrer::SPDX_JSON.into()),
            ..Descriptor::of_bytes(OCI_MANIFEST, b"m")
        };
        let out = String::from_utf8(merged(Some(&old), &[&entry])).unwrap();
        assert!(out.contains(&other), "{out}");
        assert!(out.ends_with(r#"],"annotations":{"k":"v"}}"#), "{out}");
        let idx: crate::oci::Index = serde_json::from_str(&out).unwrap();
        assert_eq!(idx.manifests.len(), 2);
        assert_eq!(idx.manifests[1], entry);
        let new = String::from_utf8(merged(None, &[&entry])).unwrap();
        let idx: crate::oci::Index = serde_json::from_str(&new).unwrap();
        assert_eq!(idx.media_type, OCI_INDEX);
        assert_eq!(idx.manifests, vec![entry.clone()]);
        // One update adds all of a subject's documents, in order, after the others.
        let second = Descriptor {
            artifact_type: Some(referrer::IN_TOTO_JSON.into()),
            ..Descriptor::of_bytes(OCI_MANIFEST, b"n")
        };
        let both = String::from_utf8(merged(Some(&old), &[&entry, &second])).unwrap();
        let idx: crate::oci::Index = serde_json::from_str(&both).unwrap();
        assert_eq!(idx.manifests.len(), 3);
        assert_eq!(idx.manifests[1..], [entry, second]);
        assert!(both.contains(&format!("[{other},")), "{both}");
    }
}

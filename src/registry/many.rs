//! Pushing several images in one run (`rko push --manifest A --manifest B …`), as a
//! deployment does: one client (one connection pool, one token cache) and one limit on
//! blobs in flight across every image. A blob that several images of one registry share
//! goes up once, into the first repository that needs it; every other repository of that
//! registry then mounts it from there (the embedded base layer included). Each image's
//! manifests go only after all its blobs are there, children first, and its tags last.
//! One image is the same run with one manifest.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context, Result, bail};

use crate::archive::push_manifest::{BlobRef, PushManifest};
use crate::oci::{Reference, Sha256Digest};
use crate::pool::pool;
use crate::registry::push::{BlobOutcome, PushReport, Pusher, blob_unknown};

/// One blob of one image to send, and the repository of the same registry that already
/// has it (or will, by the time this runs) to mount it from.
struct BlobJob<'a> {
    image: usize,
    blob: &'a BlobRef,
    mount_from: Option<&'a Reference>,
}

/// What was done with one blob of one image: (digest, outcome, bytes sent).
type Sent = (Sha256Digest, BlobOutcome, u64);

impl Pusher<'_> {
    /// Pushes every image; the reports are in the order of `manifests`. Stops at the first
    /// failure; a manifest is never put before all of its image's blobs are there.
    pub fn push_all(&self, manifests: &[PushManifest]) -> Result<Vec<PushReport>> {
        let targets = manifests
            .iter()
            .map(target_of)
            .collect::<Result<Vec<_>>>()?;
        let (first, rest) = plan(&targets, manifests);
        self.counters.total.store(
            first.len() + rest.len(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut sent = self.send_blobs(&targets, &first)?;
        sent.extend(self.send_blobs(&targets, &rest)?);
        let mut by_image: Vec<Vec<Sent>> = vec![Vec::new(); manifests.len()];
        for (image, s) in sent {
            by_image[image].push(s);
        }
        let indices: Vec<usize> = (0..manifests.len()).collect();
        let again = pool(self.jobs, &indices, |&i| {
            self.put_image_manifests(&targets[i], &manifests[i], i)
        })?;
        for (i, extra) in again.into_iter().enumerate() {
            for (d, _, n) in extra {
                if let Some(b) = by_image[i].iter_mut().find(|b| b.0 == d) {
                    b.2 += n;
                }
            }
        }
        Ok(manifests
            .iter()
            .zip(&targets)
            .zip(by_image)
            .map(|((m, t), blobs)| report(m, t, blobs))
            .collect())
    }

    /// Sends the blobs, `jobs` at a time across every image; each result with its image.
    fn send_blobs(&self, targets: &[Reference], jobs: &[BlobJob]) -> Result<Vec<(usize, Sent)>> {
        pool(self.jobs, jobs, |j| {
            let target = &targets[j.image];
            let (outcome, n) = self
                .push_blob(target, j.blob, j.mount_from)
                .with_context(|| format!("pushing blob {} to {}", j.blob.digest, target.name()))?;
            self.record(j.blob, outcome);
            Ok((j.image, (j.blob.digest, outcome, n)))
        })
    }

    /// Puts one image's manifests and tags. Another push of the same blobs into the
    /// repository at the same moment can leave the registry without a blob it had just
    /// acknowledged (distribution's link files race): checking the image's blobs again,
    /// uploading what is gone, and putting the manifests once more settles it. Returns
    /// what that second round sent.
    fn put_image_manifests(
        &self,
        target: &Reference,
        m: &PushManifest,
        image: usize,
    ) -> Result<Vec<Sent>> {
        match self.push_manifests(target, m) {
            Err(e) if blob_unknown(&e) => {
                (self.progress)(&format!(
                    "the registry does not know a blob it acknowledged ({e:#}); checking the blobs of {} again",
                    target.name()
                ));
                let jobs: Vec<BlobJob> = m
                    .blobs
                    .iter()
                    .map(|blob| BlobJob {
                        image,
                        blob,
                        mount_from: None,
                    })
                    .collect();
                let sent = self.send_blobs(std::slice::from_ref(target), &rebase(jobs))?;
                self.push_manifests(target, m)?;
                Ok(sent.into_iter().map(|(_, s)| s).collect())
            }
            r => r.map(|()| Vec::new()),
        }
    }
}

/// Jobs of one image renumbered as image 0, for a call with that image's target alone.
fn rebase(jobs: Vec<BlobJob>) -> Vec<BlobJob> {
    jobs.into_iter()
        .map(|j| BlobJob { image: 0, ..j })
        .collect()
}

/// The push manifest's repository as a reference: HOST/REPOSITORY only, with valid tags.
fn target_of(m: &PushManifest) -> Result<Reference> {
    let target =
        Reference::parse(&m.repository).with_context(|| "the push manifest's repository")?;
    if target.tag.is_some() || target.digest.is_some() {
        bail!(
            "the push repository {} has a tag or digest; expected only HOST/REPOSITORY (tags go in \"tags\")",
            m.repository
        );
    }
    for t in &m.tags {
        crate::oci::tag::parse_tag(&format!("{}:{t}", target.name()))?;
    }
    Ok(target)
}

/// Splits every image's blobs into two rounds: the first holds each distinct blob of a
/// registry once, for the first image that lists it; the second every other image's copy,
/// to be mounted from the first image's repository (or found there, in the same one).
fn plan<'a>(
    targets: &'a [Reference],
    manifests: &'a [PushManifest],
) -> (Vec<BlobJob<'a>>, Vec<BlobJob<'a>>) {
    let mut home: HashMap<(&str, Sha256Digest), usize> = HashMap::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for (image, (t, m)) in targets.iter().zip(manifests).enumerate() {
        for blob in &m.blobs {
            match home.entry((t.registry.as_str(), blob.digest)) {
                Entry::Vacant(v) => {
                    v.insert(image);
                    first.push(BlobJob {
                        image,
                        blob,
                        mount_from: None,
                    });
                }
                Entry::Occupied(o) => {
                    let from = &targets[*o.get()];
                    let other = from.repository != t.repository;
                    rest.push(BlobJob {
                        image,
                        blob,
                        mount_from: other.then_some(from),
                    });
                }
            }
        }
    }
    (first, rest)
}

fn report(m: &PushManifest, target: &Reference, mut blobs: Vec<Sent>) -> PushReport {
    blobs.sort_by_key(|b| b.0);
    blobs.dedup_by_key(|b| b.0);
    let bytes_sent = blobs.iter().map(|b| b.2).sum();
    let name = target.name();
    PushReport {
        reference: format!("{name}@{}", m.root.digest),
        tagged: m
            .tags
            .iter()
            .map(|t| format!("{name}:{t}@{}", m.root.digest))
            .collect(),
        blobs,
        bytes_sent,
        attached: Vec::new(),
    }
}

//! A push as people and CI see it: on a terminal one status line redrawn as blobs go,
//! otherwise a plain line per blob; then a summary line, and the report as JSON for CI.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::archive::PushManifest;
use crate::registry::cache::RemoteCache;
use crate::registry::client::Client;
use crate::registry::push::{BlobOutcome, Counters, PushReport, Pusher, human};

/// How blobs are sent.
#[derive(Clone, Copy, Debug)]
pub struct PushSettings {
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Attempts per blob.
    pub attempts: u32,
    /// Upload blobs larger than this in chunks of this size.
    pub chunk_size: Option<u64>,
    /// Put every tag even when the registry already has it on the image.
    pub force_tags: bool,
}

/// Pushes `pm`, reporting progress and a summary on stderr; returns the report.
pub fn push(pm: &PushManifest, client: &Client, settings: PushSettings) -> Result<PushReport> {
    let mut reports = push_all(std::slice::from_ref(pm), client, settings, None)?;
    Ok(reports.remove(0))
}

/// Pushes every image of `pms` in one run (shared blobs once, one limit on blobs in
/// flight), reporting progress and a summary line per image on stderr, and a total when
/// there are several; returns the reports in order. Blobs not on disk come from `cache`.
pub fn push_all(
    pms: &[PushManifest],
    client: &Client,
    settings: PushSettings,
    cache: Option<&RemoteCache>,
) -> Result<Vec<PushReport>> {
    let counters = Arc::new(Counters::default());
    let tty = std::io::stderr().is_terminal();
    let progress = |line: &str| {
        if !tty {
            eprintln!("rko: {line}");
        }
    };
    let pusher = Pusher {
        client,
        counters: counters.clone(),
        jobs: settings.jobs,
        attempts: settings.attempts,
        chunk_size: settings.chunk_size,
        force_tags: settings.force_tags,
        remote_cache: cache,
        progress: &progress,
    };
    let what = match pms {
        [one] => one.repository.clone(),
        many => format!("{} images", many.len()),
    };
    let done = AtomicBool::new(false);
    let reports = std::thread::scope(|s| {
        if tty {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let line = status_line(&counters);
                    eprint!("\r\x1b[Krko: pushing {what}: {line}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                eprint!("\r\x1b[K");
            });
        }
        let r = pusher.push_all(pms);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    for r in &reports {
        eprintln!(
            "rko: pushed {}: {}",
            r.reference,
            summary(&r.blobs, r.bytes_sent)
        );
    }
    if reports.len() > 1 {
        let all: Vec<_> = reports.iter().flat_map(|r| r.blobs.clone()).collect();
        let sent = reports.iter().map(|r| r.bytes_sent).sum();
        eprintln!(
            "rko: pushed {} images: {}",
            reports.len(),
            summary(&all, sent)
        );
    }
    Ok(reports)
}

/// `N blobs existed, N mounted, N uploaded, N copied; SIZE sent`.
fn summary(blobs: &[(crate::oci::Sha256Digest, BlobOutcome, u64)], sent: u64) -> String {
    let count = |o: BlobOutcome| blobs.iter().filter(|b| b.1 == o).count();
    format!(
        "{} blobs existed, {} mounted, {} uploaded, {} copied; {} sent",
        count(BlobOutcome::Existed),
        count(BlobOutcome::Mounted),
        count(BlobOutcome::Uploaded),
        count(BlobOutcome::Copied),
        human(sent)
    )
}

fn status_line(c: &Counters) -> String {
    format!(
        "{}/{} blobs, {} already there, {} mounted, {} sent",
        c.done.load(Ordering::Relaxed),
        c.total.load(Ordering::Relaxed),
        c.existed.load(Ordering::Relaxed),
        c.mounted.load(Ordering::Relaxed),
        human(c.bytes_sent.load(Ordering::Relaxed))
    )
}

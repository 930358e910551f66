//! A push as people and CI see it: on a terminal one status line redrawn as blobs go,
//! otherwise a plain line per blob; then a summary line, and the report as JSON for CI.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::archive::PushManifest;
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
}

/// Pushes `pm`, reporting progress and a summary on stderr; returns the report.
pub fn push(pm: &PushManifest, client: &Client, settings: PushSettings) -> Result<PushReport> {
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
        progress: &progress,
    };
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        if tty {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let line = status_line(&counters);
                    eprint!("\r\x1b[Krko: pushing {}: {line}", pm.repository);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                eprint!("\r\x1b[K");
            });
        }
        let r = pusher.push(pm);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let count = |o: BlobOutcome| report.blobs.iter().filter(|b| b.1 == o).count();
    eprintln!(
        "rko: pushed {}: {} blobs existed, {} mounted, {} uploaded, {} copied; {} sent",
        report.reference,
        count(BlobOutcome::Existed),
        count(BlobOutcome::Mounted),
        count(BlobOutcome::Uploaded),
        count(BlobOutcome::Copied),
        human(report.bytes_sent)
    );
    Ok(report)
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

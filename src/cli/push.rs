//! `rko push-manifest` (build time: what to push and where every blob's bytes are) and
//! `rko push` (run time: push it).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::tarball::Sources;
use crate::output::Outputs;
use crate::registry::client::{Client, ClientOptions};
use crate::registry::naming::{self, Naming};
use crate::registry::push::{BlobOutcome, Counters, PushManifest, PushReport, Pusher};

#[derive(Debug, Args)]
pub struct PushManifestArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Where to push: HOST[:PORT]/REPOSITORY (with --import-path, the prefix ko calls KO_DOCKER_REPO).
    #[arg(long)]
    pub repository: String,
    /// Name the repository from this import path, by --naming, as ko does.
    #[arg(long)]
    pub import_path: Option<String>,
    /// ko's naming strategy for --import-path.
    #[arg(long, value_enum, default_value = "md5")]
    pub naming: Naming,
    /// A tag to push (pushed after everything else). Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A repository (HOST/REPO) to read base blobs from when they are not on disk.
    #[arg(long, value_name = "HOST/REPO")]
    pub remote_blobs: Option<String>,
    /// Where to write the push manifest JSON.
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Flags for reaching registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP or unverified TLS. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// An extra CA certificate (PEM) to trust for TLS.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Attempts per request and per blob on connection errors, 5xx and 429.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Upload blobs larger than this many bytes in chunks of that size (for slow or flaky
    /// links); by default every blob goes in one streamed PUT.
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
}

impl RegistryArgs {
    /// Gives `store` a client when some of its blobs live only in a registry.
    pub fn connect(&self, store: &mut crate::image::archive::BlobStore) -> Result<()> {
        if store.has_remote() {
            store.set_client(self.client()?);
        }
        Ok(())
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(ClientOptions {
            insecure: self.insecure.clone(),
            ca_file: self.ca_file.clone(),
            attempts: self.attempts,
        })
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The push manifest from `rko push-manifest`.
    #[arg(long)]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Write the pushed references and what was sent as JSON, for CI.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
}

pub fn run_push_manifest(a: PushManifestArgs) -> Result<()> {
    let (artifact, store) = {
        let mut s = a.sources.load_store()?;
        if let Some(r) = &a.remote_blobs {
            s.1.add_remote(r.clone());
        }
        let artifact = crate::image::archive::Artifact::collect(s.0, &s.1)?;
        (artifact, s.1)
    };
    let repository = match &a.import_path {
        Some(ip) => {
            naming::repository(&a.repository, crate::importpath::strip_scheme(ip), a.naming)
        }
        None => a.repository.clone(),
    };
    let pm = artifact.push_manifest(&store, &repository, &a.tags)?;
    let mut outputs = Outputs::new();
    let mut bytes = serde_json::to_vec_pretty(&pm)?;
    bytes.push(b'\n');
    outputs.write(&a.output, &bytes)?;
    outputs.commit()
}

/// Pushes and reports on stderr; returns the report.
pub fn push(pm: &PushManifest, registry: &RegistryArgs) -> Result<PushReport> {
    let client = registry.client()?;
    let counters = Arc::new(Counters::default());
    // On a terminal, one status line redrawn as blobs go; otherwise a plain line per blob.
    let tty = std::io::stderr().is_terminal();
    let progress = |line: &str| {
        if !tty {
            eprintln!("rko: {line}");
        }
    };
    let pusher = Pusher {
        client: &client,
        counters: counters.clone(),
        jobs: registry.jobs,
        attempts: registry.attempts,
        chunk_size: registry.chunk_size,
        progress: &progress,
    };
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        if tty {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    eprint!(
                        "\r\x1b[Krko: pushing {}: {}",
                        pm.repository,
                        status_line(&counters)
                    );
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
        crate::registry::push::human(report.bytes_sent)
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
        crate::registry::push::human(c.bytes_sent.load(Ordering::Relaxed))
    )
}

pub fn run_push(a: PushArgs) -> Result<()> {
    let bytes = fs_err::read(&a.manifest)?;
    let pm: PushManifest = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a push manifest: expected the JSON `rko push-manifest` writes",
            a.manifest.display()
        )
    })?;
    let report = push(&pm, &a.registry)?;
    crate::cli::outln!("{}", report.reference);
    for t in &report.tagged {
        crate::cli::outln!("{t}");
    }
    if let Some(p) = &a.image_refs {
        write_image_refs(p, &report)?;
    }
    Ok(())
}

pub fn write_image_refs(path: &std::path::Path, report: &PushReport) -> Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Refs<'a> {
        reference: &'a str,
        tagged: &'a [String],
        blobs: Vec<(String, BlobOutcome, u64)>,
        bytes_sent: u64,
    }
    let refs = Refs {
        reference: &report.reference,
        tagged: &report.tagged,
        blobs: report
            .blobs
            .iter()
            .map(|b| (b.0.to_string(), b.1, b.2))
            .collect(),
        bytes_sent: report.bytes_sent,
    };
    let mut outputs = Outputs::new();
    let mut bytes = serde_json::to_vec_pretty(&refs)?;
    bytes.push(b'\n');
    outputs.write(path, &bytes)?;
    outputs.commit()
}

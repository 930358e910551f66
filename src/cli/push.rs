//! `rko push-manifest` (build time: what to push and where every blob's bytes are) and
//! `rko push` (run time: push it). How blob paths are recorded is in `archive::paths`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::archive::attachment::{AttachSpec, Attachment};
use crate::archive::paths::{self, parse_path_map};
use crate::archive::{Artifact, PushManifest, tags::expand_tags};
use crate::cli::args::{RegistryArgs, SourcesArgs, user_path};
use crate::oci::{json, tag};
use crate::output::Outputs;
use crate::registry::attach::{AttachMode, attach};
use crate::registry::cache::RemoteCache;
use crate::registry::naming::{self, Naming};
use crate::registry::progress;

#[derive(Debug, Args)]
pub struct PushManifestArgs {
    #[command(flatten)]
    pub sources: SourcesArgs,
    /// Where to push: HOST[:PORT]/REPOSITORY (with --import-path, the prefix ko calls KO_DOCKER_REPO).
    #[arg(long)]
    pub repository: String,
    /// Name the repository from this import path, by --naming, as ko does; the manifest
    /// records it (without `ko://`) for `rko resolve`.
    #[arg(long)]
    pub import_path: Option<String>,
    /// ko's naming strategy for --import-path.
    #[arg(long, value_enum, default_value = "md5")]
    pub naming: Naming,
    /// A tag to push (pushed after everything else). Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A file of tags, one per line (blank lines and `#` comments skipped). Repeatable.
    #[arg(long = "tag-file", value_name = "FILE")]
    pub tag_files: Vec<PathBuf>,
    /// A workspace status file (`KEY value` lines, as Bazel's stable-status.txt and
    /// volatile-status.txt): `{KEY}` in a tag becomes its value. Repeatable.
    #[arg(long = "stamp-file", value_name = "FILE")]
    pub stamp_files: Vec<PathBuf>,
    /// A repository (HOST/REPO) to read base blobs from when they are not on disk.
    #[arg(long, value_name = "HOST/REPO")]
    pub remote_blobs: Option<String>,
    /// Record blob paths under FROM (a file or directory given above, as given) as TO
    /// instead, for when the push finds the files elsewhere (the Bazel rules stage them
    /// in runfiles). TO is relative to the output's directory (or absolute) and recorded as
    /// is. Repeatable.
    #[arg(long = "path-map", value_name = "FROM=TO")]
    pub path_maps: Vec<String>,
    /// Attach a document (an SBOM or a provenance statement, JSON) to an image of this push,
    /// pushed as an OCI 1.1 referrer after the image: SUBJECT is the image's descriptor as
    /// `rko image --descriptor-out` wrote it (for an index, a platform image's, so each
    /// platform gets its own). The type comes from the document (SPDX, CycloneDX, in-toto
    /// statement), or from a third part, =MEDIA_TYPE. Repeatable.
    #[arg(long = "attach", value_name = "SUBJECT=DOCUMENT[=MEDIA_TYPE]")]
    pub attach: Vec<String>,
    /// Where to write the push manifest JSON. Blob paths not mapped by --path-map are
    /// recorded relative to this file's directory (absolute ones stay absolute).
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// A push manifest from `rko push-manifest`. Its relative blob paths are relative to
    /// the directory holding it, so the push runs from any working directory. Repeatable:
    /// several images go in one run, sharing connections, the --jobs limit and their
    /// common blobs (each sent once per registry, then mounted).
    #[arg(long = "manifest", value_name = "FILE", required = true)]
    pub manifests: Vec<PathBuf>,
    /// Push to this HOST[:PORT]/REPOSITORY instead of the manifest's (one --manifest only).
    #[arg(long)]
    pub repository: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Put every tag, even one the registry already has on this image (by default each tag
    /// is HEADed first and put only when it names something else).
    #[arg(long)]
    pub force_tags: bool,
    /// A Bazel remote cache, HTTP (http[s]://HOST[:PORT][/PREFIX]) or gRPC
    /// (grpc[s]://HOST[:PORT][/INSTANCE_NAME], ByteStream Read), to read config and layer
    /// blobs from when their files are not on disk: a lazy push from a runner that built
    /// with --remote_download_minimal. Blobs stream from the cache into the registry.
    #[arg(long, value_name = "URL", env = "RKO_REMOTE_CACHE")]
    pub remote_cache: Option<String>,
    /// A header for the remote cache's requests, NAME=VALUE (as Bazel's --remote_header,
    /// e.g. Authorization=Bearer …; gRPC metadata with the name lower-cased). Repeatable.
    /// Never printed.
    #[arg(long = "remote-header", value_name = "NAME=VALUE")]
    pub remote_headers: Vec<String>,
    /// After the push, copy FILE to stdout, and print the pushed references on stderr
    /// instead: a deployment's resolved YAML, for `… | kubectl apply -f -`.
    #[arg(long, value_name = "FILE")]
    pub print: Option<PathBuf>,
    /// `--push=false` pushes nothing (with --print: only print).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub push: bool,
    /// How to push the SBOMs and provenance statements the push manifests attach, after
    /// the images and their tags: as OCI 1.1 referrers (the registry's referrers API, else
    /// the referrers tag `sha256-<hex>`), as ko's and cosign's `sha256-<hex>.sbom` tag
    /// (SBOMs only), or not at all.
    #[arg(long, value_enum, default_value = "referrers", env = "RKO_ATTACH")]
    pub attach: AttachMode,
    /// Write the pushed references and what was sent as JSON, for CI: one image's report,
    /// or with several --manifest, `{"images": [report, …]}` in their order.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
}

pub fn run_push_manifest(a: PushManifestArgs) -> Result<()> {
    let (root, mut store) = a.sources.store()?;
    if let Some(r) = &a.remote_blobs {
        store.add_remote(r.clone());
    }
    let artifact = Artifact::collect(root, &store)?;
    let repository = match &a.import_path {
        Some(ip) => {
            naming::repository(&a.repository, crate::importpath::strip_scheme(ip), a.naming)
        }
        None => a.repository.clone(),
    };
    let tags = expand_tags(&a.tags, &a.tag_files, &a.stamp_files)?;
    for t in &tags {
        tag::parse_tag(&format!("{repository}:{t}")).with_context(|| format!("tag {t:?}"))?;
    }
    let maps = a
        .path_maps
        .iter()
        .map(|m| parse_path_map(m))
        .collect::<Result<Vec<_>>>()?;
    let mut pm = artifact.push_manifest(&store, &repository, &tags)?;
    pm.import_path = a
        .import_path
        .as_deref()
        .map(|ip| crate::importpath::strip_scheme(ip).to_string());
    for spec in &a.attach {
        let spec = AttachSpec::parse(spec)?;
        let attachment = Attachment::from_spec(&spec, &pm)?;
        pm.attachments.push(attachment);
    }
    paths::record(&mut pm, &a.output, &maps)?;
    let mut outputs = Outputs::new();
    outputs.write(&a.output, &json::pretty(&pm))?;
    outputs.commit()
}

pub fn run_push(a: PushArgs) -> Result<()> {
    let cache = match &a.remote_cache {
        Some(url) => Some(RemoteCache::parse(url, &a.remote_headers)?),
        None => None,
    };
    let read = match cache {
        Some(_) => PushManifest::read_lazy,
        None => PushManifest::read,
    };
    let mut pms = a
        .manifests
        .iter()
        .map(|m| read(m))
        .collect::<Result<Vec<_>>>()?;
    if let Some(r) = &a.repository {
        match pms.as_mut_slice() {
            [one] => one.repository = r.clone(),
            many => anyhow::bail!(
                "--repository {r} replaces the repository of one push manifest, but {} were \
                 given; push them without --repository (each to its own), or one at a time",
                many.len()
            ),
        }
    }
    // Read before anything is sent: a missing file fails the run, not after the push.
    let print = match &a.print {
        Some(p) => Some(fs_err::read(p)?),
        None => None,
    };
    if a.push {
        push_and_report(&a, &pms, print.is_some(), cache.as_ref())?;
    }
    if let Some(bytes) = print {
        crate::cli::stdout::bytes(&bytes);
    }
    Ok(())
}

/// Pushes every image; prints the references on stdout (stderr when stdout is taken by
/// --print) and writes --image-refs.
fn push_and_report(
    a: &PushArgs,
    pms: &[PushManifest],
    to_stderr: bool,
    cache: Option<&RemoteCache>,
) -> Result<()> {
    let settings = progress::PushSettings {
        force_tags: a.force_tags,
        ..a.registry.settings()
    };
    let client = a.registry.client()?;
    let mut reports = progress::push_all(pms, &client, settings, cache)?;
    for report in &reports {
        for line in std::iter::once(&report.reference).chain(&report.tagged) {
            match to_stderr {
                true => eprintln!("{line}"),
                false => crate::cli::stdout::line(line),
            }
        }
    }
    // After every image and tag is pushed: a failure here leaves them in place. Images go
    // in parallel (up to --jobs), so each referrers tag's settling pause overlaps the others.
    let work: Vec<_> = pms
        .iter()
        .zip(reports.iter().map(|r| &r.reference))
        .collect();
    let attached = crate::pool::pool(settings.jobs, &work, |(pm, reference)| {
        attach(
            &client,
            settings,
            cache,
            &pm.repository,
            &pm.attachments,
            a.attach,
        )
        .with_context(|| {
            format!(
                "{reference} and its tags are pushed, but attaching its SBOMs and provenance failed"
            )
        })
    })?;
    for (report, attached) in reports.iter_mut().zip(attached) {
        report.attached = attached;
    }
    if let Some(p) = &a.image_refs {
        let json = match reports.as_slice() {
            [one] => json::pretty(one),
            many => json::pretty(&serde_json::json!({ "images": many })),
        };
        let mut outputs = Outputs::new();
        outputs.write(&user_path(p), &json)?;
        outputs.commit()?;
    }
    Ok(())
}

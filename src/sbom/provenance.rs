//! SLSA v1 provenance of an image, as an in-toto Statement v1.
//!
//! - `subject`: the image (its repository or name, and its manifest's sha256);
//! - `predicate.buildDefinition.buildType`: [`BUILD_TYPE`], rko's build type:
//!   `externalParameters` holds what the user chose (`importPath`, `platform`, `base` (the
//!   base's reference), `tags`); `internalParameters` what rko chose (`baseSpec`, how
//!   `--base` named the base: `static`, `scratch` or `layout`);
//!   `resolvedDependencies` lists the base manifest (uri = the base reference as a
//!   `pkg:oci` purl, since a reference is no URI; its digest),
//!   the Go binary (`ko://IMPORTPATH`, sha256 of its bytes), every kodata file
//!   (`kodata/PATH`, sorted, sha256), every extra layer's input tar (`layer/FILE NAME`, in
//!   image order, sha256 of the tar as given) and rko itself (`pkg:generic/rko@VERSION`);
//! - `predicate.runDetails.builder.id`: who ran rko (`--builder-id`); `builder.version`
//!   names rko's version. No `metadata`: its start and finish times would be wall-clock
//!   times, and an invocation id would differ on every run.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::layer::kodata::Tree;
use crate::oci::Sha256Digest;
use crate::sbom::{Image, VERSION};

/// The build type of an image rko made from a Go binary (documented in docs/provenance.md).
pub const BUILD_TYPE: &str = "https://rules-ko.invalid/buildtypes/rko-image/v1";

/// The builder id `rko build` writes unless told otherwise: a build on someone's machine.
pub const DEFAULT_BUILDER_ID: &str = "urn:rules-ko:builder:rko-build";

/// What the provenance is made from.
#[derive(Clone, Debug)]
pub struct ProvenanceInput {
    pub image: Image,
    pub platform: Option<String>,
    /// The base's reference (`cgr.dev/chainguard/static@sha256:…`), as the user named it.
    pub base_ref: Option<String>,
    /// The base manifest's digest, when known.
    pub base_digest: Option<Sha256Digest>,
    /// `static`, `scratch` or `layout`.
    pub base_spec: String,
    pub tags: Vec<String>,
    /// The binary's sha256 (see [`hash_file`]).
    pub binary_digest: Sha256Digest,
    /// Kodata files, relative path (with `/`) and digest, sorted by path (see [`kodata_files`]).
    pub kodata: Vec<(String, Sha256Digest)>,
    /// The extra layers' input tars, file name and digest, in image order (see
    /// [`layer_tars`]).
    pub layers: Vec<(String, Sha256Digest)>,
    pub builder_id: String,
}

/// Checks a builder id: SLSA wants a URI (`https://…`, `urn:…`), so it needs a scheme.
pub fn check_builder_id(id: &str) -> Result<()> {
    let scheme = id.split_once(':').map(|(s, _)| s).unwrap_or("");
    let ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && id.len() > scheme.len() + 1
        && !id.chars().any(char::is_whitespace);
    if !ok {
        anyhow::bail!(
            "invalid builder id {id:?}: expected a URI naming who built, such as https://ci.example.com/builders/release@v1"
        );
    }
    Ok(())
}

/// The in-toto Statement of `input`: pretty JSON with a trailing newline.
pub fn statement(input: &ProvenanceInput) -> Vec<u8> {
    let sha = |d: &Sha256Digest| json!({"sha256": d.hex()});
    let mut external = json!({
        "importPath": input.image.import_path,
        "tags": input.tags,
    });
    if let Some(p) = &input.platform {
        external["platform"] = json!(p);
    }
    if let Some(b) = &input.base_ref {
        external["base"] = json!(b);
    }
    let mut deps = Vec::new();
    match (&input.base_ref, &input.base_digest) {
        (None, None) => deps.push(json!({"name": format!("base:{}", input.base_spec)})),
        (r, d) => {
            let mut base = json!({"name": "base"});
            if let Some(r) = r {
                base["uri"] = json!(crate::sbom::reference_purl(r, d.as_ref()));
            }
            if let Some(d) = d {
                base["digest"] = sha(d);
            }
            deps.push(base);
        }
    }
    deps.push(json!({
        "uri": format!("ko://{}", input.image.import_path),
        "name": "binary",
        "digest": sha(&input.binary_digest),
    }));
    for (path, d) in &input.kodata {
        deps.push(json!({"name": format!("kodata/{path}"), "digest": sha(d)}));
    }
    for (name, d) in &input.layers {
        deps.push(json!({"name": format!("layer/{name}"), "digest": sha(d)}));
    }
    deps.push(json!({
        "uri": format!("pkg:generic/rko@{VERSION}"),
        "name": "rko",
        "annotations": {"version": VERSION},
    }));
    let doc = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": input.image.subject_name(),
            "digest": sha(&input.image.digest),
        }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"baseSpec": input.base_spec},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": input.builder_id, "version": {"rko": VERSION}},
            },
        },
    });
    crate::oci::json::pretty(&doc)
}

/// The sha256 of a file, read in pieces (the whole file, so its cost grows with its size).
pub fn hash_file(path: &Path) -> Result<Sha256Digest> {
    let mut f = fs_err::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        h.update(&buf[..n]);
    }
    Ok(Sha256Digest::from_hasher(h))
}

/// The file name and sha256 of each extra layer's input tar, in order.
pub fn layer_tars(tars: &[PathBuf]) -> Result<Vec<(String, Sha256Digest)>> {
    tars.iter()
        .map(|t| {
            let name = t
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, hash_file(t)?))
        })
        .collect()
}

/// Every file of the kodata layer made from `dir` (its [`Tree`], so the same files: links
/// followed, or for `windows` skipped, as ko's walks) with its sha256: paths relative to
/// `dir`, `/`-separated, sorted bytewise.
pub fn kodata_files(dir: &Path, windows: bool) -> Result<Vec<(String, Sha256Digest)>> {
    if !dir.is_dir() {
        anyhow::bail!(
            "kodata {} is not a directory: expected the kodata directory the image's kodata layer was made from",
            dir.display()
        );
    }
    hashed(&Tree::from_inputs(Some(dir), &[], None, windows)?)
}

/// [`kodata_files`] for `IMAGE_PATH=FILE` pairs, as `rko layer kodata --file` takes them (a
/// FILE that is a directory stands for every file under it).
pub fn kodata_pairs(pairs: &[String]) -> Result<Vec<(String, Sha256Digest)>> {
    hashed(&Tree::from_pairs(pairs, false)?)
}

/// A kodata tree's files with their sha256, sorted bytewise by path.
fn hashed(tree: &Tree) -> Result<Vec<(String, Sha256Digest)>> {
    let mut files = tree.files();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    files
        .into_iter()
        .map(|(rel, p)| Ok((rel, hash_file(p)?)))
        .collect()
}

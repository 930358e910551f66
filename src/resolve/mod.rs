//! `rko resolve`, as `ko resolve` without the build: in YAML files, every string scalar
//! whose value is `ko://IMPORTPATH` becomes the image the push manifest of that import path
//! names, `REPOSITORY@sha256:DIGEST` (or `REPOSITORY:TAG@sha256:DIGEST` with its first
//! tag). Only those scalars' bytes change: the replacement is written into the source text
//! in place (between the quotes of a quoted scalar), never re-serialized, so comments, key
//! order, styles, anchors, document markers and line endings stay as they were. The output
//! is checked to read as the input with exactly those values replaced.
//!
//! It reads only the push manifests' metadata: no blob file need exist. How the input
//! files are joined is in [`stream`]; what counts as a reference is in [`refs`].

mod refs;
mod stream;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::archive::PushManifest;
use crate::output::Outputs;
use refs::RefsError;
use stream::{Position, Stream};

/// What `rko resolve` is asked to do.
pub struct Request {
    /// YAML files, directories of them, or `-` for stdin.
    pub inputs: Vec<PathBuf>,
    /// Push manifests that record an import path.
    pub images: Vec<PathBuf>,
    /// Where to write the result (`-` for stdout).
    pub output: PathBuf,
    /// Write `REPOSITORY:TAG@DIGEST`, with each manifest's first tag.
    pub tag_refs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "the push manifest {manifest} records no import path; expected one written by \
         `rko push-manifest --import-path IMPORTPATH`, which `ko://IMPORTPATH` references \
         resolve to; rebuild it with --import-path"
    )]
    NoImportPath { manifest: PathBuf },
    #[error(
        "the push manifest {manifest} (for ko://{import_path}) has no tags, so --tag-refs \
         cannot write REPOSITORY:TAG@DIGEST; expected at least one tag (`rko push-manifest \
         --tag`); add one, or resolve without --tag-refs"
    )]
    NoTags {
        manifest: PathBuf,
        import_path: String,
    },
    #[error(
        "the push manifests {first} and {second} both record ko://{import_path}, as {a} and \
         {b}; expected one image per import path; pass only one of them with --image"
    )]
    Conflict {
        import_path: String,
        first: PathBuf,
        a: String,
        second: PathBuf,
        b: String,
    },
    #[error(
        "{at}: ko://{import_path} is not among the images given; expected one of the import \
         paths the --image push manifests record ({known}); add --image with the push \
         manifest of {import_path}, or correct the reference"
    )]
    Unknown {
        at: Position,
        import_path: String,
        known: String,
    },
    #[error(
        "{at}: invalid YAML: {info}; expected a YAML stream (the files are read as one, with \
         a `---` line between two files); fix the YAML there"
    )]
    Yaml { at: Position, info: String },
    #[error(
        "{at}: the scalar {value:?} starts with ko:// but is not a reference: {problem}{hint}; \
         write ko:// followed by a Go import path, or a value that does not start with ko://"
    )]
    InvalidImportPath {
        at: Position,
        value: String,
        problem: crate::importpath::ImportPathError,
        hint: &'static str,
    },
    #[error(
        "{at}: the reference {value} is written with escapes or line breaks, which cannot be \
         replaced in place; expected it written out as is ({value}, '{value}' or \"{value}\"); \
         write it so"
    )]
    NotInPlace { at: Position, value: String },
    #[error(
        "{at}: replacing the references would change how the YAML reads there (a \
         replacement that YAML reads otherwise, such as a repository with `[`); expected \
         references whose images have plain repository names; check the push manifests' \
         repositories"
    )]
    Changed { at: Position },
}

/// The replacement for each import path, and the manifest it comes from.
struct Images(BTreeMap<String, (String, PathBuf)>);

impl Images {
    fn read(manifests: &[PathBuf], tag_refs: bool) -> Result<Images> {
        let mut images: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
        for path in manifests {
            let pm = PushManifest::read_metadata(path)?;
            let Some(ip) = pm.import_path.clone() else {
                bail!(ResolveError::NoImportPath {
                    manifest: path.clone()
                });
            };
            let reference = match (tag_refs, pm.tags.first()) {
                (false, _) => format!("{}@{}", pm.repository, pm.root.digest),
                (true, Some(t)) => format!("{}:{t}@{}", pm.repository, pm.root.digest),
                (true, None) => bail!(ResolveError::NoTags {
                    manifest: path.clone(),
                    import_path: ip,
                }),
            };
            if let Some((seen, first)) = images.get(&ip)
                && *seen != reference
            {
                bail!(ResolveError::Conflict {
                    import_path: ip,
                    first: first.clone(),
                    a: seen.clone(),
                    second: path.clone(),
                    b: reference,
                });
            }
            images.entry(ip).or_insert((reference, path.clone()));
        }
        Ok(Images(images))
    }

    fn known(&self) -> String {
        if self.0.is_empty() {
            return "none: no --image was given".to_string();
        }
        let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.join(", ")
    }
}

fn located(stream: &Stream, e: RefsError) -> ResolveError {
    match e {
        RefsError::Yaml(at, e) => ResolveError::Yaml {
            at: stream.position(at),
            info: e.info().to_string(),
        },
        RefsError::InvalidImportPath(at, value, problem) => ResolveError::InvalidImportPath {
            at: stream.position(at),
            hint: if value.ends_with('\n') {
                " (a block scalar keeps its final line break unless written |- or >-)"
            } else {
                ""
            },
            value,
            problem,
        },
        RefsError::NotInPlace(at, value) => ResolveError::NotInPlace {
            at: stream.position(at),
            value,
        },
    }
}

/// The stream's text with every reference replaced.
fn resolve(stream: &Stream, images: &Images) -> Result<String> {
    let text = &stream.text;
    let refs = refs::find(text).map_err(|e| located(stream, e))?;
    let mut with = Vec::with_capacity(refs.len());
    for r in &refs {
        let Some((reference, _)) = images.0.get(&r.import_path) else {
            bail!(ResolveError::Unknown {
                at: stream.position(r.range.start),
                import_path: r.import_path.clone(),
                known: images.known(),
            });
        };
        with.push(reference.as_str());
    }
    let out = refs::apply(text, &refs, &with);
    refs::verify(text, &out, &refs, &with).map_err(|at| ResolveError::Changed {
        at: stream.position(at),
    })?;
    Ok(out)
}

fn write(output: &Path, bytes: &[u8]) -> Result<()> {
    if output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()?;
        return Ok(());
    }
    let mut outputs = Outputs::new();
    outputs.write(output, bytes)?;
    outputs.commit()
}

/// Runs `rko resolve`: reads the push manifests and the YAML, and writes the YAML with its
/// references replaced, all or nothing.
pub fn run(r: &Request) -> Result<()> {
    let images = Images::read(&r.images, r.tag_refs)?;
    let stream = Stream::read(&stream::list_inputs(&r.inputs)?)?;
    let out = resolve(&stream, &images)?;
    write(&r.output, out.as_bytes())
}

/// The fuzz target's property, for any text (files split at NUL bytes): joining, finding
/// the references, replacing them and checking the result never panic (a byte offset off a
/// character boundary would), the replaced stream always reads as the input with exactly
/// the references changed, and every position reported lies in a file.
#[cfg(fuzzing)]
pub fn fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut stream = Stream::default();
    for (i, part) in text.split('\0').enumerate() {
        stream.push(format!("f{i}"), part);
    }
    let at = match refs::find(&stream.text) {
        Ok(refs) => {
            // A replacement made only of plain-scalar-safe characters, as every real
            // `REPOSITORY@sha256:HEX` is: the output must read as the input with exactly
            // those values changed.
            let with = vec!["r.example/x@sha256:0"; refs.len()];
            let out = refs::apply(&stream.text, &refs, &with);
            if let Err(at) = refs::verify(&stream.text, &out, &refs, &with) {
                panic!(
                    "replacing {} references changed the YAML at byte {at}",
                    refs.len()
                );
            }
            refs.iter().map(|r| r.range.start).collect()
        }
        Err(RefsError::Yaml(at, _) | RefsError::InvalidImportPath(at, ..)) => vec![at],
        Err(RefsError::NotInPlace(at, _)) => vec![at],
    };
    for offset in at {
        let p = stream.position(offset);
        assert!(
            p.line >= 1 && p.column >= 1 && p.file.starts_with('f'),
            "{p}"
        );
    }
}

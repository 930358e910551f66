//! Supply-chain documents about an image, made from inputs rko already has, with no wall
//! clock and no network: SBOMs ([`spdx`] 2.3 and [`cyclonedx`] 1.6 JSON) from the Go build
//! info the binary carries (what `go version -m` prints), and SLSA v1 [`provenance`] as an
//! in-toto Statement.
//!
//! Every document is a function of its inputs: times come from `SOURCE_DATE_EPOCH`, else the
//! image config's `created`, else the epoch; the SPDX namespace and the CycloneDX serial
//! number are UUIDs derived from the image digest and the format. Maps are sorted
//! (serde_json's `Map` is a `BTreeMap`), so the same inputs give the same bytes.
//!
//! How Go modules are described (both formats, so that Trivy, Grype and Dependency-Track,
//! which identify a package by its purl, match what was compiled in):
//! - a `dep` line is one package, `pkg:golang/PATH@VERSION`;
//! - a `dep` replaced by another module (`=> other v1.2.4 h1:…`) is described as that
//!   module (name, version, sum and purl of the replacement: the code the binary holds, what
//!   Trivy and syft report after applying `=>`), and the original requirement is recorded
//!   beside it (SPDX: `sourceInfo` and an annotation; CycloneDX: `pedigree.ancestors` and
//!   properties);
//! - a `dep` replaced by a directory (`=> ../local`) keeps its own path, version and purl
//!   (the directory has none), and the directory is recorded the same way;
//! - the Go toolchain is the `stdlib` package, `pkg:golang/stdlib@1.x.y`, as syft and ko
//!   write it, which the scanners match against Go's own advisories;
//! - the `build` settings (GOOS, GOARCH, GOAMD64, CGO_ENABLED, -trimpath, -tags, -ldflags,
//!   vcs.*) belong to the main module: SPDX annotations, CycloneDX properties.

pub mod cyclonedx;
pub mod provenance;
pub mod spdx;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::buildinfo::{BuildInfo, Module};
use crate::oci::Sha256Digest;

/// The media type of an SPDX JSON document (as OCI artifacts and referrers carry it).
pub const MEDIA_SPDX: &str = "application/spdx+json";
/// The media type of a CycloneDX JSON document.
pub const MEDIA_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
/// The media type of an in-toto Statement (the provenance).
pub const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";

/// rko's name and version as the documents name their creator: `rko-0.1.0`.
pub const TOOL: &str = concat!("rko-", env!("CARGO_PKG_VERSION"));
/// rko's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An SBOM format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    Spdx,
    Cyclonedx,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => MEDIA_SPDX,
            Format::Cyclonedx => MEDIA_CYCLONEDX,
        }
    }

    /// The file name suffix (ko writes `<app>-<platform>.spdx.json`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Spdx => "spdx.json",
            Format::Cyclonedx => "cyclonedx.json",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Format::Spdx => "spdx",
            Format::Cyclonedx => "cyclonedx",
        }
    }
}

/// The image a document is about.
#[derive(Clone, Debug)]
pub struct Image {
    pub digest: Sha256Digest,
    /// `HOST[:PORT]/PATH` the image is (or will be) pushed to, for the purl's
    /// `repository_url`.
    pub repository: Option<String>,
    /// The Go import path of the binary (names the image when no repository does).
    pub import_path: String,
}

impl Image {
    /// The image's name: the repository's last path element, else the import path's.
    pub fn name(&self) -> &str {
        let from = self.repository.as_deref().unwrap_or(&self.import_path);
        from.rsplit('/').next().unwrap_or(from)
    }

    /// `pkg:oci/NAME@sha256:…[?repository_url=HOST/PATH]` (the purl spec's `oci` type).
    pub fn purl(&self) -> String {
        let mut p = format!(
            "pkg:oci/{}@{}",
            purl_encode(&self.name().to_ascii_lowercase(), false),
            purl_encode(&self.digest.to_string(), false)
        );
        if let Some(r) = &self.repository {
            p.push_str("?repository_url=");
            p.push_str(&purl_encode(r, true));
        }
        p
    }

    /// The subject's name in provenance: the repository, else the image name.
    pub fn subject_name(&self) -> &str {
        self.repository.as_deref().unwrap_or_else(|| self.name())
    }
}

/// The `pkg:oci` purl of an image reference `HOST[:PORT]/PATH[:TAG][@sha256:…]` (a URI, where
/// the reference itself is none): `pkg:oci/NAME[@DIGEST]?repository_url=HOST/PATH[&tag=TAG]`,
/// `digest` standing in for one the reference lacks.
pub fn reference_purl(reference: &str, digest: Option<&Sha256Digest>) -> String {
    let (rest, in_ref) = match reference.rsplit_once('@') {
        Some((r, d)) => (r, d.parse::<Sha256Digest>().ok()),
        None => (reference, None),
    };
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (rest, None),
    };
    let name = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let mut p = format!("pkg:oci/{}", purl_encode(&name, false));
    if let Some(d) = in_ref.as_ref().or(digest) {
        p.push('@');
        p.push_str(&purl_encode(&d.to_string(), false));
    }
    p.push_str("?repository_url=");
    p.push_str(&purl_encode(repo, true));
    if let Some(t) = tag {
        p.push_str("&tag=");
        p.push_str(&purl_encode(t, true));
    }
    p
}

/// Percent-encodes a purl segment, version or (with `slash`) qualifier value: everything
/// but ASCII letters, digits, `.-_~` and `:` (and `/` in a qualifier value), as
/// packageurl-python, the reference implementation, writes them.
pub fn purl_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) || (slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:golang/PATH@VERSION`, each path element percent-encoded; no version for `(devel)`
/// or an empty one.
pub fn golang_purl(path: &str, version: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| purl_encode(s, false))
        .collect();
    let mut p = format!("pkg:golang/{}", segments.join("/"));
    if !version.is_empty() && version != "(devel)" {
        p.push('@');
        p.push_str(&purl_encode(version, false));
    }
    p
}

/// The Go toolchain's version without the `go` prefix or experiments: `go1.26.0` → `1.26.0`,
/// `go1.24.1 X:boringcrypto` → `1.24.1`; `None` for a development toolchain.
pub fn stdlib_version(go_version: &str) -> Option<String> {
    let v = go_version.split_whitespace().next()?;
    let v = v.strip_prefix("go")?;
    (!v.is_empty() && v.as_bytes()[0].is_ascii_digit()).then(|| v.to_string())
}

/// A UUID (RFC 9562 version 8: custom, here the first 128 bits of a SHA-256) naming one
/// document: derived from the image digest, the format and `extra`.
pub fn uuid_for(digest: &Sha256Digest, kind: &str, extra: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"rko document\0");
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(digest.to_string().as_bytes());
    h.update(b"\0");
    h.update(extra.as_bytes());
    let mut b: [u8; 32] = h.finalize().into();
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The documents' time, `YYYY-MM-DDThh:mm:ssZ`: `SOURCE_DATE_EPOCH` when given, else the
/// image config's `created` (to the second, in UTC), else the epoch. The Go zero time, which
/// an image with no date carries, counts as no date.
pub fn created(source_date_epoch: Option<u64>, config: Option<&[u8]>) -> String {
    if let Some(s) = source_date_epoch {
        return crate::oci::config::rfc3339(s);
    }
    #[derive(serde::Deserialize)]
    struct Created {
        created: Option<String>,
    }
    let from_config = config
        .and_then(|c| serde_json::from_slice::<Created>(c).ok())
        .and_then(|c| c.created)
        .and_then(|c| parse_rfc3339(&c));
    crate::oci::config::rfc3339(from_config.unwrap_or(0))
}

/// Seconds since the epoch of an RFC 3339 time (`2024-05-06T07:08:09.123+02:00`); fractions
/// are dropped. `None` for a malformed one or one before 1970 (the Go zero time).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs).ok()
}

/// One Go module as a document describes it: what the binary holds, and the requirement it
/// replaced, if any.
#[derive(Clone, Debug)]
pub struct GoModule {
    /// The `mod`/`dep` line, as `go version -m` prints it.
    pub line: Module,
    /// Name, version and sum of the code compiled in: the replacement when it is a module,
    /// else the line's own.
    pub path: String,
    pub version: String,
    pub sum: String,
    pub purl: String,
    /// A unique key (the line's path and version).
    pub key: String,
}

impl GoModule {
    pub fn new(line: &Module) -> GoModule {
        let by_module = line.replace.as_deref().filter(|r| !is_directory(r));
        let m = by_module.unwrap_or(line);
        GoModule {
            line: line.clone(),
            path: m.path.clone(),
            version: m.version.clone(),
            sum: m.sum.clone(),
            purl: golang_purl(&m.path, &m.version),
            key: format!("{}@{}", line.path, line.version),
        }
    }

    /// The `=>` replacement when it is another module (not a directory).
    pub fn replaced_by_module(&self) -> Option<&Module> {
        self.replace().filter(|r| !is_directory(r))
    }

    /// The `=>` replacement, if any.
    pub fn replace(&self) -> Option<&Module> {
        self.line.replace.as_deref()
    }

    /// A sentence on the replacement: what a reader of the document needs to know.
    pub fn replace_note(&self) -> Option<String> {
        let r = self.replace()?;
        Some(if is_directory(r) {
            format!(
                "go.mod replaces {} {} with the directory {}: the code in the binary comes from there",
                self.line.path, self.line.version, r.path
            )
        } else {
            format!(
                "go.mod replaces {} {} with {} {}: the code in the binary is the replacement's",
                self.line.path, self.line.version, r.path, r.version
            )
        })
    }
}

/// Whether a replacement is a directory: a file system path, which has no version (Go 1.18
/// to 1.26 print none, later ones `(devel)`).
pub fn is_directory(r: &Module) -> bool {
    r.version.is_empty()
        || r.version == "(devel)"
        || r.path.starts_with("./")
        || r.path.starts_with("../")
        || r.path.starts_with('/')
        || r.path == "."
        || r.path == ".."
}

/// The Go parts of a document, from a binary's build info.
#[derive(Clone, Debug)]
pub struct GoParts {
    /// The main module; from the `path` line when the binary was built outside a module.
    pub main: GoModule,
    pub deps: Vec<GoModule>,
    /// `go1.26.0`.
    pub go_version: String,
    pub settings: Vec<(String, String)>,
}

impl GoParts {
    pub fn new(bi: &BuildInfo) -> GoParts {
        let main_line = bi.main.clone().unwrap_or_else(|| Module {
            path: bi.path.clone(),
            ..Module::default()
        });
        GoParts {
            main: GoModule::new(&main_line),
            deps: bi.deps.iter().map(GoModule::new).collect(),
            go_version: bi.go_version.clone(),
            settings: bi
                .settings
                .iter()
                .map(|s| (s.key.clone(), s.value.clone()))
                .collect(),
        }
    }

    /// `pkg:golang/stdlib@1.x.y`.
    pub fn stdlib_purl(&self) -> String {
        golang_purl(
            "stdlib",
            &stdlib_version(&self.go_version).unwrap_or_default(),
        )
    }
}

/// What an SBOM is made from.
#[derive(Clone, Debug)]
pub struct SbomInput {
    pub image: Image,
    /// `None` for a binary without Go build info (`--allow-non-go`): the SBOM then holds
    /// only the image.
    pub go: Option<GoParts>,
    /// From [`created`].
    pub created: String,
}

/// The SBOM of `input` in `format`: pretty JSON with a trailing newline.
pub fn sbom(format: Format, input: &SbomInput) -> Vec<u8> {
    let doc = match format {
        Format::Spdx => spdx::document(input),
        Format::Cyclonedx => cyclonedx::document(input),
    };
    crate::oci::json::pretty(&doc)
}

/// Why a binary's build info cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GoInfoError {
    #[error(
        "{path} carries no Go build info (not a Go binary, or one built without module support): \
         an SBOM lists what the build info says; pass --allow-non-go to make an SBOM holding \
         only the image"
    )]
    NotGo { path: PathBuf },
    #[error(transparent)]
    Exe(#[from] crate::buildinfo::exe::ExeError),
    #[error("{path}: {source}")]
    Text {
        path: PathBuf,
        source: crate::buildinfo::ModinfoError,
    },
}

/// The Go parts of the binary at `path`, read from its build info (headers and the build
/// info block only). A binary without build info is an error unless `allow_non_go`, where it
/// gives `None` and a warning on stderr.
pub fn go_parts(path: &Path, allow_non_go: bool) -> Result<Option<GoParts>, GoInfoError> {
    match crate::buildinfo::exe::read_file(path)? {
        Some(bi) => Ok(Some(GoParts::new(&bi))),
        None if allow_non_go => {
            eprintln!(
                "rko: warning: {} carries no Go build info; the SBOM lists only the image",
                path.display()
            );
            Ok(None)
        }
        None => Err(GoInfoError::NotGo {
            path: path.to_path_buf(),
        }),
    }
}

/// Build info from text: what `go version -m BINARY` prints (a `BINARY: goVERSION` line,
/// then tab-indented module lines), or the bare module lines.
pub fn parse_go_version_m(path: &Path, text: &str) -> Result<BuildInfo, GoInfoError> {
    let mut go_version = String::new();
    let mut body = text;
    let mut offset = 0;
    if let Some((first, rest)) = text.split_once('\n')
        && !first.starts_with('\t')
        && let Some((_, v)) = first.rsplit_once(": ")
        && v.starts_with("go")
    {
        go_version = v.trim().to_string();
        body = rest;
        offset = 1;
    }
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_prefix('\t').unwrap_or(l))
        .collect();
    // Line numbers in errors count from the text's first line.
    crate::buildinfo::modinfo::parse(&go_version, &lines.join("\n")).map_err(|mut source| {
        source.line += offset;
        GoInfoError::Text {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The document's UUID for `format` (SPDX namespace, CycloneDX serial number).
fn document_uuid(format: Format, image: &Image) -> String {
    uuid_for(
        &image.digest,
        format.id(),
        image.repository.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            golang_purl("github.com/Foo/bar~x/v2", "v2.0.0+incompatible"),
            "pkg:golang/github.com/Foo/bar~x/v2@v2.0.0%2Bincompatible"
        );
        assert_eq!(
            golang_purl("example.com/my lib/x@y", "(devel)"),
            "pkg:golang/example.com/my%20lib/x%40y"
        );
        let img = Image {
            digest: Sha256Digest::of(b""),
            repository: Some("127.0.0.1:5000/a b/App".into()),
            import_path: "example.com/x".into(),
        };
        assert_eq!(
            img.purl(),
            "pkg:oci/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?repository_url=127.0.0.1:5000/a%20b/App"
        );
        let img = Image {
            repository: None,
            ..img
        };
        assert_eq!(img.name(), "x");
    }

    #[test]
    fn reference_purls() {
        let d = Sha256Digest::of(b"");
        assert_eq!(
            reference_purl("localhost:5000/team/Static:v1", Some(&d)),
            format!("pkg:oci/static@{d}?repository_url=localhost:5000/team/Static&tag=v1")
        );
        assert_eq!(
            reference_purl(&format!("cgr.dev/chainguard/static@{d}"), None),
            format!("pkg:oci/static@{d}?repository_url=cgr.dev/chainguard/static")
        );
        assert_eq!(
            reference_purl("localhost:5000/x", None),
            "pkg:oci/x?repository_url=localhost:5000/x"
        );
    }

    #[test]
    fn stdlib_versions() {
        assert_eq!(stdlib_version("go1.26.0").as_deref(), Some("1.26.0"));
        assert_eq!(
            stdlib_version("go1.24.1 X:boringcrypto").as_deref(),
            Some("1.24.1")
        );
        assert_eq!(stdlib_version("devel go1.25-abc"), None);
    }

    #[test]
    fn uuid_is_v8_and_depends_on_its_inputs() {
        let d = Sha256Digest::of(b"");
        let u = uuid_for(&d, "spdx", "");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert!("89ab".contains(&u[19..20]));
        assert_eq!(u, uuid_for(&d, "spdx", ""));
        assert_ne!(u, uuid_for(&d, "cyclonedx", ""));
        assert_ne!(u, uuid_for(&Sha256Digest::of(b"x"), "spdx", ""));
    }

    #[test]
    fn times() {
        assert_eq!(created(Some(1_700_000_000), None), "2023-11-14T22:13:20Z");
        let cfg = br#"{"created":"2024-02-29T23:30:00.5-01:00"}"#;
        assert_eq!(created(None, Some(cfg)), "2024-03-01T00:30:00Z");
        let zero = br#"{"created":"0001-01-01T00:00:00Z"}"#;
        assert_eq!(created(None, Some(zero)), "1970-01-01T00:00:00Z");
        assert_eq!(created(None, None), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("2000-02-29"), None);
    }
}

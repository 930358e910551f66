//! Entry points for the fuzz targets in `fuzz/fuzz_targets/` (compiled only under
//! `--cfg fuzzing`, which cargo-fuzz passes). Each takes the fuzzer's bytes, drives one
//! parser of outside input, and panics when a property fails: parse → print → parse gives
//! the same value, serialization is stable, and the like. The targets that need crates the
//! library does not depend on (tar, flate2) get bytes back and check them themselves.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::archive::push_manifest::PushManifest;
use crate::archive::sources::PulledSources;
use crate::buildinfo::{exe, modinfo, text};
use crate::image::base::layout::read_base;
use crate::image::base::spec::BaseSpec;
use crate::importpath;
use crate::layer::binary::{BinaryLayer, app_filename, platform_of};
use crate::layer::buildinfo::{GO_BUILDINFO_MAGIC, GoMagicScanner, sniff};
use crate::layer::kodata::Tree;
use crate::layer::{Algorithm, Compression};
use crate::oci::layout::{INDEX_FILE, OCI_LAYOUT, OCI_LAYOUT_FILE, blob_path};
use crate::oci::tag::parse_tag;
use crate::oci::{ConfigFile, Descriptor, Index, Manifest, Platform, Reference, Sha256Digest};
use crate::oci::{json, media};
use crate::registry::{auth, challenge_fuzz, mirrors};

/// A scratch directory of this process, emptied for each input. It is in memory where the
/// machine has /dev/shm (the layout targets write files for every input), named by the
/// process id: a process never runs its destructors at exit here, so each new process
/// removes the directories of processes that are gone.
fn scratch(name: &str) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let base = Some(PathBuf::from("/dev/shm"))
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("rko-fuzz-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        base.join(format!("rko-fuzz-{}", std::process::id()))
    });
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Executable sniffing and Go build info: `sniff` never panics, and the streaming magic
/// scanner finds the magic exactly when a whole-buffer scan does, however the bytes are
/// cut into 16-byte-multiple pieces.
pub fn executable(data: &[u8]) {
    let kind = sniff(data);
    if let Some(k) = &kind {
        let _ = k.format.os_hint();
    }
    let naive = data
        .chunks(16)
        .any(|c| c.starts_with(GO_BUILDINFO_MAGIC.as_slice()));
    let mut whole = GoMagicScanner::default();
    whole.feed(data);
    assert_eq!(whole.found(), naive);
    let step = 16 * (1 + data.first().copied().unwrap_or(0) as usize % 8);
    let mut pieces = GoMagicScanner::default();
    for p in data.chunks(step) {
        pieces.feed(p);
    }
    assert_eq!(pieces.found(), naive, "pieces of {step}");
}

/// Go build info read from arbitrary bytes as an executable: never a panic; what is
/// found prints as `go version -m` does and serializes, and the printed module lines
/// parse back to the same build info (the quoting round-trips).
pub fn buildinfo(data: &[u8]) {
    let info = match exe::read_bytes(data) {
        Ok(Some(info)) => info,
        Ok(None) => return,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(!info.go_version.is_empty(), "an empty version is refused");
    let printed = text::go_version_m("f", &info);
    let header = format!("f: {}\n", info.go_version);
    let lines = printed
        .strip_prefix(&header)
        .unwrap_or_else(|| panic!("{printed:?} starts with {header:?}"));
    let mut module_text = String::new();
    // Not `lines()`: it would also take a `\r` before the `\n`, which a value may end with.
    for l in lines.split_terminator('\n') {
        let l = l
            .strip_prefix('\t')
            .expect("every module line starts with a tab");
        module_text.push_str(l);
        module_text.push('\n');
    }
    let again = modinfo::parse(&info.go_version, &module_text)
        .unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    // As Go's BuildInfo.String(), the printed form drops the sum of a replaced module.
    let mut expected = info.clone();
    for m in expected.main.iter_mut().chain(expected.deps.iter_mut()) {
        if m.replace.is_some() {
            m.sum.clear();
        }
    }
    assert_eq!(again, expected, "printed as {printed:?}");
    serde_json::to_string(&info).expect("build info serializes");
}

/// The platform a binary file is for, and its binary layer (gzip, one thread), for the
/// target to read back. `None` when rko refuses the file.
pub struct BinaryLayerOut {
    pub layer: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub uncompressed_size: u64,
    pub app_path: String,
}

pub fn binary_layer(data: &[u8], import_path: &str) -> Option<BinaryLayerOut> {
    let dir = scratch("binary");
    let path = dir.join("app");
    std::fs::write(&path, data).expect("writing the binary");
    let platform = platform_of(&path).expect("platform_of reads a readable file");
    let compression = Compression::new(Algorithm::Gzip, Some(1)).expect("level 1");
    let bl = BinaryLayer {
        binary: &path,
        import_path,
        name: None,
        platform: &platform,
        allow_non_go: true,
        capabilities: None,
        delve: false,
        compression: &compression,
        threads: 1,
    };
    let mut out = Vec::new();
    let d = bl.write(&mut out).ok()?;
    Some(BinaryLayerOut {
        layer: out,
        digest: d.digest.to_string(),
        diff_id: d.diff_id.to_string(),
        size: d.size,
        uncompressed_size: d.uncompressed_size,
        app_path: bl.app_path().expect("write checked it"),
    })
}

/// Writes `files` (relative paths, '/'-separated, and contents) into a directory, and
/// returns the uncompressed kodata layer tar rko makes of it. `None` when a path cannot
/// be a file there (the target only makes paths that can).
pub fn kodata_tar(files: &[(String, Vec<u8>)], mtime: u64) -> Option<Vec<u8>> {
    let dir = scratch("kodata");
    for (p, content) in files {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok()?;
        }
        std::fs::write(&path, content).ok()?;
    }
    let tree = Tree::from_dir(&dir, None, false).expect("a plain directory tree reads");
    let mut out = Vec::new();
    tree.write_tar(&mut out, mtime).expect("writing to memory");
    Some(out)
}

/// References, tags, digests and `--base` values: parse → print → parse gives the same value.
/// Also Linux capability terms (`--linux-capability`): each ';'-separated piece a term;
/// parsing never panics, and a result's attribute is 20 bytes of revision 2.
pub fn names(s: &str) {
    let terms: Vec<&str> = s.split(';').collect();
    if let Ok(Some(c)) = crate::layer::caps::FileCaps::parse(&terms) {
        let x = c.xattr();
        assert_eq!(x[3], 0x02, "{terms:?}");
        assert!(c.permitted != 0 || c.inheritable != 0);
    }
    if let Ok(r) = Reference::parse(s) {
        let shown = r.to_string();
        let again = Reference::parse(&shown)
            .unwrap_or_else(|e| panic!("{s:?} parsed, printed as {shown:?}, which fails: {e}"));
        assert_eq!(again, r, "{s:?} → {shown:?}");
        assert_eq!(again.to_string(), shown);
        let _ = (r.name(), r.target());
    }
    if let Ok(t) = parse_tag(s) {
        let shown = t.to_string();
        let again = parse_tag(&shown)
            .unwrap_or_else(|e| panic!("tag {s:?} printed as {shown:?}, which fails: {e}"));
        assert_eq!(again, t, "{s:?} → {shown:?}");
    }
    if let Ok(d) = s.parse::<Sha256Digest>() {
        assert_eq!(d.to_string(), s, "a digest prints as it was written");
    }
    if let Ok(BaseSpec::Layout {
        dir,
        digest: Some(d),
    }) = BaseSpec::parse(s)
    {
        assert_eq!(format!("{}@{d}", dir.display()), s);
    }
}

/// Platforms as flags (`os/arch[/variant]`) and as OCI JSON.
pub fn platform(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(p) = s.parse::<Platform>()
    {
        let shown = p.to_string();
        assert_eq!(shown, s, "a flag platform prints as it was written");
        assert_eq!(shown.parse::<Platform>().expect("reparses"), p);
        assert!(p.matches(&p));
    }
    if let Ok(p) = serde_json::from_slice::<Platform>(data) {
        assert!(p.matches(&p));
        let _ = p.to_string();
        round_trip(&p);
    }
}

/// Import paths and binary names: a valid import path's file name is a valid binary name.
pub fn import_path(s: &str) {
    let ip = importpath::strip_scheme(s);
    if importpath::check(ip).is_ok() {
        let name = app_filename(ip);
        importpath::check_file_name(&name)
            .unwrap_or_else(|e| panic!("{ip:?} is valid but its binary name is not: {e}"));
    }
    let _ = importpath::check_file_name(s);
}

/// Serializes `v` as rko writes image JSON, reads it back, and checks that the value and
/// the bytes are stable.
fn round_trip<T>(v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = json::go(v);
    let again: T = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "rko's JSON does not read back ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, v, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(json::go(&again), bytes);
    let pretty = json::pretty(v);
    let again: T = serde_json::from_slice(&pretty).expect("pretty JSON reads back");
    assert_eq!(&again, v);
}

/// OCI documents: index.json and indexes, manifests, configs, descriptors.
pub fn oci_json(data: &[u8]) {
    let _ = media::probe(data);
    if let Ok(v) = serde_json::from_slice::<Index>(data) {
        round_trip(&v);
        for p in ["linux/amd64", "linux/arm/v7"] {
            let _ = v.select(&p.parse().expect("a valid platform"));
        }
    }
    if let Ok(v) = serde_json::from_slice::<Manifest>(data) {
        round_trip(&v);
    }
    if let Ok(v) = serde_json::from_slice::<ConfigFile>(data) {
        round_trip(&v);
        let _ = Platform::of_config(&v).to_string();
        let mut c = v.config.clone();
        c.append_path("/ko-app");
        c.set_env("KO_DATA_PATH=/var/run/ko");
    }
    if let Ok(v) = serde_json::from_slice::<Descriptor>(data) {
        round_trip(&v);
    }
}

/// A base layout built from the input: parts separated by `\n--\n`; part 0 is index.json,
/// the others are blobs stored under their digests. In every part, `#dN` and `#sN` stand
/// for the digest and size of part N as stored (parts are filled in from the last, so a part
/// can name the ones after it), so the fuzzer can write descriptors that resolve.
pub fn base_layout(data: &[u8]) {
    let parts: Vec<&[u8]> = split(data, b"\n--\n").into_iter().take(8).collect();
    let mut stored: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    for i in (0..parts.len()).rev() {
        let known: Vec<(Sha256Digest, usize)> = stored
            .iter()
            .map(|p| (Sha256Digest::of(p), p.len()))
            .collect();
        stored[i] = subst(parts[i], &known);
    }
    let dir = scratch("layout");
    std::fs::write(dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT).expect("write");
    let mut pins = Vec::new();
    for (i, bytes) in stored.iter().enumerate() {
        if i == 0 {
            std::fs::write(dir.join(INDEX_FILE), bytes).expect("write");
        } else {
            let d = Sha256Digest::of(bytes);
            write_blob(&dir, &d, bytes);
            pins.push(d);
        }
    }
    for platform in ["linux/amd64", "linux/arm64/v8"] {
        let platform: Platform = platform.parse().expect("a valid platform");
        if let Ok(base) = read_base(&dir, None, &platform, Some("fuzz")) {
            assert!(platform.matches(&Platform::of_config(&base.config)));
        }
        for pin in pins.iter().take(2) {
            let _ = read_base(&dir, Some(pin), &platform, None);
        }
    }
}

/// `#dN` → the digest of part N, `#sN` → its size.
fn subst(p: &[u8], known: &[(Sha256Digest, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'#'
            && i + 2 < p.len()
            && matches!(p[i + 1], b'd' | b's')
            && p[i + 2].is_ascii_digit()
            && let Some((d, n)) = known.get((p[i + 2] - b'0') as usize)
        {
            match p[i + 1] {
                b'd' => out.extend_from_slice(d.to_string().as_bytes()),
                _ => out.extend_from_slice(n.to_string().as_bytes()),
            }
            i += 3;
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    out
}

fn write_blob(dir: &Path, d: &Sha256Digest, bytes: &[u8]) {
    let path = blob_path(dir, d);
    std::fs::create_dir_all(path.parent().expect("blobs/sha256")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

/// A `WWW-Authenticate` challenge.
pub fn challenge(s: &str) {
    challenge_fuzz::challenge(s);
}

/// A token service's answer: the first byte picks the status, the second whether rko had
/// credentials, the rest is the body. A token rko accepts is never empty.
pub fn token(data: &[u8]) {
    let (status, had, body) = match data {
        [s, h, body @ ..] => {
            let status = [200, 200, 200, 401, 403, 404, 500, 201][*s as usize % 8];
            (status, h & 1 == 1, body)
        }
        _ => return,
    };
    if let Some(t) = challenge_fuzz::token(status, had, body) {
        assert_eq!(status, 200);
        assert!(!t.is_empty(), "an empty token was accepted: {body:?}");
    }
}

/// A docker `config.json` or podman `auth.json`.
pub fn auth_config(data: &[u8]) {
    auth::fuzz_config(data);
}

/// A push manifest or `rko-sources.json`: parse → write → parse gives the same value.
pub fn push_manifest(data: &[u8]) {
    if let Ok(pm) = serde_json::from_slice::<PushManifest>(data) {
        let bytes = json::pretty(&pm);
        let again: PushManifest = serde_json::from_slice(&bytes).expect("reads back");
        assert_eq!(again, pm);
    }
    if let Ok(s) = serde_json::from_slice::<PulledSources>(data) {
        let bytes = json::pretty(&s);
        let again: PulledSources = serde_json::from_slice(&bytes).expect("reads back");
        assert_eq!(again, s);
    }
}

/// A registries.conf, asked where a few references are pulled from.
pub fn registries_conf(text: &str) {
    static REFS: OnceLock<Vec<Reference>> = OnceLock::new();
    let refs = REFS.get_or_init(|| {
        let d = format!("sha256:{}", "a".repeat(64));
        [
            "alpine".to_string(),
            format!("docker.io/library/alpine@{d}"),
            "ghcr.io/team/app:v1".to_string(),
            "127.0.0.1:5000/x/y:2".to_string(),
            format!("sub.example.com:5000/a@{d}"),
        ]
        .iter()
        .map(|r| Reference::parse(r).expect("a valid reference"))
        .collect()
    });
    let flags = [("docker.io".to_string(), "flag.corp".to_string())];
    mirrors::fuzz_sources(text, &[], refs);
    mirrors::fuzz_sources(text, &flags, refs);
}

/// A `.ko.yaml`: parsing never panics; an error names the file and a line of the text (or
/// the one past its end); every warning's line is in the text; a parsed config printed
/// canonically (`KoConfig::to_yaml`) reads back as the same config with no warnings; and
/// every flag and ldflag of it, and each line of the input, expands as a template or
/// fails with an error, without panicking.
pub fn koyaml(text: &str) {
    use crate::koconfig::template::{Data, expand};
    use crate::koconfig::{self, ConfigError, git::GitInfo};
    let path = Path::new("dir/.ko.yaml");
    // The text's lines by YAML's line breaks (\r\n, \r, \n), and the one past its end,
    // where the parser reports an error at the end of a text without a final break.
    let lines = text.replace("\r\n", "\n").matches(['\r', '\n']).count() + 2;
    let env: std::collections::BTreeMap<String, String> = [("A", "1"), ("LDFLAGS", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let git = || GitInfo {
        branch: "main".into(),
        tag: "v1".into(),
        short_commit: "abc".into(),
        full_commit: "abcdef".into(),
        commit_date: 0,
        dirty: false,
    };
    let go_env = || Ok(env.clone());
    let data = Data {
        env: &env,
        git: &git,
        go_env: &go_env,
        date: 1_700_000_000,
    };
    for line in text.lines() {
        let _ = expand(line, &data).map_err(|e| assert!(!e.to_string().is_empty()));
    }
    let (config, warnings) = match koconfig::parse(text, path) {
        Ok(ok) => ok,
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("dir/.ko.yaml:"), "{m}");
            match e {
                ConfigError::Yaml { line, .. }
                | ConfigError::Shape { line, .. }
                | ConfigError::Duplicate { line, .. } => {
                    assert!((1..=lines).contains(&line), "line {line} of {lines}: {m}")
                }
                other => panic!("parsing text gave a file error: {other}"),
            }
            return;
        }
    };
    for w in &warnings {
        assert!((1..=lines).contains(&w.line), "{w:?} of {lines}");
    }
    let printed = config.to_yaml();
    let (back, again) = koconfig::parse(&printed, path)
        .unwrap_or_else(|e| panic!("the canonical print does not parse: {e}\n{printed}"));
    assert!(again.is_empty(), "{again:?}\n{printed}");
    let unlined = |mut c: koconfig::KoConfig| {
        c.builds.iter_mut().for_each(|b| b.line = 0);
        c
    };
    assert_eq!(unlined(back), unlined(config.clone()), "{printed}");
    let builds = config.builds.iter();
    let templates = config
        .default_flags
        .iter()
        .chain(&config.default_ldflags)
        .chain(builds.flat_map(|b| b.flags.iter().chain(&b.ldflags)));
    for t in templates {
        let _ = expand(t, &data);
    }
}

/// YAML for `rko resolve` (files split at NUL bytes): see `resolve::fuzz`.
pub fn resolve(data: &[u8]) {
    crate::resolve::fuzz(data);
}

//! `rko build` reading ko's `.ko.yaml`: defaultBaseImage, defaultPlatforms (also `all`),
//! defaultEnv and a build entry's env and templated ldflags reach a real `go build` (the
//! binary is run and read back); KO_CONFIG_PATH finds the file elsewhere; --base and
//! --platform win over the file, KO_DEFAULTBASEIMAGE over defaultBaseImage; `--platform
//! all` builds each platform of a base index in a real registry (less its unknown/unknown
//! attestation entry); a build entry's linux_capabilities give the bytes --linux-capability
//! gives; a wrong file says where and what.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::RKO;
use common::registry::{Registry, RegistryOptions, http_request, push_two_platform_base};

const MAIN: &str = r#"package main

import "fmt"

var version, commit, date, fromEnv, goEnv string

func main() { fmt.Printf("%s|%s|%s|%s|%s|%s", version, commit, date, fromEnv, tagged, goEnv) }
"#;

/// Compiled only with `-tags koyaml`: proves GOFLAGS from .ko.yaml's env reached go build.
const TAGGED: &str = "//go:build koyaml\n\npackage main\n\nfunc init() { tagged = \"tagged\" }\n";
const UNTAGGED: &str = "package main\n\nvar tagged = \"untagged\"\n";

/// A module example.com/m with cmd/app, committed to a fresh git repository; returns the
/// short commit.
fn module(dir: &Path) -> String {
    common::write_tree(
        dir,
        &[
            ("go.mod", "module example.com/m\n\ngo 1.19\n"),
            ("cmd/app/main.go", MAIN),
            ("cmd/app/tagged.go", TAGGED),
            ("cmd/app/untagged.go", UNTAGGED),
        ],
    );
    let git = |args: &[&str]| {
        common::run_ok(
            Command::new("git")
                .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
                .args(args)
                .current_dir(dir),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "init"]);
    git(&["rev-parse", "--short", "HEAD"]).trim().to_string()
}

fn rko(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(RKO);
    cmd.args(args)
        .current_dir(dir)
        .env("GOCACHE", common::go_cache())
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GO111MODULE", "on")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("KO_CONFIG_PATH")
        .env_remove("KO_DEFAULTBASEIMAGE")
        .env_remove("KO_DEFAULTPLATFORMS")
        .env_remove("KO_DEFAULTENV")
        .env_remove("KO_DEFAULTFLAGS")
        .env_remove("KO_DEFAULTLDFLAGS")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts success; returns (stdout, stderr).
fn ok(o: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "rko failed:\n{err}");
    (String::from_utf8_lossy(&o.stdout).trim().to_string(), err)
}

fn fails(o: Output, expect: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    err
}

/// The JSON of blob `digest` in the layout.
fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    common::read_json(common::layout_blob(layout, digest))
}

/// (platform, manifest digest) of each entry of the index `digest`.
fn index_entries(layout: &Path, digest: &str) -> Vec<(String, String)> {
    blob_json(layout, digest)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let plat = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            (plat, m["digest"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The layer digests of the image `digest`.
fn layers(layout: &Path, digest: &str) -> Vec<String> {
    blob_json(layout, digest)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The image `digest`'s config "architecture".
fn architecture(layout: &Path, digest: &str) -> String {
    let m = blob_json(layout, digest);
    let cfg = blob_json(layout, m["config"]["digest"].as_str().unwrap());
    cfg["architecture"].as_str().unwrap().to_string()
}

/// /ko-app/app from the image `digest` (its last layer; gzip members, as rko compresses in
/// parallel), written to `out`.
fn extract_app(layout: &Path, digest: &str, out: &Path) -> PathBuf {
    let top = layers(layout, digest).pop().unwrap();
    let f = std::fs::File::open(common::layout_blob(layout, &top)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        // A Windows image has it at Files/ko-app/app.
        if ["ko-app/app", "Files/ko-app/app"].contains(&path.trim_start_matches('/')) {
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            std::fs::write(out, bytes).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).unwrap();
            return out.to_path_buf();
        }
    }
    panic!("no /ko-app/app in the top layer of {digest}");
}

/// Pushes the two-platform base, then an index of it with a third entry, an
/// `unknown/unknown` attestation (as Docker writes them) pointing at the amd64 image;
/// returns (the index with the attestation, also written to `dir/att-index.json`, and the
/// amd64 and arm64 base manifests' layers).
fn base_with_attestation(reg: &Registry, dir: &Path) -> (String, Vec<String>, Vec<String>) {
    push_two_platform_base(reg, dir);
    let mut index = common::read_json(dir.join("index.json"));
    let mut att = index["manifests"][0].clone();
    att["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
    att["annotations"] = serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    index["manifests"].as_array_mut().unwrap().push(att);
    let bytes = serde_json::to_vec(&index).unwrap();
    std::fs::write(dir.join("att-index.json"), &bytes).unwrap();
    let digest = format!("sha256:{}", common::sha256_hex(&bytes));
    let resp = http_request(
        &reg.host(),
        "PUT",
        &format!("/v2/base/manifests/{digest}"),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &bytes,
    )
    .unwrap();
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let base_layers = |arch: &str| -> Vec<String> {
        common::read_json(dir.join(format!("manifest.json-{arch}")))["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    (digest, base_layers("amd64"), base_layers("arm64"))
}

#[test]
fn ko_yaml_base_all_platforms_env_and_templated_ldflags_reach_the_build() {
    common::require_tools!("go", "git", "docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let short = module(dir);
    let basedir = dir.join("base-work");
    std::fs::create_dir_all(&basedir).unwrap();
    let (index, amd64_base, arm64_base) = base_with_attestation(&reg, &basedir);
    let base = format!("{}/base@{index}", reg.host());
    std::fs::write(
        dir.join(".ko.yaml"),
        format!(
            "defaultBaseImage: {base}\n\
             defaultPlatforms: [all]\n\
             defaultEnv: [GOFLAGS=-tags=unused]\n\
             builds:\n\
             - id: app\n  \
               main: ./cmd/app\n  \
               env: [GOFLAGS=-tags=koyaml, FROM_FILE=file-value]\n  \
               ldflags:\n  \
               - -X main.version={{{{.Env.VERSION}}}} -X main.commit={{{{.Git.ShortCommit}}}}\n  \
               - -X main.date={{{{.Date}}}} -X main.fromEnv={{{{.Env.FROM_FILE}}}}\n  \
               - -X main.goEnv=goenv:{{{{.GoEnv.GOOS}}}}/{{{{.GoEnv.GOARCH}}}}/{{{{.GoEnv.GOFLAGS}}}}/{{{{.GoEnv.GOVERSION}}}}\n"
        ),
    )
    .unwrap();
    let layout = dir.join("out");
    let env = [("VERSION", "1.2.3"), ("SOURCE_DATE_EPOCH", "1700000000")];
    let (digest, err) = ok(rko(
        dir,
        &["build", "./cmd/app", "--layout", layout.to_str().unwrap()],
        &env,
    ));
    assert!(
        err.contains("using build config app for example.com/m/cmd/app"),
        "{err}"
    );

    // `all`: the base index's two platforms, in its order, not its attestation entry.
    let entries = index_entries(&layout, &digest);
    let plats: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    // Each image is on the base's image for its platform.
    for ((_, image), base_layers) in entries.iter().zip([&amd64_base, &arm64_base]) {
        let ls = layers(&layout, image);
        assert_eq!(&ls[..base_layers.len()], &base_layers[..], "{image}");
    }
    assert_eq!(architecture(&layout, &entries[1].1), "arm64");

    // The amd64 binary runs: the templates were expanded (env, git, SOURCE_DATE_EPOCH's
    // date), and the build's env replaced defaultEnv and reached go build (-tags koyaml).
    let app = extract_app(&layout, &entries[0].1, &dir.join("app-amd64"));
    let out = common::run_ok(&mut Command::new(&app));
    // {{.GoEnv.*}}: `go env`, with the build's own GOOS, GOARCH and GOFLAGS over it, as ko.
    let go_version = common::run_ok(Command::new("go").args(["env", "GOVERSION"]));
    let go_version = go_version.trim();
    assert_eq!(
        out,
        format!(
            "1.2.3|{short}|2023-11-14T22:13:20Z|file-value|tagged|goenv:linux/amd64/-tags=koyaml/{go_version}"
        )
    );
    // The arm64 binary is arm64 and carries the same values.
    let arm = extract_app(&layout, &entries[1].1, &dir.join("app-arm64"));
    let info = common::run_ok(Command::new(RKO).arg("buildinfo").arg(&arm));
    assert!(info.contains("GOARCH=arm64"), "{info}");
    assert!(info.contains("-tags=koyaml"), "{info}");
    let bytes = std::fs::read(&arm).unwrap();
    let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(has("2023-11-14T22:13:20Z") && has("file-value") && has(&short));
    assert!(has(&format!("goenv:linux/arm64/-tags=koyaml/{go_version}")));
    // Windows from source, on scratch: GOOS too is the platform's in {{.GoEnv}}, and the
    // image is ko's Windows image.
    let win = dir.join("win");
    let (w, _) = ok(rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--platform",
            "windows/amd64",
            "--base",
            "scratch",
            "--layout",
            win.to_str().unwrap(),
        ],
        &env,
    ));
    let pe = std::fs::read(extract_app(&win, &w, &dir.join("app.exe"))).unwrap();
    assert!(pe.starts_with(b"MZ"));
    let want = format!("goenv:windows/amd64/-tags=koyaml/{go_version}");
    assert!(
        pe.windows(want.len()).any(|w| w == want.as_bytes()),
        "{want}"
    );
    let config = blob_json(
        &win,
        blob_json(&win, &w)["config"]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([r"C:\ko-app\app"])
    );

    // --platform on the command line wins over defaultPlatforms: one image, arm64, still
    // on the file's base.
    let (one, _) = ok(rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--platform",
            "linux/arm64",
            "--layout",
            dir.join("one").to_str().unwrap(),
        ],
        &env,
    ));
    assert_eq!(one, entries[1].1);

    // By tag: resolved once (the digest to pin printed once), every platform's base taken
    // from that one index.
    let resp = http_request(
        &reg.host(),
        "PUT",
        "/v2/base/manifests/att",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &std::fs::read(basedir.join("att-index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(resp.status, 201);
    let tagged = format!("{}/base:att", reg.host());
    let by_tag = dir.join("by-tag");
    let (d, err) = ok(rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--base",
            &tagged,
            "--layout",
            by_tag.to_str().unwrap(),
        ],
        &env,
    ));
    assert_eq!(
        err.matches(&format!("resolved to {index}; pin it as"))
            .count(),
        1,
        "{err}"
    );
    let plats: Vec<String> = index_entries(&by_tag, &d)
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);

    // A missing .Env variable is ko's error too, named.
    fails(
        rko(dir, &["build", "./cmd/app"], &[("SOURCE_DATE_EPOCH", "1")]),
        &["{{.Env.VERSION}} names an environment variable that is not set"],
    );
}

#[test]
fn ko_config_path_and_precedence_of_flags_and_env() {
    common::require_tools!("go", "git");
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    module(dir);
    // The config lives elsewhere; KO_CONFIG_PATH names its directory, or the file itself.
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join(".ko.yaml"),
        "defaultBaseImage: scratch\ndefaultPlatforms: linux/arm64\n\
         defaultLdflags: -X main.version=from-file\n",
    )
    .unwrap();
    let build = |args: &[&str], env: &[(&str, &str)]| {
        let layout = dir.join(format!(
            "l{}",
            common::sha256_hex(format!("{args:?}{env:?}").as_bytes())
        ));
        let mut all = vec!["build", "./cmd/app", "--layout", layout.to_str().unwrap()];
        all.extend(args);
        let (digest, _) = ok(rko(dir, &all, env));
        (layout, digest)
    };
    let conf_s = conf.to_str().unwrap().to_string();
    let file_s = conf.join(".ko.yaml").to_str().unwrap().to_string();
    let (l, by_dir) = build(&[], &[("KO_CONFIG_PATH", &conf_s)]);
    // scratch: kodata and the binary only; the file's platform.
    assert_eq!(layers(&l, &by_dir).len(), 2);
    assert_eq!(architecture(&l, &by_dir), "arm64");
    let arm = extract_app(&l, &by_dir, &dir.join("arm"));
    let info = common::run_ok(Command::new(RKO).arg("buildinfo").arg(&arm));
    assert!(info.contains("GOARCH=arm64"), "{info}");
    let (_, by_file) = build(&[], &[("KO_CONFIG_PATH", &file_s)]);
    assert_eq!(by_file, by_dir);
    // `all` on a base that is one image (this arm64 image, as a layout) builds its one
    // platform, as ko does: an image, not an index.
    let single = format!("{}@{by_dir}", l.display());
    let (l2, on_single) = build(&["--base", &single, "--platform", "all"], &[]);
    assert_eq!(architecture(&l2, &on_single), "arm64");
    assert_eq!(layers(&l2, &on_single)[..2], layers(&l, &by_dir)[..]);

    // Without KO_CONFIG_PATH the working directory has no .ko.yaml: static, linux/amd64.
    let (l, plain) = build(&[], &[]);
    assert_eq!(architecture(&l, &plain), "amd64");
    assert!(layers(&l, &plain).len() > 2);
    let app = extract_app(&l, &plain, &dir.join("plain"));
    assert!(common::run_ok(&mut Command::new(&app)).starts_with("|"));

    // --base and --platform win over the file: the same image as with no file at all.
    let (_, flags) = build(
        &["--base", "static", "--platform", "linux/amd64"],
        &[("KO_CONFIG_PATH", &conf_s)],
    );
    assert_ne!(flags, plain, "the file's ldflags still apply");
    let (l, flags_only_base) = build(
        &["--platform", "linux/amd64"],
        &[("KO_CONFIG_PATH", &conf_s)],
    );
    assert_eq!(
        layers(&l, &flags_only_base).len(),
        2,
        "scratch from the file"
    );
    let app = extract_app(&l, &flags_only_base, &dir.join("amd"));
    assert!(common::run_ok(&mut Command::new(&app)).starts_with("from-file|"));

    // KO_DEFAULTBASEIMAGE wins over defaultBaseImage, as in ko (viper's KO_ env).
    let (_, by_env) = build(
        &["--platform", "linux/amd64"],
        &[
            ("KO_CONFIG_PATH", &conf_s),
            ("KO_DEFAULTBASEIMAGE", "static"),
        ],
    );
    assert_eq!(by_env, flags);

    // viper's KO_ environment is over the file's lists too (KO_DEFAULTPLATFORMS,
    // KO_DEFAULTLDFLAGS, …: white-space separated), and applies with no file at all.
    let (l, env_lists) = build(
        &[],
        &[
            ("KO_CONFIG_PATH", &conf_s),
            ("KO_DEFAULTPLATFORMS", "linux/amd64"),
            (
                "KO_DEFAULTLDFLAGS",
                "-X main.version=from-env  -X main.commit=env-commit",
            ),
        ],
    );
    assert_eq!(architecture(&l, &env_lists), "amd64");
    let app = extract_app(&l, &env_lists, &dir.join("env-lists"));
    let out = common::run_ok(&mut Command::new(&app));
    assert!(out.starts_with("from-env|env-commit|"), "{out}");
    let (l, env_only) = build(&[], &[("KO_DEFAULTPLATFORMS", "linux/arm64")]);
    assert_eq!(architecture(&l, &env_only), "arm64");
    // A bad value is blamed on the variable, not on a file.
    fails(
        rko(
            dir,
            &["build", "./cmd/app"],
            &[("KO_DEFAULTPLATFORMS", "linux")],
        ),
        &["$KO_DEFAULTPLATFORMS: "],
    );

    // The file in the working directory is found without KO_CONFIG_PATH.
    std::fs::copy(conf.join(".ko.yaml"), dir.join(".ko.yaml")).unwrap();
    let (_, in_cwd) = build(&[], &[]);
    assert_eq!(in_cwd, by_dir);
}

#[test]
fn a_wrong_ko_yaml_says_where_and_what() {
    common::require_tools!("go", "git");
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    module(dir);
    let cfg = dir.join(".ko.yaml");
    let cfg_s = cfg.display().to_string();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "./cmd/app"];
        args.extend(extra);
        rko(dir, &args, &[])
    };
    let build_bin = |bin: &Path, layout: &Path| {
        let args = [
            "build",
            bin.to_str().unwrap(),
            "--import-path",
            "example.com/m/cmd/app",
            "--layout",
            layout.to_str().unwrap(),
        ];
        rko(dir, &args, &[])
    };

    // An unknown key: a warning naming file, line and key; the build goes on.
    std::fs::write(
        &cfg,
        "defaultBaseImage: static\ndefaultPlatfroms: [linux/arm64]\n",
    )
    .unwrap();
    let (_, err) = ok(build(&[]));
    assert!(
        err.contains(&format!("{cfg_s}:2: unknown key \"defaultPlatfroms\"")),
        "{err}"
    );

    // Malformed YAML: an error naming FILE:LINE, and nothing built.
    std::fs::write(
        &cfg,
        "defaultBaseImage: static\nbuilds:\n- main: [./cmd/app\n",
    )
    .unwrap();
    let layout = dir.join("never");
    let o = build(&["--layout", layout.to_str().unwrap()]);
    let err = fails(o, &["malformed YAML"]);
    assert!(err.contains(&format!("{cfg_s}:")), "{err}");
    assert!(!layout.exists());
    // A value of the wrong shape.
    std::fs::write(&cfg, "defaultPlatforms:\n  linux: amd64\n").unwrap();
    fails(
        build(&[]),
        &[&format!(
            "{cfg_s}:2: defaultPlatforms: expected a list of strings, found a mapping"
        )],
    );

    // A linux_capabilities term rko cannot read is named with the file and line.
    std::fs::write(
        &cfg,
        "builds:\n- id: app\n  main: ./cmd/app\n  linux_capabilities: [cap_nope]\n",
    )
    .unwrap();
    fails(
        build(&[]),
        &[&format!("{cfg_s}:2: build app: linux_capabilities")],
    );

    // An unknown template field is named.
    std::fs::write(&cfg, "defaultLdflags: [\"-X main.version={{.Git.Sha}}\"]\n").unwrap();
    fails(build(&[]), &["unknown template field .Git.Sha"]);

    // A build entry whose main does not exist fails as ko's does, naming the entry.
    std::fs::write(&cfg, "builds:\n- id: gone\n  main: ./cmd/gone\n").unwrap();
    fails(
        build(&[]),
        &[&format!("{cfg_s}:2: builds entry gone"), "does not exist"],
    );

    // A prebuilt binary takes only the base from the file; the rest is said to be unused,
    // capabilities included, never dropped silently.
    std::fs::write(
        &cfg,
        "defaultBaseImage: scratch\nbuilds:\n- main: ./cmd/app\n  linux_capabilities: [net_admin]\n",
    )
    .unwrap();
    let bin = common::go_build(dir, "prebuilt", "package main\n\nfunc main() {}\n", "amd64");
    let layout = dir.join("prebuilt-layout");
    let (digest, err) = ok(build_bin(&bin, &layout));
    assert!(
        err.contains("do not apply to it (nor its linux_capabilities"),
        "{err}"
    );
    assert_eq!(layers(&layout, &digest).len(), 2, "scratch, from the file");

    // --platform all needs a base with a platform list.
    std::fs::remove_file(&cfg).unwrap();
    fails(
        build(&["--platform", "all"]),
        &[
            "the base is the built-in static",
            "--platform linux/amd64,linux/arm64",
        ],
    );
    // `all` is alone or not at all (a usage error, exit 2).
    let o = build(&["--platform", "all,linux/amd64"]);
    assert_eq!(o.status.code(), Some(2));
    // KO_CONFIG_PATH naming nothing is an error, as in ko.
    fails(
        rko(
            dir,
            &["build", "./cmd/app"],
            &[("KO_CONFIG_PATH", "/nonexistent/ko")],
        ),
        &["/nonexistent/ko: KO_CONFIG_PATH"],
    );
}

/// The `security.capability` xattr of /ko-app/app in the image `digest`, if any.
fn app_capability(layout: &Path, digest: &str) -> Option<Vec<u8>> {
    let top = layers(layout, digest).pop().unwrap();
    let f = std::fs::File::open(common::layout_blob(layout, &top)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches('/') != "ko-app/app" {
            continue;
        }
        let pax = e.pax_extensions().unwrap()?;
        for x in pax {
            let x = x.unwrap();
            if x.key().unwrap() == "SCHILY.xattr.security.capability" {
                return Some(x.value_bytes().to_vec());
            }
        }
        return None;
    }
    panic!("no /ko-app/app in the top layer of {digest}");
}

#[test]
fn ko_yaml_linux_capabilities_give_the_flags_bytes() {
    common::require_tools!("go", "git");
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    module(dir);
    let build = |name: &str, args: &[&str]| {
        let layout = dir.join(name);
        let mut all = vec!["build", "./cmd/app", "--layout", layout.to_str().unwrap()];
        all.extend(args);
        let (digest, err) = ok(rko(dir, &all, &[]));
        (layout, digest, err)
    };
    let (l, none, _) = build("none", &[]);
    assert_eq!(app_capability(&l, &none), None);
    let (l, by_flag, _) = build("flag", &["--linux-capability", "net_bind_service"]);
    let xattr = app_capability(&l, &by_flag).expect("a security.capability xattr");
    assert_ne!(by_flag, none);

    // The build entry's linux_capabilities: the same image as the flag gives.
    std::fs::write(
        dir.join(".ko.yaml"),
        "builds:\n- id: app\n  main: ./cmd/app\n  linux_capabilities: net_bind_service\n",
    )
    .unwrap();
    let (l, by_file, err) = build("file", &[]);
    assert!(err.contains("using build config app"), "{err}");
    assert_eq!(by_file, by_flag);
    assert_eq!(app_capability(&l, &by_file).as_deref(), Some(&xattr[..]));

    // --linux-capability wins over the file.
    std::fs::write(
        dir.join(".ko.yaml"),
        "builds:\n- id: app\n  main: ./cmd/app\n  linux_capabilities: [net_admin]\n",
    )
    .unwrap();
    let (_, file_other, _) = build("file-other", &[]);
    assert_ne!(file_other, by_flag);
    let (_, flag_wins, _) = build("flag-wins", &["--linux-capability", "net_bind_service"]);
    assert_eq!(flag_wins, by_flag);
}

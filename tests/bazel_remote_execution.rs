//! Whether rules_ko's actions can run on a remote executor, checked statically: there is no
//! REAPI worker on this machine (BuildGrid serves the cache only), so the test reads every
//! `Ko*` action Bazel registers for tests/e2e/ws (`bazel aquery --output=jsonproto`, with a
//! docker-registry on loopback for the `ko_base` repositories) and checks what a remote
//! executor would need of it; docs/remote-execution.md says why each rule matters.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::bazel::{self, Workspace};
use common::registry::{Registry, RegistryOptions};

/// One action of `bazel aquery --output=jsonproto`, its paths resolved.
#[derive(Debug)]
struct Action {
    label: String,
    mnemonic: String,
    argv: Vec<String>,
    /// Exec paths of every input (the depsets flattened).
    inputs: BTreeSet<String>,
    outputs: BTreeSet<String>,
    execution_info: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

fn key_values(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or("").to_string(),
                        kv["value"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

/// The actions of an aquery result (Bazel 4's jsonproto: artifacts name path fragments,
/// which name their parents; inputs are nested depsets of artifacts).
fn parse_aquery(json: &serde_json::Value) -> Vec<Action> {
    let table = |key: &str| -> BTreeMap<u64, &serde_json::Value> {
        json[key]
            .as_array()
            .map(|a| a.iter().map(|x| (x["id"].as_u64().unwrap(), x)).collect())
            .unwrap_or_default()
    };
    let fragments = table("pathFragments");
    let path_of = |mut id: u64| -> String {
        let mut parts = Vec::new();
        loop {
            let f = fragments[&id];
            parts.push(f["label"].as_str().unwrap().to_string());
            match f["parentId"].as_u64() {
                Some(p) => id = p,
                None => break,
            }
        }
        parts.reverse();
        parts.join("/")
    };
    let artifacts: BTreeMap<u64, String> = table("artifacts")
        .into_iter()
        .map(|(id, a)| (id, path_of(a["pathFragmentId"].as_u64().unwrap())))
        .collect();
    let depsets = table("depSetOfFiles");
    let targets: BTreeMap<u64, String> = table("targets")
        .into_iter()
        .map(|(id, t)| (id, t["label"].as_str().unwrap().to_string()))
        .collect();
    let flatten = |roots: Vec<u64>| -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = roots;
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            let d = depsets[&id];
            files.extend(
                ids(&d["directArtifactIds"])
                    .iter()
                    .map(|a| artifacts[a].clone()),
            );
            todo.extend(ids(&d["transitiveDepSetIds"]));
        }
        files
    };
    json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| Action {
            label: targets[&a["targetId"].as_u64().unwrap()].clone(),
            mnemonic: a["mnemonic"].as_str().unwrap().to_string(),
            argv: a["arguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect(),
            inputs: flatten(ids(&a["inputDepSetIds"])),
            outputs: ids(&a["outputIds"])
                .iter()
                .map(|o| artifacts[o].clone())
                .collect(),
            execution_info: key_values(&a["executionInfo"]),
            env: key_values(&a["environmentVariables"]),
        })
        .collect()
}

/// Why `action` could not run on a remote executor as it is (empty: it could).
///
/// `network`: whether it may ask for the network (a tarball or layout of an image on a
/// shallow base streams the base's layers from its registry). `src` is the workspace, to
/// tell source files among the arguments.
fn remote_execution_problems(action: &Action, network: bool, src: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let declared = |p: &str| {
        action.inputs.contains(p)
            || action.outputs.contains(p)
            // A directory (a base's OCI layout) whose files are declared inputs.
            || action
                .inputs
                .iter()
                .chain(&action.outputs)
                .any(|f| f.starts_with(&format!("{p}/")))
    };

    // The tool: rko from the toolchain's repository, shipped as an input.
    let tool = &action.argv[0];
    if !tool.starts_with("external/rko/") || !action.inputs.contains(tool) {
        problems.push(format!(
            "argv[0] {tool:?}: expected rko of the toolchain (@rko), a declared input"
        ));
    }

    // A push manifest records where the layer blobs will be at `bazel run` time (or reads
    // them from the remote cache then, for a lazy push): it names them without reading them.
    let recorded: BTreeSet<&str> = if action.mnemonic == "KoPushManifest" {
        action
            .argv
            .windows(2)
            .filter(|w| w[0] == "--layer")
            .filter_map(|w| w[1].split_once('=').map(|(_, blob)| blob))
            .collect()
    } else {
        BTreeSet::new()
    };

    // Every argument (each side of `A=B`, the path of `DIR@sha256:...`) that names a file is
    // a declared input or output below the execroot.
    for (i, arg) in action.argv.iter().enumerate().skip(1) {
        let parts: Vec<&str> = match arg.split_once('=') {
            // `--path-map FILE=DEST`: DEST is a path in runfiles, relative to the manifest.
            Some((file, dest)) if action.argv[i - 1] == "--path-map" => {
                if dest.starts_with('/') {
                    problems.push(format!("argument {arg:?}: an absolute path"));
                }
                vec![file]
            }
            _ => arg.split('=').collect(),
        };
        for part in parts {
            let part = part.split_once("@sha256:").map_or(part, |(path, _)| path);
            if part.starts_with('/') {
                problems.push(format!("argument {arg:?}: an absolute path"));
            } else if part.split('/').any(|c| c == "..") {
                problems.push(format!("argument {arg:?}: leaves the execroot"));
            } else if part.starts_with("bazel-out/") || part.starts_with("external/") {
                if !declared(part) && !recorded.contains(part) {
                    problems.push(format!(
                        "argument {arg:?}: {part} is neither a declared input nor an output"
                    ));
                }
            } else if part.contains('/') && src.join(part).is_file() && !declared(part) {
                problems.push(format!(
                    "argument {arg:?}: the source file {part} is not a declared input"
                ));
            }
        }
    }
    for f in action.inputs.iter().chain(&action.outputs) {
        if f.starts_with('/') || f.split('/').any(|c| c == "..") {
            problems.push(format!("input or output {f:?} is outside the execroot"));
        }
    }

    // No execution requirement that pins it to this machine; the network only where the
    // bytes live in a registry. The offline ones may run as a local persistent worker
    // (`supports-workers`, which a remote executor ignores), with RKO_FSYNC=0 as their one
    // environment variable (a build system hashes outputs; no flush to disk needed).
    let expected: BTreeSet<&str> = if network {
        BTreeSet::from(["requires-network"])
    } else {
        BTreeSet::from(["supports-workers"])
    };
    let found: BTreeSet<&str> = action.execution_info.keys().map(|k| k.as_str()).collect();
    if found != expected {
        problems.push(format!(
            "execution requirements: expected {expected:?}, found {found:?}"
        ));
    }
    // Only the network actions take the client's environment (for proxies and CAs).
    let env: BTreeMap<&str, &str> = action
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected_env = BTreeMap::from([("RKO_FSYNC", "0")]);
    if !network && env != expected_env {
        problems.push(format!(
            "environment: expected {expected_env:?}, found {env:?}"
        ));
    }
    problems
}

#[test]
fn bazel_actions_are_ready_for_remote_execution() {
    common::require_tools!("bazel", "go", "docker-registry");
    let _serial = bazel::serial();
    let reg = Registry::start(RegistryOptions::plain());
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch.path());
    let src = bazel::repo_root().join("tests/e2e/ws");
    let ws = Workspace::copy(&src, "ws");
    ws.write(
        "e2e.bzl",
        &common::e2e_bzl(&reg.host(), &reg.host(), &base_digest),
    );
    // Every package with rules_ko targets but //bad (which fails analysis on purpose), and
    // what they depend on: the images an index builds in other configurations too.
    let universe = "//cmd/... + //analysis/... + //params/... + //user_platforms/...";
    let query = format!("mnemonic(\"Ko.*\", deps({universe}))");
    let (out, _) = ws.ok(&["aquery", &query, "--output=jsonproto"]);
    let actions = parse_aquery(&common::parse_json(&out));

    let mut problems = Vec::new();
    let mut networked = BTreeSet::new();
    for a in &actions {
        // A shallow base (@e2e_base) is metadata only: its layers stay in the registry.
        let shallow = a.inputs.iter().any(|f| f.starts_with("external/e2e_base/"));
        let network = shallow && matches!(a.mnemonic.as_str(), "KoTarball" | "KoLayout");
        if network {
            networked.insert(format!("{} {}", a.mnemonic, a.label));
        }
        for p in remote_execution_problems(a, network, &ws.dir) {
            problems.push(format!("{} {}: {p}", a.mnemonic, a.label));
        }
    }
    assert!(
        problems.is_empty(),
        "rules_ko actions not ready for remote execution:\n  {}",
        problems.join("\n  ")
    );

    // The check saw every kind of action, with files of every origin.
    let mnemonics: BTreeSet<&str> = actions.iter().map(|a| a.mnemonic.as_str()).collect();
    for m in [
        "KoLayer",
        "KoImage",
        "KoIndex",
        "KoSbom",
        "KoProvenance",
        "KoTarball",
        "KoLayout",
        "KoPushManifest",
        "KoResolve",
    ] {
        assert!(mnemonics.contains(m), "no {m} action in {mnemonics:?}");
    }
    assert!(actions.len() >= 60, "{} actions", actions.len());
    let all_inputs: BTreeSet<&String> = actions.iter().flat_map(|a| &a.inputs).collect();
    for origin in [
        "external/e2e_base/",
        "external/e2e_base_eager/",
        "analysis/",
    ] {
        assert!(
            all_inputs.iter().any(|f| f.starts_with(origin)),
            "no input from {origin}"
        );
    }
    // The network is asked for exactly where a shallow base's layers are read; the eager
    // base's tarball needs none.
    assert!(
        networked.contains("KoTarball //cmd/bar:image")
            && networked.contains("KoLayout //cmd/foo:image_index"),
        "{networked:?}"
    );
    let eager = actions
        .iter()
        .find(|a| a.mnemonic == "KoTarball" && a.label == "//cmd/bar:image_eager")
        .expect("a tarball of the eager-base image");
    assert_eq!(
        eager.execution_info.keys().collect::<Vec<_>>(),
        ["supports-workers"],
        "{eager:?}"
    );
    eprintln!(
        "{} rules_ko actions checked; these may use the network: {networked:?}",
        actions.len()
    );

    // And run: in Bazel's Linux sandbox (declared inputs only in its execroot) with no
    // network by default. A shallow-base tarball stripped of `requires-network` cannot
    // reach the registry, so the sandbox does cut the network ...
    let sandboxed = [
        "--spawn_strategy=linux-sandbox",
        "--nosandbox_default_allow_network",
    ];
    let mut args = vec!["build"];
    args.extend(sandboxed);
    args.extend([
        "--modify_execution_info=KoTarball=-requires-network",
        "--output_groups=+tarball",
        "//cmd/bar:image",
    ]);
    let stderr = ws.fail(&args);
    assert!(
        stderr.contains("KoTarball //cmd/bar:image") && stderr.contains(&reg.host()),
        "expected the tarball to fail reaching {}:\n{stderr}",
        reg.host()
    );
    // ... and every rules_ko action of these targets, all output groups, runs there.
    let log = scratch.path().join("exec.json");
    let exec_log = format!("--execution_log_json_file={}", log.display());
    let mut args = vec!["build"];
    args.extend(sandboxed);
    args.extend([
        exec_log.as_str(),
        "--output_groups=+tarball,+layout,+sbom,+provenance",
        "//analysis:subject",
        "//analysis:subject.push",
        "//analysis:subject.resolve",
        "//analysis:multi",
        "//cmd/bar:image",
        "//cmd/bar:image_eager",
        "//cmd/foo:image_index.push",
    ]);
    ws.ok(&args);
    let spawns = bazel::read_execution_log(&log);
    let ko: Vec<&bazel::Spawn> = spawns
        .iter()
        .filter(|s| s.mnemonic.starts_with("Ko"))
        .collect();
    // (The failed build above left the layers and image of //cmd/bar:image built.)
    let ran: BTreeSet<&str> = ko.iter().map(|s| s.mnemonic.as_str()).collect();
    assert_eq!(ran, mnemonics, "{ko:?}");
    assert!(
        ko.iter().any(|s| s.progress == "KoTarball //cmd/bar:image"),
        "the shallow-base tarball ran with the network it asks for: {ko:?}"
    );
    let elsewhere: Vec<String> = ko
        .iter()
        .filter(|s| s.runner != "linux-sandbox")
        .map(|s| format!("{} ({})", s.progress, s.runner))
        .collect();
    assert!(elsewhere.is_empty(), "not sandboxed: {elsewhere:?}");
}

/// The check itself: each rule catches what it is for.
#[test]
fn remote_execution_check_flags_absolute_undeclared_and_local_actions() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("pkg")).unwrap();
    std::fs::write(src.path().join("pkg/data.txt"), "x").unwrap();
    let good = || Action {
        label: "//pkg:image".into(),
        mnemonic: "KoLayer".into(),
        argv: vec![
            "external/rko/rko".into(),
            "layer".into(),
            "--file".into(),
            "data.txt=pkg/data.txt".into(),
            "-o".into(),
            "bazel-out/k8-fastbuild/bin/pkg/l.tar.gz".into(),
            "--base".into(),
            "external/base/layout".into(),
        ],
        inputs: [
            "external/rko/rko",
            "pkg/data.txt",
            "external/base/layout/index.json",
        ]
        .map(String::from)
        .into(),
        outputs: ["bazel-out/k8-fastbuild/bin/pkg/l.tar.gz".to_string()].into(),
        execution_info: [("supports-workers".to_string(), "1".to_string())].into(),
        env: [("RKO_FSYNC".to_string(), "0".to_string())].into(),
    };
    assert_eq!(
        remote_execution_problems(&good(), false, src.path()),
        Vec::<String>::new()
    );
    let problems = |a: Action, network: bool| remote_execution_problems(&a, network, src.path());

    let mut a = good();
    a.argv.push("/etc/ssl/certs/ca.pem".into());
    assert!(problems(a, false)[0].contains("an absolute path"));
    let mut a = good();
    a.argv.push("--x=../outside".into());
    assert!(problems(a, false)[0].contains("leaves the execroot"));
    let mut a = good();
    a.inputs.remove("pkg/data.txt");
    assert!(problems(a, false)[0].contains("the source file pkg/data.txt is not a declared input"));
    let mut a = good();
    a.argv.push("bazel-out/k8-fastbuild/bin/other".into());
    assert!(problems(a, false)[0].contains("neither a declared input nor an output"));
    let mut a = good();
    a.argv[0] = "/usr/local/bin/rko".into();
    assert!(problems(a, false)[0].contains("rko of the toolchain"));
    let mut a = good();
    a.execution_info.insert("no-remote".into(), "1".into());
    assert!(problems(a, false)[0].contains("found {\"no-remote\", \"supports-workers\"}"));
    let mut a = good();
    a.execution_info
        .insert("requires-network".into(), "1".into());
    assert!(!problems(a, false).is_empty());
    let mut a = good();
    a.execution_info = [("requires-network".to_string(), "1".to_string())].into();
    a.env = [("HTTPS_PROXY".to_string(), "http://proxy".to_string())].into();
    assert!(problems(a, true).is_empty());
    // A push manifest names layer blobs it does not read, and runfiles destinations.
    let mut a = good();
    a.mnemonic = "KoPushManifest".into();
    a.inputs
        .insert("bazel-out/k8-fastbuild/bin/pkg/l.json".into());
    a.argv.extend(
        [
            "--layer",
            "bazel-out/k8-fastbuild/bin/pkg/l.json=bazel-out/k8-fastbuild/bin/pkg/blob.tar.gz",
            "--path-map",
            "external/base/layout=../../base/layout",
            "--path-map",
            "bazel-out/k8-fastbuild/bin/pkg/blob.tar.gz=x.files/1-blob.tar.gz",
            "--base",
            "external/base/layout@sha256:0123",
        ]
        .map(String::from),
    );
    assert_eq!(problems(a, false), Vec::<String>::new());
    // ... but any other action must declare them.
    let mut a = good();
    a.inputs
        .insert("bazel-out/k8-fastbuild/bin/pkg/l.json".into());
    a.argv.extend(
        [
            "--layer",
            "bazel-out/k8-fastbuild/bin/pkg/l.json=bazel-out/k8-fastbuild/bin/pkg/blob.tar.gz",
        ]
        .map(String::from),
    );
    assert!(problems(a, false)[0].contains("blob.tar.gz is neither"));
    let mut a = good();
    a.argv
        .extend(["--path-map", "pkg/data.txt=/abs"].map(String::from));
    assert!(problems(a, false)[0].contains("an absolute path"));
    // An action that needs the network must say so.
    assert!(!problems(good(), true).is_empty());
    let mut a = good();
    a.env.insert("PATH".into(), "/usr/bin".into());
    assert!(problems(a, false)[0].contains("environment: expected {\"RKO_FSYNC\": \"0\"}"));
}

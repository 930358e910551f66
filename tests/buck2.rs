//! The Buck2 rules (rules/buck2) evaluated against the recorded Buck2 API contract
//! (tests/buck2_contract, tests/buck2/CONTRACT.md): first that the contract enforces what
//! Buck2 enforces, then every action, sub-target and provider of the e2e workspace's and the
//! example's targets (insta snapshots), then the registered command lines run for real
//! through rko (digests equal to `rko build`'s), `buck2 run` of push and load targets from
//! another directory against a real docker-registry, and the bad-configuration messages.
//! tests/bazel.rs checks that Bazel gives rko the same arguments for the same targets.

mod buck2_contract;
mod common;

use std::path::Path;
use std::process::Command;

use buck2_contract::values::{field, provider_instance};
use buck2_contract::{
    Analysis, ArtifactData, Builder, TargetLabel, TestProject, repo_root, run_info,
};
use common::registry::{Registry, RegistryOptions};
use common::{RKO, read_json, run_ok};
use starlark::values::ValueLike;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;

fn e2e() -> TestProject {
    TestProject::new(&repo_root().join("tests/e2e/ws"), Path::new(RKO))
}

fn label(s: &str) -> TargetLabel {
    TargetLabel::parse(s, "root", "").unwrap()
}

fn analyze(p: &TestProject, target: &str) -> std::rc::Rc<Analysis> {
    let cfg = p.project.default_config().unwrap();
    p.project
        .analyze(&label(target), &cfg)
        .unwrap_or_else(|e| panic!("{target}: {e:#}"))
}

fn analysis_error(p: &TestProject, target: &str) -> String {
    let cfg = p.project.default_config().unwrap();
    match p.project.analyze(&label(target), &cfg) {
        Ok(_) => panic!("{target}: analysis succeeded, expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// A scratch project whose root cell holds `files`.
fn scratch(files: &[(&str, &str)]) -> TestProject {
    let dir = tempfile::tempdir().unwrap();
    common::write_tree(dir.path(), files);
    TestProject::new(dir.path(), Path::new(RKO))
}

// ---------------------------------------------------------------------------------------
// The contract enforces Buck2's own rules.

const RULE_PRELUDE: &str = r#"
def _two_actions(ctx: AnalysisContext, first: dict, second: dict) -> list[Provider]:
    a = ctx.actions.declare_output("a")
    b = ctx.actions.declare_output("b")
    ctx.actions.run(cmd_args("touch", a.as_output()), **first)
    ctx.actions.run(cmd_args("touch", b.as_output()), **second)
    return [DefaultInfo(default_output = a)]
"#;

fn rule_file(body: &str) -> String {
    format!("{RULE_PRELUDE}\n{body}\n")
}

#[test]
fn contract_refuses_categories_buck2_rejects() {
    for bad in ["KoLayer", "ko-layer", "ko__layer", "_ko", "1ko"] {
        let p = scratch(&[
            (
                "defs.bzl",
                &rule_file(&format!(
                    "def _impl(ctx):\n    out = ctx.actions.declare_output(\"o\")\n    ctx.actions.run(cmd_args(\"touch\", out.as_output()), category = \"{bad}\")\n    return [DefaultInfo(default_output = out)]\nr = rule(impl = _impl, attrs = {{}})\n"
                )),
            ),
            ("BUCK", "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"),
        ]);
        let e = analysis_error(&p, "root//:t");
        assert!(
            e.contains(&format!("category \"{bad}\" does not match")),
            "{bad}: {e}"
        );
    }
    let p = scratch(&[
        (
            "defs.bzl",
            "def _impl(ctx):\n    out = ctx.actions.declare_output(\"o\")\n    ctx.actions.run(cmd_args(\"touch\", out.as_output()), category = \"ko_layer2_x\")\n    return [DefaultInfo(default_output = out)]\nr = rule(impl = _impl, attrs = {})\n",
        ),
        ("BUCK", "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"),
    ]);
    analyze(&p, "root//:t");
}

#[test]
fn contract_requires_a_unique_identifier_on_every_use_of_a_reused_category() {
    let cases = [
        (
            "{\"category\": \"c\"}",
            "{\"category\": \"c\"}",
            Some("requires an identifier on every one"),
        ),
        (
            "{\"category\": \"c\", \"identifier\": \"x\"}",
            "{\"category\": \"c\"}",
            Some("requires an identifier on every one"),
        ),
        (
            "{\"category\": \"c\"}",
            "{\"category\": \"c\", \"identifier\": \"x\"}",
            Some("requires an identifier on every one"),
        ),
        (
            "{\"category\": \"c\", \"identifier\": \"x\"}",
            "{\"category\": \"c\", \"identifier\": \"x\"}",
            Some("is used twice"),
        ),
        (
            "{\"category\": \"c\", \"identifier\": \"x\"}",
            "{\"category\": \"c\", \"identifier\": \"y\"}",
            None,
        ),
        ("{\"category\": \"c\"}", "{\"category\": \"d\"}", None),
    ];
    for (first, second, error) in cases {
        let p = scratch(&[
            (
                "defs.bzl",
                &rule_file(&format!(
                    "def _impl(ctx):\n    return _two_actions(ctx, {first}, {second})\nr = rule(impl = _impl, attrs = {{}})\n"
                )),
            ),
            ("BUCK", "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"),
        ]);
        match error {
            Some(msg) => {
                let e = analysis_error(&p, "root//:t");
                assert!(e.contains(msg), "{first} then {second}: {e}");
            }
            None => {
                analyze(&p, "root//:t");
            }
        }
    }
}

#[test]
fn contract_binds_every_declared_output_exactly_once() {
    let unbound = "def _impl(ctx):\n    a = ctx.actions.declare_output(\"a\")\n    ctx.actions.declare_output(\"never\")\n    ctx.actions.run(cmd_args(\"touch\", a.as_output()), category = \"c\")\n    return [DefaultInfo(default_output = a)]\nr = rule(impl = _impl, attrs = {})\n";
    let twice = "def _impl(ctx):\n    a = ctx.actions.declare_output(\"a\")\n    ctx.actions.run(cmd_args(\"touch\", a.as_output()), category = \"c\", identifier = \"1\")\n    ctx.actions.run(cmd_args(\"touch\", a.as_output()), category = \"c\", identifier = \"2\")\n    return [DefaultInfo(default_output = a)]\nr = rule(impl = _impl, attrs = {})\n";
    let foreign = "def _impl(ctx):\n    a = ctx.actions.declare_output(\"a\")\n    ctx.actions.run(cmd_args(\"touch\", a.as_output(), ctx.attrs.dep[DefaultInfo].default_outputs[0].as_output()), category = \"c\")\n    return [DefaultInfo(default_output = a)]\nr = rule(impl = _impl, attrs = {\"dep\": attrs.dep(default = \"//:other\")})\ndef _o(ctx):\n    o = ctx.actions.write(\"o\", \"x\")\n    return [DefaultInfo(default_output = o)]\nother = rule(impl = _o, attrs = {})\n";
    let no_output = "def _impl(ctx):\n    ctx.actions.run(cmd_args(\"true\"), category = \"c\")\n    return [DefaultInfo()]\nr = rule(impl = _impl, attrs = {})\n";
    for (body, msg) in [
        (
            unbound,
            "declared output `never` is not bound by any action",
        ),
        (twice, "output `a` is bound by a second action"),
        (foreign, "which this target did not declare"),
        (no_output, "has no outputs"),
    ] {
        // Only `foreign` defines `other`, the target whose output it tries to bind.
        let build = if body.contains("other = rule") {
            "load(\":defs.bzl\", \"other\", \"r\")\nr(name = \"t\")\nother(name = \"other\")\n"
        } else {
            "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"
        };
        let p = scratch(&[("defs.bzl", body), ("BUCK", build)]);
        let e = analysis_error(&p, "root//:t");
        assert!(e.contains(msg), "expected {msg:?} in: {e}");
    }
}

#[test]
fn contract_artifacts_have_no_path_and_no_plus() {
    for (expr, msg) in [
        ("a.path", "has no attribute `path`"),
        ("\"--out=\" + a", "not supported"),
        ("a + \"x\"", "not supported"),
        ("ctx.attrs.src.path", "has no attribute `path`"),
    ] {
        let p = scratch(&[
            ("src.txt", "x"),
            (
                "defs.bzl",
                &format!(
                    "def _impl(ctx):\n    a = ctx.actions.write(\"o\", \"x\")\n    x = {expr}\n    return [DefaultInfo(default_output = a)]\nr = rule(impl = _impl, attrs = {{\"src\": attrs.source()}})\n"
                ),
            ),
            (
                "BUCK",
                "load(\":defs.bzl\", \"r\")\nr(name = \"t\", src = \"src.txt\")\n",
            ),
        ]);
        let e = analysis_error(&p, "root//:t");
        assert!(e.contains(msg), "{expr}: expected {msg:?} in: {e}");
    }
    // What Buck2 offers instead: cmd_args(format=, delimiter=) and the artifact fields.
    let p = scratch(&[
        ("src.txt", "x"),
        (
            "defs.bzl",
            "def _impl(ctx):\n    a = ctx.actions.declare_output(\"dir/o.json\")\n    ctx.actions.run(cmd_args(\"cp\", ctx.attrs.src, cmd_args(a.as_output(), format = \"{}\"), cmd_args(\"k\", ctx.attrs.src, delimiter = \"=\")), category = \"c\")\n    return [DefaultInfo(default_output = a), RunInfo(args = cmd_args(a.basename, a.extension, a.short_path, ctx.attrs.src.short_path, str(ctx.attrs.src.is_source)))]\nr = rule(impl = _impl, attrs = {\"src\": attrs.source()})\n",
        ),
        (
            "BUCK",
            "load(\":defs.bzl\", \"r\")\nr(name = \"t\", src = \"src.txt\")\n",
        ),
    ]);
    let a = analyze(&p, "root//:t");
    let argv = a.actions[0].argv();
    assert_eq!(argv[1], "src.txt");
    assert!(
        argv[2].starts_with("buck-out/v2/gen/root/") && argv[2].ends_with("/__t__/dir/o.json"),
        "{argv:?}"
    );
    assert_eq!(argv[3], "k=src.txt");
    let (run, _) = run_info(&p.project, &a).unwrap();
    assert_eq!(run, ["o.json", ".json", "dir/o.json", "src.txt", "True"]);
}

#[test]
fn contract_toolchain_deps_point_only_to_toolchain_rules() {
    let defs = "def _t(ctx):\n    return [DefaultInfo()]\ntc = rule(impl = _t, attrs = {}, is_toolchain_rule = True)\nplain = rule(impl = _t, attrs = {})\n\
                def _u(ctx):\n    return [DefaultInfo()]\nuses_toolchain = rule(impl = _u, attrs = {\"_tc\": attrs.default_only(attrs.toolchain_dep(default = \"//:the_tc\"))})\n\
                uses_plain_toolchain = rule(impl = _u, attrs = {\"_tc\": attrs.default_only(attrs.toolchain_dep(default = \"//:the_plain\"))})\n\
                uses_dep = rule(impl = _u, attrs = {\"d\": attrs.dep()})\n";
    let build = "load(\":defs.bzl\", \"plain\", \"tc\", \"uses_dep\", \"uses_plain_toolchain\", \"uses_toolchain\")\ntc(name = \"the_tc\")\nplain(name = \"the_plain\")\n\
                 uses_toolchain(name = \"good\")\nuses_plain_toolchain(name = \"bad_toolchain\")\nuses_dep(name = \"bad_dep\", d = \":the_tc\")\nuses_dep(name = \"good_dep\", d = \":the_plain\")\n";
    let p = scratch(&[("defs.bzl", defs), ("BUCK", build)]);
    analyze(&p, "root//:good");
    analyze(&p, "root//:good_dep");
    let e = analysis_error(&p, "root//:bad_toolchain");
    assert!(e.contains("is not a toolchain rule"), "{e}");
    let e = analysis_error(&p, "root//:bad_dep");
    assert!(
        e.contains("is a toolchain rule; Buck2 refuses a toolchain rule as a plain dependency"),
        "{e}"
    );
}

#[test]
fn contract_does_not_re_export_loaded_names() {
    let p = scratch(&[
        ("a.bzl", "X = 1\n"),
        ("b.bzl", "load(\":a.bzl\", \"X\")\nY = X\n"),
        (
            "defs.bzl",
            "load(\":b.bzl\", \"X\")\ndef _i(ctx):\n    return [DefaultInfo()]\nr = rule(impl = _i, attrs = {})\n",
        ),
        ("BUCK", "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"),
    ]);
    let e = analysis_error(&p, "root//:t");
    assert!(e.contains("Module symbol `X` is not exported"), "{e}");
    // Binding it anew is how a module hands a name on (rules/buck2/defs.bzl does).
    let p = scratch(&[
        ("a.bzl", "X = 1\n"),
        ("b.bzl", "load(\":a.bzl\", \"X\")\nY = X\n"),
        (
            "defs.bzl",
            "load(\":b.bzl\", \"Y\")\ndef _i(ctx):\n    return [DefaultInfo()]\nr = rule(impl = _i, attrs = {})\n",
        ),
        ("BUCK", "load(\":defs.bzl\", \"r\")\nr(name = \"t\")\n"),
    ]);
    analyze(&p, "root//:t");
}

#[test]
fn contract_records_buck2s_dialect() {
    // f-strings, keyword-only arguments, top-level statements and runtime-checked types.
    let p = scratch(&[
        (
            "defs.bzl",
            "N = 2\nfor i in range(N):\n    N += i\ndef f(a: int, *, b: str) -> str:\n    return f\"{a}{b}\"\nV = f(1, b = \"x\")\ndef _i(ctx: AnalysisContext) -> list[Provider]:\n    return [DefaultInfo()]\nr = rule(impl = _i, attrs = {})\nbad = rule(impl = lambda ctx: [DefaultInfo(), 1], attrs = {})\n",
        ),
        (
            "BUCK",
            "load(\":defs.bzl\", \"V\", \"bad\", \"r\")\nr(name = V)\nbad(name = \"bad\")\n",
        ),
    ]);
    analyze(&p, "root//:1x");
    let e = analysis_error(&p, "root//:bad");
    assert!(e.contains("returned 1 in its providers"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Every action, sub-target and provider of the targets.

/// A readable account of an analysis: providers, sub-targets, and each action's category,
/// identifier, flags, argv, inputs and outputs. Configuration hashes are the contract's
/// (sha256 of the constraint values), shown as-is.
fn describe(a: &Analysis) -> String {
    let mut s = format!("{} ({}) in {}\n", a.label, a.rule, a.config.name);
    a.with_providers(|ps| {
        for p in ListRef::from_value(ps).unwrap().iter() {
            let (pc, fields) = provider_instance(p).unwrap();
            s.push_str(&format!("provider {}\n", pc.name()));
            if pc.name() == "DefaultInfo" {
                let paths = |v: starlark::values::Value| -> Vec<String> {
                    ListRef::from_value(v)
                        .map(|l| {
                            l.iter()
                                .map(|x| {
                                    x.downcast_ref::<buck2_contract::values::Artifact>()
                                        .unwrap()
                                        .0
                                        .path
                                        .clone()
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                s.push_str(&format!(
                    "  default_outputs {:?}\n",
                    paths(field(p, "default_outputs").unwrap())
                ));
                s.push_str(&format!(
                    "  other_outputs {:?}\n",
                    paths(field(p, "other_outputs").unwrap())
                ));
                if let Some(d) = DictRef::from_value(field(p, "sub_targets").unwrap()) {
                    for (k, v) in d.iter() {
                        let default = ListRef::from_value(v)
                            .unwrap()
                            .iter()
                            .find_map(|x| field(x, "default_outputs"))
                            .unwrap();
                        s.push_str(&format!(
                            "  [{}] {:?}\n",
                            k.unpack_str().unwrap(),
                            paths(default)
                        ));
                    }
                }
            } else if pc.name() == "RunInfo" {
                let args = field(p, "args").unwrap();
                let c = args
                    .downcast_ref::<buck2_contract::values::CmdArgs>()
                    .unwrap();
                s.push_str(&format!("  args {:?}\n", c.render(None)));
                let (inputs, _) = c.artifacts();
                s.push_str(&format!(
                    "  inputs {:?}\n",
                    inputs.iter().map(|i| i.path.as_str()).collect::<Vec<_>>()
                ));
            } else {
                for (k, v) in fields {
                    if v.unpack_str().is_some() || v.is_none() {
                        s.push_str(&format!("  {k} {}\n", v.to_repr()));
                    }
                }
            }
        }
    });
    for act in &a.actions {
        let flags = match &act.kind {
            buck2_contract::ActionKind::Run {
                local_only,
                allow_cache_upload,
                env,
                ..
            } => format!(
                "{}{}{}",
                if *local_only { " local_only" } else { "" },
                if *allow_cache_upload {
                    " allow_cache_upload"
                } else {
                    ""
                },
                if env.is_empty() {
                    String::new()
                } else {
                    format!(" env={env:?}")
                }
            ),
            other => format!(" {other:?}"),
        };
        s.push_str(&format!(
            "action {} {:?}{flags}\n",
            act.category, act.identifier
        ));
        s.push_str(&format!("  argv {:?}\n", act.argv()));
        s.push_str(&format!(
            "  inputs {:?}\n",
            act.inputs
                .iter()
                .map(|i| i.path.as_str())
                .collect::<Vec<_>>()
        ));
        s.push_str(&format!(
            "  outputs {:?}\n",
            act.outputs
                .iter()
                .map(|i| i.path.as_str())
                .collect::<Vec<_>>()
        ));
    }
    s
}

#[test]
fn buck2_targets_register_the_expected_actions_sub_targets_and_providers() {
    let p = e2e();
    for t in [
        "root//analysis:subject",
        "root//analysis:subject.push",
        "root//analysis:subject.resolve",
        "root//analysis:multi",
        "root//base:e2e",
        "root//base:e2e_eager",
        "root//base:e2e_mirrored",
        "root//cmd/foo:image",
        "root//cmd/foo:image_index",
        "root//cmd/foo:image.push",
        "root//cmd/foo:image_index.push",
        "root//cmd/foo:image.load",
        "root//cmd/foo:image_sc",
        "root//cmd/foo:image_sc.push",
        "root//cmd/foo:image_sc_index.push",
        "root//cmd/foo:image.push_lazy",
        "root//cmd/bar:image_multi.push",
        "root//cmd/bar:image_eager",
        "root//cmd/bar:image_debug",
    ] {
        let a = analyze(&p, t);
        let name = t.trim_start_matches("root//").replace([':', '/', '.'], "_");
        insta::assert_snapshot!(name, describe(&a));
    }
}

#[test]
fn buck2_metadata_actions_never_read_layer_bytes_and_network_actions_are_local() {
    let p = e2e();
    for t in [
        "root//cmd/foo:image",
        "root//cmd/foo:image_index",
        "root//cmd/foo:image.push",
        "root//cmd/foo:image_index.push",
        "root//base:e2e_eager",
        "root//base:e2e_mirrored",
    ] {
        let a = analyze(&p, t);
        for act in &a.actions {
            let buck2_contract::ActionKind::Run { local_only, .. } = &act.kind else {
                continue;
            };
            let blobs: Vec<&str> = act
                .inputs
                .iter()
                .map(|i| i.path.as_str())
                .filter(|p| p.ends_with(".tar.gz") || p.ends_with(".tar.zst"))
                .collect();
            match act.category.as_str() {
                "ko_image" | "ko_index" | "ko_push_manifest" => {
                    assert!(
                        blobs.is_empty(),
                        "{t} {} reads layer bytes: {blobs:?}",
                        act.category
                    );
                    assert!(
                        !local_only,
                        "{t} {}: metadata actions stay remote-cacheable",
                        act.category
                    );
                }
                // The base is shallow: its layers stream from the registry.
                "ko_tarball" | "ko_layout" | "ko_pull" => {
                    assert!(local_only, "{t} {} needs the network", act.category)
                }
                _ => {}
            }
        }
    }
    // On an eager base, tarball and layout read the pulled layers: no network.
    let a = analyze(&p, "root//cmd/bar:image_eager");
    for act in a
        .actions
        .iter()
        .filter(|a| a.category == "ko_tarball" || a.category == "ko_layout")
    {
        let buck2_contract::ActionKind::Run { local_only, .. } = &act.kind else {
            unreachable!()
        };
        assert!(!local_only, "{}", act.category);
    }
}

// ---------------------------------------------------------------------------------------
// The command lines, run through the real rko.

fn builder() -> Builder {
    Builder::with_go_cache(&common::go_cache())
}

fn digest_file(p: &TestProject, a: &ArtifactData) -> String {
    std::fs::read_to_string(p.root().join(&a.path))
        .unwrap()
        .trim()
        .to_string()
}

fn sub_target(a: &Analysis, name: &str) -> ArtifactData {
    a.with_providers(|ps| {
        let d = ListRef::from_value(ps)
            .unwrap()
            .iter()
            .find(|p| provider_instance(*p).unwrap().0.name() == "DefaultInfo")
            .unwrap();
        let subs = DictRef::from_value(field(d, "sub_targets").unwrap()).unwrap();
        let v = subs
            .get_str(name)
            .unwrap_or_else(|| panic!("no sub-target [{name}]"));
        let info = ListRef::from_value(v).unwrap().iter().next().unwrap();
        let outs = ListRef::from_value(field(info, "default_outputs").unwrap()).unwrap();
        outs.iter()
            .next()
            .unwrap()
            .downcast_ref::<buck2_contract::values::Artifact>()
            .unwrap()
            .0
            .clone()
    })
}

#[test]
fn buck2_actions_run_through_rko_and_give_rko_builds_digest() {
    common::require_tools!("go", "skopeo");
    let p = e2e();
    let subject = analyze(&p, "root//analysis:subject");
    let mut b = builder();
    let digest = sub_target(&subject, "digest");
    b.build(
        &p.project,
        &[
            digest.clone(),
            sub_target(&subject, "tarball"),
            sub_target(&subject, "layout"),
        ],
    )
    .unwrap();
    let built = digest_file(&p, &digest);
    let ran: Vec<String> = b
        .ran
        .iter()
        .map(|(c, i)| {
            format!(
                "{c}{}",
                i.as_ref().map(|i| format!(":{i}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            "ko_layer:tar-0",
            "ko_layer:kodata",
            "go_build",
            "ko_layer:binary",
            "ko_image",
            "ko_tarball",
            "ko_layout"
        ]
    );

    // rko build from the same binary and kodata gives the same image.
    let bin = p
        .root()
        .join(&analyze(&p, "root//cmd/bar:bar").actions[0].outputs[0].path);
    let by_rko_build = common::rko_build_analysis_subject(&bin, &p.root().join("analysis"));
    assert_eq!(built, by_rko_build);
    // The layout and tarball hold that image, as skopeo reads them.
    let layout = p.root().join(&sub_target(&subject, "layout").path);
    let inspected =
        run_ok(Command::new("skopeo").args(["inspect", &format!("oci:{}", layout.display())]));
    assert_eq!(common::parse_json(&inspected)["Digest"], built.as_str());
    let tarball = p.root().join(&sub_target(&subject, "tarball").path);
    let inspected = run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tarball.display())]),
    );
    assert_eq!(common::parse_json(&inspected)["Digest"], built.as_str());

    // An index: the Go toolchain's select() on the CPU constraint builds an arm64 binary
    // for the arm64 image (rko layer binary refuses a binary of another architecture).
    let multi = analyze(&p, "root//analysis:multi");
    let index_digest = sub_target(&multi, "digest");
    let index = sub_target(&multi, "index");
    b.build(&p.project, &[index_digest.clone(), index.clone()])
        .unwrap();
    let index_json = read_json(p.root().join(&index.path));
    let platforms = common::index_platforms(&index_json);
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert!(
        b.ran.iter().filter(|(c, _)| c == "go_build").count() >= 2,
        "{:?}",
        b.ran
    );
}

#[test]
fn buck2_toolchain_from_an_http_file_gives_the_same_image_and_refuses_a_wrong_sha256() {
    common::require_tools!("go");
    let rko = std::fs::read(RKO).unwrap();
    let sha = common::sha256_hex(&rko);
    let toolchain = |sha: &str| {
        format!(
            "http_file(name = \"rko_bin\", urls = [\"file://{RKO}\"], sha256 = \"{sha}\", executable = True)\n"
        )
    };
    let reference = {
        let p = e2e();
        let a = analyze(&p, "root//analysis:subject");
        let d = sub_target(&a, "digest");
        builder()
            .build(&p.project, std::slice::from_ref(&d))
            .unwrap();
        digest_file(&p, &d)
    };
    for (sha, ok) in [(sha.clone(), true), ("0".repeat(64), false)] {
        let p = e2e();
        let tc = p.root().join("toolchains/BUCK");
        let local = "rko_local_binary(\n    name = \"rko_bin\",\n    src = \"rko\",\n)\n";
        let text = std::fs::read_to_string(&tc).unwrap();
        assert!(
            text.contains(local),
            "tests/buck2/toolchains/BUCK declares rko_bin as expected"
        );
        std::fs::write(&tc, text.replace(local, &toolchain(&sha))).unwrap();
        let a = analyze(&p, "root//analysis:subject");
        let d = sub_target(&a, "digest");
        let r = builder().build(&p.project, std::slice::from_ref(&d));
        if ok {
            r.unwrap();
            assert_eq!(digest_file(&p, &d), reference);
        } else {
            let e = format!("{:#}", r.unwrap_err());
            let real = common::sha256_hex(&rko);
            assert!(
                e.contains(&format!("sha256 mismatch: expected {sha}, got {real}")),
                "{e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bad configuration: the same messages as the Bazel rules.

#[test]
fn buck2_bad_configuration_fails_with_the_rule_messages_bazel_gives() {
    let p = e2e();
    // Buck2 checks the base's platforms at analysis, with no pull: no registry needed.
    let lacks = (
        "//bad/base_lacks_platform:index",
        "ko_image",
        "attribute 'base': expected a base with an image for linux/arm64, found root//base:e2e_eager with only linux/amd64. Add \"linux/arm64\" to the ko_base's platforms",
    );
    for (target, rule, message) in common::BAD_CONFIGURATION.iter().copied().chain([lacks]) {
        let e = analysis_error(&p, &format!("root{target}"));
        assert!(
            e.contains(message),
            "{target}: expected {message:?} in:\n{e}"
        );
        assert!(
            e.contains(&format!("{rule} root//")) || rule == "ko_image_index",
            "{target}: the message names the rule and target:\n{e}"
        );
    }
}

#[test]
fn buck2_bad_configuration_the_bazel_rules_catch_by_attribute_kind() {
    // Bazel refuses these by provider or platform constraints; the Buck2 rules say so
    // themselves. A macOS target configuration (no platform rules_ko knows):
    let p = e2e();
    let mut constraints = p.project.default_config().unwrap().constraints;
    constraints.insert(
        "prelude//os/constraints:os".into(),
        "prelude//os/constraints:os[macos]".into(),
    );
    let macos = buck2_contract::Config::new(constraints);
    let e = format!(
        "{:#}",
        p.project
            .analyze(&label("root//analysis:subject"), &macos)
            .unwrap_err()
    );
    assert!(
        e.contains("ko_image root//analysis:subject: attribute 'platform': expected a target platform rules_ko knows"),
        "{e}"
    );
    // ko_push and ko_load of something that is not an image.
    std::fs::create_dir_all(p.root().join("notimage")).unwrap();
    std::fs::write(
        p.root().join("notimage/BUCK"),
        "load(\"@rules_ko//rules/buck2:defs.bzl\", \"ko_load\", \"ko_push\")\n\
         ko_push(name = \"push\", image = \"//cmd/bar:bar\", repository = \"example.com/x\")\n\
         ko_load(name = \"load\", image = \"//cmd/bar:bar\", repo_tags = [\"x:y\"])\n",
    )
    .unwrap();
    for t in ["push", "load"] {
        let e = analysis_error(&p, &format!("root//notimage:{t}"));
        assert!(
            e.contains(
                "attribute 'image': expected a ko_image or ko_image_index, found root//cmd/bar:bar"
            ),
            "{t}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// buck2 run: push and load from another directory, against a real registry.

/// Points the e2e workspace's e2e.bzl at `reg` and its base.
fn set_registry(p: &TestProject, reg: &Registry, base_digest: &str) {
    let host = reg.host();
    std::fs::write(
        p.root().join("e2e.bzl"),
        common::e2e_bzl(&host, &host, base_digest),
    )
    .unwrap();
}

/// `buck2 run TARGET -- ARGS` from `cwd`: builds what the RunInfo needs, then runs it there.
fn buck2_run(p: &TestProject, b: &mut Builder, target: &str, args: &[&str], cwd: &Path) -> String {
    let a = analyze(p, target);
    let (argv, needs) = run_info(&p.project, &a).unwrap();
    b.build(&p.project, &needs).unwrap();
    run_ok(
        Command::new(&argv[0])
            .args(&argv[1..])
            .args(args)
            .current_dir(cwd)
            .env("BUCK_RUN_BUILD_ID", "test"),
    )
}

#[test]
fn buck2_run_pushes_and_loads_from_another_directory() {
    common::require_tools!("docker-registry", "go", "skopeo", "docker");
    let reg = Registry::start(RegistryOptions::plain());
    let scratch_dir = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch_dir.path());
    let p = e2e();
    set_registry(&p, &reg, &base_digest);
    let elsewhere = tempfile::tempdir().unwrap();
    let mut b = builder();

    // The image on the pulled base (ko_pull ran locally, manifests and configs only).
    let image = analyze(&p, "root//cmd/foo:image");
    let digest = sub_target(&image, "digest");
    b.build(&p.project, std::slice::from_ref(&digest)).unwrap();
    let built = digest_file(&p, &digest);
    // Only what the digest needs: no tarball, no layout.
    assert!(
        !b.ran
            .iter()
            .any(|(c, _)| c == "ko_tarball" || c == "ko_layout"),
        "{:?}",
        b.ran
    );
    assert!(
        b.ran
            .iter()
            .any(|(c, i)| c == "ko_pull" && i.as_deref() == Some("metadata")),
        "{:?}",
        b.ran
    );

    let out = buck2_run(
        &p,
        &mut b,
        "root//cmd/foo:image.push",
        &["--image-refs", "refs.json"],
        elsewhere.path(),
    );
    assert!(
        out.contains(&format!("{}/foo@{built}", reg.host())),
        "{out}"
    );
    assert!(
        elsewhere.path().join("refs.json").exists(),
        "--image-refs resolves against the caller's directory"
    );
    let inspected = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/foo:latest", reg.host()),
    ]));
    assert_eq!(common::parse_json(&inspected)["Digest"], built.as_str());

    // The index, by ko's bare naming, to another repository given at run time.
    let index = analyze(&p, "root//cmd/foo:image_index");
    let index_digest = sub_target(&index, "digest");
    b.build(&p.project, std::slice::from_ref(&index_digest))
        .unwrap();
    let repo = format!("{}/elsewhere", reg.host());
    let out = buck2_run(
        &p,
        &mut b,
        "root//cmd/foo:image_index.push",
        &["--repository", &repo],
        elsewhere.path(),
    );
    let index_built = digest_file(&p, &index_digest);
    assert!(out.contains(&format!("{repo}@{index_built}")), "{out}");
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{repo}:multi"),
    ]));
    assert_eq!(
        common::parse_json(&raw)["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // ko_load streams the image (base layers from the registry) into docker.
    let out = buck2_run(
        &p,
        &mut b,
        "root//cmd/foo:image.load",
        &[],
        elsewhere.path(),
    );
    let _ = out;
    let ran = run_ok(Command::new("docker").args(["run", "--rm", "rko-e2e/foo:latest"]));
    assert!(ran.contains("foo linux/amd64 says"), "{ran}");
    let _ = Command::new("docker")
        .args(["rmi", "-f", "rko-e2e/foo:latest"])
        .output();
}

/// A lazy push (`ko_push(lazy = True)`): the run's inputs hold no layer rules_ko made, so
/// `buck2 run` materializes only metadata, and rko streams the layers from the cache. Here the
/// layers are put into the cache (an HTTP one, nginx; or a REAPI CAS, BuildGrid) and removed
/// from buck-out, as deferred materialization on remote execution leaves them only in the CAS.
#[test]
fn buck2_lazy_push_materializes_no_layer_and_reads_them_from_the_cache() {
    common::require_tools!("docker-registry", "go", "skopeo", "nginx");
    let cache = common::bazel::CacheServer::start();
    let put = |file: &Path, digest: &str| {
        let bytes = std::fs::read(file).unwrap();
        let r = common::registry::http_request(
            &format!("127.0.0.1:{}", cache.port),
            "PUT",
            &format!("/cas/{}", digest.trim_start_matches("sha256:")),
            &[],
            &bytes,
        )
        .unwrap();
        assert!(
            matches!(r.status, 201 | 204),
            "PUT to the cache: {}",
            r.status
        );
    };
    lazy_push(&cache.url(), &put);
}

/// The same from a REAPI CAS, as Buck2's remote execution keeps outputs: BuildGrid, read
/// with `--remote-cache grpc://…`.
#[test]
fn buck2_lazy_push_reads_layers_from_a_reapi_cas() {
    common::require_tools!("docker-registry", "go", "skopeo", "pyvenv:bgd");
    let cas = common::buildgrid::BuildGrid::start();
    let put = |file: &Path, _: &str| cas.put("", &[file.to_path_buf()]);
    lazy_push(&cas.url(), &put);
}

/// Builds the lazy push's inputs, moves the layers from buck-out into the cache with `put`
/// (file, digest), and runs the push without and with `--remote-cache URL`.
fn lazy_push(url: &str, put: &dyn Fn(&Path, &str)) {
    let reg = Registry::start(RegistryOptions::plain());
    let scratch_dir = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&reg, scratch_dir.path());
    let p = e2e();
    set_registry(&p, &reg, &base_digest);
    let mut b = builder();

    let push = analyze(&p, "root//cmd/foo:image.push_lazy");
    let (argv, needs) = run_info(&p.project, &push).unwrap();
    let layers: Vec<&ArtifactData> = needs
        .iter()
        .filter(|a| a.path.ends_with(".tar.gz") || a.path.ends_with(".tar.zst"))
        .collect();
    assert!(layers.is_empty(), "a lazy push needs no layer: {layers:?}");
    b.build(&p.project, &needs).unwrap();

    // The layers exist only in the cache (PUT /cas/<hex>, as Bazel and bazel-remote store
    // them), not on disk.
    let image = analyze(&p, "root//cmd/foo:image");
    let mut moved = 0;
    for act in image.actions.iter().filter(|a| a.category == "ko_layer") {
        let blob = act
            .outputs
            .iter()
            .find(|o| o.path.ends_with(".tar.gz"))
            .unwrap();
        let desc = act
            .outputs
            .iter()
            .find(|o| o.path.ends_with(".json"))
            .unwrap();
        let digest = read_json(p.root().join(&desc.path))["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let file = p.root().join(&blob.path);
        put(&file, &digest);
        std::fs::remove_file(&file).unwrap();
        moved += 1;
    }
    assert_eq!(moved, 2, "the kodata and binary layers");
    let digest = sub_target(&image, "digest");
    b.build(&p.project, std::slice::from_ref(&digest)).unwrap();
    let built = digest_file(&p, &digest);

    // Without a cache the push is refused before anything is sent, naming the way out.
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(scratch_dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--remote-cache"), "{err}");
    assert_eq!(reg.tag_digest("lazy", "lazy"), None);

    // With it, the layers stream from the cache into the registry.
    let out = run_ok(
        Command::new(&argv[0])
            .args(&argv[1..])
            .args(["--remote-cache", url])
            .current_dir(scratch_dir.path()),
    );
    assert!(
        out.contains(&format!("{}/lazy@{built}", reg.host())),
        "{out}"
    );
    let inspected = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/lazy:lazy", reg.host()),
    ]));
    assert_eq!(common::parse_json(&inspected)["Digest"], built.as_str());
}

// ---------------------------------------------------------------------------------------
// The example project users copy (examples/buck2).

fn example() -> TestProject {
    TestProject::new(&repo_root().join("examples/buck2"), Path::new(RKO))
}

#[test]
fn buck2_example_builds_its_images_index_and_runs_its_push_and_load() {
    common::require_tools!("go", "docker-registry", "docker");
    let p = example();
    for t in [
        "root//cmd/foo:image",
        "root//cmd/foo:image_index",
        "root//cmd/foo:image.push",
        "root//cmd/bar:image.push",
        "root//cmd/foo:image.load",
    ] {
        let a = analyze(&p, t);
        let name = format!(
            "example_{}",
            t.trim_start_matches("root//").replace([':', '/', '.'], "_")
        );
        insta::assert_snapshot!(name, describe(&a));
    }
    // foo and bar on the one base: the base's layer is the same blob in both.
    let mut b = builder();
    let foo = analyze(&p, "root//cmd/foo:image");
    let bar = analyze(&p, "root//cmd/bar:image");
    let index = analyze(&p, "root//cmd/foo:image_index");
    let wanted = [
        sub_target(&foo, "manifest"),
        sub_target(&bar, "manifest"),
        sub_target(&index, "index"),
        sub_target(&foo, "tarball"),
    ];
    b.build(&p.project, &wanted).unwrap();
    let layers = |m: &ArtifactData| {
        read_json(p.root().join(&m.path))["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(layers(&wanted[0]), layers(&wanted[1]));

    // buck2 run of the push targets, from another directory, to a registry on loopback.
    let reg = Registry::start(RegistryOptions::plain());
    let elsewhere = tempfile::tempdir().unwrap();
    let repo = format!("{}/buck2/foo", reg.host());
    let out = buck2_run(
        &p,
        &mut b,
        "root//cmd/foo:image.push",
        &["--repository", &repo],
        elsewhere.path(),
    );
    let digest = std::fs::read_to_string(p.root().join(sub_target(&foo, "digest").path)).unwrap();
    assert!(out.contains(&format!("{repo}@{}", digest.trim())), "{out}");
    let bar_push = analyze(&p, "root//cmd/bar:image.push");
    let repo = format!("{}/buck2/bar", reg.host());
    let out = buck2_run(
        &p,
        &mut b,
        "root//cmd/bar:image.push",
        &["--repository", &repo],
        elsewhere.path(),
    );
    assert!(out.contains(&format!("{repo}@sha256:")), "{out}");
    // The manifest's own repository follows ko's preserve-import-paths naming.
    let manifest = read_json(p.root().join(&bar_push.actions[0].outputs[0].path));
    assert_eq!(
        manifest["repository"],
        "localhost:5000/buck2/example.com/buck2/cmd/bar"
    );

    // buck2 run //cmd/foo:image.load, then docker runs it.
    buck2_run(
        &p,
        &mut b,
        "root//cmd/foo:image.load",
        &[],
        elsewhere.path(),
    );
    let ran = run_ok(Command::new("docker").args(["run", "--rm", "buck2/foo:latest"]));
    let _ = Command::new("docker")
        .args(["rmi", "-f", "buck2/foo:latest"])
        .output();
    assert!(ran.contains("Hello"), "{ran}");
}

#[test]
fn buck2_index_configures_every_platform_rules_ko_knows() {
    // Each platform's configuration has the prelude's (or rules_ko's own) OS and CPU
    // constraint: the image reads its platform from it, and the Go toolchain's select()
    // gives the matching GOARCH.
    let p = e2e();
    let platforms = [
        // (platform, GOARCH, the prelude's CPU value, rules_ko's own CPU value)
        ("linux/amd64", "amd64", "x86_64", "none"),
        ("linux/arm64", "arm64", "arm64", "none"),
        ("linux/arm/v7", "arm", "arm32", "none"),
        ("linux/386", "386", "x86_32", "none"),
        ("linux/riscv64", "riscv64", "riscv64", "none"),
        ("linux/ppc64le", "ppc64le", "unspecified", "ppc64le"),
        ("linux/s390x", "s390x", "unspecified", "s390x"),
        ("windows/amd64", "amd64", "x86_64", "none"),
        ("windows/arm64", "arm64", "arm64", "none"),
    ];
    let list = platforms
        .iter()
        .map(|(p, _, _, _)| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::create_dir_all(p.root().join("all")).unwrap();
    std::fs::write(
        p.root().join("all/BUCK"),
        format!("load(\"@rules_ko//rules/buck2:defs.bzl\", \"ko_image\")\nko_image(name = \"all\", binary = \"//cmd/bar:bar\", importpath = \"example.com/e2e/cmd/bar\", platforms = [{list}])\n"),
    )
    .unwrap();
    let index = analyze(&p, "root//all:all");
    let images = index.actions[0].argv();
    assert_eq!(
        images.iter().filter(|a| *a == "--image").count(),
        platforms.len()
    );
    for a in p.project.analyses() {
        if a.label.to_string() != "root//all:all.image" {
            continue;
        }
        let binary = a
            .actions
            .iter()
            .find(|x| x.identifier.as_deref() == Some("binary"))
            .unwrap()
            .argv();
        let platform = &binary[binary.iter().position(|x| x == "--platform").unwrap() + 1];
        let (_, goarch, cpu, own) = platforms.iter().find(|(p, _, _, _)| p == platform).unwrap();
        assert_eq!(
            a.config.constraints["prelude//cpu/constraints:cpu"],
            format!("prelude//cpu/constraints:cpu[{cpu}]"),
            "{platform}"
        );
        assert_eq!(
            a.config.constraints["rules_ko//rules/buck2:cpu"],
            format!("rules_ko//rules/buck2:cpu[{own}]"),
            "{platform}"
        );
        let os = platform.split('/').next().unwrap();
        assert_eq!(
            a.config.constraints["prelude//os/constraints:os"],
            format!("prelude//os/constraints:os[{os}]"),
            "{platform}"
        );
        // Only a windows image's kodata action names its platform (ko's Windows layout);
        // the Linux ones are alike, so one cache entry serves every Linux platform.
        let kodata = a
            .actions
            .iter()
            .find(|x| x.identifier.as_deref() == Some("kodata"))
            .unwrap()
            .argv();
        assert_eq!(
            kodata.iter().any(|x| x == "--platform"),
            os == "windows",
            "{platform}: {kodata:?}"
        );
        let bar = p
            .project
            .analyze(&label("root//cmd/bar:bar"), &a.config)
            .unwrap();
        // bash -c SCRIPT -- OUT MODULE GOOS GOARCH GOARM SRC...
        let go = bar.actions[0].argv();
        assert_eq!(
            go[6..9],
            [os, goarch, if *goarch == "arm" { "7" } else { "" }],
            "{platform}"
        );
    }
}

/// A user's value starting with '@' goes on Buck2's command line with the '@' doubled
/// (rko reads `@x` as a parameter file, `@@x` as `@x`), and reaches the config intact.
#[test]
fn buck2_user_values_starting_with_at_reach_the_config_intact() {
    common::require_tools!("go");
    let p = e2e();
    std::fs::create_dir_all(p.root().join("at/kodata")).unwrap();
    std::fs::write(p.root().join("at/kodata/@x.txt"), "at\n").unwrap();
    std::fs::write(
        p.root().join("at/BUCK"),
        "load(\"@rules_ko//rules/buck2:defs.bzl\", \"ko_image\")\n\
         ko_image(name = \"image\", binary = \"//cmd/bar:bar\", \
         importpath = \"example.com/e2e/cmd/bar\", cmd = [\"@literal\", \"@@two\", \"x@\"], \
         env = {\"AT\": \"@home\"}, user = \"@65532\", kodata = [\"kodata/@x.txt\"])\n",
    )
    .unwrap();
    let a = analyze(&p, "root//at:image");
    let image = a.actions.iter().find(|x| x.category == "ko_image").unwrap();
    let argv = image.argv();
    let after = |flag: &str| -> Vec<&str> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    };
    assert_eq!(after("--cmd"), ["@@literal", "@@@two", "x@"]);
    assert_eq!(after("--user"), ["@@65532"]);
    let config = image
        .outputs
        .iter()
        .find(|o| o.short_path.ends_with(".config.json"))
        .unwrap()
        .clone();
    builder()
        .build(&p.project, std::slice::from_ref(&config))
        .unwrap();
    let config = read_json(p.root().join(&config.path));
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["@literal", "@@two", "x@"])
    );
    assert_eq!(config["config"]["User"], "@65532");
    // A kodata file whose name starts with '@' is that file in the layer.
    let kodata = a
        .actions
        .iter()
        .find(|x| x.identifier.as_deref() == Some("kodata"))
        .unwrap();
    let blob = kodata
        .outputs
        .iter()
        .find(|o| o.short_path.ends_with(".tar.gz"))
        .unwrap();
    let f = std::fs::File::open(p.root().join(&blob.path)).unwrap();
    let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "/var/run/ko/@x.txt"), "{names:?}");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "AT=@home")
    );
}

#[test]
fn contract_checks_provider_fields_against_their_types() {
    let defs = "P = provider(fields = {\"a\": provider_field(Artifact), \"b\": provider_field(list[str] | None, default = None)})\n\
                def _i(ctx):\n    return [DefaultInfo(), P(a = ctx.attrs.a, b = ctx.attrs.b)]\n\
                def _art(ctx):\n    o = ctx.actions.write(\"o\", \"x\")\n    return [DefaultInfo(default_output = o), P(a = o, b = [\"x\"])]\n\
                r = rule(impl = _i, attrs = {\"a\": attrs.string(), \"b\": attrs.option(attrs.list(attrs.string()), default = None)})\n\
                ok = rule(impl = _art, attrs = {})\n";
    let p = scratch(&[
        ("defs.bzl", defs),
        (
            "BUCK",
            "load(\":defs.bzl\", \"ok\", \"r\")\nr(name = \"t\", a = \"not an artifact\")\nok(name = \"good\")\n",
        ),
    ]);
    let e = analysis_error(&p, "root//:t");
    assert!(
        e.contains("P: value `\"not an artifact\"` of type `string` does not match the type `artifact` of field `a`"),
        "{e}"
    );
    analyze(&p, "root//:good");
}

#[test]
fn contract_resolves_select_as_buck2_does() {
    // Keys are targets giving ConfigurationInfo (a constraint value or an alias of one); an
    // unset setting has its constraint's default value; two matching keys where neither
    // refines the other are ambiguous; no match and no DEFAULT is an error.
    let defs = "def _i(ctx):\n    return [DefaultInfo(), RunInfo(args = cmd_args(ctx.attrs.v))]\nr = rule(impl = _i, attrs = {\"v\": attrs.string()})\n";
    let build = "load(\":defs.bzl\", \"r\")\n\
        constraint(name = \"color\", values = [\"red\", \"blue\"], default = \"blue\")\n\
        r(name = \"cpu\", v = select({\"prelude//cpu/constraints:arm64\": \"arm\", \"prelude//cpu/constraints:x86_64\": \"x86\"}))\n\
        r(name = \"default_value\", v = select({\":color[blue]\": \"blue\", \"DEFAULT\": \"other\"}))\n\
        r(name = \"ambiguous\", v = select({\"prelude//cpu/constraints:x86_64\": \"a\", \"prelude//os/constraints:linux\": \"b\"}))\n\
        r(name = \"no_match\", v = select({\"prelude//cpu/constraints:arm64\": \"a\"}))\n\
        r(name = \"plain\", v = \"x\")\n\
        r(name = \"not_a_key\", v = select({\":plain\": \"a\", \"DEFAULT\": \"b\"}))\n";
    let p = scratch(&[("defs.bzl", defs), ("BUCK", build)]);
    let value = |t: &str| run_info(&p.project, &analyze(&p, t)).unwrap().0;
    assert_eq!(value("root//:cpu"), ["x86"]);
    assert_eq!(value("root//:default_value"), ["blue"]);
    let e = analysis_error(&p, "root//:ambiguous");
    assert!(e.contains("select() is ambiguous"), "{e}");
    let e = analysis_error(&p, "root//:no_match");
    assert!(
        e.contains("select() has no branch for the configuration"),
        "{e}"
    );
    let e = analysis_error(&p, "root//:not_a_key");
    assert!(e.contains("gives no ConfigurationInfo"), "{e}");
}

#[test]
fn buck2_example_cells_resolve_inside_the_project_root() {
    // From examples/buck2, Buck2's project root is this checkout (its .buckconfig is the
    // highest), and the example's `rules_ko = ../..` is the checkout itself.
    let example = repo_root().join("examples/buck2");
    let (root, cells) = buck2_contract::config::resolve_cells(&example).unwrap();
    assert_eq!(root, repo_root());
    assert_eq!(cells["rules_ko"], Path::new(""));
    assert_eq!(cells["example"], Path::new("examples/buck2"));
    assert_eq!(cells["toolchains"], Path::new("examples/buck2/toolchains"));
    // The example copied on its own (without a .buckconfig above it) would name a cell
    // above its project root, which Buck2 refuses.
    let alone = tempfile::tempdir().unwrap();
    buck2_contract::copy_tree(&example, &alone.path().join("example"));
    let e = buck2_contract::config::resolve_cells(&alone.path().join("example")).unwrap_err();
    assert!(
        format!("{e:#}").contains("leaves the project root"),
        "{e:#}"
    );
}

// ---------------------------------------------------------------------------------------
// ko_resolve and ko_push_all (examples/buck2/deploy): a resolve action that reads the YAML
// and the push manifests only, and `buck2 run` of one `rko push` of every manifest.

/// The paths of DefaultInfo's default outputs.
fn default_paths(a: &Analysis) -> Vec<String> {
    buck2_contract::engine::default_outputs(a, None)
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect()
}

/// The RunInfo's argv and every artifact it names (hidden ones too), paths as declared.
fn run_info_paths(a: &Analysis) -> (Vec<String>, Vec<String>) {
    a.with_providers(|ps| {
        let run = ListRef::from_value(ps)
            .unwrap()
            .iter()
            .find(|p| provider_instance(*p).unwrap().0.name() == "RunInfo")
            .unwrap_or_else(|| panic!("{} has no RunInfo", a.label));
        let args = field(run, "args").unwrap();
        let c = args
            .downcast_ref::<buck2_contract::values::CmdArgs>()
            .unwrap();
        let (inputs, _) = c.artifacts();
        (c.render(None), inputs.into_iter().map(|i| i.path).collect())
    })
}

fn sorted_set(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = v.into_iter().collect();
    set.into_iter().collect()
}

#[test]
fn buck2_ko_resolve_reads_only_yaml_and_manifests_and_its_run_pushes_every_image_then_prints() {
    let p = example();
    let prod = analyze(&p, "root//deploy:prod");
    let push_all = analyze(&p, "root//deploy:push_all");
    insta::assert_snapshot!("example_deploy_prod", describe(&prod));
    insta::assert_snapshot!("example_deploy_push_all", describe(&push_all));
    let foo = analyze(&p, "root//cmd/foo:image.push");
    let bar = analyze(&p, "root//cmd/bar:image.push");
    let one = |a: &Analysis| -> String {
        let paths = default_paths(a);
        assert_eq!(paths.len(), 1, "{}: {paths:?}", a.label);
        paths[0].clone()
    };
    let (foo_manifest, bar_manifest) = (&one(&foo), &one(&bar));
    // ko_push hands its manifest and import path on in KoPushInfo.
    for (a, manifest, importpath) in [
        (&foo, foo_manifest, "example.com/buck2/cmd/foo"),
        (&bar, bar_manifest, "example.com/buck2/cmd/bar"),
    ] {
        a.with_providers(|ps| {
            let info = ListRef::from_value(ps)
                .unwrap()
                .iter()
                .find(|p| provider_instance(*p).unwrap().0.name() == "KoPushInfo")
                .expect("ko_push returns KoPushInfo");
            assert_eq!(
                field(info, "importpath").unwrap().unpack_str(),
                Some(importpath)
            );
            let m = field(info, "manifest").unwrap();
            let m = m
                .downcast_ref::<buck2_contract::values::Artifact>()
                .unwrap();
            assert_eq!(&m.0.path, manifest);
        });
    }

    // One action: rko resolve over the YAML files in order and the manifests, in order.
    assert_eq!(prod.actions.len(), 1);
    let act = &prod.actions[0];
    assert_eq!(act.category, "ko_resolve");
    assert_eq!(act.identifier, None);
    let buck2_contract::ActionKind::Run { local_only, .. } = &act.kind else {
        panic!("ko_resolve is not a run action")
    };
    assert!(!local_only, "resolving needs no network: remote-cacheable");
    assert_eq!(act.outputs.len(), 1);
    let yaml = &act.outputs[0];
    assert!(
        yaml.path.ends_with("/deploy/__prod__/prod.yaml"),
        "{}",
        yaml.path
    );
    assert_eq!(
        act.argv(),
        [
            "toolchains/rko",
            "resolve",
            "-f",
            "deploy/foo.yaml",
            "-f",
            "deploy/bar.yaml",
            "--image",
            foo_manifest.as_str(),
            "--image",
            bar_manifest.as_str(),
            "-o",
            yaml.path.as_str(),
        ]
    );
    // Its inputs: rko, the YAML and the push manifests; no descriptor, no layer.
    assert_eq!(
        sorted_set(act.inputs.iter().map(|i| i.path.clone())),
        sorted_set(
            [
                "toolchains/rko",
                "deploy/foo.yaml",
                "deploy/bar.yaml",
                foo_manifest.as_str(),
                bar_manifest.as_str(),
            ]
            .map(String::from)
        )
    );
    assert_eq!(default_paths(&prod), [yaml.path.as_str()]);

    // buck2 run: one rko push of both manifests, then --print of the YAML; every blob of
    // both pushes is a hidden input, so Buck2 materializes it first.
    let (foo_args, foo_inputs) = run_info_paths(&foo);
    let (_, bar_inputs) = run_info_paths(&bar);
    let blobs: Vec<String> = foo_inputs
        .iter()
        .chain(&bar_inputs)
        .filter(|i| i.ends_with(".tar.gz"))
        .cloned()
        .collect();
    assert_eq!(blobs.len(), 4, "{blobs:?}");
    let (args, inputs) = run_info_paths(&prod);
    assert_eq!(
        args,
        [
            "toolchains/rko",
            "push",
            "--manifest",
            foo_manifest.as_str(),
            "--manifest",
            bar_manifest.as_str(),
            "--print",
            yaml.path.as_str(),
        ]
    );
    let both = sorted_set(foo_inputs.iter().chain(&bar_inputs).cloned());
    let mut with_yaml = both.clone();
    with_yaml.push(yaml.path.clone());
    assert_eq!(sorted_set(inputs), sorted_set(with_yaml));

    // ko_push_all: the same push without --print; its default outputs are the manifests.
    assert!(push_all.actions.is_empty(), "{:?}", push_all.actions);
    assert_eq!(
        default_paths(&push_all),
        [foo_manifest.clone(), bar_manifest.clone()]
    );
    let (args, inputs) = run_info_paths(&push_all);
    assert_eq!(
        args,
        [
            "toolchains/rko",
            "push",
            "--manifest",
            foo_manifest.as_str(),
            "--manifest",
            bar_manifest.as_str(),
        ]
    );
    assert_eq!(sorted_set(inputs), both);
    // A ko_push alone still runs `rko push --manifest M`.
    assert_eq!(
        foo_args,
        [
            "toolchains/rko",
            "push",
            "--manifest",
            foo_manifest.as_str()
        ]
    );
}

#[test]
fn buck2_example_deploy_resolves_at_build_time_and_buck2_run_pushes_then_prints() {
    common::require_tools!("go", "docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let p = example();
    // The example pushes to localhost:5000; point it at this test's registry.
    for f in ["cmd/foo/BUCK", "cmd/bar/BUCK"] {
        let path = p.root().join(f);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("localhost:5000", &host)).unwrap();
    }
    let mut b = builder();
    let prod = analyze(&p, "root//deploy:prod");
    let yaml = prod.actions[0].outputs[0].clone();
    let foo = analyze(&p, "root//cmd/foo:image");
    let bar = analyze(&p, "root//cmd/bar:image");
    let wanted = [
        yaml.clone(),
        sub_target(&foo, "digest"),
        sub_target(&bar, "digest"),
    ];
    b.build(&p.project, &wanted).unwrap();
    assert!(
        b.ran.iter().any(|(c, _)| c == "ko_resolve")
            && !b
                .ran
                .iter()
                .any(|(c, _)| c == "ko_tarball" || c == "ko_layout"),
        "{:?}",
        b.ran
    );
    let resolved = std::fs::read_to_string(p.root().join(&yaml.path)).unwrap();
    let foo_ref = format!("{host}/buck2/foo@{}", digest_file(&p, &wanted[1]));
    // ko's preserve-import-paths naming on //cmd/bar:image.push.
    let bar_ref = format!(
        "{host}/buck2/example.com/buck2/cmd/bar@{}",
        digest_file(&p, &wanted[2])
    );
    // foo.yaml, `---`, bar.yaml; only the two ko:// values changed.
    let source = |f: &str| std::fs::read_to_string(p.root().join("deploy").join(f)).unwrap();
    let expected = format!("{}---\n{}", source("foo.yaml"), source("bar.yaml"))
        .replace("ko://example.com/buck2/cmd/foo", &foo_ref)
        .replace("ko://example.com/buck2/cmd/bar", &bar_ref);
    assert_eq!(resolved, expected);

    // -- --push=false prints the YAML and pushes nothing.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = buck2_run(
        &p,
        &mut b,
        "root//deploy:prod",
        &["--push=false"],
        elsewhere.path(),
    );
    assert_eq!(out, resolved);
    let written = |log: String| {
        log.lines()
            .filter(|l| l.contains("\"PUT /v2/") || l.contains("\"POST /v2/"))
            .count()
    };
    assert_eq!(written(reg.log()), 0, "{}", reg.log());

    // buck2 run pushes both images (references on stderr), then prints the YAML on stdout.
    let out = buck2_run(&p, &mut b, "root//deploy:prod", &[], elsewhere.path());
    assert_eq!(out, resolved);
    for (reference, digest) in [(&foo_ref, &wanted[1]), (&bar_ref, &wanted[2])] {
        let raw = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]));
        assert_eq!(
            format!("sha256:{}", common::sha256_hex(raw.as_bytes())),
            digest_file(&p, digest)
        );
    }
    assert!(written(reg.log()) > 0);

    // ko_push_all pushes the same two images in one run (nothing new to upload) and
    // prints their references.
    let out = buck2_run(&p, &mut b, "root//deploy:push_all", &[], elsewhere.path());
    assert!(out.contains(&foo_ref) && out.contains(&bar_ref), "{out}");
}

#[test]
fn buck2_ko_resolve_and_ko_push_all_refuse_bad_attributes() {
    let p = e2e();
    std::fs::create_dir_all(p.root().join("baddeploy")).unwrap();
    std::fs::write(p.root().join("baddeploy/d.yaml"), "a: ko://x\n").unwrap();
    std::fs::write(p.root().join("baddeploy/d.json"), "{}\n").unwrap();
    std::fs::write(
        p.root().join("baddeploy/BUCK"),
        "load(\"@rules_ko//rules/buck2:defs.bzl\", \"ko_push_all\", \"ko_resolve\")\n\
         ko_resolve(name = \"no_srcs\", srcs = [], images = [\"//analysis:subject.push\"])\n\
         ko_resolve(name = \"not_yaml\", srcs = [\"d.json\"], images = [\"//analysis:subject.push\"])\n\
         ko_resolve(name = \"no_images\", srcs = [\"d.yaml\"], images = [])\n\
         ko_resolve(name = \"image_not_push\", srcs = [\"d.yaml\"], images = [\"//analysis:subject\"])\n\
         ko_push_all(name = \"no_pushes\", pushes = [])\n\
         ko_push_all(name = \"push_not_push\", pushes = [\"//analysis:subject\"])\n",
    )
    .unwrap();
    for (t, message) in [
        (
            "no_srcs",
            "ko_resolve root//baddeploy:no_srcs: attribute 'srcs': expected one or more Kubernetes YAML files (.yaml or .yml), found none",
        ),
        (
            "not_yaml",
            "ko_resolve root//baddeploy:not_yaml: attribute 'srcs': expected YAML files (.yaml or .yml), found \"d.json\"",
        ),
        (
            "no_images",
            "ko_resolve root//baddeploy:no_images: attribute 'images': expected one or more ko_push targets, found none",
        ),
        (
            "image_not_push",
            "does not give the required provider KoPushInfo",
        ),
        (
            "no_pushes",
            "ko_push_all root//baddeploy:no_pushes: attribute 'pushes': expected one or more ko_push targets, found none",
        ),
        (
            "push_not_push",
            "does not give the required provider KoPushInfo",
        ),
    ] {
        let e = analysis_error(&p, &format!("root//baddeploy:{t}"));
        assert!(e.contains(message), "{t}: expected {message:?} in:\n{e}");
    }
}

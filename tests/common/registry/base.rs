//! The two-platform base the end-to-end tests push to a registry for `ko_base` to pull.

use std::path::Path;

use super::super::{go_build, rko_ok};
use super::Registry;

/// Pushes a two-platform base (the static base plus a small Go program and a release file,
/// for linux/amd64 and linux/arm64) to `reg`/base; returns the index digest.
pub fn push_two_platform_base(reg: &Registry, dir: &Path) -> String {
    let release = dir.join("release.txt");
    std::fs::write(&release, "e2e base 1\n").unwrap();
    let mut descriptors = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for arch in ["amd64", "arm64"] {
        let bin = go_build(
            dir,
            &format!("base-init-{arch}"),
            "package main\n\nfunc main() { println(\"base\") }\n",
            arch,
        );
        let p = |s: &str| dir.join(format!("{s}-{arch}")).display().to_string();
        rko_ok([
            "layer",
            "kodata",
            "--file",
            &format!("base-release.txt={}", release.display()),
            "--import-path",
            "example.com/base",
            "-o",
            &p("k.tgz"),
            "--descriptor",
            &p("k.json"),
        ]);
        rko_ok([
            "layer",
            "binary",
            "--binary",
            bin.to_str().unwrap(),
            "--import-path",
            "example.com/base/init",
            "--platform",
            &format!("linux/{arch}"),
            "-o",
            &p("b.tgz"),
            "--descriptor",
            &p("b.json"),
        ]);
        rko_ok([
            "image",
            "--base",
            "static",
            "--platform",
            &format!("linux/{arch}"),
            "--layer",
            &p("k.json"),
            "--layer",
            &p("b.json"),
            "--config-out",
            &p("config.json"),
            "--manifest-out",
            &p("manifest.json"),
            "--descriptor-out",
            &p("descriptor.json"),
        ]);
        descriptors.push(p("descriptor.json"));
        sources.extend([
            "--blob".into(),
            p("config.json"),
            "--blob".into(),
            p("manifest.json"),
            "--layer".into(),
            format!("{}={}", p("k.json"), p("k.tgz")),
            "--layer".into(),
            format!("{}={}", p("b.json"), p("b.tgz")),
        ]);
    }
    let idx = |s: &str| dir.join(s).display().to_string();
    rko_ok([
        "index",
        "--image",
        &descriptors[0],
        "--image",
        &descriptors[1],
        "--index-out",
        &idx("index.json"),
        "--descriptor-out",
        &idx("index.desc.json"),
        "--digest-out",
        &idx("index.digest"),
    ]);
    let mut args: Vec<String> = vec![
        "push-manifest".into(),
        "--root".into(),
        idx("index.desc.json"),
        "--blob".into(),
        idx("index.json"),
    ];
    args.extend(sources);
    args.extend([
        "--repository".into(),
        format!("{}/base", reg.host()),
        "-o".into(),
        idx("push.json"),
    ]);
    rko_ok(&args);
    rko_ok([
        "push",
        "--manifest",
        &idx("push.json"),
        "--insecure-registry",
        &reg.host(),
    ]);
    std::fs::read_to_string(dir.join("index.digest"))
        .unwrap()
        .trim()
        .to_string()
}

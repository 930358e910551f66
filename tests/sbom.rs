//! `rko sbom` and `rko build --sbom`: SPDX 2.3 and CycloneDX 1.6 documents from real Go
//! binaries (Go 1.27 from the test virtual environment, Debian's Go 1.19), checked by the
//! formats' own validators (spdx-tools' `pyspdxtools`, cyclonedx-python-lib's strict JSON
//! validator) and packageurl-python, their contents compared with what `go version -m`
//! prints for the same binary; byte-identical from another directory, umask and time zone;
//! bad inputs fail clearly and leave no output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gomod::{GoApp, build_app, dep_lines};
use common::{read_json, require_tools, run_ok};
use serde_json::Value;

const IP: &str = "example.com/app/cmd/app";
const SDE: &str = "1700000000";

fn pyvenv(name: &str) -> PathBuf {
    common::require::pyvenv_program(name).expect("required above")
}

/// `rko …` in `dir` with SOURCE_DATE_EPOCH as given (unset when `None`).
fn rko_in(dir: &Path, sde: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = common::rko(args);
    c.current_dir(dir).env_remove("SOURCE_DATE_EPOCH");
    if let Some(s) = sde {
        c.env("SOURCE_DATE_EPOCH", s);
    }
    c.output().unwrap()
}

fn ok_in(dir: &Path, sde: Option<&str>, args: &[&str]) -> String {
    let o = rko_in(dir, sde, args);
    assert!(
        o.status.success(),
        "rko {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fail_in(dir: &Path, sde: Option<&str>, args: &[&str]) -> String {
    let o = rko_in(dir, sde, args);
    assert!(!o.status.success(), "rko {args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The image of `binary` (binary layer only): descriptor and config files under `dir`,
/// `created` from `sde`.
fn make_image(dir: &Path, binary: &Path, sde: Option<&str>) -> (PathBuf, PathBuf) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (layer, ldesc) = (dir.join("bin.layer"), dir.join("bin.layer.json"));
    let (desc, config) = (dir.join("image.json"), dir.join("config.json"));
    ok_in(
        dir,
        sde,
        &[
            "layer",
            "binary",
            "--binary",
            &s(binary),
            "--import-path",
            IP,
            "--platform",
            "linux/amd64",
            "-o",
            &s(&layer),
            "--descriptor",
            &s(&ldesc),
        ],
    );
    ok_in(
        dir,
        sde,
        &[
            "image",
            "--platform",
            "linux/amd64",
            "--layer",
            &s(&ldesc),
            "--descriptor-out",
            &s(&desc),
            "--config-out",
            &s(&config),
        ],
    );
    (desc, config)
}

/// Asserts `pyspdxtools` accepts `path`.
fn check_spdx(path: &Path) {
    run_ok(Command::new(pyvenv("pyspdxtools")).arg("-i").arg(path));
}

/// Asserts cyclonedx-python-lib's strict 1.6 JSON validator accepts `path`.
fn check_cyclonedx(path: &Path) {
    let script = "import sys\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        from cyclonedx.schema import SchemaVersion\n\
        err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
        if err is not None:\n    sys.exit('invalid CycloneDX 1.6: %r' % (err,))\n";
    run_ok(
        Command::new(pyvenv("python"))
            .args(["-c", script])
            .arg(path),
    );
}

/// Asserts every purl is canonical as packageurl-python writes it.
fn check_purls(purls: &[String]) {
    let script = "import sys\nfrom packageurl import PackageURL\n\
        for p in sys.argv[1:]:\n\
        \x20   q = PackageURL.from_string(p).to_string()\n\
        \x20   assert q == p, (p, q)\n";
    run_ok(
        Command::new(pyvenv("python"))
            .args(["-c", script])
            .args(purls),
    );
}

fn spdx_purl(p: &Value) -> String {
    p["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What a package for a `dep` line must say: (name, version, purl), the replacement's when
/// it is a module.
fn expected(dep: &common::gomod::DepLine) -> (String, String, String) {
    match &dep.3 {
        Some((p, v, _)) if !p.starts_with('.') => {
            (p.clone(), v.clone(), format!("pkg:golang/{p}@{v}"))
        }
        _ => (
            dep.0.clone(),
            dep.1.clone(),
            format!("pkg:golang/{}@{}", dep.0, dep.1),
        ),
    }
}

fn check_spdx_contents(doc: &Value, app: &GoApp, digest: &str, created: &str) {
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], created);
    assert_eq!(
        doc["creationInfo"]["creators"][0],
        format!("Tool: rko-{}", env!("CARGO_PKG_VERSION"))
    );
    let pkgs = doc["packages"].as_array().unwrap();
    let by_name = |n: &str| {
        pkgs.iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("no package {n} in {pkgs:#?}"))
    };
    let image = &pkgs[0];
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(
        spdx_purl(image),
        format!("pkg:oci/app@{digest}?repository_url=127.0.0.1:5000/team/app")
    );
    let main = by_name("example.com/app");
    assert_eq!(main["versionInfo"], "(devel)");
    let notes: Vec<&str> = main["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["comment"].as_str().unwrap())
        .collect();
    for want in [
        "go build: GOOS=linux",
        "go build: GOARCH=amd64",
        "go build: CGO_ENABLED=0",
        "go build: -tags=netgo,osusergo",
        "go build: -trimpath=true",
    ] {
        assert!(notes.contains(&want), "{want} not in {notes:?}");
    }
    let deps = dep_lines(&app.version_m);
    assert_eq!(deps.len(), 3, "{}", app.version_m);
    let mut purls = vec![spdx_purl(image)];
    for dep in &deps {
        let (name, version, purl) = expected(dep);
        let p = by_name(&name);
        assert_eq!(p["versionInfo"], version.as_str(), "{p:#}");
        assert_eq!(spdx_purl(p), purl);
        purls.push(purl);
        let comments: Vec<&str> = p["annotations"]
            .as_array()
            .map(|a| a.iter().map(|a| a["comment"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let sum = match &dep.3 {
            Some((path, _, s)) if !path.starts_with('.') => s,
            _ => &dep.2,
        };
        if !sum.is_empty() {
            assert!(comments.contains(&format!("go.sum: {sum}").as_str()));
        }
        if let Some((rp, _, _)) = &dep.3 {
            assert!(
                comments
                    .iter()
                    .any(|c| c.starts_with("go.mod replace: ") && c.contains(rp.as_str())),
                "{comments:?}"
            );
            assert!(p["sourceInfo"].as_str().unwrap().contains(&dep.0));
        }
        // Main module DEPENDS_ON each dep.
        assert!(doc["relationships"].as_array().unwrap().iter().any(|r| {
            r["spdxElementId"] == main["SPDXID"]
                && r["relationshipType"] == "DEPENDS_ON"
                && r["relatedSpdxElement"] == p["SPDXID"]
        }));
    }
    let stdlib = by_name("stdlib");
    let go = app
        .version_m
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap();
    assert_eq!(stdlib["versionInfo"], go);
    assert_eq!(
        spdx_purl(stdlib),
        format!("pkg:golang/stdlib@{}", go.trim_start_matches("go"))
    );
    purls.push(spdx_purl(stdlib));
    check_purls(&purls);
    let rels = doc["relationships"].as_array().unwrap();
    assert!(rels.iter().any(|r| r["spdxElementId"] == "SPDXRef-DOCUMENT"
        && r["relationshipType"] == "DESCRIBES"
        && r["relatedSpdxElement"] == image["SPDXID"]));
    assert!(rels.iter().any(|r| r["spdxElementId"] == image["SPDXID"]
        && r["relationshipType"] == "CONTAINS"
        && r["relatedSpdxElement"] == main["SPDXID"]));
}

fn check_cyclonedx_contents(doc: &Value, app: &GoApp, digest: &str, created: &str) {
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["metadata"]["timestamp"], created);
    let tool = &doc["metadata"]["tools"]["components"][0];
    assert_eq!(
        (tool["name"].as_str(), tool["version"].as_str()),
        (Some("rko"), Some(env!("CARGO_PKG_VERSION")))
    );
    let image = &doc["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(
        image["purl"],
        format!("pkg:oci/app@{digest}?repository_url=127.0.0.1:5000/team/app")
    );
    let comps = doc["components"].as_array().unwrap();
    let by_name = |n: &str| {
        comps
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("no component {n}"))
    };
    let main = by_name("example.com/app");
    let props: Vec<(String, String)> = main["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (k, v) in [
        ("cdx:gomod:build:env:GOOS", "linux"),
        ("cdx:gomod:build:env:GOARCH", "amd64"),
        ("cdx:gomod:build:env:CGO_ENABLED", "0"),
        ("rko:go:build:-tags", "netgo,osusergo"),
    ] {
        assert!(
            props.contains(&(k.to_string(), v.to_string())),
            "{k}={v} not in {props:?}"
        );
    }
    let deps_of = |r: &Value| -> Vec<String> {
        doc["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == *r)
            .unwrap_or_else(|| panic!("no dependencies entry for {r}"))["dependsOn"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        deps_of(&image["bom-ref"]),
        vec![main["bom-ref"].as_str().unwrap()]
    );
    let main_deps = deps_of(&main["bom-ref"]);
    for dep in dep_lines(&app.version_m) {
        let (name, version, purl) = expected(&dep);
        let c = by_name(&name);
        assert_eq!(c["version"], version.as_str());
        assert_eq!(c["purl"], purl.as_str());
        assert!(main_deps.contains(&c["bom-ref"].as_str().unwrap().to_string()));
        match &dep.3 {
            Some((p, _, _)) if !p.starts_with('.') => {
                let anc = &c["pedigree"]["ancestors"][0];
                assert_eq!(anc["name"], dep.0.as_str());
                assert_eq!(anc["version"], dep.1.as_str());
            }
            Some((p, _, _)) => assert!(
                c["properties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["name"] == "rko:go:replace:path" && x["value"] == p.as_str())
            ),
            None => assert!(c.get("pedigree").is_none()),
        }
    }
    assert!(
        main_deps
            .iter()
            .any(|d| d.starts_with("pkg:golang/stdlib@"))
    );
}

fn sbom_args<'a>(binary: &'a str, image: &'a str, format: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "sbom",
        "--binary",
        binary,
        "--import-path",
        IP,
        "--image",
        image,
        "--repository",
        "127.0.0.1:5000/team/app",
        "--format",
        format,
        "-o",
        out,
    ]
}

fn go_binary_documents(go: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let app = build_app(d, go, &pyvenv("python"));
    let (desc, config) = make_image(d, &app.binary, Some(SDE));
    let digest = read_json(&desc)["digest"].as_str().unwrap().to_string();
    let bin = app.binary.to_str().unwrap();
    for (format, check) in [("spdx", 0), ("cyclonedx", 1)] {
        let out = d.join(format!("sbom.{format}.json"));
        ok_in(
            d,
            Some(SDE),
            &sbom_args(bin, desc.to_str().unwrap(), format, out.to_str().unwrap()),
        );
        let doc = read_json(&out);
        if check == 0 {
            check_spdx(&out);
            check_spdx_contents(&doc, &app, &digest, "2023-11-14T22:13:20Z");
        } else {
            check_cyclonedx(&out);
            check_cyclonedx_contents(&doc, &app, &digest, "2023-11-14T22:13:20Z");
        }
        // Without SOURCE_DATE_EPOCH: the config's created (here also from SDE), else 1970.
        let mut args = sbom_args(bin, desc.to_str().unwrap(), format, out.to_str().unwrap());
        ok_in(d, None, &args);
        let when = |doc: &Value| {
            doc["creationInfo"]["created"]
                .as_str()
                .or(doc["metadata"]["timestamp"].as_str())
                .unwrap()
                .to_string()
        };
        assert_eq!(when(&read_json(&out)), "1970-01-01T00:00:00Z");
        args.extend(["--image-config", config.to_str().unwrap()]);
        ok_in(d, None, &args);
        assert_eq!(when(&read_json(&out)), "2023-11-14T22:13:20Z");
    }
}

#[test]
fn sboms_of_a_go_1_27_binary_are_valid_and_list_what_go_version_m_prints() {
    require_tools!("pyvenv:go", "pyvenv:pyspdxtools", "pyvenv:python");
    go_binary_documents(&pyvenv("go"));
}

#[test]
fn sboms_of_a_go_1_19_binary_are_valid_and_list_what_go_version_m_prints() {
    require_tools!("go", "pyvenv:pyspdxtools", "pyvenv:python");
    go_binary_documents(Path::new("go"));
}

#[test]
fn same_inputs_give_the_same_bytes_from_another_directory_umask_and_time_zone() {
    require_tools!("pyvenv:go", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let app = build_app(d, &pyvenv("go"), &pyvenv("python"));
    let (desc, _) = make_image(d, &app.binary, Some(SDE));
    let other = tempfile::tempdir().unwrap();
    for format in ["spdx", "cyclonedx"] {
        let a = d.join(format!("a.{format}.json"));
        ok_in(
            d,
            Some(SDE),
            &sbom_args(
                app.binary.to_str().unwrap(),
                desc.to_str().unwrap(),
                format,
                a.to_str().unwrap(),
            ),
        );
        // Relative paths from elsewhere, another umask and time zone.
        let b = other.path().join(format!("b.{format}.json"));
        let rel = |p: &Path| {
            let mut s = String::from("../");
            s.push_str(
                p.strip_prefix(d.parent().unwrap())
                    .unwrap()
                    .to_str()
                    .unwrap(),
            );
            s
        };
        let mut c = Command::new("sh");
        c.current_dir(other.path())
            .env("SOURCE_DATE_EPOCH", SDE)
            .env("TZ", "Pacific/Kiritimati")
            .args(["-c", "umask 077; exec \"$@\"", "sh", common::RKO])
            .args(sbom_args(
                &rel(&app.binary),
                &rel(&desc),
                format,
                b.file_name().unwrap().to_str().unwrap(),
            ));
        run_ok(&mut c);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
    // Another image digest: another namespace and serial number.
    let img2 = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let bin = app.binary.to_str().unwrap();
    for format in ["spdx", "cyclonedx"] {
        let x = d.join(format!("x.{format}.json"));
        let y = d.join(format!("y.{format}.json"));
        let desc = desc.to_str().unwrap();
        ok_in(
            d,
            Some(SDE),
            &sbom_args(bin, desc, format, x.to_str().unwrap()),
        );
        ok_in(
            d,
            Some(SDE),
            &sbom_args(bin, img2, format, y.to_str().unwrap()),
        );
        let id = |p: &Path| {
            let v = read_json(p);
            v["documentNamespace"]
                .as_str()
                .or(v["serialNumber"].as_str())
                .unwrap()
                .to_string()
        };
        assert_ne!(id(&x), id(&y));
        assert_eq!(id(&x), {
            ok_in(
                d,
                Some(SDE),
                &sbom_args(bin, desc, format, x.to_str().unwrap()),
            );
            id(&x)
        });
    }
}

#[test]
fn rko_build_writes_the_sboms_ko_names_and_rko_sbom_agrees() {
    require_tools!("pyvenv:go", "pyvenv:pyspdxtools", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let app = build_app(d, &pyvenv("go"), &pyvenv("python"));
    let bin = app.binary.to_str().unwrap();
    let sboms = d.join("sboms");
    let digest = ok_build(
        d,
        &[
            bin,
            "--import-path",
            IP,
            "--sbom",
            "both",
            "--sbom-dir",
            "sboms",
        ],
    );
    let mut names: Vec<String> = std::fs::read_dir(&sboms)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "app-linux-amd64.cyclonedx.json",
            "app-linux-amd64.spdx.json"
        ]
    );
    check_spdx(&sboms.join("app-linux-amd64.spdx.json"));
    check_cyclonedx(&sboms.join("app-linux-amd64.cyclonedx.json"));
    // The same document rko sbom writes for that image.
    for (format, file) in [
        ("spdx", "app-linux-amd64.spdx.json"),
        ("cyclonedx", "app-linux-amd64.cyclonedx.json"),
    ] {
        let out = d.join(format!("direct.{format}.json"));
        ok_in(
            d,
            Some(SDE),
            &[
                "sbom",
                "--binary",
                bin,
                "--import-path",
                IP,
                "--image",
                &digest,
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(sboms.join(file)).unwrap()
        );
    }
    // ko's default is one SPDX; --sbom none writes nothing.
    ok_build(d, &[bin, "--import-path", IP, "--sbom-dir", "default"]);
    let n = std::fs::read_dir(d.join("default")).unwrap().count();
    assert_eq!(n, 1);
    assert!(d.join("default/app-linux-amd64.spdx.json").exists());
    ok_build(
        d,
        &[
            bin,
            "--import-path",
            IP,
            "--sbom",
            "none",
            "--sbom-dir",
            "none",
        ],
    );
    assert!(!d.join("none").exists() || std::fs::read_dir(d.join("none")).unwrap().count() == 0);
    // Missing parents are made too, as ko makes them.
    ok_build(
        d,
        &[bin, "--import-path", IP, "--sbom-dir", "deep/er/sboms"],
    );
    assert!(d.join("deep/er/sboms/app-linux-amd64.spdx.json").exists());
    // A file where the directory should be: refused before anything is written.
    std::fs::write(d.join("a-file"), "x").unwrap();
    // rko build with --sbom-dir and --digest-file only.
    let to = |sbom_dir: &str, digest_file: &str| {
        let args = [bin, "--import-path", IP, "--sbom-dir", sbom_dir];
        let mut all = vec!["build"];
        all.extend(args);
        all.extend(["--digest-file", digest_file]);
        rko_in(d, Some(SDE), &all)
    };
    let o = to("a-file", "digest.txt");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--sbom-dir a-file exists and is not a directory"),
        "{err}"
    );
    assert!(!d.join("digest.txt").exists());
    // A build that fails on another output leaves no --sbom-dir it would have made (nor
    // its parents), and an existing one as it was.
    for existing in [false, true] {
        let fresh = d.join(if existing { "fresh" } else { "fresh/er" });
        if existing {
            std::fs::create_dir_all(&fresh).unwrap();
            std::fs::write(fresh.join("mine.txt"), "kept").unwrap();
        }
        let o = to(fresh.to_str().unwrap(), "/nonexistent/digest");
        assert!(!o.status.success());
        match existing {
            false => assert!(
                !d.join("fresh").exists(),
                "a failed build made {}",
                fresh.display()
            ),
            true => {
                let names: Vec<_> = std::fs::read_dir(&fresh)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert_eq!(names, ["mine.txt"]);
            }
        }
    }
}

/// `rko build ARGS` in `dir` with SOURCE_DATE_EPOCH; returns the digest it prints.
fn ok_build(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend(args);
    let o = rko_in(dir, Some(SDE), &all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn a_binary_without_build_info_fails_unless_allowed() {
    require_tools!("pyvenv:pyspdxtools", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An ELF executable with no Go build info.
    let elf = d.join("notgo");
    let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    b.resize(8192, 0);
    std::fs::write(&elf, b).unwrap();
    let img = "sha256:0000000000000000000000000000000000000000000000000000000000000002";
    let out = d.join("out.json");
    let args = sbom_args(elf.to_str().unwrap(), img, "spdx", out.to_str().unwrap());
    let err = fail_in(d, Some(SDE), &args);
    assert!(
        err.contains("no Go build info") && err.contains("--allow-non-go"),
        "{err}"
    );
    assert!(!out.exists());
    for format in ["spdx", "cyclonedx"] {
        let mut args = sbom_args(elf.to_str().unwrap(), img, format, out.to_str().unwrap());
        args.push("--allow-non-go");
        let stderr = ok_in(d, Some(SDE), &args);
        assert!(
            stderr.contains("warning") && stderr.contains("no Go build info"),
            "{stderr}"
        );
        let doc = read_json(&out);
        if format == "spdx" {
            check_spdx(&out);
            assert_eq!(doc["packages"].as_array().unwrap().len(), 1);
            assert_eq!(doc["packages"][0]["primaryPackagePurpose"], "CONTAINER");
        } else {
            check_cyclonedx(&out);
            assert_eq!(doc["components"].as_array().unwrap().len(), 0);
            assert_eq!(doc["metadata"]["component"]["type"], "container");
        }
    }
}

#[test]
fn bad_inputs_fail_clearly_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("bin");
    common::fake_go_binary(&bin, 62, 8192);
    let out = d.join("out.json");
    let o = out.to_str().unwrap();
    // Malformed module text: the error names the line.
    let text = d.join("vm.txt");
    std::fs::write(
        &text,
        "bin: go1.26.0\n\tpath\texample.com/app\n\tmod\texample.com/app\t(devel)\t\n\tdep\tonly-a-path\n",
    )
    .unwrap();
    let img = "sha256:0000000000000000000000000000000000000000000000000000000000000003";
    let mut args = sbom_args(bin.to_str().unwrap(), img, "spdx", o);
    args.extend(["--buildinfo-text", text.to_str().unwrap()]);
    let err = fail_in(d, None, &args);
    assert!(
        err.contains("line 4") && err.contains("only-a-path"),
        "{err}"
    );
    assert!(!out.exists());
    // A missing image descriptor.
    let missing = d.join("missing.json");
    let err = fail_in(
        d,
        None,
        &sbom_args(bin.to_str().unwrap(), missing.to_str().unwrap(), "spdx", o),
    );
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "{err}"
    );
    // Not a descriptor.
    std::fs::write(&missing, "{}").unwrap();
    let err = fail_in(
        d,
        None,
        &sbom_args(bin.to_str().unwrap(), missing.to_str().unwrap(), "spdx", o),
    );
    assert!(err.contains("is not an image descriptor"), "{err}");
    // A bad digest.
    let err = fail_in(
        d,
        None,
        &sbom_args(bin.to_str().unwrap(), "sha256:zz", "spdx", o),
    );
    assert!(err.contains("invalid digest"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".rko-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A fixed `go version -m` text through both formats: the whole documents, reviewed.
#[test]
fn documents_of_a_fixed_build_info() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = d.join("vm.txt");
    std::fs::write(
        &text,
        "app: go1.26.1\n\
         \tpath\texample.com/app/cmd/app\n\
         \tmod\texample.com/app\tv1.4.0\th1:6b5J7ztkAFPu3Mhd4eoLx4Wcr9BpCkLqLtJ9SGE1n3E=\n\
         \tdep\tgithub.com/Foo/Bar\tv2.0.0+incompatible\th1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
         \tdep\texample.com/orig\tv1.0.0\n\
         \t=>\texample.com/fork\tv1.1.0\th1:Fyrk9/JKXSBDJJg4q7dVoFmLRhV9T8Ovq3rDLUT1SvU=\n\
         \tdep\texample.com/lib\tv1.2.3\n\
         \t=>\t../lib\t\t\n\
         \tbuild\t-buildmode=exe\n\
         \tbuild\t-compiler=gc\n\
         \tbuild\t-ldflags=\"-s -w -X main.version=1.4.0\"\n\
         \tbuild\t-tags=netgo\n\
         \tbuild\t-trimpath=true\n\
         \tbuild\tCGO_ENABLED=0\n\
         \tbuild\tGOARCH=arm\n\
         \tbuild\tGOOS=linux\n\
         \tbuild\tGOARM=7\n\
         \tbuild\tvcs=git\n\
         \tbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n\
         \tbuild\tvcs.time=2024-01-02T03:04:05Z\n\
         \tbuild\tvcs.modified=false\n",
    )
    .unwrap();
    let img = "sha256:5e4775c728a74bd9d018868b9a4d888c89124c4aaca964d260da36b419eb46f8";
    for format in ["spdx", "cyclonedx"] {
        let out = d.join(format!("{format}.json"));
        let mut args = sbom_args("unused", img, format, out.to_str().unwrap());
        args.extend(["--buildinfo-text", text.to_str().unwrap()]);
        ok_in(d, Some(SDE), &args);
        let body = std::fs::read_to_string(&out).unwrap();
        insta::assert_snapshot!(format!("fixed_build_info_{format}"), body);
        if common::require::pyvenv_program("python").is_some() {
            if format == "spdx" {
                if common::require::pyvenv_program("pyspdxtools").is_some() {
                    check_spdx(&out);
                }
            } else {
                check_cyclonedx(&out);
            }
        }
    }
}

/// The SBOM reads the binary's headers and build info block only: a Go binary grown to a
/// 1 TiB sparse file (what follows the ELF's own bytes is never looked at) takes no longer
/// than the binary itself; reading it whole would take many minutes.
#[test]
fn the_cost_does_not_grow_with_the_binary() {
    require_tools!("go");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = common::go_build(d, "app", "package main\n\nfunc main() {}\n", "amd64");
    let f = std::fs::OpenOptions::new().write(true).open(&bin).unwrap();
    if f.set_len(1 << 40).is_err() {
        // A file system without sparse files this large: nothing to show here.
        return;
    }
    drop(f);
    let out = d.join("big.json");
    let img = "sha256:0000000000000000000000000000000000000000000000000000000000000005";
    let start = std::time::Instant::now();
    ok_in(
        d,
        None,
        &sbom_args(bin.to_str().unwrap(), img, "spdx", out.to_str().unwrap()),
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    let doc = read_json(&out);
    assert!(
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "example.com/x")
    );
}

/// `go build main.go` outside a module: a `path` line (`command-line-arguments`) and no
/// `mod` line. The main package stands in for the main module, with no version; settings
/// with empty values (Go 1.21+ writes `CGO_CFLAGS=` when cgo is on) are kept.
#[test]
fn a_binary_built_outside_a_module() {
    require_tools!("pyvenv:go", "pyvenv:pyspdxtools", "pyvenv:python");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
    let bin = d.join("nomod");
    run_ok(
        Command::new(pyvenv("go"))
            .args(["build", "-o"])
            .arg(&bin)
            .arg("main.go")
            .current_dir(d)
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", "amd64")
            .env("GOCACHE", common::go_cache())
            .env("GO111MODULE", "on")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", ""),
    );
    let mut text = run_ok(Command::new(pyvenv("go")).args(["version", "-m"]).arg(&bin));
    assert!(text.contains("\tpath\tcommand-line-arguments\n") && !text.contains("\tmod\t"));
    let img = "sha256:0000000000000000000000000000000000000000000000000000000000000006";
    for format in ["spdx", "cyclonedx"] {
        let out = d.join(format!("{format}.json"));
        ok_in(
            d,
            Some(SDE),
            &sbom_args(bin.to_str().unwrap(), img, format, out.to_str().unwrap()),
        );
        let doc = read_json(&out);
        if format == "spdx" {
            check_spdx(&out);
            let main = &doc["packages"][1];
            assert_eq!(main["name"], "command-line-arguments");
            assert!(main.get("versionInfo").is_none());
            assert_eq!(doc["packages"].as_array().unwrap().len(), 3, "{doc:#}");
        } else {
            check_cyclonedx(&out);
            let main = &doc["components"][0];
            assert_eq!(main["name"], "command-line-arguments");
            assert!(main.get("version").is_none());
        }
    }
    // Empty setting values, through go version -m text.
    text.push_str("\tbuild\tCGO_CFLAGS=\n");
    let t = d.join("vm.txt");
    std::fs::write(&t, &text).unwrap();
    for format in ["spdx", "cyclonedx"] {
        let out = d.join(format!("empty.{format}.json"));
        let mut args = sbom_args("unused", img, format, out.to_str().unwrap());
        args.extend(["--buildinfo-text", t.to_str().unwrap()]);
        ok_in(d, Some(SDE), &args);
        if format == "spdx" {
            check_spdx(&out);
        } else {
            check_cyclonedx(&out);
        }
        assert!(
            std::fs::read_to_string(&out)
                .unwrap()
                .contains("CGO_CFLAGS")
        );
    }
}

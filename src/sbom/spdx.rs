//! SPDX 2.3 JSON: the image (a `CONTAINER` package with its `pkg:oci` purl), which
//! `CONTAINS` the main module (an `APPLICATION`), which `DEPENDS_ON` every dependency and the
//! `stdlib`. The document `DESCRIBES` the image. Go facts with no SPDX field (the `h1:` sum,
//! a `=>` replacement, the build settings, the Go version) are package annotations whose
//! comment starts with a fixed key (`go.sum:`, `go.mod replace:`, `go build:`,
//! `go version:`), so a consumer can pick them out.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::sbom::{Format, GoModule, GoParts, SbomInput, TOOL, document_uuid};

const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-Image";

/// The SPDX document of `input`.
pub fn document(input: &SbomInput) -> Value {
    let image = &input.image;
    let uuid = document_uuid(Format::Spdx, image);
    let annotation = |comment: String| {
        json!({
            "annotationDate": input.created,
            "annotationType": "OTHER",
            "annotator": format!("Tool: {TOOL}"),
            "comment": comment,
        })
    };
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": image.name(),
        "versionInfo": image.digest.to_string(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest.hex()}],
        "externalRefs": [purl_ref(&image.purl())],
    })];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    if let Some(go) = &input.go {
        add_go(go, &mut packages, &mut relationships, &annotation);
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", image.name(), image.digest),
        "documentNamespace": format!("https://spdx.org/spdxdocs/rko/{}-{uuid}", image.name()),
        "creationInfo": {
            "created": input.created,
            "creators": [format!("Tool: {TOOL}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

fn add_go(
    go: &GoParts,
    packages: &mut Vec<Value>,
    relationships: &mut Vec<Value>,
    annotation: &dyn Fn(String) -> Value,
) {
    let main_id = module_id(&go.main);
    let mut main = module_package(&go.main, &main_id, "APPLICATION", annotation);
    let mut notes: Vec<Value> = main["annotations"].as_array().cloned().unwrap_or_default();
    notes.push(annotation(format!("go version: {}", go.go_version)));
    notes.extend(
        go.settings
            .iter()
            .map(|(k, v)| annotation(format!("go build: {k}={v}"))),
    );
    main["annotations"] = Value::Array(notes);
    packages.push(main);
    relationships.push(relationship(IMAGE_ID, "CONTAINS", &main_id));
    for dep in &go.deps {
        let id = module_id(dep);
        packages.push(module_package(dep, &id, "LIBRARY", annotation));
        relationships.push(relationship(&main_id, "DEPENDS_ON", &id));
    }
    let stdlib_id = "SPDXRef-Package-go-stdlib";
    packages.push(json!({
        "SPDXID": stdlib_id,
        "name": "stdlib",
        "versionInfo": go.go_version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [purl_ref(&go.stdlib_purl())],
    }));
    relationships.push(relationship(&main_id, "DEPENDS_ON", stdlib_id));
}

fn module_package(
    m: &GoModule,
    id: &str,
    purpose: &str,
    annotation: &dyn Fn(String) -> Value,
) -> Value {
    let mut p = json!({
        "SPDXID": id,
        "name": m.path,
        "downloadLocation": match m.replace().is_some() && m.replaced_by_module().is_none() {
            true => NOASSERTION.to_string(),
            false => download_location(&m.path, &m.version),
        },
        "filesAnalyzed": false,
        "primaryPackagePurpose": purpose,
        "externalRefs": [purl_ref(&m.purl)],
    });
    if !m.version.is_empty() {
        p["versionInfo"] = json!(m.version);
    }
    let mut notes = Vec::new();
    if !m.sum.is_empty() {
        notes.push(annotation(format!("go.sum: {}", m.sum)));
    }
    if let (Some(r), Some(note)) = (m.replace(), m.replace_note()) {
        p["sourceInfo"] = json!(note);
        let mut to = r.path.clone();
        for part in [&r.version, &r.sum] {
            if !part.is_empty() {
                to.push(' ');
                to.push_str(part);
            }
        }
        let from = format!("{} {}", m.line.path, m.line.version);
        notes.push(annotation(format!(
            "go.mod replace: {} => {to}",
            from.trim()
        )));
    }
    if !notes.is_empty() {
        p["annotations"] = Value::Array(notes);
    }
    p
}

/// Where the Go module proxy serves a module's zip (case-encoded as the proxy protocol
/// says), or NOASSERTION for a module with no released version.
fn download_location(path: &str, version: &str) -> String {
    if version.is_empty() || version == "(devel)" || path.starts_with('.') || path.starts_with('/')
    {
        return NOASSERTION.to_string();
    }
    let enc = |s: &str| {
        let mut o = String::new();
        for c in s.chars() {
            if c.is_ascii_uppercase() {
                o.push('!');
                o.push(c.to_ascii_lowercase());
            } else {
                o.push(c);
            }
        }
        o
    };
    format!(
        "https://proxy.golang.org/{}/@v/{}.zip",
        enc(path),
        enc(version)
    )
}

/// An SPDX ID for a module: its path and version with other characters as `-`, and a short
/// hash of the line so that two modules never share one.
fn module_id(m: &GoModule) -> String {
    let clean: String = format!("{}-{}", m.path, m.version)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let h = Sha256::digest(m.key.as_bytes());
    format!(
        "SPDXRef-Package-go-module-{}-{}",
        clean.trim_matches('-'),
        &hex::encode(h)[..8]
    )
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildinfo::modinfo;
    use crate::oci::Sha256Digest;
    use crate::sbom::{GoParts, Image};

    #[test]
    fn ids_are_valid_and_unique_when_paths_clean_up_alike() {
        let text = "path\tx/cmd\nmod\tx\t(devel)\t\ndep\texample.com/a_b\tv1.0.0\t\n\
                    dep\texample.com/a~b\tv1.0.0\t\ndep\texample.com/a-b\tv1.0.0\t\n";
        let bi = modinfo::parse("go1.26.0", text).unwrap();
        let input = SbomInput {
            image: Image {
                digest: Sha256Digest::of(b""),
                repository: None,
                import_path: "x/cmd".into(),
            },
            go: Some(GoParts::new(&bi)),
            created: "1970-01-01T00:00:00Z".into(),
        };
        let doc = document(&input);
        let ids: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        for id in ids {
            let rest = id.strip_prefix("SPDXRef-").unwrap();
            assert!(
                rest.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "{id}"
            );
        }
    }
}

//! CycloneDX 1.6 JSON: the image is `metadata.component` (a `container` with its `pkg:oci`
//! purl); the main module (an `application`), every dependency and the `stdlib` are
//! `components`; `dependencies` says image → main module → each dependency and the stdlib.
//! Build settings are properties of the main module, named by the CycloneDX property
//! taxonomy where it has a name (`cdx:gomod:build:env:GOOS`, `…:GOARCH`, `…:CGO_ENABLED`,
//! and the other `GO*` environment settings) and `rko:go:build:KEY` otherwise (`-trimpath`,
//! `-tags`, `-ldflags`, `vcs.revision`, …). A module replaced by another module lists the
//! original requirement in `pedigree.ancestors`; every replacement is also in
//! `rko:go:replace:*` properties.

use serde_json::{Value, json};

use crate::sbom::{Format, GoModule, GoParts, SbomInput, VERSION, document_uuid};

/// The CycloneDX document of `input`.
pub fn document(input: &SbomInput) -> Value {
    let image = &input.image;
    let image_ref = image.purl();
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    if let Some(go) = &input.go {
        let main_ref = bom_ref(&go.main);
        dependencies.push(json!({"ref": image_ref, "dependsOn": [main_ref]}));
        add_go(go, &mut components, &mut dependencies);
    } else {
        dependencies.push(json!({"ref": image_ref}));
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", document_uuid(Format::Cyclonedx, image)),
        "version": 1,
        "metadata": {
            "timestamp": input.created,
            "tools": {
                "components": [{"type": "application", "name": "rko", "version": VERSION}],
            },
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": image.name(),
                "version": image.digest.to_string(),
                "hashes": [{"alg": "SHA-256", "content": image.digest.hex()}],
                "purl": image_ref,
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

fn add_go(go: &GoParts, components: &mut Vec<Value>, dependencies: &mut Vec<Value>) {
    let mut main = component(&go.main, "application");
    let mut props: Vec<Value> = main["properties"].as_array().cloned().unwrap_or_default();
    props.push(property("rko:go:version", &go.go_version));
    for (k, v) in &go.settings {
        props.push(property(&setting_property(k), v));
    }
    main["properties"] = Value::Array(props);
    components.push(main);
    let stdlib_ref = go.stdlib_purl();
    let mut main_deps: Vec<String> = go.deps.iter().map(bom_ref).collect();
    main_deps.push(stdlib_ref.clone());
    dependencies.push(json!({"ref": bom_ref(&go.main), "dependsOn": main_deps}));
    for dep in &go.deps {
        components.push(component(dep, "library"));
        dependencies.push(json!({"ref": bom_ref(dep)}));
    }
    components.push(json!({
        "type": "library",
        "bom-ref": stdlib_ref,
        "name": "stdlib",
        "version": go.go_version,
        "purl": stdlib_ref,
    }));
    dependencies.push(json!({"ref": stdlib_ref}));
}

/// The property name of a `build` setting.
fn setting_property(key: &str) -> String {
    let env = key
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !key.is_empty();
    if env {
        format!("cdx:gomod:build:env:{key}")
    } else {
        format!("rko:go:build:{key}")
    }
}

/// A module's bom-ref: its `mod`/`dep` line, unique in a binary.
fn bom_ref(m: &GoModule) -> String {
    format!("golang:{}", m.key)
}

fn component(m: &GoModule, kind: &str) -> Value {
    let mut c = json!({
        "type": kind,
        "bom-ref": bom_ref(m),
        "name": m.path,
        "purl": m.purl,
    });
    if !m.version.is_empty() {
        c["version"] = json!(m.version);
    }
    let mut props = Vec::new();
    if !m.sum.is_empty() {
        props.push(property("rko:go:sum", &m.sum));
    }
    if let Some(r) = m.replace() {
        props.push(property("rko:go:replace:path", &r.path));
        if m.replaced_by_module().is_some() {
            props.push(property("rko:go:replace:version", &r.version));
            let mut ancestor = json!({
                "type": "library",
                "name": m.line.path,
                "purl": crate::sbom::golang_purl(&m.line.path, &m.line.version),
            });
            if !m.line.version.is_empty() {
                ancestor["version"] = json!(m.line.version);
            }
            c["pedigree"] = json!({
                "ancestors": [ancestor],
                "notes": m.replace_note(),
            });
        } else {
            props.push(property("rko:go:replace:directory", "true"));
            c["pedigree"] = json!({"notes": m.replace_note()});
        }
        props.push(property("rko:go:required:path", &m.line.path));
        props.push(property("rko:go:required:version", &m.line.version));
    }
    if !props.is_empty() {
        c["properties"] = Value::Array(props);
    }
    c
}

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

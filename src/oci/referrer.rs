//! OCI 1.1 referrers: what an SBOM or a provenance statement is (by its own content), the
//! artifact manifest that attaches it to an image (its `subject`), the tag the referrers tag
//! schema keeps an image's referrers under, and the image cosign (and ko) tag as
//! `sha256-<hex>.sbom`. Every document here is made by one function, so the bytes recorded
//! at build time are the bytes pushed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oci::digest::Sha256Digest;
use crate::oci::{Descriptor, json, media};

/// The media type of the empty blob `{}` (the config of an artifact manifest).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty blob's bytes.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The empty blob, base64, as the descriptor's `data` carries it.
const EMPTY_DATA: &str = "e30=";

/// SPDX (2.x) JSON: IANA's media type, the artifactType of an SPDX SBOM.
pub const SPDX_JSON: &str = "application/spdx+json";
/// CycloneDX JSON.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// An in-toto statement (e.g. SLSA provenance).
pub const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
/// The layer media type cosign (and so ko) gives an SPDX JSON SBOM in a `.sbom` image.
pub const COSIGN_SPDX_JSON: &str = "text/spdx+json";

/// The in-toto Statement type rko recognises.
const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The annotation the artifact manifest takes from the document's own creation time.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// What a document is, read from its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentKind {
    /// The artifactType (and the document's media type).
    pub artifact_type: String,
    /// The document's own creation time (SPDX `creationInfo.created`, CycloneDX
    /// `metadata.timestamp`), if it states one.
    pub created: Option<String>,
}

/// A document that is not one rko knows how to attach.
#[derive(Debug, thiserror::Error)]
#[error(
    "expected an SPDX JSON document (a \"spdxVersion\" key), a CycloneDX JSON BOM \
     (\"bomFormat\": \"CycloneDX\") or an in-toto statement (\"_type\": \
     \"{IN_TOTO_STATEMENT_V1}\"), found {found}"
)]
pub struct UnknownDocument {
    pub found: String,
}

/// Classifies an SBOM or provenance document by its content.
pub fn classify(bytes: &[u8]) -> Result<DocumentKind, UnknownDocument> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| UnknownDocument {
        found: format!("something that is not JSON ({e})"),
    })?;
    let Some(o) = v.as_object() else {
        return Err(UnknownDocument {
            found: "JSON that is not an object".to_string(),
        });
    };
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if o.contains_key("spdxVersion") {
        return Ok(DocumentKind {
            artifact_type: SPDX_JSON.to_string(),
            created: text(o.get("creationInfo").and_then(|c| c.get("created"))),
        });
    }
    if o.get("bomFormat").and_then(|f| f.as_str()) == Some("CycloneDX") {
        return Ok(DocumentKind {
            artifact_type: CYCLONEDX_JSON.to_string(),
            created: text(o.get("metadata").and_then(|m| m.get("timestamp"))),
        });
    }
    if o.get("_type").and_then(|t| t.as_str()) == Some(IN_TOTO_STATEMENT_V1) {
        return Ok(DocumentKind {
            artifact_type: IN_TOTO_JSON.to_string(),
            created: None,
        });
    }
    let found = match (o.get("_type"), o.get("bomFormat")) {
        (Some(t), _) => format!("a JSON object with \"_type\": {t}"),
        (None, Some(f)) => format!("a JSON object with \"bomFormat\": {f}"),
        (None, None) => {
            let keys: Vec<&str> = o.keys().map(String::as_str).take(8).collect();
            format!("a JSON object with the keys {}", keys.join(", "))
        }
    };
    Err(UnknownDocument { found })
}

/// The empty descriptor with its data inline, as the image spec's artifact guidance has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmptyDescriptor {
    media_type: String,
    size: u64,
    digest: Sha256Digest,
    data: String,
}

/// An OCI 1.1 image manifest used for an artifact, fields in the image spec's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    artifact_type: &'a str,
    config: EmptyDescriptor,
    layers: [Descriptor; 1],
    subject: Descriptor,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The descriptor of the empty blob `{}`.
pub fn empty_descriptor() -> Descriptor {
    Descriptor::of_bytes(EMPTY_MEDIA_TYPE, EMPTY_JSON)
}

/// The artifact manifest attaching `document` (its descriptor: media type, digest, size) of
/// `artifact_type` to `subject`: config the empty descriptor, the document its one layer,
/// the subject by media type, digest and size alone, and `annotations`. Compact JSON as Go
/// writes it: the same inputs give the same bytes, at build time and at push time.
pub fn artifact_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    document: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let empty = empty_descriptor();
    let m = ArtifactManifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        artifact_type,
        config: EmptyDescriptor {
            media_type: empty.media_type,
            size: empty.size,
            digest: empty.digest,
            data: EMPTY_DATA.to_string(),
        },
        layers: [Descriptor::new(
            &document.media_type,
            document.digest,
            document.size,
        )],
        subject: Descriptor::new(&subject.media_type, subject.digest, subject.size),
        annotations,
    };
    json::go(&m)
}

/// The artifact manifest's annotations for a document of `kind`: its own creation time,
/// when it states one (so the bytes depend on the document alone).
pub fn annotations_for(kind: &DocumentKind) -> BTreeMap<String, String> {
    kind.created
        .iter()
        .map(|c| (CREATED_ANNOTATION.to_string(), c.clone()))
        .collect()
}

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn referrers_tag(subject: &Sha256Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The tag cosign and ko give the SBOM image of `subject`: `sha256-<hex>.sbom`.
pub fn cosign_sbom_tag(subject: &Sha256Digest) -> String {
    format!("{}.sbom", referrers_tag(subject))
}

/// The layer media type of an SBOM in cosign's `.sbom` image, for an artifactType; `None`
/// for documents cosign does not keep there (in-toto statements).
pub fn cosign_layer_type(artifact_type: &str) -> Option<&'static str> {
    match artifact_type {
        SPDX_JSON => Some(COSIGN_SPDX_JSON),
        CYCLONEDX_JSON => Some(CYCLONEDX_JSON),
        _ => None,
    }
}

/// The config of a cosign `.sbom` image, as go-containerregistry writes an empty image's
/// config with these layers appended (the diff ID of a static layer is its digest).
#[derive(Serialize)]
struct CosignConfig {
    architecture: &'static str,
    created: &'static str,
    history: Vec<CosignHistory>,
    os: &'static str,
    rootfs: CosignRootFs,
    config: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct CosignHistory {
    created: &'static str,
}

#[derive(Serialize)]
struct CosignRootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Sha256Digest>,
}

/// The `.sbom` image of cosign's layout holding `layers` (each an SBOM with its cosign
/// media type): (config bytes, manifest bytes).
pub fn cosign_sbom_image(layers: &[Descriptor]) -> (Vec<u8>, Vec<u8>) {
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let config = json::go(&CosignConfig {
        architecture: "",
        created: ZERO_TIME,
        history: layers
            .iter()
            .map(|_| CosignHistory { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: CosignRootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest).collect(),
        },
        config: BTreeMap::new(),
    });
    let manifest = crate::oci::Manifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST.to_string(),
        config: Descriptor::of_bytes(media::OCI_CONFIG, &config),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.digest, l.size))
            .collect(),
        annotations: BTreeMap::new(),
    };
    (config, json::go(&manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_classified_by_content() {
        let spdx =
            br#"{"spdxVersion":"SPDX-2.3","creationInfo":{"created":"2024-01-02T03:04:05Z"}}"#;
        let k = classify(spdx).unwrap();
        assert_eq!(k.artifact_type, SPDX_JSON);
        assert_eq!(k.created.as_deref(), Some("2024-01-02T03:04:05Z"));
        let cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#;
        assert_eq!(classify(cdx).unwrap().artifact_type, CYCLONEDX_JSON);
        assert_eq!(classify(cdx).unwrap().created, None);
        let st = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#;
        assert_eq!(classify(st).unwrap().artifact_type, IN_TOTO_JSON);
        let e = classify(br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#).unwrap_err();
        assert!(e.to_string().contains("Statement/v0.1\""), "{e}");
        let e = classify(b"<xml/>").unwrap_err().to_string();
        assert!(
            e.contains("not JSON") && e.contains("expected an SPDX"),
            "{e}"
        );
        let e = classify(br#"{"name":"x","version":1}"#).unwrap_err();
        assert!(e.to_string().contains("the keys name, version"), "{e}");
    }

    #[test]
    fn the_artifact_manifest_is_deterministic_and_carries_the_subject() {
        let subject = Descriptor {
            platform: Some("linux/amd64".parse().unwrap()),
            ..Descriptor::of_bytes(media::OCI_MANIFEST, b"image")
        };
        let doc = Descriptor::of_bytes(SPDX_JSON, b"{\"spdxVersion\":\"SPDX-2.3\"}");
        let kind = DocumentKind {
            artifact_type: SPDX_JSON.into(),
            created: Some("2024-01-02T03:04:05Z".into()),
        };
        let a = artifact_manifest(&subject, SPDX_JSON, &doc, &annotations_for(&kind));
        assert_eq!(
            a,
            artifact_manifest(&subject, SPDX_JSON, &doc, &annotations_for(&kind))
        );
        let text = String::from_utf8(a).unwrap();
        let expected = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"artifactType\":\"application/spdx+json\",\"config\":{{\"mediaType\":\
             \"application/vnd.oci.empty.v1+json\",\"size\":2,\"digest\":\
             \"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\
             \"data\":\"e30=\"}},\"layers\":[{{\"mediaType\":\"application/spdx+json\",\
             \"size\":{},\"digest\":\"{}\"}}],\"subject\":{{\"mediaType\":\
             \"application/vnd.oci.image.manifest.v1+json\",\"size\":5,\"digest\":\"{}\"}},\
             \"annotations\":{{\"org.opencontainers.image.created\":\"2024-01-02T03:04:05Z\"}}}}",
            doc.size, doc.digest, subject.digest
        );
        assert_eq!(text, expected);
        let none = artifact_manifest(&subject, SPDX_JSON, &doc, &BTreeMap::new());
        assert!(!String::from_utf8(none).unwrap().contains("annotations"));
        assert_eq!(
            referrers_tag(&subject.digest),
            format!("sha256-{}", subject.digest.hex())
        );
    }

    #[test]
    fn the_cosign_sbom_image_has_go_containerregistry_s_config() {
        let doc = Descriptor::of_bytes(COSIGN_SPDX_JSON, b"{}");
        let (config, manifest) = cosign_sbom_image(std::slice::from_ref(&doc));
        assert_eq!(
            String::from_utf8(config.clone()).unwrap(),
            format!(
                "{{\"architecture\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"history\":\
                 [{{\"created\":\"0001-01-01T00:00:00Z\"}}],\"os\":\"\",\"rootfs\":{{\"type\":\
                 \"layers\",\"diff_ids\":[\"{}\"]}},\"config\":{{}}}}",
                doc.digest
            )
        );
        let m: crate::oci::Manifest = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m.config.digest, Sha256Digest::of(&config));
        assert_eq!(m.layers, vec![doc]);
    }
}

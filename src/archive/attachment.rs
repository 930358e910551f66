//! Attachments of a push manifest: an SBOM or provenance document to push as an OCI 1.1
//! referrer of one image of the push (the root image, or one platform image of an index).
//! The artifact manifest is recorded by its descriptor only; `rko push` makes its bytes again
//! with the same function ([`crate::oci::referrer::artifact_manifest`]) and checks them
//! against that descriptor, so the push manifest stays one file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::archive::push_manifest::{BlobRef, PushManifest};
use crate::oci::referrer::{self, DocumentKind};
use crate::oci::verify::verify_bytes;
use crate::oci::{Descriptor, media};

/// One document attached to one image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The image the document is about: media type, digest and size.
    pub subject: Descriptor,
    /// The artifact manifest: media type, digest, size, `artifactType` and annotations,
    /// exactly the entry a referrers index lists.
    pub manifest: Descriptor,
    /// The document, its media type the artifactType, and the file with its bytes
    /// (a relative path is relative to the push manifest's directory, as for blobs).
    pub document: BlobRef,
}

/// An `--attach` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(
        "--attach {0:?}: expected SUBJECT_DESCRIPTOR.json=DOCUMENT or \
         SUBJECT_DESCRIPTOR.json=DOCUMENT=MEDIA_TYPE (the descriptor `rko image \
         --descriptor-out` wrote for the image the document is about)"
    )]
    Syntax(String),
    #[error(
        "cannot attach {document}: {source}; or name its type: --attach SUBJECT=DOCUMENT=MEDIA_TYPE"
    )]
    Unknown {
        document: PathBuf,
        source: referrer::UnknownDocument,
    },
    #[error(
        "--attach {document}: the subject {subject} ({descriptor}) is not an image of this \
         push (its root is {root}); give the descriptor of the pushed image, or for an \
         index the descriptor of one of its platform images"
    )]
    NotInPush {
        document: PathBuf,
        descriptor: PathBuf,
        subject: String,
        root: String,
    },
    #[error(
        "--attach {document}: the subject {descriptor} is a {media_type}; attach documents \
         to image manifests (for an index, to each platform image)"
    )]
    NotAnImage {
        document: PathBuf,
        descriptor: PathBuf,
        media_type: String,
    },
}

/// A parsed `--attach SUBJECT=DOCUMENT[=MEDIA_TYPE]`.
pub struct AttachSpec {
    pub subject: PathBuf,
    pub document: PathBuf,
    pub media_type: Option<String>,
}

impl AttachSpec {
    pub fn parse(s: &str) -> Result<AttachSpec, AttachmentError> {
        let parts: Vec<&str> = s.split('=').collect();
        let bad = || AttachmentError::Syntax(s.to_string());
        match parts.as_slice() {
            [subject, document] if !subject.is_empty() && !document.is_empty() => Ok(AttachSpec {
                subject: subject.into(),
                document: document.into(),
                media_type: None,
            }),
            [subject, document, mt]
                if !subject.is_empty() && !document.is_empty() && mt.contains('/') =>
            {
                Ok(AttachSpec {
                    subject: subject.into(),
                    document: document.into(),
                    media_type: Some(mt.to_string()),
                })
            }
            _ => Err(bad()),
        }
    }
}

impl Attachment {
    /// The attachment of the document file `document` to `subject`; its artifactType is
    /// `media_type` when given, else read from its content.
    pub fn new(
        subject: &Descriptor,
        document: &Path,
        media_type: Option<&str>,
    ) -> Result<Attachment> {
        let bytes = fs_err::read(document)?;
        let kind = match media_type {
            Some(mt) => DocumentKind {
                artifact_type: mt.to_string(),
                created: referrer::classify(&bytes).ok().and_then(|k| k.created),
            },
            None => referrer::classify(&bytes).map_err(|source| AttachmentError::Unknown {
                document: document.to_path_buf(),
                source,
            })?,
        };
        let subject = Descriptor::new(&subject.media_type, subject.digest, subject.size);
        let doc = Descriptor::of_bytes(&kind.artifact_type, &bytes);
        let annotations = referrer::annotations_for(&kind);
        let manifest_bytes =
            referrer::artifact_manifest(&subject, &kind.artifact_type, &doc, &annotations);
        let manifest = Descriptor {
            artifact_type: Some(kind.artifact_type.clone()),
            annotations,
            ..Descriptor::of_bytes(media::OCI_MANIFEST, &manifest_bytes)
        };
        Ok(Attachment {
            subject,
            manifest,
            document: BlobRef {
                media_type: doc.media_type,
                digest: doc.digest,
                size: doc.size,
                path: Some(document.to_path_buf()),
                source: None,
            },
        })
    }

    /// The attachment of `spec`, checked against the images of the push `pm`.
    pub fn from_spec(spec: &AttachSpec, pm: &PushManifest) -> Result<Self> {
        let (root, images) = (&pm.root, &pm.manifests);
        let subject = Descriptor::read_file(&spec.subject)?;
        if media::is_index(&subject.media_type) {
            bail!(AttachmentError::NotAnImage {
                document: spec.document.clone(),
                descriptor: spec.subject.clone(),
                media_type: subject.media_type,
            });
        }
        if !images.iter().any(|m| m.digest == subject.digest) && root.digest != subject.digest {
            bail!(AttachmentError::NotInPush {
                document: spec.document.clone(),
                descriptor: spec.subject.clone(),
                subject: subject.digest.to_string(),
                root: root.digest.to_string(),
            });
        }
        Attachment::new(&subject, &spec.document, spec.media_type.as_deref())
            .with_context(|| format!("--attach {}", spec.document.display()))
    }

    /// The artifact manifest's bytes, made again and checked against the recorded
    /// descriptor; `document` is the document's descriptor as recorded.
    pub fn manifest_bytes(&self) -> Result<Vec<u8>> {
        let artifact_type = self.manifest.artifact_type.as_deref().with_context(|| {
            format!(
                "the attachment {} has no artifactType; rebuild the push target",
                self.manifest.digest
            )
        })?;
        let doc = Descriptor::new(
            &self.document.media_type,
            self.document.digest,
            self.document.size,
        );
        let bytes = referrer::artifact_manifest(
            &self.subject,
            artifact_type,
            &doc,
            &self.manifest.annotations,
        );
        let what = || format!("the artifact manifest for {}", self.document.digest);
        verify_bytes(
            &Descriptor::new(
                &self.manifest.media_type,
                self.manifest.digest,
                self.manifest.size,
            ),
            &bytes,
            what,
            "the push manifest was written by another rko: rebuild the push target with this one",
        )?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let s = AttachSpec::parse("d.json=sbom.json").unwrap();
        assert_eq!(s.subject, Path::new("d.json"));
        assert_eq!(s.document, Path::new("sbom.json"));
        assert!(s.media_type.is_none());
        let s = AttachSpec::parse("d.json=x=application/x+json").unwrap();
        assert_eq!(s.media_type.as_deref(), Some("application/x+json"));
        for bad in ["d.json", "=x", "a=b=c", "a=b=c/d=e", "a="] {
            let e = AttachSpec::parse(bad).err().unwrap().to_string();
            assert!(
                e.contains("expected SUBJECT_DESCRIPTOR.json=DOCUMENT"),
                "{e}"
            );
        }
    }
}

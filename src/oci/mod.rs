//! The OCI image spec's nouns, in one place at the bottom of the crate: digests, media
//! types, platforms, descriptors, manifests, indexes, image configs, references and tags,
//! the image layout's file names, and one verified copy ([`verify`]) that every check of
//! bytes against a descriptor goes through. Nothing here imports the rest of the crate.
//!
//! The JSON types are written by hand rather than taken from `oci-spec`: the bytes must be
//! those go-containerregistry (and so ko) writes, field order and all, and the config keeps
//! fields it does not know.

pub mod config;
pub mod descriptor;
pub mod digest;
pub mod json;
pub mod layout;
pub mod media;
pub mod platform;
pub mod reference;
pub mod referrer;
pub mod tag;
pub mod verify;

pub use config::ConfigFile;
pub use descriptor::{Descriptor, Index, Manifest, NoPlatform};
pub use digest::Sha256Digest;
pub use platform::Platform;
pub use reference::Reference;
pub use tag::TagRef;

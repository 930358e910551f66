//! The archive stage, after `image/`: everything that needs an image's blobs rather than
//! its metadata. A [`store::BlobStore`] knows where each blob's bytes are (a file, the
//! embedded static layer, a registry repository); an [`artifact::Artifact`] is an image or
//! index with every blob it reaches, written as a tarball, an OCI layout, a push manifest,
//! or streamed into `docker load`. The registry side plugs in through
//! [`store::RemoteBlobs`], so this module never talks HTTP itself.

pub mod artifact;
pub mod attachment;
pub mod load;
pub mod paths;
pub mod push_manifest;
pub mod sources;
pub mod store;
pub mod tags;

pub use artifact::Artifact;
pub use push_manifest::PushManifest;
pub use store::BlobStore;

//! Talking to registries: credentials, a lean HTTP client with auth and retries, shallow
//! pulls by digest, pushes that skip, mount or stream what the registry lacks, and ko's
//! naming of repositories. Above `archive/`: pushes read push manifests, and
//! [`pull::RegistryBlobs`] lets the blob store read a shallow base's layers.

mod absolute;
pub mod attach;
pub mod auth;
pub mod base_cache;
pub mod cache;
mod challenge;
pub mod client;
mod error;
pub mod grpc;
mod many;
pub mod mirrors;
pub mod naming;
pub mod progress;
pub mod proxy;
pub mod pull;
pub mod push;
pub mod trust;
mod upload;

/// The response parsers the fuzz targets drive (`crate::fuzzing`).
#[cfg(fuzzing)]
pub(crate) use challenge::fuzz as challenge_fuzz;

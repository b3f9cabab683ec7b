//! # lhcie-registry-client: using the consent and ISA registry
//!
//! - [`client`]: [`RegistryClient`], which finds the registry's leader and
//!   follows it, for tools (the `registry` admin CLI) and services.
//! - [`cache`]: [`RegistryPolicy`], the hub's in-memory copy of the
//!   registry: it implements the hub's `Policy`, deciding with no network
//!   round trip, and fails closed when it cannot prove it is current.
//! - [`compact`]: how that copy keeps every patient's directives small.
//! - [`agreements`]: its agreements, indexed by what they name.
//! - [`follower`]: the task that keeps the copy current from the
//!   registry's watch feed.

pub mod agreements;
pub mod cache;
pub mod client;
pub mod compact;
pub mod follower;

pub use cache::{CacheHealth, RegistryPolicy};
pub use client::{RegistryClient, RegistryTls, Retry, TlsConnector};
pub use follower::follow;

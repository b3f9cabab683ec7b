//! # lhcie-registry: the consent and ISA registry
//!
//! One source of truth for information sharing agreements, patients'
//! consent directives and carer grants, replicated across three (or five)
//! nodes with Raft ([openraft] 0.9) on [sled], and served over gRPC
//! (`lhcie.registry.v1.ConsentRegistry`). The rules themselves are pure and
//! live in `lhcie-consent`; this crate stores, replicates and serves them.
//!
//! - [`store`]: everything on disk (the Raft log, the state machine,
//!   snapshots), the only module that touches sled.
//! - [`types`]: the Raft type configuration and what the state machine
//!   records.
//! - [`network`]: Raft between nodes (the internal gRPC service and its
//!   client).
//! - [`api`]: the public API, served by the leader, and the watch feed.
//! - [`cluster`]: forming the cluster, adding and removing nodes.
//! - [`metrics`]: what the node measures, served on its optional
//!   Prometheus endpoint.
//! - [`node`]: starting and stopping a node.

pub mod api;
pub mod cluster;
pub mod metrics;
pub mod network;
pub mod node;
pub mod store;
pub mod types;

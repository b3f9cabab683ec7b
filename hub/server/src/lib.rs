//! # lhcie-hub: the hub
//!
//! Routes canonical envelopes between London's local exchanges. Adapters
//! submit over gRPC ([`grpc`], mutual TLS) or AMQP ([`amqp_ingress`]); the
//! [`router`] validates (also that an original payload is about the
//! envelope's patient: [`original_patient`]), asks the pure routing core (`lhcie-hub-core`) and
//! the policy, publishes permitted copies to the recipients' egress queues
//! through the supervised broker [`link`], records the decision in the
//! [`store`] (audit and de-duplication), and only then answers. Adapters
//! receive over AMQP directly or over gRPC ([`grpc::receive`]). [`admin`]
//! serves health, readiness, audit queries and adapter heartbeats
//! ([`adapters`]); [`app`] starts and stops it all.
//!
//! The binary is `hub` (`src/main.rs`).

pub mod ack_coalescer;
pub mod adapters;
pub mod admin;
pub mod amqp_ingress;
pub mod app;
pub mod dashboard;
pub mod dead_letter_collector;
pub mod grpc;
pub mod link;
pub mod metrics;
pub mod ops_cli;
pub mod ops_poller;
pub mod ops_stats;
pub mod original_patient;
pub mod patient_notification;
pub mod router;
pub mod store;

//! # lhcie-broker: RabbitMQ for the hub and adapters
//!
//! RabbitMQ is the hub's transport and its scale-out engine. This crate owns
//! everything about it that the hub and the adapters share:
//!
//! - [`names`]: how exchanges and queues are named (one prefix per
//!   deployment or test run).
//! - [`bootstrap`]: the idempotent declaration of the broker topology:
//!   durable quorum queues, a dead-letter exchange and queue per
//!   destination, a delivery limit so a poison message never blocks a queue.
//! - [`mod@connect`]: opening a connection.
//! - [`liveness`]: noticing a consumer the broker stopped feeding.
//! - [`users`]: one broker user per exchange's adapter, with
//!   least-privilege permissions.
//!
//! Invariants: every queue we declare is a durable quorum queue; every
//! queue that carries envelopes dead-letters at least once to its own
//! destination's dead-letter exchange; declaring twice changes nothing.

pub mod bootstrap;
pub mod connect;
pub mod error;
pub mod liveness;
pub mod names;
pub mod users;

pub use bootstrap::{BrokerTopology, Declaration};
pub use connect::connect;
pub use error::BrokerError;
pub use names::{Destination, Names};

//! # lhcie-adapter-kit: what every adapter shares
//!
//! An adapter connects one local exchange to the hub. Whatever its kind
//! (native canonical, HL7 v2, FHIR), it needs the same things, which live
//! here:
//!
//! - [`connection`]: reaching the hub's gRPC endpoint with the adapter's
//!   client certificate (mutual TLS).
//! - [`outbox`]: the local durable outbox. An envelope from the local
//!   system is on disk before the adapter acknowledges it, and is forwarded
//!   (through the uplink) with retry until the hub gives a final answer;
//!   rejections are kept for a negative acknowledgement.
//! - [`uplink`]: a pipelined `Submit` stream that keeps every envelope
//!   until the hub answers it, and resubmits the unanswered ones after a
//!   reconnect.
//! - [`receiver`]: receiving deliveries over gRPC, de-duplicated by message
//!   id, acknowledged only once the local system took them and their ids
//!   are recorded durably ([`dedup`]).
//! - [`heartbeat`]: telling the hub the adapter is up.
//! - [`trace`]: telling the hub what happened to each message at the
//!   adapter's side (received from, refused, delivered to the local
//!   system...), best effort, for the operators' message trace.
//! - [`amqp`]: the same over AMQP (publish to the ingress exchange, consume
//!   the exchange's own egress queue) as the adapter's broker user;
//!   [`amqp_sink`] puts the publisher behind the outbox's forwarder
//!   (answered once the broker confirms).
//!
//! Exactly-once *effect* = at-least-once transport + idempotency by message
//! id at the hub (per submitting exchange) and here at the receiver. See
//! [`dedup`] for the receiver's rules.

pub mod amqp;
pub mod amqp_sink;
pub mod connection;
pub mod dedup;
pub mod heartbeat;
pub mod outbox;
pub mod receiver;
pub mod trace;
pub mod uplink;

pub use amqp_sink::AmqpSink;
pub use connection::{ClientTls, HubClient, HubConnection};
pub use dedup::{DeliveryKey, SeenStore};
pub use outbox::{Outbox, OutboxError, Ticket};
pub use receiver::{Disposition, Incoming, ReceiverStats, receive, receive_observed};
pub use trace::{TraceOptions, TraceReporter};
pub use uplink::{Answers, Uplink};

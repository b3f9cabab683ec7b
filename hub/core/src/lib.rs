//! # lhcie-hub-core: the hub's routing core, without I/O
//!
//! Everything the hub decides, as pure functions over `lhcie-model` types:
//!
//! - [`route_table`]: which exchange serves each organisation.
//! - [`policy`]: the [`Policy`] trait the hub asks before forwarding patient
//!   data (agreement and consent), and [`StaticPolicy`] over a fixed set of
//!   agreements and directives from configuration.
//! - [`routing`]: [`route`]: check the sender against the submitting
//!   exchange, resolve recipients (named, or by rule), ask the policy per
//!   recipient, and group permitted recipients into one copy per exchange.
//! - [`acknowledgement`]: what an exchange's acknowledgement must answer
//!   before it is routed.
//! - [`hub_ack`]: the negative acknowledgements the hub sends a sender.
//! - [`audit`]: the audit record of each decision.
//!
//! Invariant: no network, storage or RPC crate is a dependency of this
//! crate (`cargo tree -p lhcie-hub-core` shows it; the test
//! `tests/pure_core.rs` enforces it), so every rule here is unit-testable
//! and fuzzable.

pub mod acknowledgement;
pub mod audit;
pub mod hub_ack;
pub mod policy;
pub mod route_table;
pub mod routing;

pub use acknowledgement::check_acknowledgement;
pub use audit::{AuditOutcome, AuditRecipient, AuditRecord, Ingress};
pub use policy::{Policy, PolicyUnavailable, StaticPolicy};
pub use route_table::{Placement, RouteTable};
pub use routing::{Copy, Outcome, RecipientDecision, RejectReason, Rejection, Routed, route};

#[cfg(test)]
mod tests;

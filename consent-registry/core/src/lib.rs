//! # lhcie-consent: consent and information sharing rules
//!
//! The pure rules that decide whether information may flow between two
//! organisations about a patient: an information sharing agreement
//! ([`isa`]) must cover the flow, and the patient's consent directives
//! ([`directive`]) must not forbid it. [`decision::decide`] answers with
//! the reason, the agreement and directives that decided, and obligations
//! (such as recording emergency access). No I/O: the hub's policy and the
//! registry both call these functions over data they hold.

pub mod decision;
pub mod directive;
pub mod isa;
pub mod party;

pub use decision::{ConsentModel, Decision, DecisionRequest, Obligation, Reason, decide};
pub use directive::{Directive, DirectiveRule, DirectiveSource};
pub use isa::{Isa, IsaStatus};
pub use party::{IsaParty, OrgRef};

#[cfg(test)]
mod tests;

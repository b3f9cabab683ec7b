//! # lhcie-consent: consent and information sharing rules
//!
//! The pure rules that decide whether information may flow between two
//! organisations about a patient, and how the facts they decide on change.
//! See `docs/consent-model.md` for the model in prose.
//!
//! - [`isa`]: information sharing agreements: versions of terms, signatures
//!   per party, amendment, suspension, revocation, and the status of each
//!   version derived for a moment in time.
//! - [`directive`]: patients' consent directives.
//! - [`grant`]: carer and proxy grants.
//! - [`decision`]: [`decide`]: may this flow happen, why, on which
//!   agreement and directives, with which obligations.
//! - [`commands`]: the changes the registry makes, as pure transitions over
//!   the records they touch.
//!
//! No I/O: the registry's state machine and the hub's policy cache both
//! call these functions over data they hold.

pub mod commands;
pub mod decision;
pub mod directive;
pub mod grant;
pub mod isa;
pub mod party;

pub use commands::{Command, CommandError, Proposal};
pub use decision::{
    Choice, ChoiceRule, ConsentModel, Decision, DecisionRequest, Obligation, Reason, decide,
    decide_from_history, decide_with_choices, natural_order,
};
pub use directive::{Directive, DirectiveRule, DirectiveSource, as_they_stood};
pub use grant::CarerGrant;
pub use isa::{
    Agreement, IsaError, IsaStatus, IsaTerms, IsaVersion, Signature, StatusNote, Suspension,
};
pub use party::{IsaParty, OrgRef};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod time_tests;

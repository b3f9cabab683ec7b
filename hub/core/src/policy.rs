//! The policy the hub asks before forwarding patient data: is there an
//! agreement, and does the patient allow it?

use std::collections::HashMap;

use lhcie_consent::{Agreement, ConsentModel, Decision, DecisionRequest, Directive, decide};
use lhcie_model::NhsNumber;

/// The policy could not decide with certainty (for example its view of the
/// registry is stale). The hub then fails closed: it holds the message and
/// forwards nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUnavailable {
    /// Why, for operators (never names a patient).
    pub reason: String,
}

/// Decides flows. Implementations must be cheap: the hub asks once per
/// recipient per message, on its hot path.
pub trait Policy: Send + Sync {
    /// The decision for one flow, or why none can be made now.
    fn decide(&self, request: &DecisionRequest<'_>) -> Result<Decision, PolicyUnavailable>;
}

/// A policy over a fixed set of agreements and directives, loaded from
/// configuration. It is always fresh, so it never answers unavailable.
#[derive(Debug, Clone, Default)]
pub struct StaticPolicy {
    agreements: Vec<Agreement>,
    directives: HashMap<NhsNumber, Vec<Directive>>,
    model: ConsentModel,
}

impl StaticPolicy {
    /// A policy over these agreements and directives.
    pub fn new(
        agreements: Vec<Agreement>,
        directives: Vec<Directive>,
        model: ConsentModel,
    ) -> Self {
        let mut by_patient: HashMap<NhsNumber, Vec<Directive>> = HashMap::new();
        for directive in directives {
            by_patient
                .entry(directive.nhs_number)
                .or_default()
                .push(directive);
        }
        Self {
            agreements,
            directives: by_patient,
            model,
        }
    }

    /// The agreements.
    pub fn agreements(&self) -> &[Agreement] {
        &self.agreements
    }
}

impl Policy for StaticPolicy {
    fn decide(&self, request: &DecisionRequest<'_>) -> Result<Decision, PolicyUnavailable> {
        let directives = request
            .nhs_number
            .and_then(|n| self.directives.get(n))
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(decide(request, &self.agreements, directives, self.model))
    }
}

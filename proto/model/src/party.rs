//! Who sends a message and to whom it goes.

use crate::{CareEventKind, Category, ExchangeId, OdsCode, PatientClass};

/// The sending organisation, the local exchange it sent through, and the
/// system inside it that produced the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The ODS code of the sending organisation.
    pub ods_code: OdsCode,
    /// The local exchange the message came through. The hub checks it against
    /// the identity of the adapter that submitted the message.
    pub exchange_id: ExchangeId,
    /// The sending application (e.g. HL7 MSH-3), for tracing only.
    pub sending_system: Option<String>,
}

/// Where a message should go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addressing {
    /// Organisations named by the sender.
    pub recipients: Vec<Recipient>,
    /// A rule the hub applies to find (further) recipients, for
    /// notifications whose sender does not know who should hear of them.
    pub rule: Option<RoutingRule>,
}

/// One named recipient organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Its ODS code.
    pub ods_code: OdsCode,
    /// Whether it is expected to act on the message (ITK3 recipient type).
    pub intent: RecipientIntent,
}

/// ITK3's recipient type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecipientIntent {
    /// The recipient is expected to act.
    #[default]
    ForAction,
    /// A copy, for information only.
    ForInformation,
}

/// Recipients found by rule rather than named by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingRule {
    /// The patient's registered GP practice (from the patient identity).
    RegisteredGp,
    /// Organisations subscribed to this kind of event for this patient.
    Subscribers,
}

/// One routing rule of an adapter's configuration (HL7 v2, FHIR): when a
/// translated message matches every non-empty condition, it also goes to
/// the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// Categories the rule applies to; empty means any.
    pub categories: Vec<Category>,
    /// Care event kinds it applies to; empty means any.
    pub event_kinds: Vec<CareEventKind>,
    /// Patient classes (HL7 PV1-2, FHIR Encounter.class) it applies to;
    /// empty means any. E.g. `[Emergency]`: events at an emergency
    /// department.
    pub patient_classes: Vec<PatientClass>,
    /// Where the message goes.
    pub target: RouteTarget,
    /// For action or for information.
    pub intent: RecipientIntent,
}

/// Where a [`RouteRule`] sends a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// The patient's registered GP practice as the message names it (HL7
    /// PD1-3, FHIR Patient.generalPractitioner); if it names none, the
    /// hub's registered-GP rule is asked for instead.
    RegisteredGpPractice,
    /// A fixed organisation.
    Organisation(OdsCode),
    /// Leave it to a hub rule.
    HubRule(RoutingRule),
}

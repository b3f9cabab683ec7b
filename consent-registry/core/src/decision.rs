//! The decision: may this flow happen?
//!
//! Rules, in order:
//!
//! 1. An agreement in force must cover the flow (both organisations, the
//!    category, the purpose): the version in force of some agreement (see
//!    [`crate::isa`]). Without one the answer is **deny**, whatever the
//!    purpose: emergency access never overrides a missing agreement.
//! 2. The patient's directives in force decide, most specific first:
//!    a denial of the recipient organisation or of the category **denies**;
//!    an allowance of the recipient organisation **permits** (it overrides a
//!    broader dissent); dissent from all sharing **denies**.
//! 3. With no directive that speaks to the flow, the consent model decides:
//!    implied consent (the UK norm for direct care) **permits**; explicit
//!    opt-in **denies**.
//! 4. Without an NHS number the patient's choices cannot be checked, so the
//!    answer is **deny** (fail closed), in an emergency too: a disclosure
//!    that cannot be found by patient could be neither reviewed nor told
//!    to them.
//! 5. Emergency care overrides a denial from steps 2 or 3 only where the
//!    covering agreement's version opts in (`emergency_override`: the
//!    parties agreed break-glass). Every emergency decision carries the
//!    obligation to record it as emergency access; overriding a patient's
//!    own refusal also obliges notifying them.

use lhcie_model::{Category, NhsNumber, PurposeOfUse};
use time::OffsetDateTime;

use crate::directive::{Directive, DirectiveRule, states_by_id};
use crate::isa::{Agreement, IsaVersion};
use crate::party::OrgRef;

/// How consent for direct care is taken where the patient has said nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentModel {
    /// Consent is implied (the UK norm for direct care).
    #[default]
    Implied,
    /// Nothing flows without the patient's recorded allowance.
    ExplicitOptIn,
}

/// The question.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    /// The patient, if their NHS number is known.
    pub nhs_number: Option<&'a NhsNumber>,
    /// The sending organisation.
    pub sender: OrgRef<'a>,
    /// The receiving organisation.
    pub recipient: OrgRef<'a>,
    /// What is being shared.
    pub category: Category,
    /// Why.
    pub purpose: PurposeOfUse,
    /// When.
    pub at: OffsetDateTime,
}

/// The answer, with what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Permit or deny.
    pub permitted: bool,
    /// Why, for the audit and for information governance staff. Never shown
    /// to the sender (it can reveal the patient's choices).
    pub reason: Reason,
    /// The agreement that covered the flow, with its version.
    pub isa: Option<(String, u32)>,
    /// The directives that decided it.
    pub directives: Vec<String>,
    /// What must happen because of the decision.
    pub obligations: Vec<Obligation>,
    /// The registry revision of the copy that decided, where a copy of the
    /// registry decided (the hub's): asking the registry as of this
    /// revision gives the same decision. `None` from [`decide`] itself.
    pub registry_revision: Option<u64>,
}

/// Why a decision went the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No agreement in force covers the flow.
    NoAgreement,
    /// The patient has no NHS number, so their choices cannot be checked.
    PatientNotIdentified,
    /// The patient denied this organisation.
    PatientDeniedOrganisation,
    /// The patient denied this category of information.
    PatientDeniedCategory,
    /// The patient dissents from all sharing.
    PatientDissents,
    /// Explicit opt-in model and no allowance recorded.
    NoRecordedConsent,
    /// The patient allowed this organisation.
    PatientAllowedOrganisation,
    /// Implied consent.
    ImpliedConsent,
    /// Emergency care overrode a denial.
    EmergencyOverride,
}

impl Reason {
    /// A stable code for audit records and metrics labels.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NoAgreement => "no-agreement",
            Reason::PatientNotIdentified => "patient-not-identified",
            Reason::PatientDeniedOrganisation => "patient-denied-organisation",
            Reason::PatientDeniedCategory => "patient-denied-category",
            Reason::PatientDissents => "patient-dissents",
            Reason::NoRecordedConsent => "no-recorded-consent",
            Reason::PatientAllowedOrganisation => "patient-allowed-organisation",
            Reason::ImpliedConsent => "implied-consent",
            Reason::EmergencyOverride => "emergency-override",
        }
    }
}

/// Something that must happen because of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Obligation {
    /// Record the flow as emergency (break-glass) access, for review.
    RecordEmergencyAccess,
    /// Tell the patient their choice was overridden.
    NotifyPatient,
}

/// One of the patient's directives, as the decision needs it: one that is
/// in force at the request's time. Caches that keep directives compactly
/// build these on the fly (see [`decide_with_choices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The directive's id.
    pub id: &'a str,
    /// What it says.
    pub rule: ChoiceRule<'a>,
}

/// What a [`Choice`] says (a [`DirectiveRule`] by reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceRule<'a> {
    /// Do not share anything about me.
    DissentAll,
    /// Do not share with this organisation (ODS code).
    DenyOrganisation(&'a str),
    /// Do not share this kind of information.
    DenyCategory(Category),
    /// Share with this organisation even though I dissent more broadly.
    AllowOrganisation(&'a str),
}

impl<'a> Choice<'a> {
    /// A directive as a choice (whether it is in force is not checked).
    pub fn of(directive: &'a Directive) -> Self {
        Self {
            id: &directive.id,
            rule: match &directive.rule {
                DirectiveRule::DissentAll => ChoiceRule::DissentAll,
                DirectiveRule::DenyOrganisation(code) => {
                    ChoiceRule::DenyOrganisation(code.as_str())
                }
                DirectiveRule::DenyCategory(category) => ChoiceRule::DenyCategory(*category),
                DirectiveRule::AllowOrganisation(code) => {
                    ChoiceRule::AllowOrganisation(code.as_str())
                }
            },
        }
    }
}

/// Decides a flow from the agreements and the patient's directives.
/// `directives` may hold any patient's directives; only those of the
/// request's patient, in force at the request's time, count.
pub fn decide<'i>(
    request: &DecisionRequest<'_>,
    agreements: impl IntoIterator<Item = &'i Agreement>,
    directives: &[Directive],
    model: ConsentModel,
) -> Decision {
    let choices: Vec<Choice<'_>> = match request.nhs_number {
        Some(nhs_number) => directives
            .iter()
            .filter(|d| &d.nhs_number == nhs_number && d.in_force_at(request.at))
            .map(Choice::of)
            .collect(),
        None => Vec::new(),
    };
    decide_with_choices(request, agreements, &choices, model)
}

/// [`decide`] for a moment that may be past, from the record kept for
/// ever: the patient's directives as every change left them
/// (`directive_states`, oldest first; see [`as_they_stood`](crate::as_they_stood)) and the
/// agreements with their dated facts. With `known_at`, only what the
/// registry held at that moment counts: the decision a copy of that age
/// made. Later changes never alter the answer for a moment before them.
pub fn decide_from_history<'i>(
    request: &DecisionRequest<'_>,
    agreements: impl IntoIterator<Item = &'i Agreement>,
    directive_states: &[Directive],
    model: ConsentModel,
    known_at: Option<OffsetDateTime>,
) -> Decision {
    let cutoff = known_at.map_or(request.at, |known| known.min(request.at));
    let choices: Vec<Choice<'_>> = match request.nhs_number {
        Some(nhs_number) => states_by_id(directive_states, cutoff)
            .filter(|d| &d.nhs_number == nhs_number && d.in_force_at(request.at))
            .map(Choice::of)
            .collect(),
        None => Vec::new(),
    };
    // Facts recorded after `at` cannot change the answer for `at` (nothing
    // applies before it was recorded): only a copy older than `at` needs
    // the agreements as it held them.
    let known_at = known_at.filter(|known| *known < request.at);
    decide_known_at(request, agreements, &choices, model, known_at)
}

/// [`decide`], given the patient's choices in force at the request's time
/// (ignored when the request names no patient).
pub fn decide_with_choices<'i>(
    request: &DecisionRequest<'_>,
    agreements: impl IntoIterator<Item = &'i Agreement>,
    choices: &[Choice<'_>],
    model: ConsentModel,
) -> Decision {
    decide_known_at(request, agreements, choices, model, None)
}

/// [`decide_with_choices`] with the agreements as the registry held them at
/// `known_at` (everything when `None`).
fn decide_known_at<'i>(
    request: &DecisionRequest<'_>,
    agreements: impl IntoIterator<Item = &'i Agreement>,
    choices: &[Choice<'_>],
    model: ConsentModel,
    known_at: Option<OffsetDateTime>,
) -> Decision {
    let emergency = request.purpose == PurposeOfUse::EmergencyCare;
    let covering = agreements
        .into_iter()
        .filter_map(|agreement| {
            agreement
                .covering_known_at(
                    &request.sender,
                    &request.recipient,
                    request.category,
                    request.purpose,
                    request.at,
                    known_at,
                )
                .map(|version| (agreement.id.as_str(), version))
        })
        .min_by(deciding_order);
    let Some((isa_id, version)) = covering else {
        return denied(Reason::NoAgreement, None, vec![]);
    };
    let isa_ref = Some((isa_id.to_owned(), version.version));
    let Some(_) = request.nhs_number else {
        // Never overridden, not even in an emergency: a disclosure nobody
        // can find by patient could be neither reviewed nor told to them.
        return denied(Reason::PatientNotIdentified, isa_ref, vec![]);
    };
    let (permitted, reason, deciding) = patient_choice(request, choices, model);
    let record_emergency = || emergency.then_some(Obligation::RecordEmergencyAccess);
    if permitted {
        return Decision {
            permitted,
            reason,
            isa: isa_ref,
            directives: deciding,
            obligations: record_emergency().into_iter().collect(),
            registry_revision: None,
        };
    }
    let refused_by_patient = matches!(
        reason,
        Reason::PatientDeniedOrganisation | Reason::PatientDeniedCategory | Reason::PatientDissents
    );
    let overridable = refused_by_patient || reason == Reason::NoRecordedConsent;
    if emergency && overridable && version.terms.emergency_override {
        let mut obligations = vec![Obligation::RecordEmergencyAccess];
        if refused_by_patient {
            obligations.push(Obligation::NotifyPatient);
        }
        return Decision {
            permitted: true,
            reason: Reason::EmergencyOverride,
            isa: isa_ref,
            directives: deciding,
            obligations,
            registry_revision: None,
        };
    }
    denied(reason, isa_ref, deciding)
}

/// Which of two covering agreements decides: the one whose version came
/// into force first, then the smaller id in natural order (`ISA-9` before
/// `ISA-10`; ids equal but for leading zeros, as text), so the choice is
/// stable.
fn deciding_order(a: &(&str, &IsaVersion), b: &(&str, &IsaVersion)) -> std::cmp::Ordering {
    a.1.in_force_from()
        .cmp(&b.1.in_force_from())
        .then_with(|| natural_order(a.0, b.0))
        .then_with(|| a.0.cmp(b.0))
}

/// Compares two ids with runs of digits compared as numbers.
pub fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (number_a, rest_a) = split_digits(a);
                let (number_b, rest_b) = split_digits(b);
                let trimmed = |n: &str| n.trim_start_matches('0').to_owned();
                let (ta, tb) = (trimmed(number_a), trimmed(number_b));
                let order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb));
                if order.is_ne() {
                    return order;
                }
                (a, b) = (rest_a, rest_b);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A deny: no obligations follow from it.
fn denied(reason: Reason, isa: Option<(String, u32)>, directives: Vec<String>) -> Decision {
    Decision {
        permitted: false,
        reason,
        isa,
        directives,
        obligations: vec![],
        registry_revision: None,
    }
}

/// Steps 2 and 3: the patient's own choices, most specific first.
fn patient_choice(
    request: &DecisionRequest<'_>,
    choices: &[Choice<'_>],
    model: ConsentModel,
) -> (bool, Reason, Vec<String>) {
    let ids = |wanted: &dyn Fn(&ChoiceRule<'_>) -> bool| -> Vec<String> {
        choices
            .iter()
            .filter(|c| wanted(&c.rule))
            .map(|c| c.id.to_owned())
            .collect()
    };
    let recipient = request.recipient.ods_code.as_str();
    let denied_org = ids(&|r| matches!(r, ChoiceRule::DenyOrganisation(o) if *o == recipient));
    if !denied_org.is_empty() {
        return (false, Reason::PatientDeniedOrganisation, denied_org);
    }
    let denied_category =
        ids(&|r| matches!(r, ChoiceRule::DenyCategory(c) if *c == request.category));
    if !denied_category.is_empty() {
        return (false, Reason::PatientDeniedCategory, denied_category);
    }
    let allowed = ids(&|r| matches!(r, ChoiceRule::AllowOrganisation(o) if *o == recipient));
    if !allowed.is_empty() {
        return (true, Reason::PatientAllowedOrganisation, allowed);
    }
    let dissent = ids(&|r| matches!(r, ChoiceRule::DissentAll));
    if !dissent.is_empty() {
        return (false, Reason::PatientDissents, dissent);
    }
    match model {
        ConsentModel::Implied => (true, Reason::ImpliedConsent, vec![]),
        ConsentModel::ExplicitOptIn => (false, Reason::NoRecordedConsent, vec![]),
    }
}

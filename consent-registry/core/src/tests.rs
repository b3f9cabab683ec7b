//! A table of cases for every rule in [`crate::decision`].

use std::collections::BTreeSet;

use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::*;

struct Org {
    ods: OdsCode,
    exchange: ExchangeId,
    region: &'static str,
}

fn org(ods: &str, exchange: &str, region: &'static str) -> Org {
    Org {
        ods: OdsCode::parse(ods).unwrap(),
        exchange: ExchangeId::parse(exchange).unwrap(),
        region,
    }
}

impl Org {
    fn r(&self) -> OrgRef<'_> {
        OrgRef {
            ods_code: &self.ods,
            exchange: &self.exchange,
            region: self.region,
        }
    }
}

const FROM: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const UNTIL: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);
const NOW: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

fn london_isa() -> Isa {
    Isa {
        id: "ISA-NWL-NCL-1".into(),
        version: 1,
        title: "NWL and NCL direct care".into(),
        parties: vec![
            IsaParty::Region("NWL".into()),
            IsaParty::Region("NCL".into()),
        ],
        purposes: BTreeSet::from([PurposeOfUse::DirectCare, PurposeOfUse::EmergencyCare]),
        categories: BTreeSet::from([Category::DischargeSummary, Category::CareEvent]),
        legal_basis: "UK GDPR Art. 6(1)(e), 9(2)(h)".into(),
        valid_from: FROM,
        valid_until: Some(UNTIL),
        status: IsaStatus::Active,
    }
}

fn patient() -> NhsNumber {
    NhsNumber::parse("9434765919").unwrap()
}

fn directive(id: &str, rule: DirectiveRule) -> Directive {
    Directive {
        id: id.into(),
        nhs_number: patient(),
        rule,
        valid_from: FROM,
        valid_until: None,
        source: DirectiveSource::PatientAccount,
        withdrawn: false,
    }
}

struct Case {
    isas: Vec<Isa>,
    directives: Vec<Directive>,
    model: ConsentModel,
    nhs: Option<NhsNumber>,
    recipient: Org,
    category: Category,
    purpose: PurposeOfUse,
    at: OffsetDateTime,
}

impl Case {
    fn new() -> Self {
        Self {
            isas: vec![london_isa()],
            directives: vec![],
            model: ConsentModel::Implied,
            nhs: Some(patient()),
            recipient: org("RAL", "ncl-royal-free", "NCL"),
            category: Category::DischargeSummary,
            purpose: PurposeOfUse::DirectCare,
            at: NOW,
        }
    }

    fn decide(&self) -> Decision {
        let sender = org("RYJ", "nwl-imperial", "NWL");
        let request = DecisionRequest {
            nhs_number: self.nhs.as_ref(),
            sender: sender.r(),
            recipient: self.recipient.r(),
            category: self.category,
            purpose: self.purpose,
            at: self.at,
        };
        decide(&request, &self.isas, &self.directives, self.model)
    }
}

fn assert_decision(case: &Case, permitted: bool, reason: Reason) -> Decision {
    let decision = case.decide();
    assert_eq!(
        (decision.permitted, decision.reason),
        (permitted, reason),
        "{decision:?}"
    );
    decision
}

#[test]
fn implied_consent_permits_a_covered_flow() {
    let decision = assert_decision(&Case::new(), true, Reason::ImpliedConsent);
    assert_eq!(decision.isa, Some(("ISA-NWL-NCL-1".into(), 1)));
    assert!(decision.obligations.is_empty());
}

#[test]
fn an_agreement_must_cover_category_purpose_and_both_parties() {
    let mut case = Case::new();
    case.category = Category::Referral;
    assert_decision(&case, false, Reason::NoAgreement);

    let mut case = Case::new();
    case.purpose = PurposeOfUse::CareManagement;
    assert_decision(&case, false, Reason::NoAgreement);

    let mut case = Case::new();
    case.recipient = org("RJ1", "sel-gstt", "SEL");
    assert_decision(&case, false, Reason::NoAgreement);

    let mut case = Case::new();
    case.isas.clear();
    let decision = assert_decision(&case, false, Reason::NoAgreement);
    assert_eq!(decision.isa, None);
}

#[test]
fn parties_by_organisation_and_by_exchange() {
    let mut case = Case::new();
    case.isas[0].parties = vec![
        IsaParty::Organisation(OdsCode::parse("RYJ").unwrap()),
        IsaParty::Exchange(ExchangeId::parse("ncl-royal-free").unwrap()),
    ];
    assert_decision(&case, true, Reason::ImpliedConsent);
    case.recipient = org("RKE", "ncl-whittington", "NCL");
    assert_decision(&case, false, Reason::NoAgreement);
}

#[test]
fn validity_is_inclusive_at_the_start_and_exclusive_at_the_end() {
    let mut case = Case::new();
    for (at, permitted) in [
        (FROM - Duration::nanoseconds(1), false),
        (FROM, true),
        (UNTIL - Duration::nanoseconds(1), true),
        (UNTIL, false),
    ] {
        case.at = at;
        let reason = if permitted {
            Reason::ImpliedConsent
        } else {
            Reason::NoAgreement
        };
        assert_decision(&case, permitted, reason);
    }
    case.isas[0].valid_until = None;
    case.at = datetime!(2099-01-01 00:00 UTC);
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn only_active_agreements_count() {
    for status in [IsaStatus::Draft, IsaStatus::Suspended, IsaStatus::Revoked] {
        let mut case = Case::new();
        case.isas[0].status = status;
        assert_decision(&case, false, Reason::NoAgreement);
    }
}

#[test]
fn the_patient_can_deny_an_organisation_or_a_category() {
    let mut case = Case::new();
    case.directives = vec![directive(
        "D1",
        DirectiveRule::DenyOrganisation(OdsCode::parse("RAL").unwrap()),
    )];
    let decision = assert_decision(&case, false, Reason::PatientDeniedOrganisation);
    assert_eq!(decision.directives, ["D1"]);
    // Denying another organisation does not touch this flow.
    case.directives = vec![directive(
        "D1",
        DirectiveRule::DenyOrganisation(OdsCode::parse("RKE").unwrap()),
    )];
    assert_decision(&case, true, Reason::ImpliedConsent);

    case.directives = vec![directive(
        "D2",
        DirectiveRule::DenyCategory(Category::DischargeSummary),
    )];
    assert_decision(&case, false, Reason::PatientDeniedCategory);
    case.category = Category::CareEvent;
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn an_allowance_overrides_a_broader_dissent_but_not_a_specific_denial() {
    let ral = OdsCode::parse("RAL").unwrap();
    let mut case = Case::new();
    case.directives = vec![directive("D1", DirectiveRule::DissentAll)];
    assert_decision(&case, false, Reason::PatientDissents);

    case.directives.push(directive(
        "D2",
        DirectiveRule::AllowOrganisation(ral.clone()),
    ));
    let decision = assert_decision(&case, true, Reason::PatientAllowedOrganisation);
    assert_eq!(decision.directives, ["D2"]);

    case.recipient = org("RKE", "ncl-whittington", "NCL");
    assert_decision(&case, false, Reason::PatientDissents);

    let mut case = Case::new();
    case.directives = vec![
        directive("D3", DirectiveRule::AllowOrganisation(ral.clone())),
        directive("D4", DirectiveRule::DenyOrganisation(ral)),
    ];
    assert_decision(&case, false, Reason::PatientDeniedOrganisation);

    case.directives = vec![
        directive(
            "D5",
            DirectiveRule::AllowOrganisation(OdsCode::parse("RAL").unwrap()),
        ),
        directive(
            "D6",
            DirectiveRule::DenyCategory(Category::DischargeSummary),
        ),
    ];
    assert_decision(&case, false, Reason::PatientDeniedCategory);
}

#[test]
fn directives_apply_only_while_in_force_and_only_to_their_patient() {
    let mut case = Case::new();
    let mut withdrawn = directive("D1", DirectiveRule::DissentAll);
    withdrawn.withdrawn = true;
    let mut future = directive("D2", DirectiveRule::DissentAll);
    future.valid_from = NOW + Duration::nanoseconds(1);
    let mut expired = directive("D3", DirectiveRule::DissentAll);
    expired.valid_until = Some(NOW);
    let mut someone_else = directive("D4", DirectiveRule::DissentAll);
    someone_else.nhs_number = NhsNumber::parse("9000000009").unwrap();
    case.directives = vec![withdrawn, future, expired, someone_else];
    assert_decision(&case, true, Reason::ImpliedConsent);

    let mut starts_now = directive("D5", DirectiveRule::DissentAll);
    starts_now.valid_from = NOW;
    case.directives.push(starts_now);
    assert_decision(&case, false, Reason::PatientDissents);
}

#[test]
fn explicit_opt_in_needs_an_allowance() {
    let mut case = Case::new();
    case.model = ConsentModel::ExplicitOptIn;
    assert_decision(&case, false, Reason::NoRecordedConsent);
    case.directives = vec![directive(
        "D1",
        DirectiveRule::AllowOrganisation(OdsCode::parse("RAL").unwrap()),
    )];
    assert_decision(&case, true, Reason::PatientAllowedOrganisation);
}

#[test]
fn without_an_nhs_number_consent_cannot_be_checked() {
    let mut case = Case::new();
    case.nhs = None;
    let decision = assert_decision(&case, false, Reason::PatientNotIdentified);
    assert_eq!(decision.isa, Some(("ISA-NWL-NCL-1".into(), 1)));
}

#[test]
fn emergency_care_overrides_dissent_and_is_always_recorded() {
    let mut case = Case::new();
    case.purpose = PurposeOfUse::EmergencyCare;
    let decision = assert_decision(&case, true, Reason::ImpliedConsent);
    assert_eq!(decision.obligations, [Obligation::RecordEmergencyAccess]);

    case.directives = vec![directive("D1", DirectiveRule::DissentAll)];
    let decision = assert_decision(&case, true, Reason::EmergencyOverride);
    assert_eq!(
        decision.obligations,
        [Obligation::RecordEmergencyAccess, Obligation::NotifyPatient]
    );
    assert_eq!(decision.directives, ["D1"]);

    // An unidentified patient in an emergency: recorded, nobody to notify.
    case.nhs = None;
    let decision = assert_decision(&case, true, Reason::EmergencyOverride);
    assert_eq!(decision.obligations, [Obligation::RecordEmergencyAccess]);
}

#[test]
fn emergency_care_never_overrides_a_missing_agreement() {
    let mut case = Case::new();
    case.purpose = PurposeOfUse::EmergencyCare;
    case.recipient = org("RJ1", "sel-gstt", "SEL");
    let decision = assert_decision(&case, false, Reason::NoAgreement);
    assert!(decision.obligations.is_empty());
}

#[test]
fn of_several_covering_agreements_the_choice_is_deterministic() {
    let mut case = Case::new();
    let mut newer = london_isa();
    newer.version = 2;
    let mut other = london_isa();
    other.id = "ISA-AAA".into();
    case.isas = vec![newer.clone(), london_isa(), other];
    let decision = case.decide();
    assert_eq!(decision.isa, Some(("ISA-AAA".into(), 1)));
    case.isas = vec![london_isa(), newer];
    assert_eq!(case.decide().isa, Some(("ISA-NWL-NCL-1".into(), 2)));
}

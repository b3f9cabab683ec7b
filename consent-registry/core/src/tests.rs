//! A table of cases for every rule: decisions (agreements, directives,
//! consent models, emergency), the agreement lifecycle (signing, amendment
//! overlap, suspension, revocation, time boundaries), directive withdrawal,
//! carer grants, closed and merged organisations, and the commands.

use std::collections::BTreeSet;

use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::commands::{self, Command, CommandError, Proposal};
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

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

fn terms(parties: Vec<IsaParty>) -> IsaTerms {
    IsaTerms {
        title: "NWL and NCL direct care".into(),
        parties,
        purposes: BTreeSet::from([PurposeOfUse::DirectCare, PurposeOfUse::EmergencyCare]),
        categories: BTreeSet::from([Category::DischargeSummary, Category::CareEvent]),
        legal_basis: "UK GDPR Art. 6(1)(e), 9(2)(h)".into(),
        valid_from: FROM,
        valid_until: Some(UNTIL),
        document_reference: Some("dcc://isa/ISA-NWL-NCL-1".into()),
        emergency_override: true,
    }
}

fn regions() -> Vec<IsaParty> {
    vec![
        IsaParty::Region("NWL".into()),
        IsaParty::Region("NCL".into()),
    ]
}

fn signature(party: &IsaParty, signer: &str) -> Signature {
    let organisation = match party {
        IsaParty::Organisation(code) => code.clone(),
        _ => ods("QRV"),
    };
    Signature {
        party: party.clone(),
        signer: signer.into(),
        role: "Caldicott Guardian".into(),
        organisation,
        signed_at: FROM - Duration::days(30),
    }
}

/// An agreement whose version 1 is signed for every party.
fn signed(id: &str, terms: IsaTerms) -> Agreement {
    let parties = terms.parties.clone();
    let mut agreement =
        Agreement::draft(id, terms, "ig-officer", FROM - Duration::days(60)).unwrap();
    for party in &parties {
        agreement.sign(1, signature(party, "caldicott")).unwrap();
    }
    agreement
}

fn london_isa() -> Agreement {
    signed("ISA-NWL-NCL-1", terms(regions()))
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
        recorded_by: "patient".into(),
        recorded_at: FROM,
        withdrawal: None,
    }
}

struct Case {
    isas: Vec<Agreement>,
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

// ---- Decisions -----------------------------------------------------------

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
    case.isas = vec![signed(
        "ISA-ORG",
        terms(vec![
            IsaParty::Organisation(ods("RYJ")),
            IsaParty::Exchange(ExchangeId::parse("ncl-royal-free").unwrap()),
        ]),
    )];
    assert_decision(&case, true, Reason::ImpliedConsent);
    case.recipient = org("RKE", "ncl-whittington", "NCL");
    assert_decision(&case, false, Reason::NoAgreement);
}

#[test]
fn the_patient_can_deny_an_organisation_or_a_category() {
    let mut case = Case::new();
    case.directives = vec![directive("D1", DirectiveRule::DenyOrganisation(ods("RAL")))];
    let decision = assert_decision(&case, false, Reason::PatientDeniedOrganisation);
    assert_eq!(decision.directives, ["D1"]);
    case.directives = vec![directive("D1", DirectiveRule::DenyOrganisation(ods("RKE")))];
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
    let mut case = Case::new();
    case.directives = vec![directive("D1", DirectiveRule::DissentAll)];
    assert_decision(&case, false, Reason::PatientDissents);

    case.directives.push(directive(
        "D2",
        DirectiveRule::AllowOrganisation(ods("RAL")),
    ));
    let decision = assert_decision(&case, true, Reason::PatientAllowedOrganisation);
    assert_eq!(decision.directives, ["D2"]);

    case.recipient = org("RKE", "ncl-whittington", "NCL");
    assert_decision(&case, false, Reason::PatientDissents);

    let mut case = Case::new();
    case.directives = vec![
        directive("D3", DirectiveRule::AllowOrganisation(ods("RAL"))),
        directive("D4", DirectiveRule::DenyOrganisation(ods("RAL"))),
    ];
    assert_decision(&case, false, Reason::PatientDeniedOrganisation);

    case.directives = vec![
        directive("D5", DirectiveRule::AllowOrganisation(ods("RAL"))),
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
    withdrawn.withdrawal = Some(StatusNote {
        at: NOW - Duration::hours(1),
        by: "patient".into(),
        reason: "changed my mind".into(),
    });
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
fn a_withdrawal_counts_from_its_moment() {
    let mut case = Case::new();
    let mut dissent = directive("D1", DirectiveRule::DissentAll);
    dissent.withdrawal = Some(StatusNote {
        at: NOW,
        by: "patient".into(),
        reason: String::new(),
    });
    case.directives = vec![dissent];
    case.at = NOW - Duration::nanoseconds(1);
    assert_decision(&case, false, Reason::PatientDissents);
    case.at = NOW;
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn explicit_opt_in_needs_an_allowance() {
    let mut case = Case::new();
    case.model = ConsentModel::ExplicitOptIn;
    assert_decision(&case, false, Reason::NoRecordedConsent);
    case.directives = vec![directive(
        "D1",
        DirectiveRule::AllowOrganisation(ods("RAL")),
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
}

#[test]
fn emergency_care_overrides_only_where_the_agreement_opts_in() {
    let mut case = Case::new();
    case.purpose = PurposeOfUse::EmergencyCare;
    case.directives = vec![directive("D1", DirectiveRule::DissentAll)];
    case.isas[0].versions[0].terms.emergency_override = false;
    let decision = assert_decision(&case, false, Reason::PatientDissents);
    assert!(decision.obligations.is_empty());

    case.directives = vec![];
    case.model = ConsentModel::ExplicitOptIn;
    assert_decision(&case, false, Reason::NoRecordedConsent);
    case.isas[0].versions[0].terms.emergency_override = true;
    let decision = assert_decision(&case, true, Reason::EmergencyOverride);
    assert_eq!(decision.obligations, [Obligation::RecordEmergencyAccess]);
}

#[test]
fn emergency_care_never_overrides_a_missing_nhs_number() {
    let mut case = Case::new();
    case.purpose = PurposeOfUse::EmergencyCare;
    case.nhs = None;
    let decision = assert_decision(&case, false, Reason::PatientNotIdentified);
    assert!(decision.obligations.is_empty());
    assert_eq!(decision.isa, Some(("ISA-NWL-NCL-1".into(), 1)));
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
    case.isas = vec![london_isa(), signed("ISA-AAA", terms(regions()))];
    assert_eq!(case.decide().isa, Some(("ISA-AAA".into(), 1)));
}

// ---- The agreement lifecycle -----------------------------------------------

#[test]
fn a_draft_is_not_in_force_until_every_party_signs() {
    let mut agreement = Agreement::draft("ISA-1", terms(regions()), "ig", FROM).unwrap();
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);
    assert_eq!(agreement.status_of(1, NOW), Some(IsaStatus::Draft));

    agreement
        .sign(
            1,
            signature(&IsaParty::Region("NWL".into()), "nwl-caldicott"),
        )
        .unwrap();
    assert_eq!(
        agreement.versions[0].unsigned_parties(),
        [&IsaParty::Region("NCL".into())]
    );
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);

    agreement
        .sign(
            1,
            signature(&IsaParty::Region("NCL".into()), "ncl-caldicott"),
        )
        .unwrap();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, true, Reason::ImpliedConsent);
    assert_eq!(agreement.status_of(1, NOW), Some(IsaStatus::Active));
}

#[test]
fn validity_is_inclusive_at_the_start_and_exclusive_at_the_end() {
    let agreement = london_isa();
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    for (at, permitted, status) in [
        (FROM - Duration::nanoseconds(1), false, IsaStatus::Signed),
        (FROM, true, IsaStatus::Active),
        (UNTIL - Duration::nanoseconds(1), true, IsaStatus::Active),
        (UNTIL, false, IsaStatus::Expired),
    ] {
        case.at = at;
        let reason = if permitted {
            Reason::ImpliedConsent
        } else {
            Reason::NoAgreement
        };
        assert_decision(&case, permitted, reason);
        assert_eq!(agreement.status_of(1, at), Some(status), "{at}");
    }
    let mut open_ended = terms(regions());
    open_ended.valid_until = None;
    case.isas = vec![signed("ISA-OPEN", open_ended)];
    case.at = datetime!(2099-01-01 00:00 UTC);
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn an_amendment_leaves_the_old_version_in_force_until_the_new_one_is() {
    let mut agreement = london_isa();
    let mut new_terms = terms(regions());
    new_terms.categories.insert(Category::Referral);
    let switch = NOW + Duration::days(10);
    new_terms.valid_from = switch;
    let version = agreement
        .amend(new_terms, "ig", NOW - Duration::days(5))
        .unwrap();
    assert_eq!(version, 2);

    // Drafted: version 1 still decides; referrals still not covered.
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    assert_eq!(case.decide().isa, Some(("ISA-NWL-NCL-1".into(), 1)));
    case.category = Category::Referral;
    assert_decision(&case, false, Reason::NoAgreement);

    // Signed, but valid only from `switch`: still version 1 until then.
    for party in regions() {
        agreement.sign(2, signature(&party, "caldicott")).unwrap();
    }
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);
    assert_eq!(agreement.status_of(1, NOW), Some(IsaStatus::Active));
    assert_eq!(agreement.status_of(2, NOW), Some(IsaStatus::Signed));

    // From `switch`, version 2 is in force and version 1 superseded.
    case.at = switch;
    let decision = assert_decision(&case, true, Reason::ImpliedConsent);
    assert_eq!(decision.isa, Some(("ISA-NWL-NCL-1".into(), 2)));
    assert_eq!(agreement.status_of(1, switch), Some(IsaStatus::Superseded));
    assert_eq!(agreement.status_of(2, switch), Some(IsaStatus::Active));
}

#[test]
fn suspension_stops_the_agreement_until_it_is_reinstated() {
    let mut agreement = london_isa();
    let note = |at| StatusNote {
        at,
        by: "ig".into(),
        reason: "data breach under investigation".into(),
    };
    agreement.suspend(note(NOW - Duration::hours(1))).unwrap();
    assert_eq!(
        agreement.suspend(note(NOW)),
        Err(IsaError::SuspensionState {
            id: "ISA-NWL-NCL-1".into(),
            suspended: true
        })
    );
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);
    assert_eq!(agreement.status_of(1, NOW), Some(IsaStatus::Suspended));
    // Before the suspension took effect, it was in force.
    assert_eq!(
        agreement.status_of(1, NOW - Duration::hours(2)),
        Some(IsaStatus::Active)
    );

    agreement.reinstate(note(NOW)).unwrap();
    case.isas = vec![agreement];
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn revocation_is_final() {
    let mut agreement = london_isa();
    let note = StatusNote {
        at: NOW - Duration::minutes(1),
        by: "ig".into(),
        reason: "superseded by the pan-London agreement".into(),
    };
    agreement.revoke(note.clone()).unwrap();
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);
    assert_eq!(agreement.status_of(1, NOW), Some(IsaStatus::Revoked));
    let revoked = Err(IsaError::Revoked("ISA-NWL-NCL-1".into()));
    assert_eq!(
        agreement
            .clone()
            .amend(terms(regions()), "ig", NOW)
            .map(|_| ()),
        revoked
    );
    assert_eq!(agreement.clone().suspend(note.clone()), revoked);
    assert_eq!(agreement.clone().revoke(note), revoked);
}

#[test]
fn signatures_must_be_for_a_party_by_the_right_organisation_and_once() {
    let mut agreement = Agreement::draft(
        "ISA-ORG",
        terms(vec![
            IsaParty::Organisation(ods("RYJ")),
            IsaParty::Organisation(ods("RAL")),
        ]),
        "ig",
        FROM,
    )
    .unwrap();
    let for_ryj = signature(&IsaParty::Organisation(ods("RYJ")), "ryj-caldicott");
    agreement.sign(1, for_ryj.clone()).unwrap();
    assert!(matches!(
        agreement.sign(1, for_ryj),
        Err(IsaError::AlreadySigned { .. })
    ));

    let mut impostor = signature(&IsaParty::Organisation(ods("RAL")), "someone");
    impostor.organisation = ods("RYJ");
    assert!(matches!(
        agreement.sign(1, impostor),
        Err(IsaError::WrongOrganisation { .. })
    ));

    let stranger = signature(&IsaParty::Organisation(ods("RKE")), "rke-caldicott");
    assert_eq!(
        agreement.sign(1, stranger),
        Err(IsaError::NotAParty("organisation RKE".into()))
    );
    assert!(matches!(
        agreement.sign(9, signature(&IsaParty::Organisation(ods("RAL")), "x")),
        Err(IsaError::NoSuchVersion { version: 9, .. })
    ));
}

#[test]
fn terms_must_be_complete() {
    let mut bad = terms(regions());
    bad.parties.clear();
    assert!(matches!(
        Agreement::draft("X", bad, "ig", FROM),
        Err(IsaError::InvalidTerms(_))
    ));
    let mut inverted = terms(regions());
    inverted.valid_until = Some(FROM);
    assert!(matches!(
        Agreement::draft("X", inverted, "ig", FROM),
        Err(IsaError::InvalidTerms(_))
    ));
    assert!(matches!(
        Agreement::draft(" ", terms(regions()), "ig", FROM),
        Err(IsaError::InvalidTerms(_))
    ));
}

// ---- Closed and merged organisations (config/reference/london_nhs_trusts.csv) ----

#[test]
fn an_agreement_naming_a_closed_trust_does_not_cover_its_successor() {
    // North Middlesex (RAP) closed on 2024-12-31 and merged into the Royal
    // Free (RAL). An agreement that names RAP does not carry over to RAL:
    // it must be amended to name RAL, and signed again.
    let mut agreement = signed(
        "ISA-RAP",
        terms(vec![
            IsaParty::Organisation(ods("RYJ")),
            IsaParty::Organisation(ods("RAP")),
        ]),
    );
    let mut case = Case::new();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);

    let amended = terms(vec![
        IsaParty::Organisation(ods("RYJ")),
        IsaParty::Organisation(ods("RAL")),
    ]);
    agreement.amend(amended, "ig", NOW).unwrap();
    case.isas = vec![agreement.clone()];
    assert_decision(&case, false, Reason::NoAgreement);
    for party in [
        IsaParty::Organisation(ods("RYJ")),
        IsaParty::Organisation(ods("RAL")),
    ] {
        agreement.sign(2, signature(&party, "caldicott")).unwrap();
    }
    case.isas = vec![agreement];
    assert_decision(&case, true, Reason::ImpliedConsent);
}

#[test]
fn a_regional_agreement_covers_the_merged_trust_in_its_region() {
    // The Royal Free, which absorbed North Middlesex, is in NCL: a
    // region-level agreement covers it without change.
    assert_decision(&Case::new(), true, Reason::ImpliedConsent);
}

// ---- Carer grants ------------------------------------------------------------

#[test]
fn carer_grants_are_in_force_within_their_dates_until_revoked() {
    let grant = CarerGrant {
        id: "G1".into(),
        patient: patient(),
        carer_name: "A Carer".into(),
        carer_contact: "carer@example.invalid".into(),
        scopes: vec!["view-record".into()],
        valid_from: FROM,
        valid_until: Some(UNTIL),
        recorded_by: "patient".into(),
        recorded_at: FROM,
        revocation: None,
    };
    assert!(!grant.in_force_at(FROM - Duration::nanoseconds(1)));
    assert!(grant.in_force_at(FROM));
    assert!(!grant.in_force_at(UNTIL));
    let revoked =
        commands::revoke_grant(Some(grant), "G1", "no longer caring", "patient", NOW).unwrap();
    assert!(revoked.in_force_at(NOW - Duration::nanoseconds(1)));
    assert!(!revoked.in_force_at(NOW));
}

// ---- Commands ------------------------------------------------------------------

fn proposal(command: Command) -> Proposal {
    Proposal {
        command,
        by: "ig-officer@qrv".into(),
        at: NOW,
    }
}

#[test]
fn commands_draft_sign_and_amend_with_the_proposals_time() {
    let draft = proposal(Command::DraftIsa {
        id: "ISA-9".into(),
        terms: terms(regions()),
    });
    let agreement = commands::apply_to_agreement(None, &draft).unwrap();
    assert_eq!(agreement.versions[0].drafted_by, "ig-officer@qrv");
    assert_eq!(
        commands::apply_to_agreement(Some(agreement.clone()), &draft),
        Err(CommandError::AgreementExists("ISA-9".into()))
    );
    let sign = proposal(Command::SignIsa {
        id: "ISA-9".into(),
        version: 1,
        signature: signature(&IsaParty::Region("NWL".into()), "nwl"),
    });
    let signed_once = commands::apply_to_agreement(Some(agreement), &sign).unwrap();
    assert_eq!(
        signed_once.versions[0].signatures[0].signed_at, NOW,
        "signature time is the proposal's"
    );
    let amend = proposal(Command::AmendIsa {
        id: "ISA-9".into(),
        terms: terms(regions()),
    });
    assert_eq!(
        commands::apply_to_agreement(Some(signed_once), &amend)
            .unwrap()
            .versions
            .len(),
        2
    );
    assert_eq!(
        commands::apply_to_agreement(None, &amend),
        Err(CommandError::NoSuchAgreement("ISA-9".into()))
    );
}

#[test]
fn directive_commands_stamp_and_withdraw() {
    let recorded = commands::record_directive(
        directive("D1", DirectiveRule::DissentAll),
        "patient-account",
        NOW,
    )
    .unwrap();
    assert_eq!(
        (recorded.recorded_by.as_str(), recorded.recorded_at),
        ("patient-account", NOW)
    );
    let withdrawn =
        commands::withdraw_directive(Some(recorded), "D1", "changed mind", "patient-account", NOW)
            .unwrap();
    assert!(!withdrawn.in_force_at(NOW));
    assert_eq!(
        commands::withdraw_directive(Some(withdrawn), "D1", "again", "x", NOW),
        Err(CommandError::AlreadyWithdrawn("D1".into()))
    );
    assert_eq!(
        commands::withdraw_directive(None, "D2", "", "x", NOW),
        Err(CommandError::NoSuchDirective("D2".into()))
    );
    let mut inverted = directive("D3", DirectiveRule::DissentAll);
    inverted.valid_until = Some(inverted.valid_from);
    assert!(matches!(
        commands::record_directive(inverted, "x", NOW),
        Err(CommandError::Invalid(_))
    ));
}

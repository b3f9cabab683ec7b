//! Routing table tests: sender checks, recipient resolution, policy per
//! recipient, copies per exchange, hub acknowledgements, audit records.

use std::collections::BTreeSet;

use lhcie_consent::{
    Agreement, ConsentModel, Decision, DecisionRequest, Directive, DirectiveRule, DirectiveSource,
    IsaParty, IsaTerms, Reason, Signature,
};
use lhcie_model::{
    AckOutcome, Body, Category, Envelope, ExchangeId, NhsNumber, OdsCode, PurposeOfUse, Recipient,
    RecipientIntent, RoutingRule, ValidationError, ValidationErrorKind, examples,
};
use time::macros::datetime;

use crate::*;

const NOW: time::OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

fn ex(id: &str) -> ExchangeId {
    ExchangeId::parse(id).unwrap()
}

fn table() -> RouteTable {
    let mut table = RouteTable::new();
    for (org, exchange, region) in [
        ("RYJ", "nwl-imperial", "NWL"),
        ("RPY", "nwl-specialist", "NWL"),
        ("RAL", "ncl-royal-free", "NCL"),
        ("RKE", "ncl-whittington", "NCL"),
        ("RP4", "ncl-specialist", "NCL"),
        ("RP6", "ncl-specialist", "NCL"),
        ("F83006", "ncl-central-gp", "NCL"),
    ] {
        table.insert(ods(org), ex(exchange), region);
    }
    table
}

fn london_isa() -> Agreement {
    let parties = vec![
        IsaParty::Region("NWL".into()),
        IsaParty::Region("NCL".into()),
    ];
    let terms = IsaTerms {
        title: "North London direct care".into(),
        parties: parties.clone(),
        purposes: PurposeOfUse::ALL.into_iter().collect(),
        categories: Category::ALL.into_iter().collect::<BTreeSet<_>>(),
        legal_basis: "UK GDPR Art. 6(1)(e), 9(2)(h)".into(),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        document_reference: None,
        emergency_override: false,
    };
    let mut agreement = Agreement::draft(
        "ISA-1",
        terms.clone(),
        "ig",
        datetime!(2025-12-01 00:00 UTC),
    )
    .unwrap();
    agreement
        .amend(terms.clone(), "ig", datetime!(2025-12-02 00:00 UTC))
        .unwrap();
    agreement
        .amend(terms, "ig", datetime!(2025-12-03 00:00 UTC))
        .unwrap();
    for party in parties {
        agreement
            .sign(
                3,
                Signature {
                    party,
                    signer: "caldicott".into(),
                    role: "Caldicott Guardian".into(),
                    organisation: ods("QRV"),
                    signed_at: datetime!(2025-12-04 00:00 UTC),
                },
            )
            .unwrap();
    }
    agreement
}

fn policy(directives: Vec<Directive>) -> StaticPolicy {
    StaticPolicy::new(vec![london_isa()], directives, ConsentModel::Implied)
}

fn deny(org: &str) -> Directive {
    Directive {
        id: format!("DENY-{org}"),
        nhs_number: NhsNumber::parse("9434765919").unwrap(),
        rule: DirectiveRule::DenyOrganisation(ods(org)),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        source: DirectiveSource::PatientAccount,
        recorded_by: "patient".into(),
        recorded_at: datetime!(2026-01-01 00:00 UTC),
        withdrawal: None,
    }
}

fn to(codes: &[&str]) -> Vec<Recipient> {
    codes
        .iter()
        .map(|c| Recipient {
            ods_code: ods(c),
            intent: RecipientIntent::ForAction,
        })
        .collect()
}

fn routed(envelope: &Envelope, policy: &StaticPolicy) -> Routed {
    match route(envelope, &ex("nwl-imperial"), &table(), policy, NOW).unwrap() {
        Outcome::Routed(routed) => routed,
        Outcome::Rejected(rejection) => panic!("rejected: {rejection:?}"),
    }
}

fn rejected(envelope: &Envelope, submitter: &str) -> Rejection {
    match route(envelope, &ex(submitter), &table(), &policy(vec![]), NOW).unwrap() {
        Outcome::Rejected(rejection) => rejection,
        Outcome::Routed(routed) => panic!("routed: {routed:?}"),
    }
}

#[test]
fn a_permitted_discharge_summary_gets_one_copy_to_the_recipients_exchange() {
    let routed = routed(&examples::discharge_summary(), &policy(vec![]));
    assert_eq!(
        routed.copies,
        [Copy {
            exchange: ex("ncl-royal-free"),
            recipients: vec![ods("RAL")],
        }]
    );
    let decision = routed.recipients[0].decision.as_ref().unwrap();
    assert_eq!(decision.reason, Reason::ImpliedConsent);
    assert_eq!(decision.isa, Some(("ISA-1".into(), 3)));
}

#[test]
fn the_sender_must_belong_to_the_submitting_exchange() {
    let envelope = examples::discharge_summary();
    let rejection = rejected(&envelope, "ncl-royal-free");
    assert_eq!(rejection.reason, RejectReason::SenderNotAuthorised);
    assert!(
        rejection
            .detail
            .contains("submitted by exchange ncl-royal-free"),
        "{}",
        rejection.detail
    );

    let mut impostor = examples::discharge_summary();
    impostor.sender.ods_code = ods("RAL");
    let rejection = rejected(&impostor, "nwl-imperial");
    assert_eq!(rejection.reason, RejectReason::SenderNotAuthorised);
    assert_eq!(
        rejection.detail,
        "sender.ods_code RAL is not an organisation of exchange nwl-imperial"
    );
}

#[test]
fn an_unknown_recipient_is_rejected_by_position() {
    let mut envelope = examples::discharge_summary();
    envelope.addressing.recipients = to(&["RAL", "RJ1"]);
    let rejection = rejected(&envelope, "nwl-imperial");
    assert_eq!(rejection.reason, RejectReason::UnknownRecipient);
    assert_eq!(
        rejection.detail,
        "addressing.recipients[1].ods_code: RJ1 is not served by any exchange on this hub"
    );
}

#[test]
fn the_registered_gp_rule_finds_the_practice() {
    let routed = routed(&examples::care_event_attendance(), &policy(vec![]));
    assert_eq!(routed.copies.len(), 1);
    assert_eq!(routed.copies[0].exchange, ex("ncl-central-gp"));
    assert_eq!(routed.copies[0].recipients, [ods("F83006")]);
}

#[test]
fn the_registered_gp_rule_without_a_reachable_gp() {
    let mut no_gp = examples::care_event_attendance();
    no_gp.patient.as_mut().unwrap().registered_gp_practice = None;
    let rejection = rejected(&no_gp, "nwl-imperial");
    assert_eq!(rejection.reason, RejectReason::UnknownRecipient);
    assert!(rejection.detail.contains("has no registered GP practice"));

    let mut far_gp = examples::care_event_attendance();
    far_gp.patient.as_mut().unwrap().registered_gp_practice = Some(ods("C81010"));
    let rejection = rejected(&far_gp, "nwl-imperial");
    assert!(
        rejection.detail.contains("C81010 is not served"),
        "{}",
        rejection.detail
    );

    // With a named recipient too, the rule simply adds no-one.
    far_gp.addressing.recipients = to(&["RAL"]);
    let routed = routed(&far_gp, &policy(vec![]));
    assert_eq!(routed.recipients.len(), 1);
    assert_eq!(routed.recipients[0].recipient, ods("RAL"));
}

#[test]
fn subscribers_routing_is_not_available_yet() {
    let mut envelope = examples::care_event_attendance();
    envelope.addressing.rule = Some(RoutingRule::Subscribers);
    let rejection = rejected(&envelope, "nwl-imperial");
    assert_eq!(rejection.reason, RejectReason::InvalidEnvelope);
    assert!(rejection.detail.contains("subscribers"));
}

#[test]
fn recipients_named_twice_or_also_found_by_rule_get_one_decision() {
    let mut envelope = examples::care_event_attendance();
    envelope.addressing.recipients = to(&["F83006"]);
    let routed = routed(&envelope, &policy(vec![]));
    assert_eq!(routed.recipients.len(), 1);
    assert_eq!(routed.copies[0].recipients, [ods("F83006")]);
}

#[test]
fn recipients_of_one_exchange_share_one_copy() {
    let mut envelope = examples::referral();
    envelope.addressing.recipients = to(&["RP6", "RAL", "RP4"]);
    let routed = routed(&envelope, &policy(vec![]));
    let copies: Vec<(&str, Vec<&str>)> = routed
        .copies
        .iter()
        .map(|c| {
            (
                c.exchange.as_str(),
                c.recipients.iter().map(OdsCode::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [
            ("ncl-specialist", vec!["RP6", "RP4"]),
            ("ncl-royal-free", vec!["RAL"])
        ]
    );
}

#[test]
fn a_denied_recipient_gets_no_copy() {
    let routed = routed(&examples::discharge_summary(), &policy(vec![deny("RAL")]));
    assert!(routed.copies.is_empty());
    let denied: Vec<&RecipientDecision> = routed.denied().collect();
    assert_eq!(denied.len(), 1);
    let decision = denied[0].decision.as_ref().unwrap();
    assert_eq!(decision.reason, Reason::PatientDeniedOrganisation);
    assert_eq!(decision.directives, ["DENY-RAL"]);
}

#[test]
fn only_the_denied_recipient_is_left_out() {
    let mut envelope = examples::discharge_summary();
    envelope.addressing.recipients = to(&["RAL", "RKE"]);
    let routed = routed(&envelope, &policy(vec![deny("RAL")]));
    assert_eq!(routed.copies.len(), 1);
    assert_eq!(routed.copies[0].exchange, ex("ncl-whittington"));
    assert_eq!(routed.denied().count(), 1);
}

#[test]
fn acknowledgements_need_no_agreement() {
    let mut ack = examples::acknowledgement();
    ack.sender.exchange_id = ex("ncl-royal-free");
    let no_agreements = StaticPolicy::new(vec![], vec![], ConsentModel::ExplicitOptIn);
    let outcome = route(&ack, &ex("ncl-royal-free"), &table(), &no_agreements, NOW).unwrap();
    let Outcome::Routed(routed) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(routed.copies[0].exchange, ex("nwl-imperial"));
    assert!(routed.recipients[0].decision.is_none());
}

struct Stale;

impl Policy for Stale {
    fn decide(&self, _: &DecisionRequest<'_>) -> Result<Decision, PolicyUnavailable> {
        Err(PolicyUnavailable {
            reason: "registry watch broken for 31 s".into(),
        })
    }
}

#[test]
fn an_undecidable_policy_holds_the_envelope() {
    let outcome = route(
        &examples::discharge_summary(),
        &ex("nwl-imperial"),
        &table(),
        &Stale,
        NOW,
    );
    assert_eq!(
        outcome.unwrap_err().reason,
        "registry watch broken for 31 s"
    );
    // Rejections do not need the policy, so they are still given.
    let outcome = route(
        &examples::discharge_summary(),
        &ex("ncl-royal-free"),
        &table(),
        &Stale,
        NOW,
    );
    assert!(matches!(outcome, Ok(Outcome::Rejected(_))));
}

#[test]
fn rejection_codes_round_trip() {
    for reason in RejectReason::ALL {
        assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
    }
    assert_eq!(RejectReason::from_code("nonsense"), None);
}

#[test]
fn validation_errors_map_to_rejection_reasons() {
    for (kind, reason) in [
        (
            ValidationErrorKind::InvalidNhsNumber,
            RejectReason::InvalidNhsNumber,
        ),
        (
            ValidationErrorKind::UnknownCategory,
            RejectReason::UnknownCategory,
        ),
        (ValidationErrorKind::Missing, RejectReason::InvalidEnvelope),
        (ValidationErrorKind::Invalid, RejectReason::InvalidEnvelope),
        (
            ValidationErrorKind::Inconsistent,
            RejectReason::InvalidEnvelope,
        ),
    ] {
        let rejection = Rejection::from_validation(&ValidationError::new(
            "patient.nhs_number",
            kind,
            "is wrong",
        ));
        assert_eq!(rejection.reason, reason);
        assert_eq!(rejection.detail, "patient.nhs_number: is wrong");
    }
}

#[test]
fn the_not_permitted_acknowledgement_is_valid_deterministic_and_discreet() {
    let original = examples::discharge_summary();
    let ack = hub_ack::not_permitted(&original, &ods("RAL"), NOW);
    ack.validate().unwrap();
    assert_eq!(ack, hub_ack::not_permitted(&original, &ods("RAL"), NOW));
    assert_ne!(
        ack.message_id,
        hub_ack::not_permitted(&original, &ods("RKE"), NOW).message_id
    );
    assert_eq!(ack.addressing.recipients[0].ods_code, ods("RYJ"));
    let Body::Acknowledgement(body) = &ack.body else {
        panic!()
    };
    assert_eq!(body.outcome, AckOutcome::Negative);
    assert_eq!(body.refers_to, original.message_id);
    let text = body.text.as_deref().unwrap();
    assert_eq!(
        text,
        "recipient RAL: not permitted by information governance policy"
    );
    // The hub's own party is served by no exchange, so no adapter can forge it.
    assert!(table().placement(&ack.sender.ods_code).is_none());
}

#[test]
fn the_rejection_acknowledgement_carries_the_reason() {
    let original = examples::referral();
    let rejection = Rejection::new(
        RejectReason::UnknownRecipient,
        "addressing.recipients[0].ods_code: RJ1 is not served",
    );
    let ack = hub_ack::rejected(
        &original.message_id,
        &original.sender.ods_code,
        &rejection,
        NOW,
    );
    ack.validate().unwrap();
    let Body::Acknowledgement(body) = &ack.body else {
        panic!()
    };
    assert_eq!(body.code.as_ref().unwrap().code, "unknown-recipient");
    assert!(body.text.as_deref().unwrap().contains("RJ1 is not served"));
}

#[test]
fn audit_records_say_who_decided_what_with_which_agreement() {
    let mut envelope = examples::discharge_summary();
    envelope.addressing.recipients = to(&["RAL", "RKE"]);
    envelope.purpose = PurposeOfUse::DirectCare;
    let outcome = route(
        &envelope,
        &ex("nwl-imperial"),
        &table(),
        &policy(vec![deny("RAL")]),
        NOW,
    )
    .unwrap();
    let record = AuditRecord::of_outcome(&envelope, &outcome, "nwl-imperial", Ingress::Grpc, NOW);
    assert_eq!(record.nhs_number.as_deref(), Some("9434765919"));
    let AuditOutcome::Routed { recipients } = &record.outcome else {
        panic!("{record:?}")
    };
    assert_eq!(recipients[0].decision, "denied");
    assert_eq!(recipients[0].reason, "patient-denied-organisation");
    assert_eq!(recipients[0].directives, ["DENY-RAL"]);
    assert_eq!(recipients[1].decision, "forwarded");
    assert_eq!(recipients[1].isa, Some(("ISA-1".into(), 3)));
    let json = serde_json::to_string(&record).unwrap();
    assert_eq!(serde_json::from_str::<AuditRecord>(&json).unwrap(), record);
}

#[test]
fn an_emergency_override_is_recognisable_in_the_audit_with_its_notification_duty() {
    let mut envelope = examples::discharge_summary();
    envelope.addressing.recipients = to(&["RAL", "RKE", "RP4"]);
    envelope.purpose = PurposeOfUse::EmergencyCare;
    let decision = |reason, obligations| RecipientDecision {
        recipient: ods("RAL"),
        exchange: ex("ncl-royal-free"),
        decision: Some(Decision {
            permitted: true,
            reason,
            isa: Some(("ISA-1".into(), 3)),
            directives: vec![],
            obligations,
            registry_revision: Some(41),
        }),
    };
    use lhcie_consent::Obligation::{NotifyPatient, RecordEmergencyAccess};
    let routed = Routed {
        recipients: vec![
            decision(
                Reason::EmergencyOverride,
                vec![RecordEmergencyAccess, NotifyPatient],
            ),
            decision(Reason::EmergencyOverride, vec![RecordEmergencyAccess]),
            decision(Reason::ImpliedConsent, vec![RecordEmergencyAccess]),
        ],
        copies: vec![],
    };
    let record = AuditRecord::of_outcome(
        &envelope,
        &Outcome::Routed(routed),
        "nwl-imperial",
        Ingress::Grpc,
        NOW,
    );
    let flags: Vec<(bool, bool)> = record
        .recipients()
        .iter()
        .map(|r| (r.emergency_override(), r.notify_patient()))
        .collect();
    assert_eq!(flags, [(true, true), (true, false), (false, false)]);
    assert!(
        record
            .recipients()
            .iter()
            .all(|r| r.registry_revision == Some(41)),
        "the copy's revision is recorded, to explain the decision later"
    );
    let rejected = AuditRecord::of_rejection(
        "m1",
        None,
        &Rejection::new(RejectReason::TooLarge, "x"),
        "nwl-imperial",
        Ingress::Grpc,
        NOW,
    );
    assert!(rejected.recipients().is_empty());
}

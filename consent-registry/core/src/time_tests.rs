//! The time rules: a decision about a moment never changes once that
//! moment has passed, whatever is recorded later (reinstatement, late
//! signature, a later version with a past start date, a directive replaced
//! or withdrawn), and a decision made from a copy of a given age can be
//! made again from the full record. Cases first, then a property over
//! random histories.

use std::collections::BTreeSet;

use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::commands::{
    Command, Proposal, apply_to_agreement, record_directive, withdraw_directive,
};
use crate::*;

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn hours(n: i64) -> OffsetDateTime {
    START + Duration::hours(n)
}

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

fn patient() -> NhsNumber {
    NhsNumber::parse("9434765919").unwrap()
}

fn terms(valid_from: OffsetDateTime, categories: &[Category], emergency: bool) -> IsaTerms {
    IsaTerms {
        title: "NWL and NCL".into(),
        parties: vec![
            IsaParty::Region("NWL".into()),
            IsaParty::Region("NCL".into()),
        ],
        purposes: BTreeSet::from([PurposeOfUse::DirectCare, PurposeOfUse::EmergencyCare]),
        categories: categories.iter().copied().collect(),
        legal_basis: "UK GDPR Art. 6(1)(e), 9(2)(h)".into(),
        valid_from,
        valid_until: None,
        document_reference: None,
        emergency_override: emergency,
    }
}

fn signature(region: &str) -> Signature {
    Signature {
        party: IsaParty::Region(region.into()),
        signer: format!("guardian of {region}"),
        role: "Caldicott Guardian".into(),
        organisation: ods(if region == "NWL" { "RYJ" } else { "RAL" }),
        signed_at: START,
    }
}

fn proposal(command: Command, at: OffsetDateTime) -> Proposal {
    Proposal {
        command,
        by: "ig-officer".into(),
        at,
    }
}

/// The registry's records, changed one command at a time.
#[derive(Clone, Default)]
struct Record {
    agreements: Vec<Agreement>,
    /// Every state of the patient's directives, oldest first.
    directive_states: Vec<Directive>,
}

impl Record {
    fn apply(&mut self, command: Command, at: OffsetDateTime) {
        let proposal = proposal(command, at);
        match &proposal.command {
            Command::SetDirective(directive) => {
                if let Ok(state) = record_directive(directive.clone(), "patient", at) {
                    self.directive_states.push(state);
                }
            }
            Command::WithdrawDirective { id, reason } => {
                let current = self.directive_states.iter().rev().find(|d| &d.id == id);
                if let Ok(state) = withdraw_directive(current.cloned(), id, reason, "patient", at) {
                    self.directive_states.push(state);
                }
            }
            agreement_command => {
                let id = match agreement_command {
                    Command::DraftIsa { id, .. }
                    | Command::AmendIsa { id, .. }
                    | Command::SignIsa { id, .. }
                    | Command::SuspendIsa { id, .. }
                    | Command::ReinstateIsa { id, .. }
                    | Command::RevokeIsa { id, .. } => id.clone(),
                    _ => unreachable!("grants are not generated"),
                };
                let position = self.agreements.iter().position(|a| a.id == id);
                let current = position.map(|i| self.agreements[i].clone());
                if let Ok(agreement) = apply_to_agreement(current, &proposal) {
                    match position {
                        Some(i) => self.agreements[i] = agreement,
                        None => self.agreements.push(agreement),
                    }
                }
            }
        }
    }

    fn decide(
        &self,
        at: OffsetDateTime,
        category: Category,
        purpose: PurposeOfUse,
        known_at: Option<OffsetDateTime>,
    ) -> Decision {
        let (nhs, sender, recipient) = (patient(), ods("RYJ"), ods("RAL"));
        let (nwl, ncl) = (
            ExchangeId::parse("nwl-imperial").unwrap(),
            ExchangeId::parse("ncl-royal-free").unwrap(),
        );
        let request = DecisionRequest {
            nhs_number: Some(&nhs),
            sender: OrgRef {
                ods_code: &sender,
                exchange: &nwl,
                region: "NWL",
            },
            recipient: OrgRef {
                ods_code: &recipient,
                exchange: &ncl,
                region: "NCL",
            },
            category,
            purpose,
            at,
        };
        decide_from_history(
            &request,
            &self.agreements,
            &self.directive_states,
            ConsentModel::Implied,
            known_at,
        )
    }
}

fn directive(id: &str, rule: DirectiveRule, valid_from: OffsetDateTime) -> Directive {
    Directive {
        id: id.into(),
        nhs_number: patient(),
        rule,
        valid_from,
        valid_until: None,
        source: DirectiveSource::PatientAccount,
        recorded_by: String::new(),
        recorded_at: START,
        withdrawal: None,
    }
}

fn draft(id: &str, valid_from: OffsetDateTime) -> Command {
    Command::DraftIsa {
        id: id.into(),
        terms: terms(valid_from, &[Category::DischargeSummary], false),
    }
}

fn sign(id: &str, version: u32, region: &str) -> Command {
    Command::SignIsa {
        id: id.into(),
        version,
        signature: signature(region),
    }
}

fn status(id: &str, which: fn(String, String) -> Command) -> Command {
    which(id.into(), "review".into())
}

fn suspend(id: String, reason: String) -> Command {
    Command::SuspendIsa { id, reason }
}

fn reinstate(id: String, reason: String) -> Command {
    Command::ReinstateIsa { id, reason }
}

fn permitted(record: &Record, at: OffsetDateTime) -> bool {
    record
        .decide(
            at,
            Category::DischargeSummary,
            PurposeOfUse::DirectCare,
            None,
        )
        .permitted
}

/// An agreement signed by both parties by hour 2, in force from then.
fn signed_record() -> Record {
    let mut record = Record::default();
    record.apply(draft("ISA-1", START), hours(0));
    record.apply(sign("ISA-1", 1, "NWL"), hours(1));
    record.apply(sign("ISA-1", 1, "NCL"), hours(2));
    record
}

#[test]
fn reinstating_an_agreement_keeps_its_suspension_in_the_past() {
    let mut record = signed_record();
    record.apply(status("ISA-1", suspend), hours(10));
    assert!(!permitted(&record, hours(15)));
    record.apply(status("ISA-1", reinstate), hours(20));
    assert!(!permitted(&record, hours(15)), "inside the past suspension");
    assert!(permitted(&record, hours(9)) && permitted(&record, hours(20)));
    record.apply(status("ISA-1", suspend), hours(30));
    assert_eq!(record.agreements[0].suspensions.len(), 2);
    assert!(!permitted(&record, hours(15)) && permitted(&record, hours(25)));
}

#[test]
fn a_late_signature_applies_from_its_own_moment() {
    let mut record = Record::default();
    record.apply(draft("ISA-1", START), hours(0));
    record.apply(sign("ISA-1", 1, "NWL"), hours(1));
    assert!(!permitted(&record, hours(5)));
    record.apply(sign("ISA-1", 1, "NCL"), hours(10));
    assert!(
        !permitted(&record, hours(5)),
        "valid from START, but signed at 10"
    );
    assert!(permitted(&record, hours(10)));
    let version = &record.agreements[0].versions[0];
    assert_eq!(version.in_force_from(), Some(hours(10)));
    assert_eq!(
        record.agreements[0].status_of(1, hours(5)),
        Some(IsaStatus::Draft)
    );
}

#[test]
fn a_later_version_with_a_past_start_applies_from_its_signing() {
    let mut record = signed_record();
    // Version 2 drops discharge summaries, "valid" from the very start.
    record.apply(
        Command::AmendIsa {
            id: "ISA-1".into(),
            terms: terms(START, &[Category::Result], false),
        },
        hours(10),
    );
    record.apply(sign("ISA-1", 2, "NWL"), hours(11));
    record.apply(sign("ISA-1", 2, "NCL"), hours(12));
    assert!(permitted(&record, hours(5)), "version 1 was in force then");
    assert!(!permitted(&record, hours(12)), "version 2 from its signing");
    let decision = record.decide(
        hours(5),
        Category::DischargeSummary,
        PurposeOfUse::DirectCare,
        None,
    );
    assert_eq!(decision.isa, Some(("ISA-1".into(), 1)));
}

#[test]
fn replacing_a_directive_does_not_reach_back_and_keeps_a_withdrawal() {
    let mut record = signed_record();
    let deny = |from| directive("D1", DirectiveRule::DenyOrganisation(ods("RAL")), from);
    record.apply(Command::SetDirective(deny(START)), hours(10));
    assert!(
        permitted(&record, hours(5)),
        "recorded at 10, valid 'from START'"
    );
    assert!(!permitted(&record, hours(10)));
    record.apply(
        Command::WithdrawDirective {
            id: "D1".into(),
            reason: "changed my mind".into(),
        },
        hours(20),
    );
    assert!(permitted(&record, hours(25)));
    // Set again under the same id: it applies from then on only; the
    // withdrawal still ended the first one at 20.
    record.apply(Command::SetDirective(deny(START)), hours(30));
    assert!(!permitted(&record, hours(15)));
    assert!(
        permitted(&record, hours(25)),
        "between withdrawal and the new one"
    );
    assert!(!permitted(&record, hours(30)));
    assert_eq!(record.directive_states.len(), 3, "every state is kept");
}

#[test]
fn a_copy_of_a_given_age_is_reproduced_with_known_at() {
    let mut record = signed_record();
    record.apply(status("ISA-1", suspend), hours(10));
    // A copy as of hour 9 had not heard of the suspension: it permitted at
    // hour 11, and that is what the full record says for that copy.
    let then = record.decide(
        hours(11),
        Category::DischargeSummary,
        PurposeOfUse::DirectCare,
        Some(hours(9)),
    );
    assert!(then.permitted);
    let now = record.decide(
        hours(11),
        Category::DischargeSummary,
        PurposeOfUse::DirectCare,
        None,
    );
    assert!(!now.permitted);
}

#[test]
fn of_several_covering_agreements_the_earliest_in_force_then_natural_order_decides() {
    let mut record = Record::default();
    for id in ["ISA-10", "ISA-9"] {
        record.apply(draft(id, START), hours(0));
        record.apply(sign(id, 1, "NWL"), hours(1));
        record.apply(sign(id, 1, "NCL"), hours(2));
    }
    let decision = record.decide(
        hours(5),
        Category::DischargeSummary,
        PurposeOfUse::DirectCare,
        None,
    );
    assert_eq!(decision.isa, Some(("ISA-9".into(), 1)), "9 before 10");
    record.apply(draft("ISA-1", START), hours(3));
    record.apply(sign("ISA-1", 1, "NWL"), hours(3));
    record.apply(sign("ISA-1", 1, "NCL"), hours(4));
    let decision = record.decide(
        hours(5),
        Category::DischargeSummary,
        PurposeOfUse::DirectCare,
        None,
    );
    assert_eq!(
        decision.isa,
        Some(("ISA-9".into(), 1)),
        "in force earlier than ISA-1"
    );
    assert!(natural_order("ISA-2", "ISA-10").is_lt());
    assert!(natural_order("ISA-b", "ISA-a").is_gt());
    assert!(natural_order("ISA", "ISA-1").is_lt());
}

// ---- Random histories --------------------------------------------------------

fn command_strategy() -> impl Strategy<Value = Command> {
    let id = prop_oneof![Just("ISA-9"), Just("ISA-10")];
    let region = prop_oneof![Just("NWL"), Just("NCL")];
    let category = prop_oneof![Just(Category::DischargeSummary), Just(Category::Result)];
    let rule = prop_oneof![
        Just(DirectiveRule::DissentAll),
        Just(DirectiveRule::DenyOrganisation(ods("RAL"))),
        Just(DirectiveRule::AllowOrganisation(ods("RAL"))),
        Just(DirectiveRule::DenyCategory(Category::Result)),
    ];
    let directive_id = prop_oneof![Just("D1"), Just("D2")];
    prop_oneof![
        (id.clone(), -48i64..48).prop_map(|(id, from)| draft(id, hours(from))),
        (id.clone(), -48i64..48, category, any::<bool>()).prop_map(
            |(id, from, category, emergency)| Command::AmendIsa {
                id: id.into(),
                terms: terms(
                    hours(from),
                    &[category, Category::DischargeSummary],
                    emergency
                ),
            }
        ),
        (id.clone(), 1u32..4, region).prop_map(|(id, version, region)| sign(id, version, region)),
        (id.clone(), 0u8..3).prop_map(|(id, which)| match which {
            0 => status(id, suspend),
            1 => status(id, reinstate),
            _ => Command::RevokeIsa {
                id: id.into(),
                reason: "ended".into()
            },
        }),
        (directive_id.clone(), rule, -48i64..200).prop_map(|(id, rule, from)| {
            Command::SetDirective(directive(id, rule, hours(from)))
        }),
        directive_id.prop_map(|id| Command::WithdrawDirective {
            id: id.into(),
            reason: "changed".into()
        }),
    ]
}

/// The moments asked about: each command's own moment, just before it, and
/// just after it.
fn probes(times: &[OffsetDateTime]) -> Vec<OffsetDateTime> {
    let mut probes = vec![hours(-1)];
    for at in times {
        probes.extend([
            *at - Duration::nanoseconds(1),
            *at,
            *at + Duration::minutes(30),
        ]);
    }
    probes
}

const FLOWS: [(Category, PurposeOfUse); 3] = [
    (Category::DischargeSummary, PurposeOfUse::DirectCare),
    (Category::Result, PurposeOfUse::DirectCare),
    (Category::DischargeSummary, PurposeOfUse::EmergencyCare),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Asked after any later changes, a decision about a past moment is
    /// the one given at that moment; and a copy as of any step is
    /// reproduced from the full record with `known_at`.
    #[test]
    fn later_changes_never_alter_a_past_decision(
        commands in proptest::collection::vec(command_strategy(), 1..40),
        gaps in proptest::collection::vec(1i64..6, 40),
    ) {
        let mut times = Vec::new();
        let mut at = hours(0);
        let mut record = Record::default();
        let mut asked_then = Vec::new();
        for (command, gap) in commands.into_iter().zip(gaps) {
            at += Duration::hours(gap);
            record.apply(command, at);
            times.push(at);
            let copy = record.clone();
            // What was decided up to now, with the record as it stood.
            for probe in probes(&times).into_iter().filter(|p| *p <= at) {
                for (category, purpose) in FLOWS {
                    asked_then.push((probe, at, category, purpose, copy.decide(probe, category, purpose, None)));
                }
            }
            // A copy as of `at`, asked about a later moment.
            let later = at + Duration::hours(3);
            for (category, purpose) in FLOWS {
                asked_then.push((later, at, category, purpose, copy.decide(later, category, purpose, None)));
            }
        }
        for (probe, known_at, category, purpose, then) in asked_then {
            if probe <= known_at {
                let now = record.decide(probe, category, purpose, None);
                prop_assert_eq!(&now, &then, "at {} asked again after later changes", probe);
            }
            let as_copy = record.decide(probe, category, purpose, Some(known_at));
            prop_assert_eq!(&as_copy, &then, "at {} as known at {}", probe, known_at);
        }
    }
}

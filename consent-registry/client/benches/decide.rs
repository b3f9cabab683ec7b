//! Decisions from the hub's registry copy, on one core (criterion).
//!
//! - `registry_cache_decide`: `Policy::decide` on a copy holding 30
//!   agreements and one million patients' directives (one each, a tenth
//!   with two), for a mix of patients with and without directives,
//!   senders and recipients in five regions, and every category.
//! - `registry_cache_lookup_reference`: the floor: looking the same
//!   patients up in a plain `HashMap<u64, u32>` of the same size.
//!
//! - `registry_decide_now` and `registry_decide_as_of`: the registry's own
//!   decision about one patient with a history of eight directive states
//!   (set, replaced, withdrawn, set again, under four ids), over the same 30
//!   agreements, five of them suspended and reinstated since: `decide` with
//!   the patient's directives as they now are, and `decide_from_history`
//!   for a past moment as a copy of an older revision knew it (the
//!   explaining case: agreements changed since are rebuilt as they were).
//!
//! `make bench` runs this and prints its `BENCH` lines from criterion's
//! estimates (`target/criterion/*/new/estimates.json`).

// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lhcie_consent::{
    Agreement, DecisionRequest, Directive, DirectiveRule, DirectiveSource, IsaParty, IsaTerms,
    OrgRef, Signature,
};
use lhcie_hub_core::Policy;
use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use lhcie_proto::convert::registry::agreement_to_wire;
use lhcie_proto::registry as pb;
use lhcie_registry_client::RegistryPolicy;
use lhcie_registry_client::compact::patient_key;
use pb::watch_event::Event;
use time::macros::datetime;

// The hub's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATIENTS: u64 = 1_000_000;
const REGIONS: [&str; 5] = ["NWL", "NCL", "NEL", "SEL", "SWL"];
const ORGANISATIONS: [&str; 10] = [
    "RYJ", "RAL", "RKE", "RJZ", "RJ1", "R1H", "RQX", "RJ7", "RAX", "RVR",
];

/// A deterministic pseudo-random sequence (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn agreements() -> Vec<Agreement> {
    let from = datetime!(2026-01-01 00:00 UTC);
    let mut agreements = Vec::new();
    for i in 0..30 {
        // Pairs of regions, and a few organisation-level agreements.
        let parties = if i < 25 {
            vec![
                IsaParty::Region(REGIONS[i % 5].into()),
                IsaParty::Region(REGIONS[(i / 5) % 5].into()),
            ]
        } else {
            vec![
                IsaParty::Organisation(OdsCode::parse(ORGANISATIONS[i % 10]).unwrap()),
                IsaParty::Organisation(OdsCode::parse(ORGANISATIONS[(i + 1) % 10]).unwrap()),
            ]
        };
        let terms = IsaTerms {
            title: format!("agreement {i}"),
            parties: parties.clone(),
            purposes: BTreeSet::from([PurposeOfUse::DirectCare, PurposeOfUse::EmergencyCare]),
            categories: Category::ALL
                .iter()
                .copied()
                .filter(|c| !(*c as usize + i).is_multiple_of(3))
                .collect(),
            legal_basis: "UK GDPR 6(1)(e), 9(2)(h)".into(),
            valid_from: from,
            valid_until: None,
            document_reference: None,
            emergency_override: false,
        };
        let mut agreement = Agreement::draft(&format!("ISA-{i:03}"), terms, "bench", from).unwrap();
        for party in parties {
            let organisation = match &party {
                IsaParty::Organisation(code) => code.clone(),
                _ => OdsCode::parse("LHCIE").unwrap(),
            };
            let signature = Signature {
                party,
                signer: "s".into(),
                role: "r".into(),
                organisation,
                signed_at: from,
            };
            // The same region twice is one party: a second signature is refused.
            let _ = agreement.sign(1, signature);
        }
        agreements.push(agreement);
    }
    agreements
}

fn directive(n: u64, id: String, random: &mut Lcg) -> Directive {
    let rule = match random.next() % 4 {
        0 => DirectiveRule::DissentAll,
        1 => DirectiveRule::DenyOrganisation(
            OdsCode::parse(ORGANISATIONS[(random.next() % 10) as usize]).unwrap(),
        ),
        2 => DirectiveRule::DenyCategory(Category::ALL[(random.next() % 8) as usize]),
        _ => DirectiveRule::AllowOrganisation(
            OdsCode::parse(ORGANISATIONS[(random.next() % 10) as usize]).unwrap(),
        ),
    };
    Directive {
        id,
        nhs_number: NhsNumber::synthetic(n).unwrap(),
        rule,
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        source: DirectiveSource::BulkImport,
        recorded_by: "bench".into(),
        recorded_at: datetime!(2026-01-01 00:00 UTC),
        withdrawal: None,
    }
}

fn bench(c: &mut Criterion) {
    let policy = RegistryPolicy::new(Duration::from_secs(24 * 3600));
    let now = datetime!(2026-11-21 12:00 UTC);
    let mut events: Vec<pb::WatchEvent> = agreements()
        .iter()
        .map(|a| pb::WatchEvent {
            revision: 1,
            event: Some(Event::Agreement(agreement_to_wire(a, now))),
        })
        .collect();
    let mut random = Lcg(42);
    let mut patients = Vec::new();
    let mut n = 0u64;
    while (patients.len() as u64) < PATIENTS {
        if NhsNumber::synthetic(n).is_some() {
            patients.push(n);
            let id = format!("DIR-{n:010}");
            events.push(pb::WatchEvent {
                revision: 2,
                event: Some(Event::Directive(directive(n, id, &mut random).into())),
            });
            if random.next().is_multiple_of(10) {
                events.push(pb::WatchEvent {
                    revision: 2,
                    event: Some(Event::Directive(
                        directive(n, format!("DIR-{n:010}-b"), &mut random).into(),
                    )),
                });
            }
            if events.len() > 100_000 {
                policy.apply(std::mem::take(&mut events)).unwrap();
            }
        }
        n += 1;
    }
    events.push(pb::WatchEvent {
        revision: 0,
        event: Some(Event::Heartbeat(pb::Heartbeat {
            revision: 2,
            leader_confirmed: true,
            consent_model: pb::ConsentModel::Implied as i32,
            confirmed_age_ms: 0,
        })),
    });
    policy.apply(events).unwrap();
    assert!(policy.health().fresh);

    // 4096 questions: 80 % about patients with directives, 20 % about
    // patients without; organisations across regions; every category.
    let codes: Vec<OdsCode> = ORGANISATIONS
        .iter()
        .map(|c| OdsCode::parse(c).unwrap())
        .collect();
    let exchanges: Vec<ExchangeId> = (0..10)
        .map(|i| ExchangeId::parse(&format!("exchange-{i}")).unwrap())
        .collect();
    let questions: Vec<(NhsNumber, usize, usize, Category)> = (0..4096)
        .map(|_| {
            let patient = if random.next().is_multiple_of(5) {
                (50_000_000 + random.next() % 1_000_000..)
                    .find_map(NhsNumber::synthetic)
                    .unwrap()
            } else {
                NhsNumber::synthetic(patients[(random.next() % PATIENTS) as usize]).unwrap()
            };
            (
                patient,
                (random.next() % 10) as usize,
                (random.next() % 10) as usize,
                Category::ALL[(random.next() % 7) as usize],
            )
        })
        .collect();
    let requests: Vec<DecisionRequest<'_>> = questions
        .iter()
        .map(|(patient, from, to, category)| DecisionRequest {
            nhs_number: Some(patient),
            sender: OrgRef {
                ods_code: &codes[*from],
                exchange: &exchanges[*from],
                region: REGIONS[*from % 5],
            },
            recipient: OrgRef {
                ods_code: &codes[*to],
                exchange: &exchanges[*to],
                region: REGIONS[*to % 5],
            },
            category: *category,
            purpose: PurposeOfUse::DirectCare,
            at: now,
        })
        .collect();
    let permitted = requests
        .iter()
        .filter(|r| policy.decide(r).unwrap().permitted)
        .count();
    eprintln!(
        "registry copy: {} directives in about {} MB; {permitted} of {} sample questions permitted",
        policy.health().directives,
        policy.approximate_bytes() / 1_000_000,
        requests.len()
    );

    let mut group = c.benchmark_group("registry");
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("registry_cache_decide", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let decision = policy.decide(&requests[i & 4095]);
            i += 1;
            black_box(decision)
        })
    });
    let lookup: HashMap<u64, u32> = patients
        .iter()
        .map(|n| (patient_key(&NhsNumber::synthetic(*n).unwrap()), 1))
        .collect();
    let keys: Vec<u64> = questions.iter().map(|(p, ..)| patient_key(p)).collect();
    group.bench_function("registry_cache_lookup_reference", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let found = lookup.get(&keys[i & 4095]);
            i += 1;
            black_box(found)
        })
    });
    group.finish();
}

/// Eight recorded states of one patient's directives, hours apart from
/// `start`: set, replaced, withdrawn, set again, under four ids.
fn directive_history(start: time::OffsetDateTime) -> Vec<Directive> {
    let mut random = Lcg(7);
    let mut states = Vec::new();
    for step in 0..8i64 {
        let id = format!("DIR-H-{}", step % 4);
        let mut state = directive(1, id, &mut random);
        state.recorded_at = start + time::Duration::hours(step);
        if step % 3 == 2 {
            state.withdrawal = Some(lhcie_consent::StatusNote {
                at: start + time::Duration::hours(step) + time::Duration::minutes(30),
                by: "patient".into(),
                reason: "changed".into(),
            });
        }
        states.push(state);
    }
    states
}

fn bench_history(c: &mut Criterion) {
    use lhcie_consent::{ConsentModel, StatusNote, decide, decide_from_history};
    let start = datetime!(2026-06-01 00:00 UTC);
    let mut agreements = agreements();
    for (i, agreement) in agreements.iter_mut().enumerate().take(5) {
        let at = start + time::Duration::hours(20 + i as i64);
        let note = |at| StatusNote {
            at,
            by: "ig".into(),
            reason: "review".into(),
        };
        agreement.suspend(note(at)).unwrap();
        agreement
            .reinstate(note(at + time::Duration::hours(1)))
            .unwrap();
    }
    let states = directive_history(start);
    let current = lhcie_consent::as_they_stood(&states, start + time::Duration::days(30));
    let patient = NhsNumber::synthetic(1).unwrap();
    let (sender, recipient) = (
        OdsCode::parse("RYJ").unwrap(),
        OdsCode::parse("RAL").unwrap(),
    );
    let (from, to) = (
        ExchangeId::parse("exchange-0").unwrap(),
        ExchangeId::parse("exchange-1").unwrap(),
    );
    let request = |at| DecisionRequest {
        nhs_number: Some(&patient),
        sender: OrgRef {
            ods_code: &sender,
            exchange: &from,
            region: "NWL",
        },
        recipient: OrgRef {
            ods_code: &recipient,
            exchange: &to,
            region: "NCL",
        },
        category: Category::DischargeSummary,
        purpose: PurposeOfUse::DirectCare,
        at,
    };
    let now = request(start + time::Duration::days(30));
    let past = request(start + time::Duration::hours(21));
    let known_at = Some(start + time::Duration::hours(19));
    let mut group = c.benchmark_group("registry");
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("registry_decide_now", |b| {
        b.iter(|| black_box(decide(&now, &agreements, &current, ConsentModel::Implied)))
    });
    group.bench_function("registry_decide_as_of", |b| {
        b.iter(|| {
            black_box(decide_from_history(
                &past,
                &agreements,
                &states,
                ConsentModel::Implied,
                known_at,
            ))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = bench, bench_history
}
criterion_main!(benches);

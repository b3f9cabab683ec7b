//! The hub's copy of the registry: agreements and every patient's
//! directives in memory, fed by the watch feed, deciding with no network
//! round trip.
//!
//! It decides only while it can prove it is current: the last heartbeat
//! that confirmed the leader's state (and that every change up to it had
//! arrived) must be younger than the configured bound, and a full
//! re-synchronisation must not be under way. Otherwise it answers
//! [`PolicyUnavailable`] and the hub holds the message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use lhcie_consent::{Agreement, CarerGrant, ConsentModel, Decision, DecisionRequest, Directive};
use lhcie_hub_core::{Policy, PolicyUnavailable};
use lhcie_proto::convert::registry::consent_model_from_wire;
use lhcie_proto::registry as pb;
use pb::watch_event::Event;
use tokio::sync::watch;

use crate::agreements::AgreementIndex;
use crate::compact::CompactDirectives;

/// What the cache holds.
#[derive(Default)]
struct Held {
    agreements: AgreementIndex,
    directives: CompactDirectives,
    consent_model: Option<ConsentModel>,
}

/// Where the cache is in the feed.
#[derive(Debug, Default, Clone, Copy)]
struct Position {
    /// Every change up to here has arrived (the revision to resume from).
    complete: u64,
    /// The revision of the last change seen.
    last_seen: u64,
    /// A full re-synchronisation is under way.
    syncing: bool,
}

/// How current the cache is, for readiness and dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHealth {
    /// Whether decisions are being made (else messages are held).
    pub fresh: bool,
    /// Why not, for operators (never names a patient).
    pub problem: Option<String>,
    /// The registry revision held.
    pub revision: u64,
    /// How long ago the copy was last proven current.
    pub proven_age: Option<Duration>,
    /// Directives held.
    pub directives: usize,
    /// Agreements held.
    pub agreements: usize,
}

/// The registry-backed policy.
pub struct RegistryPolicy {
    held: RwLock<Held>,
    position: Mutex<Position>,
    /// When the copy was last proven current, in microseconds after `base`
    /// (0: never).
    proven_at: AtomicU64,
    base: Instant,
    max_staleness: Duration,
    /// Why the feed is down, if it is.
    problem: Mutex<Option<String>>,
    revision: watch::Sender<u64>,
}

impl std::fmt::Debug for RegistryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryPolicy")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl RegistryPolicy {
    /// An empty cache that decides once it has been proven current within
    /// `max_staleness`.
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            held: RwLock::default(),
            position: Mutex::default(),
            proven_at: AtomicU64::new(0),
            base: Instant::now(),
            max_staleness,
            problem: Mutex::new(Some("not yet connected to the registry".into())),
            revision: watch::Sender::new(0),
        }
    }

    /// The revision to resume the feed from.
    pub fn resume_from(&self) -> u64 {
        self.position.lock().expect("position lock").complete
    }

    /// A receiver that sees each revision the cache reaches.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Records why the feed is down (or `None` once it is up again).
    pub fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().expect("problem lock") = problem;
    }

    /// Applies a batch of watch events, in order.
    pub fn apply(&self, events: Vec<pb::WatchEvent>) -> Result<(), String> {
        let received = Instant::now();
        let mut held = self.held.write().expect("cache lock");
        let mut position = self.position.lock().expect("position lock");
        for event in events {
            let revision = event.revision;
            let Some(event) = event.event else { continue };
            match event {
                Event::Heartbeat(heartbeat) => {
                    position.complete = position.complete.max(heartbeat.revision);
                    position.last_seen = position.last_seen.max(heartbeat.revision);
                    if let Some(model) = consent_model_from_wire(heartbeat.consent_model) {
                        held.consent_model = Some(model);
                    }
                    if heartbeat.leader_confirmed && !position.syncing {
                        let proven = received
                            .checked_sub(Duration::from_millis(u64::from(
                                heartbeat.confirmed_age_ms,
                            )))
                            .unwrap_or(self.base);
                        let micros = proven.duration_since(self.base).as_micros().max(1);
                        self.proven_at
                            .fetch_max(u64::try_from(micros).unwrap_or(u64::MAX), Ordering::SeqCst);
                    }
                }
                Event::SnapshotBegin(_) => position.syncing = true,
                Event::Synced(synced) => {
                    position.syncing = false;
                    position.complete = synced.revision;
                    position.last_seen = synced.revision;
                }
                Event::Agreement(wire) => {
                    let agreement = Agreement::try_from(wire).map_err(|e| {
                        format!("an agreement from the registry does not decode: {e}")
                    })?;
                    held.agreements.upsert(agreement);
                    note_change(&mut position, revision);
                }
                Event::Directive(wire) => {
                    let directive = Directive::try_from(wire).map_err(|e| {
                        format!("a directive from the registry does not decode: {e}")
                    })?;
                    held.directives.upsert(&directive);
                    note_change(&mut position, revision);
                }
                Event::CarerGrant(wire) => {
                    // Carer grants are for the patient account; the hub only
                    // checks that they decode.
                    CarerGrant::try_from(wire).map_err(|e| {
                        format!("a carer grant from the registry does not decode: {e}")
                    })?;
                    note_change(&mut position, revision);
                }
            }
        }
        let complete = position.complete;
        drop(position);
        drop(held);
        self.revision.send_if_modified(|current| {
            let moved = *current != complete;
            *current = complete;
            moved
        });
        metrics::gauge!("lhcie_hub_registry_revision").set(complete as f64);
        Ok(())
    }

    /// How current the cache is.
    pub fn health(&self) -> CacheHealth {
        let (fresh, problem, proven_age) = match self.freshness() {
            Ok(age) => (true, None, Some(age)),
            Err(problem) => (false, Some(problem), self.proven_age()),
        };
        let held = self.held.read().expect("cache lock");
        CacheHealth {
            fresh,
            problem,
            revision: self.resume_from(),
            proven_age,
            directives: held.directives.len(),
            agreements: held.agreements.len(),
        }
    }

    /// About how many bytes the directives take.
    pub fn approximate_bytes(&self) -> usize {
        self.held
            .read()
            .expect("cache lock")
            .directives
            .approximate_bytes()
    }

    fn proven_age(&self) -> Option<Duration> {
        match self.proven_at.load(Ordering::SeqCst) {
            0 => None,
            micros => Some(
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_micros(micros)),
            ),
        }
    }

    /// How long ago the copy was proven current, if within the bound.
    fn freshness(&self) -> Result<Duration, String> {
        let position = *self.position.lock().expect("position lock");
        if position.syncing {
            return Err("re-synchronising with the registry".into());
        }
        let problem = self.problem.lock().expect("problem lock").clone();
        match self.proven_age() {
            None => {
                Err(problem
                    .unwrap_or_else(|| "not yet proven current by the registry's leader".into()))
            }
            Some(age) if age > self.max_staleness => Err(format!(
                "the registry copy was last proven current {:.1} s ago (bound {:.1} s){}",
                age.as_secs_f64(),
                self.max_staleness.as_secs_f64(),
                problem.map(|p| format!(": {p}")).unwrap_or_default()
            )),
            Some(age) => Ok(age),
        }
    }
}

fn note_change(position: &mut Position, revision: u64) {
    if revision == 0 {
        return; // part of a full state
    }
    if revision > position.last_seen {
        // A new revision begins: every earlier one is complete.
        position.complete = position.complete.max(position.last_seen);
        position.last_seen = revision;
    }
}

impl Policy for RegistryPolicy {
    fn decide(&self, request: &DecisionRequest<'_>) -> Result<Decision, PolicyUnavailable> {
        self.freshness()
            .map_err(|reason| PolicyUnavailable { reason })?;
        let held = self.held.read().expect("cache lock");
        let model = held.consent_model.ok_or_else(|| PolicyUnavailable {
            reason: "the registry has not said which consent model applies".into(),
        })?;
        let choices = match request.nhs_number {
            Some(nhs_number) => held.directives.choices_at(nhs_number, request.at),
            None => Vec::new(),
        };
        // What `held` holds is every change up to `last_seen`: `apply`
        // changes both under the write lock this read lock excludes.
        let revision = self.position.lock().expect("position lock").last_seen;
        let mut decision = lhcie_consent::decide_with_choices(
            request,
            held.agreements
                .candidates(&request.sender, &request.recipient),
            &choices,
            model,
        );
        decision.registry_revision = Some(revision);
        Ok(decision)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use lhcie_consent::{
        Agreement, DirectiveRule, DirectiveSource, IsaParty, IsaTerms, OrgRef, Reason, Signature,
    };
    use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
    use lhcie_proto::convert::registry::agreement_to_wire;
    use time::macros::datetime;

    use super::*;

    const AT: time::OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

    fn agreement() -> Agreement {
        let parties = vec![
            IsaParty::Region("NWL".into()),
            IsaParty::Region("NCL".into()),
        ];
        let terms = IsaTerms {
            title: "t".into(),
            parties: parties.clone(),
            purposes: BTreeSet::from([PurposeOfUse::DirectCare]),
            categories: BTreeSet::from([Category::DischargeSummary]),
            legal_basis: "l".into(),
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: None,
            document_reference: None,
            emergency_override: false,
        };
        let mut agreement =
            Agreement::draft("ISA-1", terms, "ig", datetime!(2026-01-01 00:00 UTC)).unwrap();
        for party in parties {
            agreement
                .sign(
                    1,
                    Signature {
                        party,
                        signer: "s".into(),
                        role: "r".into(),
                        organisation: OdsCode::parse("LHCIE").unwrap(),
                        signed_at: datetime!(2026-01-01 00:00 UTC),
                    },
                )
                .unwrap();
        }
        agreement
    }

    fn nhs() -> NhsNumber {
        NhsNumber::synthetic(0).unwrap()
    }

    pub(crate) fn event(revision: u64, event: Event) -> pb::WatchEvent {
        pb::WatchEvent {
            revision,
            event: Some(event),
        }
    }

    pub(crate) fn heartbeat(revision: u64, confirmed: bool) -> pb::WatchEvent {
        event(
            0,
            Event::Heartbeat(pb::Heartbeat {
                revision,
                leader_confirmed: confirmed,
                consent_model: pb::ConsentModel::Implied as i32,
                confirmed_age_ms: 0,
            }),
        )
    }

    pub(crate) fn deny_ral(id: &str) -> pb::WatchEvent {
        let directive = lhcie_consent::Directive {
            id: id.into(),
            nhs_number: nhs(),
            rule: DirectiveRule::DenyOrganisation(OdsCode::parse("RAL").unwrap()),
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: None,
            source: DirectiveSource::PatientAccount,
            recorded_by: "p".into(),
            recorded_at: datetime!(2026-01-01 00:00 UTC),
            withdrawal: None,
        };
        event(0, Event::Directive(directive.into()))
    }

    fn ask(policy: &RegistryPolicy, recipient: &str) -> Result<Decision, PolicyUnavailable> {
        let (ryj, ral) = (
            OdsCode::parse("RYJ").unwrap(),
            OdsCode::parse(recipient).unwrap(),
        );
        let (nwl, ncl) = (
            ExchangeId::parse("nwl-imperial").unwrap(),
            ExchangeId::parse("ncl-royal-free").unwrap(),
        );
        let nhs = nhs();
        policy.decide(&DecisionRequest {
            nhs_number: Some(&nhs),
            sender: OrgRef {
                ods_code: &ryj,
                exchange: &nwl,
                region: "NWL",
            },
            recipient: OrgRef {
                ods_code: &ral,
                exchange: &ncl,
                region: "NCL",
            },
            category: Category::DischargeSummary,
            purpose: PurposeOfUse::DirectCare,
            at: AT,
        })
    }

    #[test]
    fn decides_only_once_proven_current_by_the_leader() {
        let policy = RegistryPolicy::new(Duration::from_secs(5));
        assert!(
            ask(&policy, "RAL")
                .unwrap_err()
                .reason
                .contains("not yet connected")
        );
        policy.set_problem(None);
        let mut agreement_event = event(3, Event::Agreement(agreement_to_wire(&agreement(), AT)));
        agreement_event.revision = 3;
        let mut directive = deny_ral("D1");
        directive.revision = 4;
        policy
            .apply(vec![agreement_event, directive, heartbeat(4, false)])
            .unwrap();
        assert!(
            ask(&policy, "RAL").is_err(),
            "an unconfirmed heartbeat proves nothing"
        );
        policy.apply(vec![heartbeat(4, true)]).unwrap();
        let decision = ask(&policy, "RAL").unwrap();
        assert_eq!(decision.reason, Reason::PatientDeniedOrganisation);
        assert_eq!(decision.directives, vec!["D1".to_owned()]);
        assert_eq!(decision.registry_revision, Some(4), "the copy's revision");
        assert_eq!(ask(&policy, "RKE").unwrap().reason, Reason::ImpliedConsent);
        assert!(policy.health().fresh);
        assert_eq!(policy.health().directives, 1);
    }

    #[test]
    fn goes_stale_after_the_bound_and_fails_closed() {
        let policy = RegistryPolicy::new(Duration::from_millis(100));
        policy.set_problem(None);
        policy.apply(vec![heartbeat(1, true)]).unwrap();
        assert!(policy.health().fresh);
        std::thread::sleep(Duration::from_millis(150));
        policy.set_problem(Some("the registry feed went quiet".into()));
        let unavailable = ask(&policy, "RAL").unwrap_err();
        assert!(
            unavailable.reason.contains("last proven current"),
            "{}",
            unavailable.reason
        );
        assert!(unavailable.reason.contains("went quiet"));
        assert!(!policy.health().fresh);
    }

    #[test]
    fn a_full_resynchronisation_is_not_current_until_synced() {
        let policy = RegistryPolicy::new(Duration::from_secs(5));
        policy.set_problem(None);
        policy
            .apply(vec![
                event(0, Event::SnapshotBegin(pb::SnapshotBegin { revision: 40 })),
                event(0, Event::Agreement(agreement_to_wire(&agreement(), AT))),
                heartbeat(0, true),
            ])
            .unwrap();
        assert!(
            ask(&policy, "RAL")
                .unwrap_err()
                .reason
                .contains("re-synchronising")
        );
        policy
            .apply(vec![
                deny_ral("D1"),
                event(40, Event::Synced(pb::Synced { revision: 40 })),
                heartbeat(40, true),
            ])
            .unwrap();
        assert_eq!(
            ask(&policy, "RAL").unwrap().reason,
            Reason::PatientDeniedOrganisation
        );
        assert_eq!(policy.resume_from(), 40);
    }

    #[test]
    fn resumes_from_the_last_complete_revision() {
        let policy = RegistryPolicy::new(Duration::from_secs(5));
        let at = |revision, id: &str| {
            let mut e = deny_ral(id);
            e.revision = revision;
            e
        };
        policy.apply(vec![at(5, "A"), at(5, "B")]).unwrap();
        assert_eq!(policy.resume_from(), 0, "revision 5 may have more changes");
        policy.apply(vec![at(7, "C")]).unwrap();
        assert_eq!(policy.resume_from(), 5);
        policy.apply(vec![heartbeat(9, false)]).unwrap();
        assert_eq!(policy.resume_from(), 9);
    }

    #[test]
    fn a_record_it_cannot_read_is_an_error_not_a_gap() {
        let policy = RegistryPolicy::new(Duration::from_secs(5));
        let mut broken = deny_ral("D1");
        if let Some(Event::Directive(d)) = &mut broken.event {
            d.nhs_number = "123".into();
        }
        assert!(policy.apply(vec![broken]).is_err());
    }
}

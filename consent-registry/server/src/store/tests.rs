//! The store: openraft's storage suite, applying commands, and snapshots
//! built while writes go on.

use std::collections::BTreeSet;

use lhcie_consent::{
    CarerGrant, Command, CommandError, Directive, DirectiveRule, DirectiveSource, IsaParty,
    IsaTerms, Proposal, StatusNote,
};
use lhcie_model::{Category, NhsNumber, OdsCode, PurposeOfUse};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::types::{DirectiveAction, Entry, Outcome, StorageError, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm, _) = open(dir.path(), StoreOptions::default())
            .await
            .map_err(|f| openraft::StorageIOError::read(&f))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn passes_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

const AT: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

fn entry(index: u64, command: Command) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal {
            command,
            by: "ig-officer".into(),
            at: AT,
        }),
    }
}

fn nhs(n: u64) -> NhsNumber {
    (n..).find_map(NhsNumber::synthetic).unwrap()
}

fn directive(id: &str, patient: &NhsNumber, rule: DirectiveRule) -> Directive {
    Directive {
        id: id.into(),
        nhs_number: *patient,
        rule,
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        source: DirectiveSource::PatientAccount,
        recorded_by: String::new(),
        recorded_at: OffsetDateTime::UNIX_EPOCH,
        withdrawal: None,
    }
}

fn terms() -> IsaTerms {
    IsaTerms {
        title: "NWL and NCL direct care".into(),
        parties: vec![
            IsaParty::Region("NWL".into()),
            IsaParty::Region("NCL".into()),
        ],
        purposes: BTreeSet::from([PurposeOfUse::DirectCare]),
        categories: BTreeSet::from([Category::DischargeSummary]),
        legal_basis: "UK GDPR Art. 6(1)(e), 9(2)(h)".into(),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        document_reference: None,
        emergency_override: false,
    }
}

fn grant(id: &str, patient: &NhsNumber) -> CarerGrant {
    CarerGrant {
        id: id.into(),
        patient: *patient,
        carer_name: "A. Carer".into(),
        carer_contact: "carer@example.invalid".into(),
        scopes: vec!["view-record".into()],
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        recorded_by: String::new(),
        recorded_at: OffsetDateTime::UNIX_EPOCH,
        revocation: None,
    }
}

async fn fresh() -> (TempDir, LogStore, StateMachine, std::sync::Arc<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm, registry) = open(dir.path(), StoreOptions::default()).await.unwrap();
    (dir, log, sm, registry)
}

#[tokio::test]
async fn applies_commands_and_keeps_a_history() {
    let (_dir, _log, mut sm, registry) = fresh().await;
    let patient = nhs(1);
    let applied = sm
        .apply([
            entry(
                1,
                Command::DraftIsa {
                    id: "ISA-1".into(),
                    terms: terms(),
                },
            ),
            entry(
                2,
                Command::SetDirective(directive("D1", &patient, DirectiveRule::DissentAll)),
            ),
            entry(
                3,
                Command::SetDirective(directive(
                    "D1",
                    &patient,
                    DirectiveRule::DenyOrganisation(OdsCode::parse("RYJ").unwrap()),
                )),
            ),
            entry(
                4,
                Command::WithdrawDirective {
                    id: "D1".into(),
                    reason: "changed mind".into(),
                },
            ),
            entry(
                5,
                Command::WithdrawDirective {
                    id: "D1".into(),
                    reason: "again".into(),
                },
            ),
            entry(6, Command::GrantCarer(grant("G1", &patient))),
        ])
        .await
        .unwrap();
    assert_eq!(applied.len(), 6);
    assert!(matches!(applied[0].outcome, Ok(Outcome::Agreement(_))));
    assert_eq!(
        applied[4].outcome,
        Err(CommandError::AlreadyWithdrawn("D1".into())),
        "a rule broken changes nothing, and says why"
    );
    assert_eq!(applied[4].revision, 5);
    assert_eq!(registry.revision(), 6);

    let agreement = registry.agreement("ISA-1").unwrap();
    assert_eq!(agreement.versions[0].drafted_by, "ig-officer");
    let directives = registry.directives_of(&patient).unwrap();
    assert_eq!(directives.len(), 1);
    assert!(directives[0].withdrawal.is_some());
    assert_eq!(directives[0].recorded_by, "ig-officer");
    let actions: Vec<_> = registry
        .history(&patient)
        .unwrap()
        .into_iter()
        .map(|e| (e.revision, e.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            (2, DirectiveAction::Set),
            (3, DirectiveAction::Replaced),
            (4, DirectiveAction::Withdrawn)
        ]
    );
    assert_eq!(registry.grants_of(&patient).unwrap().len(), 1);
    assert!(registry.directives_of(&nhs(50)).unwrap().is_empty());

    let ChangesSince::Changes(changes) = registry.changes_since(2, 100).unwrap() else {
        panic!("the change log holds everything");
    };
    let revisions: Vec<u64> = changes.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, vec![3, 4, 6], "revision 5 changed nothing");
}

#[tokio::test]
async fn a_directive_id_cannot_move_to_another_patient() {
    let (_dir, _log, mut sm, registry) = fresh().await;
    let (first, second) = (nhs(1), nhs(20));
    let applied = sm
        .apply([
            entry(
                1,
                Command::SetDirective(directive("D1", &first, DirectiveRule::DissentAll)),
            ),
            entry(
                2,
                Command::SetDirective(directive("D1", &second, DirectiveRule::DissentAll)),
            ),
        ])
        .await
        .unwrap();
    let Err(CommandError::Invalid(message)) = &applied[1].outcome else {
        panic!("{:?}", applied[1]);
    };
    assert!(
        !message.contains(second.as_str()),
        "errors never name a patient"
    );
    assert!(registry.directives_of(&second).unwrap().is_empty());
    assert_eq!(registry.directives_of(&first).unwrap().len(), 1);
}

#[tokio::test]
async fn an_import_records_what_it_can_and_says_what_it_could_not() {
    let (_dir, _log, mut sm, registry) = fresh().await;
    let mut bad = directive("bad", &nhs(3), DirectiveRule::DissentAll);
    bad.valid_until = Some(bad.valid_from);
    let applied = sm
        .apply([entry(
            1,
            Command::ImportDirectives {
                source_exchange: "nwl-discovery".into(),
                directives: vec![
                    directive("I1", &nhs(1), DirectiveRule::DissentAll),
                    bad,
                    directive(
                        "I2",
                        &nhs(20),
                        DirectiveRule::DenyCategory(Category::CareEvent),
                    ),
                ],
            },
        )])
        .await
        .unwrap();
    let Ok(Outcome::Imported { imported, rejected }) = &applied[0].outcome else {
        panic!("{:?}", applied[0]);
    };
    assert_eq!(*imported, 2);
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].starts_with("bad: "));
    let recorded = registry.directives_of(&nhs(20)).unwrap();
    assert_eq!(recorded[0].source, DirectiveSource::BulkImport);
    assert_eq!(
        recorded[0].recorded_by,
        "import from nwl-discovery by ig-officer"
    );
}

#[tokio::test]
async fn the_change_log_is_bounded_and_says_when_changes_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        change_log_capacity: 3,
        ..StoreOptions::default()
    };
    let (_log, mut sm, registry) = open(dir.path(), options).await.unwrap();
    let entries = (1..=5).map(|i| {
        entry(
            i,
            Command::SetDirective(directive(
                &format!("D{i}"),
                &nhs(i),
                DirectiveRule::DissentAll,
            )),
        )
    });
    sm.apply(entries.collect::<Vec<_>>()).await.unwrap();
    assert!(matches!(
        registry.changes_since(0, 100).unwrap(),
        ChangesSince::Gone
    ));
    let ChangesSince::Changes(recent) = registry.changes_since(2, 100).unwrap() else {
        panic!("revisions 3 to 5 are kept");
    };
    assert_eq!(recent.len(), 3);
}

/// Every record, for comparing two stores.
fn contents(registry: &Registry) -> Vec<String> {
    let mut all = Vec::new();
    for tree in [
        &registry.trees.agreements,
        &registry.trees.directives,
        &registry.trees.history,
        &registry.trees.grants,
        &registry.trees.grants_by_patient,
    ] {
        for item in tree.iter() {
            let (key, value) = item.unwrap();
            all.push(format!("{key:?}={value:?}"));
        }
    }
    all
}

fn workload(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|i| {
            let patient = nhs(i % 40);
            match i % 5 {
                0 => entry(
                    i,
                    Command::WithdrawDirective {
                        id: format!("D{}", i - 1),
                        reason: "r".into(),
                    },
                ),
                1 => entry(
                    i,
                    Command::GrantCarer(grant(&format!("G{}", i % 7), &patient)),
                ),
                2 => entry(
                    i,
                    Command::DraftIsa {
                        id: format!("ISA-{i}"),
                        terms: terms(),
                    },
                ),
                _ => entry(
                    i,
                    Command::SetDirective(directive(
                        &format!("D{}", i % 11),
                        &patient,
                        DirectiveRule::DissentAll,
                    )),
                ),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_built_during_writes_installs_the_state_at_its_last_entry() {
    let (_a_dir, _a_log, mut leader, a) = fresh().await;
    leader.apply(workload(1, 200)).await.unwrap();

    // Scan, then apply more entries before the tail is read: the records
    // scanned are stale, the tail brings them up to date.
    let a_for_build = a.clone();
    let stored = tokio::task::spawn_blocking(move || {
        snapshot::write_snapshot(&a_for_build, 1, || {
            let handle = tokio::runtime::Handle::current();
            handle.block_on(async {
                let mut sm = StateMachine::new(a_for_build.clone()).unwrap();
                sm.apply(workload(201, 300)).await.unwrap();
            });
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stored.meta.last_log_id.unwrap().index, 300);

    let (_b_dir, _b_log, _b_sm, b) = fresh().await;
    std::fs::copy(
        a.snapshot_dir.join(&stored.file),
        b.snapshot_dir.join(&stored.file),
    )
    .unwrap();
    snapshot::finish_install(b.clone(), stored).await.unwrap();

    let (_r_dir, _r_log, mut reference, r) = fresh().await;
    reference.apply(workload(1, 300)).await.unwrap();
    assert_eq!(contents(&b), contents(&r));
    assert_eq!(contents(&a), contents(&r));
    assert_eq!(b.revision(), 300);
    assert_eq!(b.agreements().len(), r.agreements().len());
    assert!(matches!(
        b.changes_since(299, 10).unwrap(),
        ChangesSince::Gone
    ));
    assert!(matches!(b.changes_since(300, 10).unwrap(), ChangesSince::Changes(c) if c.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_survive_a_restart_and_refuse_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_meta;
    {
        let (mut log, mut sm, _) = open(dir.path(), StoreOptions::default()).await.unwrap();
        sm.apply(workload(1, 50)).await.unwrap();
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        snapshot_meta = snapshot.meta.clone();
        let state = log.get_log_state().await.unwrap();
        assert!(
            state.last_log_id.is_none(),
            "the suite's appends are elsewhere"
        );
    }
    let (_log, mut sm, registry) = reopen(dir.path()).await;
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot_meta);
    assert_eq!(registry.revision(), 50);

    // A truncated copy is refused.
    let file = registry
        .snapshot_dir
        .join(format!("{}.snap", snapshot_meta.snapshot_id));
    let bytes = std::fs::read(&file).unwrap();
    let (_t_dir, _t_log, mut target, _) = fresh().await;
    let mut incoming = target.begin_receiving_snapshot().await.unwrap();
    use tokio::io::AsyncWriteExt;
    incoming
        .write_all(&bytes[..bytes.len() - 10])
        .await
        .unwrap();
    let error = target.install_snapshot(&snapshot_meta, incoming).await;
    assert!(error.is_err());
}

/// Opens the store again in this process. The log's flusher task lets go
/// of the database shortly after the last handle is dropped; until then
/// sled's file lock is held, so the first attempts may be refused.
async fn reopen(dir: &std::path::Path) -> (LogStore, StateMachine, Arc<Registry>) {
    for _ in 0..100 {
        if let Ok(store) = open(dir, StoreOptions::default()).await {
            return store;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    open(dir, StoreOptions::default())
        .await
        .expect("the store reopens")
}

#[tokio::test]
async fn log_entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _sm, _) = open(dir.path(), StoreOptions::default()).await.unwrap();
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, workload(1, 10))
            .await
            .unwrap();
    }
    let (mut log, _sm, _) = reopen(dir.path()).await;
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.unwrap().index, 10);
    let read = openraft::RaftLogReader::try_get_log_entries(&mut log, 3..6)
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(
        matches!(&read[0].payload, EntryPayload::Normal(p) if matches!(p.command, Command::DraftIsa { .. } | Command::SetDirective(_) | Command::GrantCarer(_) | Command::WithdrawDirective { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_snapshot_id_never_names_a_file() {
    let (_s_dir, _s_log, mut source, _) = fresh().await;
    source.apply(workload(1, 20)).await.unwrap();
    let built = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = Vec::new();
    {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = built.snapshot;
        file.seek(std::io::SeekFrom::Start(0)).await.unwrap();
        file.read_to_end(&mut bytes).await.unwrap();
    }

    let root = tempfile::tempdir().unwrap();
    let node_dir = root.path().join("a").join("b");
    std::fs::create_dir_all(&node_dir).unwrap();
    let (_log, mut target, registry) = open(&node_dir, StoreOptions::default()).await.unwrap();
    for hostile in ["../../x", "/tmp/lhcie-snapshot-escape", "..\\..\\y"] {
        let mut meta = built.meta.clone();
        meta.snapshot_id = hostile.into();
        let mut incoming = target.begin_receiving_snapshot().await.unwrap();
        use tokio::io::AsyncWriteExt;
        incoming.write_all(&bytes).await.unwrap();
        target.install_snapshot(&meta, incoming).await.unwrap();
        // Nothing was written outside the snapshot directory.
        assert!(!root.path().join("x.snap").exists());
        assert!(!root.path().join("a").join("x.snap").exists());
        assert!(!std::path::Path::new("/tmp/lhcie-snapshot-escape.snap").exists());
        let files: Vec<String> = std::fs::read_dir(&registry.snapshot_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0].starts_with("installed-") && files[0].ends_with(".snap"),
            "{files:?}"
        );
        // The peer's id is kept as a label only, and the snapshot is served.
        let current = target.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, hostile);
        assert_eq!(registry.revision(), 20);
    }
    let outside: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("a")]);
}

#[test]
fn an_oversize_snapshot_record_is_refused_before_it_is_allocated() {
    // A length of 4 GiB - 1 after a valid header.
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 16]);
    let error = snapshot::read_record(&mut std::io::Cursor::new(bytes)).unwrap_err();
    assert!(error.to_string().contains("the limit is"), "{error}");
    let mut just_over = Vec::new();
    just_over.extend_from_slice(&(snapshot::MAX_RECORD as u32 + 1).to_le_bytes());
    let error = snapshot::read_record(&mut std::io::Cursor::new(just_over)).unwrap_err();
    assert!(error.to_string().contains("bytes; the limit is"), "{error}");
}

/// Opens the store in `dir`, waiting out sled's file lock (see `reopen`),
/// and returns the first answer that is not the lock.
async fn open_when_free(
    dir: &std::path::Path,
) -> Result<(LogStore, StateMachine, Arc<Registry>), StoreFailure> {
    for _ in 0..100 {
        match open(dir, StoreOptions::default()).await {
            Err(StoreFailure::Sled(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
    open(dir, StoreOptions::default()).await
}

#[tokio::test]
async fn a_store_of_an_unknown_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, _sm, registry) = open(dir.path(), StoreOptions::default()).await.unwrap();
        registry
            .trees
            .meta
            .insert(meta_keys::FORMAT, codec::encode(&99u32).unwrap())
            .unwrap();
        registry.trees.db.flush().unwrap();
    }
    match open_when_free(dir.path()).await {
        Err(StoreFailure::Format { found, expected }) => {
            assert_eq!((found, expected), (99, STORE_FORMAT));
            let message = StoreFailure::Format { found, expected }.to_string();
            assert!(message.contains("empty data folder"), "{message}");
        }
        Ok(_) => panic!("a store of an unknown format was opened"),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_round_one_store_is_upgraded_in_place_and_keeps_everything() {
    use super::migrate::v1;
    let dir = tempfile::tempdir().unwrap();
    let old_terms = || v1::Terms {
        title: "NWL and NCL direct care".into(),
        parties: vec![
            IsaParty::Region("NWL".into()),
            IsaParty::Region("NCL".into()),
        ],
        purposes: BTreeSet::from([PurposeOfUse::DirectCare]),
        categories: BTreeSet::from([Category::DischargeSummary]),
        legal_basis: "UK GDPR".into(),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        document_reference: None,
    };
    let suspension = StatusNote {
        at: datetime!(2026-03-01 00:00 UTC),
        by: "ig".into(),
        reason: "review".into(),
    };
    {
        // As a round-1 registry left its store: records, a log, no format.
        let db = sled::open(dir.path().join("db")).unwrap();
        let agreement = v1::Agreement {
            id: "ISA-1".into(),
            versions: vec![v1::Version {
                version: 1,
                terms: old_terms(),
                signatures: vec![],
                drafted_by: "ig".into(),
                drafted_at: datetime!(2025-12-01 00:00 UTC),
            }],
            suspension: Some(suspension.clone()),
            revocation: None,
        };
        db.open_tree("agreements")
            .unwrap()
            .insert("ISA-1", codec::encode(&agreement).unwrap())
            .unwrap();
        let log_id = openraft::LogId::new(CommittedLeaderId::new(1, 1), 2);
        let entry = v1::Entry {
            log_id,
            payload: v1::Payload::Normal(Box::new(v1::Proposal {
                command: v1::Command::AmendIsa {
                    id: "ISA-1".into(),
                    terms: old_terms(),
                },
                by: "ig".into(),
                at: datetime!(2026-02-01 00:00 UTC),
            })),
        };
        db.open_tree("raft_log")
            .unwrap()
            .insert(codec::index_key(2), codec::encode(&entry).unwrap())
            .unwrap();
        let applied: v1::Applied = (Some(log_id), openraft::StoredMembership::default());
        db.open_tree("meta")
            .unwrap()
            .insert(meta_keys::APPLIED, codec::encode(&applied).unwrap())
            .unwrap();
        db.open_tree("changes")
            .unwrap()
            .insert(codec::index_key(2), b"format-1 changes".to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let (mut log, _sm, registry) = open_when_free(dir.path()).await.expect("upgraded");
    let agreement = registry.agreement("ISA-1").expect("kept");
    assert_eq!(agreement.suspensions.len(), 1);
    assert_eq!(agreement.suspensions[0].suspended, suspension);
    assert!(agreement.suspensions[0].reinstated.is_none());
    assert!(!agreement.versions[0].terms.emergency_override);
    let entries = openraft::RaftLogReader::try_get_log_entries(&mut log, 2..3)
        .await
        .unwrap();
    assert!(matches!(
        &entries[0].payload,
        EntryPayload::Normal(p) if matches!(&p.command, Command::AmendIsa { terms, .. } if !terms.emergency_override)
    ));
    assert_eq!(
        registry.clocks_from().unwrap(),
        Some(2),
        "revisions up to the upgrade have no time"
    );
    let applied = registry.applied_record().unwrap();
    assert_eq!(applied.log_id.map(|id| id.index), Some(2));
    assert_eq!(applied.clock, None);
    assert!(
        matches!(registry.changes_since(1, 100).unwrap(), ChangesSince::Gone),
        "watchers further behind re-synchronise"
    );
    let format = registry.trees.meta.get(meta_keys::FORMAT).unwrap().unwrap();
    assert_eq!(codec::decode::<u32>(&format).unwrap(), STORE_FORMAT);
}

#[tokio::test]
async fn a_new_store_records_its_format_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, _sm, registry) = open(dir.path(), StoreOptions::default()).await.unwrap();
        let format = registry.trees.meta.get(meta_keys::FORMAT).unwrap().unwrap();
        assert_eq!(codec::decode::<u32>(&format).unwrap(), STORE_FORMAT);
    }
    reopen(dir.path()).await;
}

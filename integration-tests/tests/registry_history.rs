//! Decisions reproducible later, against a three-node registry: a moment
//! inside a past suspension stays suspended after the reinstatement; an
//! amendment does not reach back; a directive replaced and withdrawn keeps
//! its history and its past effect; a decision made from a copy of a given
//! revision is made again with `--as-of-revision`; an agreement naming an
//! organisation outside the topology is refused.

use std::time::Duration;

use lhcie_integration_tests::env::write_topology;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PATIENT: &str = "9000000009";

struct Cli<'a> {
    cluster: &'a RegistryCluster,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        self.cluster.cli(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.cluster.cli_ok(args)
    }

    /// The decision for a discharge summary from Imperial to the Royal Free.
    fn decide(&self, extra: &[&str]) -> String {
        let base = [
            "decide",
            "--nhs",
            PATIENT,
            "--sender",
            "RYJ",
            "--recipient",
            "RAL",
            "--category",
            "discharge-summary",
        ];
        self.ok(&[&base[..], extra].concat())
    }

    fn decide_at(&self, at: &str) -> String {
        self.decide(&["--at", at])
    }

    fn revision(&self) -> u64 {
        let status = self.ok(&["status"]);
        let after = status.split("revision ").nth(1).expect("a revision");
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a revision number")
    }

    fn draft_or_amend(
        &self,
        verb: &str,
        category: &str,
        parties: &[&str],
    ) -> Result<String, String> {
        let mut args = vec![
            "isa",
            verb,
            "--id",
            "ISA-HIST-1",
            "--title",
            "Transfers of care",
            "--purpose",
            "direct-care",
            "--category",
            category,
            "--legal-basis",
            "UK GDPR 6(1)(e), 9(2)(h)",
            "--from",
            "2026-01-01",
        ];
        for party in parties {
            args.extend(["--party", party]);
        }
        self.run(&args)
    }

    fn sign(&self, version: &str) {
        for (party, organisation) in [("region:NWL", "RYJ"), ("region:NCL", "RAL")] {
            self.ok(&[
                "isa",
                "sign",
                "--id",
                "ISA-HIST-1",
                "--version",
                version,
                "--party",
                party,
                "--signer",
                "Dr A. Guardian",
                "--role",
                "Caldicott Guardian",
                "--organisation",
                organisation,
            ]);
        }
    }

    fn status_change(&self, verb: &str) {
        self.ok(&["isa", verb, "--id", "ISA-HIST-1", "--reason", "review"]);
    }
}

/// This moment, for `--at`: taken between two commands, it falls after
/// what the first recorded and before what the second records.
fn moment() -> String {
    std::thread::sleep(Duration::from_millis(20));
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_decisions_stay_as_they_were_and_a_copys_decision_is_reproduced() {
    lhcie_integration_tests::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    write_topology(dir.path());
    let cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        3,
        &ClusterOptions {
            // Snapshots are built and the log purged along the way: the
            // history must survive them.
            snapshot_after_entries: 8,
            keep_entries_after_snapshot: 2,
            ..ClusterOptions::default()
        },
    );
    cluster.leader(Duration::from_secs(20)).await;
    let cli = Cli { cluster: &cluster };

    // A party outside the topology is refused, saying which and why.
    let refused = cli
        .draft_or_amend("draft", "discharge-summary", &["region:NWL", "ods:RJ1"])
        .unwrap_err();
    assert!(
        refused.contains("organisation RJ1 is not served by any exchange"),
        "{refused}"
    );
    let refused = cli
        .draft_or_amend("draft", "discharge-summary", &["region:NWL", "region:XYZ"])
        .unwrap_err();
    assert!(refused.contains("region XYZ has no exchange"), "{refused}");

    // Drafted "valid from 2026-01-01", signed now: in force from now.
    cli.draft_or_amend("draft", "discharge-summary", &["region:NWL", "region:NCL"])
        .unwrap();
    let before_signing = moment();
    cli.sign("1");
    let signed = moment();
    assert!(
        cli.decide_at(&before_signing)
            .starts_with("DENY: no information sharing agreement")
    );
    assert!(cli.decide_at(&signed).starts_with("PERMIT"));
    let copy_revision = cli.revision();

    // Suspended, then reinstated: the suspension stays in the past.
    cli.status_change("suspend");
    let suspended = moment();
    assert!(cli.decide_at(&suspended).starts_with("DENY"));
    cli.status_change("reinstate");
    let reinstated = moment();
    assert!(
        cli.decide_at(&suspended)
            .starts_with("DENY: no information sharing agreement"),
        "inside the past suspension"
    );
    assert!(cli.decide_at(&reinstated).starts_with("PERMIT"));

    // A copy of the registry as of before the suspension permitted during
    // it: asked as of that revision, the registry says so too.
    let as_copy = cli.decide(&[
        "--at",
        &suspended,
        "--as-of-revision",
        &copy_revision.to_string(),
    ]);
    assert!(as_copy.starts_with("PERMIT"), "{as_copy}");
    assert!(
        as_copy.contains(&format!("registry revision {copy_revision}")),
        "{as_copy}"
    );

    // Amended to results only, "valid from 2026-01-01": discharge
    // summaries stop from its signing, not before.
    cli.draft_or_amend("amend", "result", &["region:NWL", "region:NCL"])
        .unwrap();
    cli.sign("2");
    let amended = moment();
    assert!(cli.decide_at(&amended).starts_with("DENY"));
    let then = cli.decide_at(&reinstated);
    assert!(
        then.starts_with("PERMIT") && then.contains("ISA-HIST-1 version 1"),
        "{then}"
    );

    // A directive set, replaced and withdrawn under one id: each applied in
    // its own time; the history keeps every state.
    cli.draft_or_amend("amend", "discharge-summary", &["region:NWL", "region:NCL"])
        .unwrap();
    cli.sign("3");
    let directive = |rule: &[&str]| {
        let base = [
            "directive",
            "set",
            "--id",
            "DIR-HIST-1",
            "--nhs",
            PATIENT,
            "--from",
            "2026-01-01",
            "--source",
            "patient-account",
        ];
        cli.ok(&[&base[..], rule].concat())
    };
    let before_directive = moment();
    directive(&["--deny-organisation", "RAL"]);
    let denied = moment();
    directive(&["--deny-category", "result"]);
    let replaced = moment();
    cli.ok(&[
        "directive",
        "withdraw",
        "--id",
        "DIR-HIST-1",
        "--reason",
        "changed my mind",
    ]);
    let withdrawn = moment();
    assert!(
        cli.decide_at(&before_directive).starts_with("PERMIT"),
        "recorded later, valid 'from 2026'"
    );
    let at_denied = cli.decide_at(&denied);
    assert!(at_denied.contains("DIR-HIST-1 denies RAL"), "{at_denied}");
    assert!(
        cli.decide_at(&replaced).starts_with("PERMIT"),
        "the replacement denies results only"
    );
    assert!(cli.decide_at(&withdrawn).starts_with("PERMIT"));
    let history = cli.ok(&["directive", "history", "--nhs", PATIENT]);
    for action in [
        " set: DIR-HIST-1",
        " replaced: DIR-HIST-1",
        " withdrawn: DIR-HIST-1",
    ] {
        assert!(history.contains(action), "{action} in {history}");
    }

    // Every node answers the same about the past (snapshots included).
    let revision = cli.revision();
    for id in 1..=3 {
        cluster
            .wait_revision(id, revision, Duration::from_secs(10))
            .await;
    }
    let explained = cli.decide(&["--at", &denied, "--as-of-revision", &revision.to_string()]);
    assert_eq!(explained.lines().next(), at_denied.lines().next());
}

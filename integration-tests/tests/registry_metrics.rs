//! Every registry node's Prometheus endpoint, on three real processes:
//! parsed (not grepped), leadership and revision agreeing across nodes,
//! writes and their commit time counted on the leader, a new leader
//! reported after the old one is killed, and no patient identifier
//! anywhere in the exposition.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lhcie_integration_tests::env::write_topology;
use lhcie_integration_tests::hub::http_get;
use lhcie_integration_tests::prometheus::{Sample, parse, scrape, sum, value};
use lhcie_integration_tests::registry::{
    ClusterOptions, RegistryCluster, deny_organisation, set_directive, synthetic_patient,
};
use lhcie_proto::registry as pb;
use lhcie_registry_client::Retry;

/// Directives written while the first leader leads.
const WRITES: u64 = 5;

/// The value of the unlabelled sample `name`, if the exposition has it.
fn gauge(samples: &[Sample], name: &str) -> Option<f64> {
    samples.iter().find(|s| s.name == name).map(|s| s.value)
}

/// A scrape, or `None` while the node is not serving (starting, killed).
async fn try_scrape(address: SocketAddr) -> Option<Vec<Sample>> {
    match http_get(address, "/metrics").await {
        Ok((200, text)) => Some(parse(&text)),
        _ => None,
    }
}

/// Scrapes every running node until `agree` holds for the lot (node id,
/// samples), or fails after `timeout` with the last scrapes.
async fn until<F>(cluster: &RegistryCluster, what: &str, timeout: Duration, agree: F)
where
    F: Fn(&[(u64, Vec<Sample>)]) -> bool,
{
    let started = Instant::now();
    loop {
        let mut scrapes = Vec::new();
        for node in cluster.nodes.iter().filter(|n| n.running()) {
            if let Some(samples) = try_scrape(node.metrics().expect("metrics enabled")).await {
                scrapes.push((node.id, samples));
            }
        }
        let running = cluster.nodes.iter().filter(|n| n.running()).count();
        if scrapes.len() == running && agree(&scrapes) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}; last scrapes: {scrapes:?}; logs:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every running node reports `leader` as the leader (itself included),
/// the others as followers, and `voters` voters.
fn leadership_agrees(scrapes: &[(u64, Vec<Sample>)], leader: u64, voters: f64) -> bool {
    scrapes.iter().all(|(id, samples)| {
        gauge(samples, "lhcie_registry_is_leader") == Some(if *id == leader { 1.0 } else { 0.0 })
            && gauge(samples, "lhcie_registry_has_leader") == Some(1.0)
            && gauge(samples, "lhcie_registry_leader_id") == Some(leader as f64)
            && gauge(samples, "lhcie_registry_voters") == Some(voters)
    })
}

/// Every running node has applied exactly `revision`.
fn revision_agrees(scrapes: &[(u64, Vec<Sample>)], revision: u64) -> bool {
    scrapes.iter().all(|(_, samples)| {
        gauge(samples, "lhcie_registry_revision") == Some(revision as f64)
            && gauge(samples, "lhcie_registry_last_log_index") == Some(revision as f64)
    })
}

async fn with_timeout<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 15 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_leadership_revision_and_writes() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    write_topology(dir.path());
    let options = ClusterOptions {
        metrics: true,
        ..ClusterOptions::default()
    };
    let mut cluster =
        RegistryCluster::start(dir.path(), &dir.path().join("topology.toml"), 3, &options);
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let leader_metrics = cluster.node(leader).metrics().unwrap();
    until(
        &cluster,
        "all agree on the leader",
        Duration::from_secs(10),
        |s| leadership_agrees(s, leader, 3.0),
    )
    .await;
    let before = scrape(leader_metrics).await;
    let revision_before = value(&before, "lhcie_registry_revision", &[]);
    let term_before = value(&before, "lhcie_registry_term", &[]);
    assert!(term_before >= 1.0, "term {term_before}");

    // Known writes: one a rule refuses (no such directive), then directives.
    let client = cluster.client("metrics-test");
    let refused = with_timeout(
        "a refused write",
        client.unary(
            Retry::Idempotent,
            &pb::WithdrawDirectiveRequest {
                directive_id: "NO-SUCH-DIRECTIVE".into(),
                reason: "test".into(),
            },
            |mut c, r| async move { c.withdraw_directive(r).await },
        ),
    )
    .await;
    assert_eq!(
        refused.unwrap_err().code(),
        tonic::Code::NotFound,
        "the refusal"
    );
    let patients: Vec<String> = (0..WRITES).map(|n| synthetic_patient(7_000 + n)).collect();
    let mut revision = 0;
    for (n, nhs) in patients.iter().enumerate() {
        let request = deny_organisation(&format!("MET-{n}"), nhs, "RAL");
        revision = with_timeout("a write", set_directive(&client, &request))
            .await
            .expect("write acknowledged");
    }
    assert!(
        revision as f64 >= revision_before + WRITES as f64 + 1.0,
        "the revision advanced from {revision_before} to {revision}: one entry per write"
    );

    // The revision advances, and every node gets there.
    until(
        &cluster,
        "all at the last write's revision",
        Duration::from_secs(10),
        |s| revision_agrees(s, revision),
    )
    .await;

    // The leader counted the writes and timed each committed one.
    let samples = scrape(leader_metrics).await;
    assert_eq!(
        value(
            &samples,
            "lhcie_registry_writes_total",
            &[("command", "set-directive"), ("result", "applied")]
        ),
        WRITES as f64
    );
    assert_eq!(
        sum(
            &samples,
            "lhcie_registry_writes_total",
            &[("result", "applied")]
        ),
        WRITES as f64
    );
    assert_eq!(
        value(
            &samples,
            "lhcie_registry_writes_total",
            &[("command", "withdraw-directive"), ("result", "refused")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "lhcie_registry_writes_total",
            &[("result", "failed")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "lhcie_registry_commit_seconds_count",
            &[("command", "set-directive")]
        ),
        WRITES as f64
    );
    assert_eq!(
        sum(&samples, "lhcie_registry_commit_seconds_count", &[]),
        WRITES as f64 + 1.0,
        "applied and refused writes are both committed"
    );
    assert_eq!(
        value(
            &samples,
            "lhcie_registry_commit_seconds_bucket",
            &[("command", "set-directive"), ("le", "+Inf")]
        ),
        WRITES as f64
    );
    let seconds = value(
        &samples,
        "lhcie_registry_commit_seconds_sum",
        &[("command", "set-directive")],
    );
    assert!(seconds > 0.0 && seconds < 10.0, "{seconds} s");
    assert_eq!(value(&samples, "lhcie_registry_watchers", &[]), 0.0);
    let followers: Vec<String> = (1..=3u64)
        .filter(|id| *id != leader)
        .map(|id| id.to_string())
        .collect();
    until(
        &cluster,
        "the leader sees both followers caught up",
        Duration::from_secs(5),
        |s| {
            s.iter()
                .filter(|(id, _)| *id == leader)
                .all(|(_, samples)| {
                    followers.iter().all(|f| {
                        sum(
                            samples,
                            "lhcie_registry_replication_lag_entries",
                            &[("follower", f)],
                        ) == 0.0
                            && samples.iter().any(|s| {
                                s.name == "lhcie_registry_replication_lag_entries"
                                    && s.labels.get("follower") == Some(f)
                            })
                    })
                })
        },
    )
    .await;

    // Followers only serve reads and redirects: no write counted there.
    for node in cluster.nodes.iter().filter(|n| n.id != leader) {
        let samples = scrape(node.metrics().unwrap()).await;
        assert_eq!(sum(&samples, "lhcie_registry_writes_total", &[]), 0.0);
    }

    // No patient identifier, record id or actor in any node's exposition;
    // the health check answers.
    for node in &cluster.nodes {
        let address = node.metrics().unwrap();
        let (status, text) = http_get(address, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        for secret in patients.iter().map(String::as_str).chain([
            "MET-0",
            "NO-SUCH-DIRECTIVE",
            "metrics-test",
        ]) {
            assert!(
                !text.contains(secret),
                "node {} exposes {secret}:\n{text}",
                node.id
            );
        }
        assert_eq!(
            http_get(address, "/healthz").await.unwrap(),
            (200, "ok\n".to_owned())
        );
    }

    // The leader dies: another node reports that it leads, in a later term,
    // and writes count there.
    cluster.node(leader).kill9();
    let new_leader = cluster.leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    until(
        &cluster,
        "the survivors agree on the new leader",
        Duration::from_secs(10),
        |s| leadership_agrees(s, new_leader, 3.0),
    )
    .await;
    let new_leader_metrics = cluster.node(new_leader).metrics().unwrap();
    let samples = scrape(new_leader_metrics).await;
    assert!(value(&samples, "lhcie_registry_term", &[]) > term_before);
    let request = deny_organisation("MET-AFTER", &synthetic_patient(7_100), "RKE");
    let revision = with_timeout(
        "a write to the new leader",
        set_directive(&client, &request),
    )
    .await
    .expect("write acknowledged by the new leader");
    until(
        &cluster,
        "the survivors at the new write's revision",
        Duration::from_secs(10),
        |s| revision_agrees(s, revision),
    )
    .await;
    let samples = scrape(new_leader_metrics).await;
    assert_eq!(
        sum(
            &samples,
            "lhcie_registry_writes_total",
            &[("result", "applied")]
        ),
        1.0
    );
    let behind = value(
        &samples,
        "lhcie_registry_replication_lag_entries",
        &[("follower", &leader.to_string())],
    );
    assert!(behind > 0.0, "the dead node falls behind ({behind})");
    println!(
        "leader {leader} then {new_leader}; revision {revision}; {:?}",
        started.elapsed()
    );
}

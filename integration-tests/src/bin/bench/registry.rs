//! The consent registry: replicated writes on three nodes with fsync on,
//! against sled's own fsync-bound write rate on this disk; and how long a
//! patient's refusal takes to reach a hub's copy. The plaintext-loopback
//! cluster first, then the same writes and propagation on a three-node
//! cluster with mutual TLS on both ports (the `_mtls` lines, with the ratio
//! to the plaintext figure of the same run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lhcie_consent::{Directive, DirectiveRule, DirectiveSource};
use lhcie_integration_tests::env::write_topology;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster, set_directive};
use lhcie_model::{NhsNumber, OdsCode};
use lhcie_proto::registry as pb;
use lhcie_registry_client::{RegistryPolicy, Retry};
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

use super::{Percentiles, line, verbose};

const BATCH: usize = 100;
const SECONDS: u64 = 10;

/// A directive of the shape the registry stores.
fn directive(n: u64, tag: &str) -> Directive {
    Directive {
        id: format!("BENCH-{tag}-{n:09}"),
        nhs_number: (n..)
            .find_map(NhsNumber::synthetic)
            .expect("synthetic number"),
        rule: DirectiveRule::DenyOrganisation(OdsCode::parse("RAL").unwrap()),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_until: None,
        source: DirectiveSource::PatientAccount,
        recorded_by: "bench".into(),
        recorded_at: datetime!(2026-11-21 00:00 UTC),
        withdrawal: None,
    }
}

/// The reference: four writers each inserting batches of `BATCH`
/// directives into one sled database and flushing (fsync) after each.
async fn raw_sled_fsync(dir: &std::path::Path) -> f64 {
    let db = sled::Config::new()
        .path(dir.join("raw-sled"))
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("sled");
    let tree = db.open_tree("directives").expect("tree");
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..4u64 {
        let (db, tree) = (db.clone(), tree.clone());
        writers.push(tokio::spawn(async move {
            let mut written = 0u64;
            while Instant::now() < deadline {
                let mut batch = sled::Batch::default();
                for i in 0..BATCH as u64 {
                    let d = directive(writer * 10_000_000 + written + i, "raw");
                    batch.insert(d.id.as_bytes(), postcard::to_stdvec(&d).unwrap());
                }
                tree.apply_batch(batch).unwrap();
                db.flush_async().await.unwrap();
                written += BATCH as u64;
            }
            written
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn wire_directive(n: u64, tag: &str) -> pb::Directive {
    let mut wire = pb::Directive::from(directive(n, tag));
    wire.recorded_by.clear();
    wire.recorded_at = None;
    wire
}

/// `clients` writers for `SECONDS`, each sending `per_write` directives at
/// a time; returns directives per second and each write's latency (ms).
async fn writes(cluster: &RegistryCluster, clients: u64, per_write: usize) -> (f64, Vec<f64>) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..clients {
        let client = cluster.client(&format!("bench-writer-{writer}"));
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let base = 20_000_000 + writer * 1_000_000 + per_write as u64 * 100_000;
            while Instant::now() < deadline {
                let asked = Instant::now();
                if per_write == 1 {
                    let request = pb::SetDirectiveRequest {
                        directive: Some(wire_directive(base + written, "one")),
                    };
                    client
                        .call(Retry::Idempotent, |mut c| {
                            let request = client.request(request.clone());
                            async move { c.set_directive(request).await }
                        })
                        .await
                        .expect("write");
                } else {
                    let batch = pb::ImportDirectivesRequest {
                        source_exchange_id: "nwl-imperial".into(),
                        directives: (0..per_write as u64)
                            .map(|i| wire_directive(base + written + i, "batch"))
                            .collect(),
                    };
                    let reply = client
                        .call(Retry::Idempotent, |mut c| {
                            let request = client.request(tokio_stream::iter(vec![batch.clone()]));
                            async move { c.import_directives(request).await }
                        })
                        .await
                        .expect("write");
                    assert_eq!(reply.imported as usize, per_write);
                }
                latencies
                    .lock()
                    .unwrap()
                    .push(asked.elapsed().as_secs_f64() * 1000.0);
                written += per_write as u64;
            }
            written
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let latencies = latencies.lock().unwrap().clone();
    (rate, latencies)
}

/// From asking for a refusal to it being in a hub's copy, `count` times.
async fn propagation(cluster: &RegistryCluster, count: u64) -> Vec<f64> {
    let cache = Arc::new(RegistryPolicy::new(Duration::from_secs(2)));
    let shutdown = CancellationToken::new();
    tokio::spawn(lhcie_registry_client::follow(
        cluster.client("bench-hub"),
        cache.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    let waiting = Instant::now();
    while !cache.health().fresh {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the copy never became current"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let writer = cluster.client("bench-patient-account");
    let mut reached = cache.subscribe();
    let mut samples = Vec::new();
    for n in 0..count {
        let request = pb::SetDirectiveRequest {
            directive: Some(wire_directive(90_000_000 + n, "refusal")),
        };
        let asked = Instant::now();
        let revision = set_directive(&writer, &request).await.expect("write");
        while *reached.borrow_and_update() < revision {
            tokio::time::timeout(Duration::from_secs(5), reached.changed())
                .await
                .expect("the change reached the copy")
                .expect("the copy is alive");
        }
        samples.push(asked.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    samples
}

/// Runs the registry's parts.
pub async fn run() {
    let dir = tempfile::tempdir().expect("temporary folder");
    write_topology(dir.path());
    let raw = raw_sled_fsync(dir.path()).await;
    line("registry_raw_sled_fsync", raw, "directives/s", None, None);

    let cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        3,
        &ClusterOptions::default(),
    );
    cluster.leader(Duration::from_secs(30)).await;
    // Warm up connections and the leader.
    warm_up(&cluster, 2).await;

    let (rate, latencies) = writes(&cluster, 4, BATCH).await;
    let plaintext_batched = rate;
    let latencies = Percentiles::new(latencies);
    line(
        "registry_writes_batched",
        rate,
        "directives/s",
        Some(rate / raw),
        Some(">=3000"),
    );
    line(
        "registry_commit_p50_batched",
        latencies.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "registry_commit_p99_batched",
        latencies.at(0.99),
        "ms",
        None,
        None,
    );

    let (rate, latencies) = writes(&cluster, 32, 1).await;
    let latencies = Percentiles::new(latencies);
    line(
        "registry_writes_single",
        rate,
        "directives/s",
        Some(rate / raw),
        None,
    );
    line(
        "registry_commit_p50_single",
        latencies.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "registry_commit_p99_single",
        latencies.at(0.99),
        "ms",
        None,
        None,
    );

    let samples = propagation(&cluster, 300).await;
    if verbose() {
        eprintln!("propagation samples (ms): {samples:?}");
    }
    let samples = Percentiles::new(samples);
    let plaintext_propagation_p99 = samples.at(0.99);
    line(
        "registry_propagation_p50",
        samples.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "registry_propagation_p99",
        samples.at(0.99),
        "ms",
        None,
        Some("<=200"),
    );
    drop(cluster);

    // The same with mutual TLS on both ports: clients present the
    // registry-admin certificate, nodes their node certificates.
    let secure = dir.path().join("mtls");
    std::fs::create_dir_all(&secure).expect("mtls folder");
    let pki = lhcie_tls::PkiLayout::new(secure.join("pki"));
    let ca = pki.generate(&[]).expect("development PKI");
    pki.generate_services(&ca, &[1, 2, 3], &["registry-admin", "hub"])
        .expect("registry certificates");
    let cluster = RegistryCluster::start(
        &secure,
        &dir.path().join("topology.toml"),
        3,
        &ClusterOptions {
            tls: Some(pki),
            ..ClusterOptions::default()
        },
    );
    cluster.leader(Duration::from_secs(30)).await;
    warm_up(&cluster, 2).await;
    let (rate, latencies) = writes(&cluster, 4, BATCH).await;
    let latencies = Percentiles::new(latencies);
    line(
        "registry_writes_batched_mtls",
        rate,
        "directives/s",
        Some(rate / plaintext_batched),
        Some(">=3000"),
    );
    line(
        "registry_commit_p99_batched_mtls",
        latencies.at(0.99),
        "ms",
        None,
        None,
    );
    let samples = Percentiles::new(propagation(&cluster, 300).await);
    line(
        "registry_propagation_p50_mtls",
        samples.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "registry_propagation_p99_mtls",
        samples.at(0.99),
        "ms",
        Some(samples.at(0.99) / plaintext_propagation_p99),
        Some("<=200"),
    );
}

/// A short warm-up run.
async fn warm_up(cluster: &RegistryCluster, seconds: u64) {
    let client = cluster.client("bench-warm-up");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0;
    while Instant::now() < deadline {
        let request = pb::SetDirectiveRequest {
            directive: Some(wire_directive(80_000_000 + n, "warm")),
        };
        set_directive(&client, &request).await.expect("write");
        n += 1;
    }
}

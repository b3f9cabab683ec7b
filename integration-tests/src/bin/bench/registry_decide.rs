//! The registry's decisions over the wire, on one node on loopback: single
//! calls one after another, sixteen callers at once, and batches of 100
//! (whose replies take several frames). Without `TCP_NODELAY` on the
//! accepted connection a reply written in more than one piece waited for
//! the client's delayed acknowledgement, about 40 ms; the target is that no
//! reply is slower than 5 ms at p99. Then the same batches for a past
//! moment as of an older revision (decisions from the history), with the
//! ratio to the plain batches.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lhcie_integration_tests::env::{write_policy, write_topology};
use lhcie_integration_tests::registry::{
    ClusterOptions, RegistryCluster, deny_organisation, set_directive, synthetic_patient,
};
use lhcie_proto::{canonical, registry as pb};
use lhcie_registry_client::{RegistryClient, Retry};

use super::{Percentiles, line};

const SECONDS: u64 = 5;
const PATIENTS: u64 = 200;

/// A question about patient `n` (a fifth of them have refused the Royal
/// Free), at `at` (now if `None`), as of `revision` (0: current).
fn question(n: u64, at: Option<prost_types::Timestamp>, revision: u64) -> pb::DecideRequest {
    pb::DecideRequest {
        nhs_number: synthetic_patient(n % PATIENTS),
        sender_ods: "RYJ".into(),
        recipient_ods: "RAL".into(),
        category: canonical::Category::DischargeSummary as i32,
        purpose: canonical::PurposeOfUse::DirectCare as i32,
        at,
        as_of_revision: revision,
    }
}

async fn decide(client: &RegistryClient, request: &pb::DecideRequest) {
    client
        .unary(Retry::Idempotent, request, |mut c, r| async move {
            c.decide(r).await
        })
        .await
        .expect("a decision");
}

async fn decide_batch(client: &RegistryClient, requests: &pb::DecideBatchRequest) {
    let answer = client
        .unary(Retry::Idempotent, requests, |mut c, r| async move {
            c.decide_batch(r).await
        })
        .await
        .expect("decisions");
    assert_eq!(answer.decisions.len(), requests.requests.len());
}

/// `callers` tasks asking with `ask` for `SECONDS`; decisions per second
/// and each call's latency (ms).
async fn run_callers<F, Fut>(callers: u64, per_call: u64, ask: F) -> (f64, Vec<f64>)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (ask, latencies) = (ask.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    let asked = Instant::now();
                    ask(caller * 1_000_000 + calls).await;
                    latencies
                        .lock()
                        .unwrap()
                        .push(asked.elapsed().as_secs_f64() * 1000.0);
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut calls = 0;
    for task in tasks {
        calls += task.await.expect("caller");
    }
    let rate = (calls * per_call) as f64 / started.elapsed().as_secs_f64();
    let latencies = std::mem::take(&mut *latencies.lock().unwrap());
    (rate, latencies)
}

fn report(name: &str, rate: f64, latencies: Vec<f64>, ratio: Option<f64>) {
    let latencies = Percentiles::new(latencies);
    line(name, rate, "decisions/s", ratio, None);
    line(&format!("{name}_p50"), latencies.at(0.5), "ms", None, None);
    line(
        &format!("{name}_p99"),
        latencies.at(0.99),
        "ms",
        None,
        Some("<=5"),
    );
}

pub async fn run() {
    let dir = tempfile::tempdir().expect("temporary folder");
    write_topology(dir.path());
    write_policy(dir.path());
    let cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        1,
        &ClusterOptions::default(),
    );
    cluster.leader(Duration::from_secs(30)).await;
    cluster.seed(
        &dir.path().join("policy.toml"),
        &dir.path().join("topology.toml"),
    );
    let client = cluster.client("bench-decide");
    // A fifth of the patients refuse the Royal Free; the refusals are
    // recorded after the revision the as-of batches ask about.
    let past = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before_refusals = set_directive(
        &client,
        &deny_organisation("BENCH-D-0", &synthetic_patient(0), "RAL"),
    )
    .await
    .expect("directive");
    for n in (5..PATIENTS).step_by(5) {
        let request = deny_organisation(&format!("BENCH-D-{n}"), &synthetic_patient(n), "RAL");
        set_directive(&client, &request).await.expect("directive");
    }
    // Warm up.
    for n in 0..200 {
        decide(&client, &question(n, None, 0)).await;
    }

    let single = client.clone();
    let (rate, latencies) = run_callers(1, 1, move |n| {
        let client = single.clone();
        async move { decide(&client, &question(n, None, 0)).await }
    })
    .await;
    report("registry_decide_single", rate, latencies, None);

    let concurrent = client.clone();
    let (rate, latencies) = run_callers(16, 1, move |n| {
        let client = concurrent.clone();
        async move { decide(&client, &question(n, None, 0)).await }
    })
    .await;
    report("registry_decide_concurrent", rate, latencies, None);

    let batch = |at: Option<prost_types::Timestamp>, revision: u64| {
        let client = client.clone();
        move |n: u64| {
            let client = client.clone();
            let requests = pb::DecideBatchRequest {
                requests: (0..100).map(|i| question(n + i, at, revision)).collect(),
            };
            async move { decide_batch(&client, &requests).await }
        }
    };
    let (plain, latencies) = run_callers(1, 100, batch(None, 0)).await;
    report("registry_decide_batched", plain, latencies, None);
    let (as_of, latencies) = run_callers(1, 100, batch(Some(past), before_refusals)).await;
    report(
        "registry_decide_batched_as_of",
        as_of,
        latencies,
        Some(as_of / plain),
    );
}

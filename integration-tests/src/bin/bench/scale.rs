//! `make bench-scale`: the registry at London's scale. Imports 12 million
//! patients' directives (synthetic, valid NHS numbers) into a three-node
//! cluster, then reports:
//!
//! - `registry_scale_import`: directives imported per second, and
//!   `registry_scale_import_seconds` the whole import;
//! - `registry_scale_disk_per_node` and `registry_scale_rss_per_node`
//!   (resident, after the import) and `registry_scale_peak_rss_per_node`;
//! - `registry_scale_restart_seconds`: the leader killed (`kill -9`) and
//!   started again, until it has applied everything it had (target ≤ 60);
//! - `hub_scale_sync_seconds`: a hub started against the cluster until its
//!   copy holds every directive and is current;
//!   `hub_scale_cache_rss` the hub's resident memory then (target ≤ 1.5 GB),
//!   with `hub_scale_rss_before_sync` (the hub with an empty copy) as the
//!   reference, and `hub_scale_cache_estimate` the copy's own account.
//!
//! `LHCIE_SCALE_PATIENTS` (12,000,000) and `LHCIE_SCALE_NODES` (3) change
//! the size.

use std::path::Path;
use std::time::{Duration, Instant};

use lhcie_integration_tests::env::TestEnv;
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster};
use lhcie_model::NhsNumber;
use lhcie_proto::registry as pb;
use lhcie_registry_client::Retry;

use super::line;

/// Directives per import message, and messages per import call.
const PER_MESSAGE: u64 = 2000;
const MESSAGES_PER_CALL: u64 = 25;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn disk(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += if meta.is_dir() {
                disk(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The `n`th patient's directive (one per patient), in wire form.
fn directive(n: u64, number: NhsNumber) -> pb::Directive {
    use pb::directive::Rule;
    let rule = match n % 4 {
        0 => Rule::DissentAll(true),
        1 => Rule::DenyOrganisation("RAL".into()),
        2 => Rule::DenyCategory(lhcie_proto::canonical::Category::CareEvent as i32),
        _ => Rule::AllowOrganisation("RKE".into()),
    };
    pb::Directive {
        directive_id: format!("IMP-{n:010}"),
        nhs_number: number.as_str().to_owned(),
        rule: Some(rule),
        valid_from: Some(prost_types::Timestamp {
            seconds: 1_735_689_600,
            nanos: 0,
        }),
        source: pb::DirectiveSource::BulkImport as i32,
        ..Default::default()
    }
}

/// Imports `patients` directives with two concurrent importers.
async fn import(cluster: &RegistryCluster, patients: u64) -> Duration {
    let started = Instant::now();
    let per_call = PER_MESSAGE * MESSAGES_PER_CALL;
    let calls = patients.div_ceil(per_call);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut importers = Vec::new();
    for importer in 0..2 {
        let client = cluster.client(&format!("bench-import-{importer}"));
        let next = next.clone();
        importers.push(tokio::spawn(async move {
            loop {
                let call = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if call >= calls {
                    return;
                }
                // Patient numbers of this call: synthetic bases skip the
                // ~1 in 11 without a valid check digit.
                let first = call * per_call;
                let last = (first + per_call).min(patients);
                let mut messages = Vec::new();
                let mut message = Vec::new();
                let mut base = first * 11 / 10;
                let mut n = first;
                while n < last {
                    if let Some(number) = NhsNumber::synthetic(base) {
                        message.push(directive(n, number));
                        n += 1;
                        if message.len() as u64 == PER_MESSAGE {
                            messages.push(pb::ImportDirectivesRequest {
                                source_exchange_id: "nwl-discovery".into(),
                                directives: std::mem::take(&mut message),
                            });
                        }
                    }
                    base += 1;
                }
                if !message.is_empty() {
                    messages.push(pb::ImportDirectivesRequest {
                        source_exchange_id: "nwl-discovery".into(),
                        directives: message,
                    });
                }
                let reply = client
                    .call(Retry::Idempotent, |mut c| {
                        let request = client.request(tokio_stream::iter(messages.clone()));
                        async move { c.import_directives(request).await }
                    })
                    .await
                    .expect("import");
                assert_eq!(reply.rejected, 0, "{:?}", reply.errors);
                if call.is_multiple_of(20) {
                    eprintln!(
                        "bench-scale: {} of {patients} imported after {:.0} s",
                        last,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for importer in importers {
        importer.await.expect("importer");
    }
    started.elapsed()
}

async fn leader_revision(cluster: &RegistryCluster) -> (u64, u64) {
    let leader = cluster.leader(Duration::from_secs(60)).await;
    let revision = cluster.nodes[(leader - 1) as usize]
        .status()
        .await
        .expect("leader status")
        .revision;
    (leader, revision)
}

/// Runs the scale benchmark.
pub async fn run() {
    let patients = setting("LHCIE_SCALE_PATIENTS", 12_000_000);
    let nodes = setting("LHCIE_SCALE_NODES", 3) as usize;
    let env = TestEnv::new("scale");
    let options = ClusterOptions {
        watch_heartbeat_ms: 200,
        ..ClusterOptions::default()
    };
    let mut cluster = RegistryCluster::start(env.dir(), &env.topology_file(), nodes, &options);
    cluster.leader(Duration::from_secs(60)).await;
    eprintln!(
        "bench-scale: importing {patients} directives into {nodes} node(s) in {}",
        env.dir().display()
    );

    let took = import(&cluster, patients).await;
    line(
        "registry_scale_import",
        patients as f64 / took.as_secs_f64(),
        "directives/s",
        None,
        None,
    );
    line(
        "registry_scale_import_seconds",
        took.as_secs_f64(),
        "s",
        None,
        None,
    );
    let (leader, revision) = leader_revision(&cluster).await;
    for node in 1..=nodes as u64 {
        cluster
            .wait_revision(node, revision, Duration::from_secs(600))
            .await;
    }
    let node = &cluster.nodes[(leader - 1) as usize];
    let (rss, peak) = memory(node.pid().expect("leader pid"));
    line(
        "registry_scale_disk_per_node",
        gib(disk(node.data_dir())),
        "GiB",
        None,
        None,
    );
    line("registry_scale_rss_per_node", gib(rss), "GiB", None, None);
    line(
        "registry_scale_peak_rss_per_node",
        gib(peak),
        "GiB",
        None,
        None,
    );

    // The leader dies and comes back.
    cluster.node(leader).kill9();
    let restarted = Instant::now();
    cluster.node(leader).start();
    cluster
        .wait_revision(leader, revision, Duration::from_secs(600))
        .await;
    line(
        "registry_scale_restart_seconds",
        restarted.elapsed().as_secs_f64(),
        "s",
        None,
        Some("<=60"),
    );
    cluster.leader(Duration::from_secs(60)).await;

    // A hub follows all of it.
    env.use_registry(&cluster.endpoints(), 5000);
    let hub = HubProcess::spawn(&env);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, _) = memory(hub.pid());
    let started = Instant::now();
    loop {
        if let Ok((200, body)) = hub.get("/registry").await {
            let copy: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if copy["fresh"] == true && copy["directives"].as_u64() >= Some(patients) {
                line(
                    "hub_scale_sync_seconds",
                    started.elapsed().as_secs_f64(),
                    "s",
                    None,
                    None,
                );
                let (rss, _) = memory(hub.pid());
                line("hub_scale_rss_before_sync", gib(before), "GiB", None, None);
                line(
                    "hub_scale_cache_rss",
                    gib(rss),
                    "GiB",
                    Some(rss as f64 / before.max(1) as f64),
                    Some("<=1.5"),
                );
                let estimate = copy["approximate_bytes"].as_u64().unwrap_or(0);
                line("hub_scale_cache_estimate", gib(estimate), "GiB", None, None);
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the hub's copy did not catch up; its log:\n{}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(hub);
    drop(cluster);
    env.cleanup().await;
}

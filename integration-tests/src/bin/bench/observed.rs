//! Whether watching the hub slows it: the gRPC ingress run (as in
//! [`super::hub`]) with the dashboard open — its server-sent events stream
//! read by a client as the page does, the overview polled every second —
//! and `/metrics` scraped every second, against the same run with nobody
//! watching. Both on one hub; four runs of each, in the order A B B A A B
//! B A, and the medians are compared, because on a shared 2-core machine
//! consecutive runs of the same thing differ by more than 5 % and the hub
//! slows a little as its store grows.

use std::net::SocketAddr;
use std::time::Duration;

use lhcie_integration_tests::dashboard::{DashboardClient, USERS, enable_dashboard};
use lhcie_integration_tests::env::TestEnv;
use lhcie_integration_tests::hub::{HubProcess, http_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{hub::grpc_ingress, line, verbose};

/// Watches like an ops team: a dashboard stream, overview polls, scrapes.
/// Returns (stream bytes read, scrapes, polls) when cancelled.
async fn watch(
    admin: SocketAddr,
    dashboard: SocketAddr,
    stop: CancellationToken,
) -> (usize, usize, usize) {
    // Logged in once, as the page is: the session cookie, no password
    // check per request.
    let viewer = DashboardClient::login(dashboard, &USERS[1]).await;
    let credentials = viewer.credentials_header().to_owned();
    let stream_stop = stop.clone();
    let stream = tokio::spawn(async move {
        let mut socket = tokio::net::TcpStream::connect(dashboard).await.unwrap();
        socket
            .write_all(
                format!(
                    "GET /api/stream HTTP/1.1\r\nHost: {dashboard}\r\n{credentials}\r\nAccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut read = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                _ = stream_stop.cancelled() => return read,
                n = socket.read(&mut buffer) => match n {
                    Ok(0) | Err(_) => return read,
                    Ok(n) => read += n,
                },
            }
        }
    });
    let mut scrapes = 0;
    let mut polls = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let (status, text) = http_get(admin, "/metrics").await.unwrap();
                assert!(status == 200 && text.contains("lhcie_hub_envelopes_routed_total"));
                scrapes += 1;
                viewer.get_ok("/api/overview").await;
                polls += 1;
            }
        }
    }
    (stream.await.unwrap_or(0), scrapes, polls)
}

pub async fn run() {
    let total = super::hub::count();
    let env = TestEnv::new("bench-observed");
    let dashboard = enable_dashboard(&env, &USERS);
    let hub = HubProcess::start(&env).await;
    let _ = grpc_ingress(&env, 5_000).await;
    let mut quiet = Vec::new();
    let mut observed = Vec::new();
    // A B B A A B B A: the hub slows a little as its store grows, so the
    // order alternates and that drift falls on both sides alike.
    for round in 0..4u32 {
        for watched in [!round.is_multiple_of(2), round.is_multiple_of(2)] {
            if !watched {
                quiet.push(grpc_ingress(&env, total).await);
                continue;
            }
            let stop = CancellationToken::new();
            let watcher = tokio::spawn(watch(hub.admin, dashboard, stop.clone()));
            // Let the watcher connect before the run starts.
            tokio::time::sleep(Duration::from_millis(300)).await;
            observed.push(grpc_ingress(&env, total).await);
            stop.cancel();
            let (bytes, scrapes, polls) = watcher.await.unwrap();
            assert!(bytes > 0 && scrapes > 0 && polls > 0, "the watcher watched");
            if verbose() {
                eprintln!("observed run: {bytes} stream bytes, {scrapes} scrapes, {polls} polls");
            }
        }
    }
    let median = |runs: &mut Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        let middle = runs.len() / 2;
        if runs.len().is_multiple_of(2) {
            (runs[middle - 1] + runs[middle]) / 2.0
        } else {
            runs[middle]
        }
    };
    if verbose() {
        eprintln!("unobserved {quiet:?}; observed {observed:?} msg/s");
    }
    let quiet = median(&mut quiet);
    let observed = median(&mut observed);
    line("hub_grpc_ingress_unobserved", quiet, "msg/s", None, None);
    line(
        "hub_grpc_ingress_observed",
        observed,
        "msg/s",
        Some(observed / quiet),
        Some(">=0.95"),
    );
    drop(hub);
    env.cleanup().await;
}

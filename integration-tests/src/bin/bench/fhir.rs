//! FHIR message ingest: 20 concurrent HTTP clients post the ~26 KB
//! discharge summary message (`adapters/fhir-r4/tests/fixtures/handwritten/
//! discharge_summary_message.json`, each with a fresh MessageHeader id) to
//! an `adapter` of kind `fhir-r4` (release build, real hub, RabbitMQ, the
//! outbox on disk; "ok" only once the outbox put is flushed). The messages
//! are drained from the receiving exchange's egress queue and counted, so
//! every accepted message is checked to arrive.
//!
//! - `fhir_http_raw_reference`: the reference: the same clients and bodies
//!   against an in-process HTTP server that reads the body and answers 200
//!   at once (the cost of HTTP itself on this machine).
//! - `fhir_ingest`: messages per second answered 200 by the adapter, most
//!   the 20 clients can get in 15 s; ratio to the reference.
//! - `fhir_response_p50_at_200` / `fhir_response_p99_at_200`: response time
//!   at 200 messages/s offered (each client 10/s, on a schedule).
//! - `fhir_translate`: read + validate + translate of the same bundle on one
//!   core (`lhcie_fhir_r4::read_message_bundle`), messages/s, with its cost
//!   in microseconds per message, and ratio to `fhir_json_parse` (serde_json
//!   into a `Value`, the reference) measured in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lhcie_integration_tests::adapter::{AdapterOptions, AdapterProcess, use_fhir_adapter};
use lhcie_integration_tests::env::TestEnv;
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::{free_port, repository};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::mllp::{Drain, drain, finish, wait_delivered};
use super::{Percentiles, line, verbose};

const CLIENTS: usize = 20;
const SECONDS: u64 = 15;
const RATE: u64 = 200;
const SENDER: &str = "nwl-imperial";
const HEADER_ID: &str = "9a1c2e3f-0000-4000-8000-000000000000";

fn fixture() -> String {
    std::fs::read_to_string(
        repository()
            .join("adapters/fhir-r4/tests/fixtures/handwritten/discharge_summary_message.json"),
    )
    .expect("the discharge summary fixture")
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Posts one body; the status and the time it took, in ms.
async fn post(client: &HttpClient, url: &str, body: Bytes) -> Result<(u16, f64), String> {
    let request = hyper::Request::post(url)
        .header("content-type", "application/fhir+json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, start.elapsed().as_secs_f64() * 1e3))
}

/// Bodies with fresh header ids, made ahead of time.
struct Bodies {
    template: String,
    next: AtomicU64,
}

impl Bodies {
    fn next(&self) -> Bytes {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("9a1c2e3f-0000-4000-8000-{n:012x}");
        Bytes::from(self.template.replace(HEADER_ID, &id))
    }
}

/// Closed loop: each client posts as fast as answers come, for `seconds`.
/// (messages/s answered 200, other answers).
async fn max_rate(
    client: &HttpClient,
    url: &str,
    bodies: &Arc<Bodies>,
    seconds: f64,
) -> (f64, u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, bodies) = (client.clone(), url.to_owned(), bodies.clone());
            let (ok, bad) = (ok.clone(), bad.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match post(&client, &url, bodies.next()).await {
                        Ok((200 | 201, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => bad.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let ok = ok.load(Ordering::Relaxed);
    (
        ok as f64 / start.elapsed().as_secs_f64(),
        ok,
        bad.load(Ordering::Relaxed),
    )
}

/// Open loop at `RATE`/s over the clients; response times in ms.
async fn fixed_rate(client: &HttpClient, url: &str, bodies: &Arc<Bodies>) -> (Vec<f64>, u64, u64) {
    let per_client = Duration::from_secs_f64(CLIENTS as f64 / RATE as f64);
    let count = (RATE * SECONDS) as usize / CLIENTS;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (client, url, bodies) = (client.clone(), url.to_owned(), bodies.clone());
            tokio::spawn(async move {
                let offset = per_client.mul_f64(i as f64 / CLIENTS as f64);
                let mut times = Vec::with_capacity(count);
                let mut bad = 0u64;
                for n in 0..count {
                    tokio::time::sleep_until(start + offset + per_client * n as u32).await;
                    match post(&client, &url, bodies.next()).await {
                        Ok((200 | 201, ms)) => times.push(ms),
                        _ => bad += 1,
                    }
                }
                (times, bad)
            })
        })
        .collect();
    let (mut all, mut bad) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((times, b)) = task.await {
            all.extend(times);
            bad += b;
        }
    }
    let ok = all.len() as u64;
    (all, ok, bad)
}

/// Per-message translation and JSON parse rates on this core.
fn translation() -> (f64, f64) {
    let bytes = fixture().into_bytes();
    let mut ctx = lhcie_fhir_r4::TranslateContext::new(
        SENDER.parse().unwrap(),
        time::OffsetDateTime::now_utc(),
    );
    ctx.default_recipients = vec!["RAL".parse().unwrap()];
    let limits = lhcie_fhir_r4::ReadLimits::default();
    let rate = |f: &dyn Fn()| {
        for _ in 0..200 {
            f();
        }
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(3) {
            for _ in 0..100 {
                f();
            }
            n += 100;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let parse = rate(&|| {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
    });
    let translate = rate(&|| {
        std::hint::black_box(
            lhcie_fhir_r4::read_message_bundle(&bytes, &limits, &ctx).expect("the fixture reads"),
        );
    });
    (parse, translate)
}

pub async fn run() {
    let mut problems = Vec::new();
    let (parse, translate) = tokio::task::block_in_place(translation);
    let template = fixture();
    eprintln!(
        "bench fhir: {CLIENTS} clients, {SECONDS} s per phase, {} byte discharge summary message",
        template.len()
    );
    let bodies = Arc::new(Bodies {
        template,
        next: AtomicU64::new(1),
    });
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS)
        .build_http();

    // The reference: an HTTP server that reads the body and answers 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reference_url = format!("http://{}/$process-message", listener.local_addr().unwrap());
    let stop_reference = CancellationToken::new();
    let app = axum::Router::new().route(
        "/$process-message",
        axum::routing::post(|body: Bytes| async move {
            std::hint::black_box(body.len());
            "{}"
        }),
    );
    let reference = tokio::spawn({
        let stop = stop_reference.clone();
        async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }
    });
    max_rate(&client, &reference_url, &bodies, 2.0).await;
    let (raw_rate, _, raw_bad) = max_rate(&client, &reference_url, &bodies, SECONDS as f64).await;
    if raw_bad > 0 {
        problems.push(format!("reference: {raw_bad} failed requests"));
    }
    stop_reference.cancel();
    let _ = reference.await;

    let env = TestEnv::new("bench-fhir");
    let listen = free_port();
    use_fhir_adapter(&env, SENDER, listen, "http://127.0.0.1:9/fhir");
    let hub = HubProcess::start(&env).await;
    let adapter = AdapterProcess::start(
        &env,
        SENDER,
        listen,
        &AdapterOptions {
            log_level: "warn",
            fhir: "ack_wait_ms = 5\n".into(),
            ..AdapterOptions::default()
        },
    )
    .await;
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_drain = CancellationToken::new();
    let (drain_connection, drain_task) = drain(&env, delivered.clone(), stop_drain.clone()).await;
    let url = format!("http://127.0.0.1:{listen}/$process-message");
    let mut expected = 0;
    let (_, ok, bad) = max_rate(&client, &url, &bodies, 2.0).await;
    expected += ok;
    let (ingest, ok, bad_max) = max_rate(&client, &url, &bodies, SECONDS as f64).await;
    expected += ok;
    let (latencies, ok, bad_fixed) = fixed_rate(&client, &url, &bodies).await;
    expected += ok;
    for (phase, bad) in [
        ("warm-up", bad),
        ("maximum rate", bad_max),
        ("at 200/s", bad_fixed),
    ] {
        if bad > 0 {
            problems.push(format!("adapter {phase}: {bad} requests not answered 200"));
        }
    }
    if let Err(problem) = wait_delivered(&delivered, expected, 'F').await {
        problems.push(problem);
    }
    let latencies = Percentiles::new(latencies);

    line("fhir_http_raw_reference", raw_rate, "msg/s", None, None);
    line(
        "fhir_ingest",
        ingest,
        "msg/s",
        Some(ingest / raw_rate),
        None,
    );
    line(
        "fhir_response_p50_at_200",
        latencies.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "fhir_response_p99_at_200",
        latencies.at(0.99),
        "ms",
        None,
        None,
    );
    line("fhir_json_parse", parse, "msg/s", None, None);
    line(
        "fhir_translate",
        translate,
        "msg/s",
        Some(translate / parse),
        None,
    );
    line("fhir_translate_cost", 1e6 / translate, "us/msg", None, None);
    if verbose() {
        eprintln!(
            "bench fhir: at 200/s p90 {:.1} p99.9 {:.1} max {:.1} ms",
            latencies.at(0.9),
            latencies.at(0.999),
            latencies.at(1.0)
        );
    }

    finish(
        "fhir",
        Drain {
            stop: stop_drain,
            task: drain_task,
            connection: drain_connection,
        },
        adapter,
        hub,
        env,
        problems,
    )
    .await;
}

//! The hub: throughput of each ingress path and latency, against raw
//! RabbitMQ measured in the same run (see `main.rs` for the figures).

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use lhcie_integration_tests::env::TestEnv;
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::discharge_summary;
use lhcie_proto::canonical as pb;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::{Percentiles, line, verbose};

const SIZE: usize = 1500;
const WINDOW: usize = 1000;

pub fn count() -> usize {
    std::env::var("LHCIE_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

/// Consumes `total` messages from `queue` with manual acks (prefetch 1000,
/// acknowledged 100 at a time),
/// calling `each` with every body; returns when all have arrived.
async fn consume(
    channel: Channel,
    queue: String,
    total: usize,
    mut each: impl FnMut(&[u8], &BasicProperties) + Send + 'static,
) -> tokio::task::JoinHandle<Instant> {
    channel
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    tokio::spawn(async move {
        // Manual acks, every 100 deliveries with `multiple` (and the last
        // one), as high-throughput consumers do.
        let mut seen = 0;
        while seen < total {
            let delivery = consumer
                .next()
                .await
                .expect("consumer open")
                .expect("delivery");
            each(&delivery.data, &delivery.properties);
            seen += 1;
            if seen % 100 == 0 || seen == total {
                delivery
                    .acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .unwrap();
            }
        }
        Instant::now()
    })
}

/// Publishes with publisher confirms and a sliding window: at most
/// `WINDOW` messages unconfirmed at any time.
async fn publish_window(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    bodies: &[Vec<u8>],
    user: Option<&str>,
) {
    let mut unconfirmed = futures::stream::FuturesUnordered::new();
    for body in bodies {
        if unconfirmed.len() >= WINDOW {
            let confirmation: lapin::Result<lapin::Confirmation> =
                unconfirmed.next().await.expect("a pending confirm");
            assert!(confirmation.unwrap().is_ack());
        }
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(user) = user {
            properties = properties.with_user_id(user.into());
        }
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
        unconfirmed.push(confirm);
    }
    while let Some(confirmation) = unconfirmed.next().await {
        assert!(confirmation.unwrap().is_ack());
    }
}

/// Declares the reference's durable quorum queue, like the hub's own.
async fn declare_quorum_queue(channel: &Channel, queue: &str) {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, arguments)
        .await
        .unwrap();
}

/// (a) Raw RabbitMQ with the same sizes and durability.
async fn raw_rabbitmq(env: &TestEnv, total: usize) -> f64 {
    let queue = format!("{}.bench.raw", env.prefix);
    let connection = lhcie_broker::connect(&env.broker(), "bench raw publisher")
        .await
        .unwrap();
    let consumer_connection = lhcie_broker::connect(&env.broker(), "bench raw consumer")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    declare_quorum_queue(&channel, &queue).await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let body = vec![b'x'; SIZE];
    let bodies: Vec<Vec<u8>> = (0..total).map(|_| body.clone()).collect();
    let done = consume(
        consumer_connection.create_channel().await.unwrap(),
        queue.clone(),
        total,
        |_, _| {},
    )
    .await;
    let start = Instant::now();
    publish_window(&channel, "", &queue, &bodies, None).await;
    let end = done.await.unwrap();
    channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    let _ = consumer_connection.close(200, "done".into()).await;
    total as f64 / (end - start).as_secs_f64()
}

fn envelopes(total: usize) -> Vec<pb::Envelope> {
    (0..total)
        .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], SIZE))
        .collect()
}

async fn egress_consumer(
    env: &TestEnv,
    total: usize,
    each: impl FnMut(&[u8], &BasicProperties) + Send + 'static,
) -> (lapin::Connection, tokio::task::JoinHandle<Instant>) {
    let connection = lhcie_broker::connect(&env.broker(), "bench egress consumer")
        .await
        .unwrap();
    let queue = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
    let done = consume(
        connection.create_channel().await.unwrap(),
        queue,
        total,
        each,
    )
    .await;
    (connection, done)
}

/// (b) The gRPC ingress path.
pub async fn grpc_ingress(env: &TestEnv, total: usize) -> f64 {
    let (connection, done) = egress_consumer(env, total, |_, _| {}).await;
    let shutdown = CancellationToken::new();
    let (uplink, mut answers) =
        lhcie_adapter_kit::Uplink::start(env.connection("nwl-imperial"), WINDOW, shutdown.clone());
    let all = envelopes(total);
    tokio::spawn(async move { while answers.recv().await.is_some() {} });
    let start = Instant::now();
    for envelope in all {
        uplink.submit(envelope).await.unwrap();
    }
    let end = done.await.unwrap();
    shutdown.cancel();
    let _ = connection.close(200, "done".into()).await;
    total as f64 / (end - start).as_secs_f64()
}

/// (c) The AMQP ingress path.
async fn amqp_ingress(
    env: &TestEnv,
    identity: &lhcie_adapter_kit::amqp::AmqpIdentity,
    total: usize,
) -> f64 {
    let (connection, done) = egress_consumer(env, total, |_, _| {}).await;
    let publisher = lhcie_broker::connect(&identity.broker, "bench amqp publisher")
        .await
        .unwrap();
    let channel = publisher.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let bodies: Vec<Vec<u8>> = envelopes(total)
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    let user = env.names().adapter_user(&identity.exchange);
    let start = Instant::now();
    publish_window(
        &channel,
        &env.names().ingress_exchange(),
        "",
        &bodies,
        Some(&user),
    )
    .await;
    let end = done.await.unwrap();
    let _ = publisher.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
    total as f64 / (end - start).as_secs_f64()
}

fn nanos_now() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// End-to-end latency at a fixed offered load on the gRPC path: each
/// envelope carries its submit time; the consumer measures on arrival. The
/// hub's `lhcie-decided-at` header splits it into adapter→hub and
/// hub→consumer.
async fn latency_at(env: &TestEnv, rate: u64, seconds: u64) -> (f64, f64) {
    let total = (rate * seconds) as usize;
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let record = samples.clone();
    let (connection, done) = egress_consumer(env, total, move |body, properties| {
        let now = nanos_now();
        let envelope = pb::Envelope::decode(body).expect("envelope");
        let sent = envelope.created_at.expect("created_at");
        let sent = i128::from(sent.seconds) * 1_000_000_000 + i128::from(sent.nanos);
        let decided = properties
            .headers()
            .as_ref()
            .and_then(|h| match h.inner().get("lhcie-decided-at") {
                Some(AMQPValue::LongString(v)) => {
                    String::from_utf8_lossy(v.as_bytes()).parse::<i128>().ok()
                }
                _ => None,
            })
            .unwrap_or(sent);
        record.lock().unwrap().push((sent, decided, now));
    })
    .await;
    let shutdown = CancellationToken::new();
    let (uplink, mut answers) =
        lhcie_adapter_kit::Uplink::start(env.connection("nwl-imperial"), WINDOW, shutdown.clone());
    tokio::spawn(async move { while answers.recv().await.is_some() {} });
    let prepared = envelopes(total);
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    for (i, mut envelope) in prepared.into_iter().enumerate() {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let now = time::OffsetDateTime::now_utc();
        envelope.created_at = Some(prost_types::Timestamp {
            seconds: now.unix_timestamp(),
            nanos: now.nanosecond() as i32,
        });
        uplink.submit(envelope).await.unwrap();
    }
    done.await.unwrap();
    shutdown.cancel();
    let _ = connection.close(200, "done".into()).await;
    let samples = samples.lock().unwrap().clone();
    let ms = |nanos: i128| nanos as f64 / 1e6;
    let end_to_end = Percentiles::new(samples.iter().map(|(s, _, n)| ms(n - s)).collect());
    if verbose() {
        let to_hub = Percentiles::new(samples.iter().map(|(s, d, _)| ms(d - s)).collect());
        let from_hub = Percentiles::new(samples.iter().map(|(_, d, n)| ms(n - d)).collect());
        eprintln!(
            "latency p90 {:.1} p99.9 {:.1} max {:.1} ms; adapter->hub decision p50 {:.1} p99 {:.1} max {:.1}; decision->consumer p50 {:.1} p99 {:.1} max {:.1}",
            end_to_end.at(0.9),
            end_to_end.at(0.999),
            end_to_end.at(1.0),
            to_hub.at(0.5),
            to_hub.at(0.99),
            to_hub.at(1.0),
            from_hub.at(0.5),
            from_hub.at(0.99),
            from_hub.at(1.0),
        );
    }
    (end_to_end.at(0.50), end_to_end.at(0.99))
}

/// The reference for latency: raw RabbitMQ at the same offered load, same
/// sizes and durability, publisher confirms awaited in a window; each body
/// starts with its send time.
async fn raw_latency_at(env: &TestEnv, rate: u64, seconds: u64) -> (f64, f64) {
    let total = (rate * seconds) as usize;
    let queue = format!("{}.bench.rawlatency", env.prefix);
    let connection = lhcie_broker::connect(&env.broker(), "bench raw latency publisher")
        .await
        .unwrap();
    let consumer_connection = lhcie_broker::connect(&env.broker(), "bench raw latency consumer")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    declare_quorum_queue(&channel, &queue).await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let record = samples.clone();
    let done = consume(
        consumer_connection.create_channel().await.unwrap(),
        queue.clone(),
        total,
        move |body, _| {
            let sent = i128::from_be_bytes(body[..16].try_into().unwrap());
            record
                .lock()
                .unwrap()
                .push((nanos_now() - sent) as f64 / 1e6);
        },
    )
    .await;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut unconfirmed = futures::stream::FuturesUnordered::new();
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        while let Some(Some(confirmation)) = futures::FutureExt::now_or_never(unconfirmed.next()) {
            let confirmation: lapin::Result<lapin::Confirmation> = confirmation;
            assert!(confirmation.unwrap().is_ack());
        }
        let mut body = nanos_now().to_be_bytes().to_vec();
        body.resize(SIZE, b'x');
        let properties = BasicProperties::default().with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await
            .unwrap();
        unconfirmed.push(confirm);
    }
    while let Some(confirmation) = unconfirmed.next().await {
        assert!(confirmation.unwrap().is_ack());
    }
    done.await.unwrap();
    channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    let _ = consumer_connection.close(200, "done".into()).await;
    let latencies = Percentiles::new(samples.lock().unwrap().clone());
    (latencies.at(0.50), latencies.at(0.99))
}

/// Runs the hub's parts (all, or the one `only` names).
pub async fn run(only: Option<&str>) {
    let total = count();
    let runs = |part: &str| only.is_none_or(|o| o == part);
    let env = TestEnv::new("bench");
    let identities = env.provision_users(&["nwl-imperial"]).await;
    let hub = HubProcess::start(&env).await;
    eprintln!("bench: {total} messages of {SIZE} bytes per throughput run, window {WINDOW}");

    // Warm up the hub, the broker and the connections.
    let _ = grpc_ingress(&env, 5_000).await;
    let raw = if runs("raw") || runs("grpc") || runs("amqp") {
        let raw = raw_rabbitmq(&env, total).await;
        line("hub_raw_rabbitmq", raw, "msg/s", None, None);
        raw
    } else {
        f64::NAN
    };
    if runs("grpc") {
        let grpc = grpc_ingress(&env, total).await;
        line(
            "hub_grpc_ingress",
            grpc,
            "msg/s",
            Some(grpc / raw),
            Some(">=0.8"),
        );
    }
    if runs("amqp") {
        let amqp = amqp_ingress(&env, &identities[0], total).await;
        line(
            "hub_amqp_ingress",
            amqp,
            "msg/s",
            Some(amqp / raw),
            Some(">=0.45"),
        );
    }
    if runs("latency") {
        // Tail latency on a shared 2-core machine moves a lot from run to
        // run: three 20 s windows, interleaved with the reference, and the
        // median of each figure.
        let mut raw_runs = Vec::new();
        let mut hub_runs = Vec::new();
        for _ in 0..3 {
            raw_runs.push(raw_latency_at(&env, 2000, 20).await);
            hub_runs.push(latency_at(&env, 2000, 20).await);
        }
        let median = |runs: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        if verbose() {
            eprintln!("latency runs (p50, p99) ms: raw {raw_runs:?}; hub {hub_runs:?}");
        }
        line(
            "hub_raw_latency_p50_at_2000",
            median(&raw_runs, |r| r.0),
            "ms",
            None,
            None,
        );
        line(
            "hub_raw_latency_p99_at_2000",
            median(&raw_runs, |r| r.1),
            "ms",
            None,
            None,
        );
        line(
            "hub_latency_p50_at_2000",
            median(&hub_runs, |r| r.0),
            "ms",
            None,
            None,
        );
        line(
            "hub_latency_p99_at_2000",
            median(&hub_runs, |r| r.1),
            "ms",
            None,
            Some("<=25"),
        );
    }
    drop(hub);
    env.cleanup().await;
}

//! Declares the broker topology twice against the real RabbitMQ at
//! 127.0.0.1:5672 (or `LHCIE_TEST_AMQP_URL`) and checks what the broker
//! then does: queues are quorum queues, rejected messages are dead-lettered
//! to the destination's own dead-letter queue, a poison message is
//! dead-lettered after the delivery limit, and a second declaration changes
//! nothing. Everything is declared under a unique prefix and deleted at the
//! end.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use lhcie_broker::{BrokerError, BrokerTopology, Declaration, Destination, Names};
use lhcie_config::BrokerConfig;
use lhcie_model::ExchangeId;

fn broker_url() -> String {
    std::env::var("LHCIE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique_prefix() -> String {
    format!(
        "test-bootstrap-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn open() -> (Connection, Channel) {
    let config = BrokerConfig::new(broker_url());
    let connection = lhcie_broker::connect(&config, "lhcie bootstrap test")
        .await
        .expect("RabbitMQ must be running at 127.0.0.1:5672 (make test starts it)");
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Deletes everything the plan declared (on a fresh channel, since a failed
/// test may have closed the one it used).
async fn teardown(connection: &Connection, plan: &[Declaration]) {
    let channel = connection.create_channel().await.unwrap();
    for declaration in plan {
        match declaration {
            Declaration::Queue { name, .. } => {
                channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .unwrap();
            }
            Declaration::Exchange { name, .. } => {
                channel
                    .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await
                    .unwrap();
            }
            Declaration::Binding { .. } => {}
        }
    }
}

async fn publish(channel: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "broker did not confirm the publish");
}

async fn message_count(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

/// Waits for a message to arrive on `queue` (dead-lettering is asynchronous)
/// and returns its body and headers.
async fn next_message(channel: &Channel, queue: &str) -> (Vec<u8>, FieldTable) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let headers = message.properties.headers().clone().unwrap_or_default();
            return (message.data.clone(), headers);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived on {queue}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn death_reason(headers: &FieldTable) -> Option<String> {
    match headers.inner().get("x-first-death-reason") {
        Some(AMQPValue::LongString(reason)) => Some(reason.to_string()),
        _ => None,
    }
}

/// Runs `body` in its own task so that a failing assertion still lets the
/// teardown run, then re-raises the failure.
async fn with_cleanup<F>(topology: &BrokerTopology, body: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    let (connection, _) = open().await;
    teardown(&connection, &topology.declarations()).await;
    let _ = connection.close(200, "done".into()).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

#[tokio::test]
async fn bootstrap_twice_gives_quorum_queues_with_dead_lettering() {
    let prefix = unique_prefix();
    let imperial = ExchangeId::parse("nwl-imperial").unwrap();
    let royal_free = ExchangeId::parse("ncl-royal-free").unwrap();
    let topology = BrokerTopology::new(Names::new(&prefix), [imperial.clone(), royal_free], 2);
    let checked = topology.clone();
    with_cleanup(&topology, async move {
        let (connection, channel) = open().await;
        check(&checked, &connection, &channel, &imperial).await;
    })
    .await;
}

async fn check(
    topology: &BrokerTopology,
    connection: &Connection,
    channel: &Channel,
    imperial: &ExchangeId,
) {
    let names = topology.names();
    let first = topology.declare(channel).await.unwrap();

    // A message left in a queue survives a second bootstrap untouched.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    publish(
        channel,
        &names.egress_exchange(),
        &names.egress_routing_key(imperial),
        b"waiting",
    )
    .await;
    let second = topology.declare(channel).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        message_count(channel, &names.egress_queue(imperial)).await,
        1
    );

    // Every queue is a quorum queue: the broker refuses to redeclare any of
    // them as a classic queue with otherwise the same arguments.
    for declaration in &first {
        if let Declaration::Queue {
            name,
            dead_letter_exchange,
        } = declaration
        {
            // A refused declaration closes its channel: one channel a probe.
            let probe = connection.create_channel().await.unwrap();
            let mut classic = topology.queue_arguments(dead_letter_exchange.as_deref());
            classic.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("classic".into()),
            );
            let error = probe
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    classic,
                )
                .await
                .expect_err("a classic redeclaration must be refused");
            assert!(
                error.to_string().contains("x-queue-type"),
                "{name}: {error}"
            );
        }
    }

    // A message rejected by its consumer goes to its own destination's
    // dead-letter queue, and no other.
    let egress = names.egress_queue(imperial);
    let mut consumer = channel
        .basic_consume(
            egress.as_str().into(),
            "bootstrap-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    assert_eq!(delivery.data, b"waiting");
    delivery
        .nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let dlq = names.dead_letter_queue(&Destination::Exchange(imperial.clone()));
    let (body, headers) = next_message(channel, &dlq).await;
    assert_eq!(body, b"waiting");
    assert_eq!(death_reason(&headers).as_deref(), Some("rejected"));
    let other_dlq = names.dead_letter_queue(&Destination::Ingress);
    assert_eq!(message_count(channel, &other_dlq).await, 0);

    // A poison message (requeued by every consumer that gets it) is
    // dead-lettered once the delivery limit (2) is passed, so it cannot
    // block the queue.
    publish(
        channel,
        &names.egress_exchange(),
        &names.egress_routing_key(imperial),
        b"poison",
    )
    .await;
    let mut deliveries = 0;
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(2), consumer.next()).await
    {
        deliveries += 1;
        delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(deliveries <= 10, "poison message was never dead-lettered");
    }
    assert_eq!(deliveries, 3, "delivered once plus two redeliveries");
    let (body, headers) = next_message(channel, &dlq).await;
    assert_eq!(body, b"poison");
    assert_eq!(death_reason(&headers).as_deref(), Some("delivery_limit"));

    // Envelopes published to the ingress exchange reach the ingress queue.
    publish(channel, &names.ingress_exchange(), "", b"to the hub").await;
    let (body, _) = next_message(channel, &names.ingress_queue()).await;
    assert_eq!(body, b"to the hub");
}

#[tokio::test]
async fn a_conflicting_queue_is_reported_not_replaced() {
    let prefix = unique_prefix();
    let names = Names::new(&prefix);
    let topology = BrokerTopology::new(names.clone(), [ExchangeId::parse("sel-kings").unwrap()], 5);
    let declared = topology.clone();
    with_cleanup(&topology, async move {
        let (_connection, channel) = open().await;
        // Someone declared the ingress queue as a classic queue by hand.
        channel
            .queue_declare(
                names.ingress_queue().as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        match declared.declare(&channel).await.unwrap_err() {
            BrokerError::Conflict { kind, name, detail } => {
                assert_eq!(kind, "queue");
                assert_eq!(name, names.ingress_queue());
                assert!(detail.contains("inequivalent"), "{detail}");
            }
            other => panic!("expected a conflict, got {other}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_idle_consumer_is_stalled_only_if_messages_wait() {
    let prefix = unique_prefix();
    let exchange = ExchangeId::parse("nwl-imperial").unwrap();
    let topology = BrokerTopology::new(Names::new(&prefix), [exchange.clone()], 5);
    let declared = topology.clone();
    with_cleanup(&topology, async move {
        let (connection, channel) = open().await;
        declared.declare(&channel).await.unwrap();
        let queue = declared.names().egress_queue(&exchange);
        assert_eq!(
            lhcie_broker::liveness::ready_messages(&connection, &queue)
                .await
                .unwrap(),
            0
        );
        assert!(!lhcie_broker::liveness::stalled(&connection, &queue).await);
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        publish(
            &channel,
            &declared.names().egress_exchange(),
            exchange.as_str(),
            b"waiting",
        )
        .await;
        assert!(lhcie_broker::liveness::stalled(&connection, &queue).await);
        assert!(
            lhcie_broker::liveness::stalled(&connection, "no-such-queue").await,
            "unanswerable counts as stalled"
        );
    })
    .await;
}

//! Running an adapter: the machinery every kind shares.
//!
//! [`serve`] opens the stores, builds the [`AdapterContext`] and starts:
//!
//! - the **forwarder**: the outbox's pending entries go to the hub through
//!   the kit's [`Uplink`] (gRPC), or are published to the broker through
//!   its [`AmqpSink`] when the exchange's `uplink = "amqp"`, in arrival
//!   order, until each has its final answer (over AMQP: the broker's
//!   confirm; a later rejection by the hub arrives as the hub's negative
//!   acknowledgement among the deliveries);
//! - the **receiver**: deliveries from the hub (gRPC, or the exchange's
//!   egress queue over AMQP), de-duplicated by message id
//!   (durable seen-set), each handed to [`AdapterKind::deliver`] and
//!   acknowledged as it says;
//! - **heartbeats** reporting the outbox depth (also the gauge
//!   `lhcie_adapter_outbox_depth`, refreshed every second);
//! - with `[metrics]`, the Prometheus endpoint, and the **trace reporter**
//!   sending trace events to the hub ([`crate::ops`]);
//! - a log of the hub's **rejections** (message id and reason); each stays
//!   in the outbox's rejected list until the kind has told the local
//!   system (the `hl7v2-mllp` kind: in the ACK, or later as an ACK message
//!   of its own, see [`crate::hl7v2::late_nacks`]);
//! - the kind's inbound side, [`AdapterKind::serve_inbound`].
//!
//! SIGINT or SIGTERM cancel the shutdown token; everything drains and
//! stops; the trace events still buffered are sent within a short grace.
//! Whatever is still pending stays in the outbox for next time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lhcie_adapter_kit::amqp::AmqpIdentity;
use lhcie_adapter_kit::outbox::Outcome;
use lhcie_adapter_kit::{
    AmqpSink, ClientTls, HubConnection, Outbox, SeenStore, TraceOptions, TraceReporter, Uplink,
};
use lhcie_config::{AdapterConfig, AdapterSettings, Uplink as UplinkKind};
use lhcie_proto::hub as hubpb;
use tokio_util::sync::CancellationToken;

use crate::context::AdapterContext;
use crate::fhir::FhirR4;
use crate::hl7v2::Hl7v2Mllp;
use crate::kind::AdapterKind;
use crate::ops::Ops;
use crate::ops::metrics::{self, OutboxDepth};

/// Envelopes on their way to the hub and not yet answered, at most.
const UPLINK_WINDOW: usize = 256;
/// Deliveries the hub may have in flight to this adapter.
const RECEIVE_IN_FLIGHT: u32 = 16;

/// Runs the adapter described by `settings` until SIGINT or SIGTERM.
pub async fn serve(settings: AdapterSettings) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    lhcie_runtime::cancel_on_signal(shutdown.clone());
    // Before anything takes a metric handle.
    metrics::serve(settings.file.metrics.as_ref(), shutdown.clone()).await?;
    let ctx = context(settings, shutdown)?;
    match ctx.exchange.adapter.clone() {
        AdapterConfig::Hl7v2Mllp { listen, deliver_to } => {
            let kind = Hl7v2Mllp::new(&ctx.exchange, listen, deliver_to, ctx.file.hl7v2.clone())?;
            run(Arc::new(kind), ctx).await
        }
        AdapterConfig::FhirR4 { listen, deliver_to } => {
            let kind = FhirR4::new(listen, &deliver_to, ctx.file.fhir.clone(), &ctx.store_dir)?;
            run(Arc::new(kind), ctx).await
        }
        other => crate::kind::check_supported(&other),
    }
}

/// Opens the stores and builds the context.
fn context(
    settings: AdapterSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<AdapterContext> {
    let AdapterSettings { file, exchange } = settings;
    let store_dir = file.store.path.clone();
    std::fs::create_dir_all(&store_dir)
        .with_context(|| format!("creating the store folder {}", store_dir.display()))?;
    let outbox = Outbox::open(&store_dir.join("outbox"))
        .with_context(|| format!("opening the outbox in {}", store_dir.display()))?;
    let connection = HubConnection {
        endpoint: file.hub.endpoint.clone(),
        tls: file.hub.tls.as_ref().map(|tls| ClientTls {
            ca: tls.ca.clone(),
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            server_name: tls.server_name.clone(),
        }),
        exchange: exchange.id.clone(),
    };
    // `[hub]` is required, so there is always a gRPC channel for trace
    // events (even with the AMQP uplink, like heartbeats).
    let trace = TraceReporter::start(Some(connection.clone()), TraceOptions::default());
    let ops = Ops::new(&exchange.id, exchange.adapter.kind(), trace);
    Ok(AdapterContext {
        exchange: Arc::new(exchange),
        file: Arc::new(file),
        connection,
        outbox,
        shutdown,
        store_dir,
        ops,
    })
}

/// Runs `kind` with the shared machinery until `ctx.shutdown`.
pub async fn run<K: AdapterKind>(kind: Arc<K>, ctx: AdapterContext) -> anyhow::Result<()> {
    let shutdown = ctx.shutdown.clone();
    let seen = SeenStore::open(&ctx.store_dir.join("seen")).with_context(|| {
        format!(
            "opening the seen-message store in {}",
            ctx.store_dir.display()
        )
    })?;
    let rejected = ctx.outbox.rejected()?.len();
    tracing::info!(
        exchange = %ctx.exchange.id,
        kind = kind.name(),
        pending = ctx.outbox.pending_len(),
        rejected,
        "adapter starting"
    );

    let amqp = amqp_identity(&ctx)?;
    let forwarder = tokio::spawn({
        let outbox = ctx.outbox.clone();
        let shutdown = shutdown.clone();
        let connection = ctx.connection.clone();
        let amqp = amqp.clone();
        async move {
            match amqp {
                Some(identity) => {
                    let (sink, answers) = AmqpSink::new(identity, UPLINK_WINDOW);
                    outbox.forward(sink, answers, shutdown).await
                }
                None => {
                    let (uplink, answers) =
                        Uplink::start(connection, UPLINK_WINDOW, shutdown.clone());
                    outbox.forward(uplink, answers, shutdown).await
                }
            }
        }
    });
    let depth = OutboxDepth::new(ctx.ops.exchange(), ctx.outbox.clone());
    let depth_gauge = tokio::spawn(depth.clone().refresh(shutdown.clone()));
    let heartbeat = tokio::spawn(lhcie_adapter_kit::heartbeat::heartbeat(
        ctx.connection.clone(),
        kind.name(),
        move || depth.read(),
        shutdown.clone(),
    ));
    let rejections = tokio::spawn(log_rejections(ctx.outbox.clone(), shutdown.clone()));
    let kind_ops = ctx.ops.clone();
    let receiver = tokio::spawn({
        let kind = kind.clone();
        let connection = ctx.connection.clone();
        let ctx = ctx.clone();
        let handler = move |incoming| {
            let kind = kind.clone();
            let ctx = ctx.clone();
            async move { kind.deliver(incoming, &ctx).await }
        };
        let shutdown = shutdown.clone();
        let ops = kind_ops;
        let on_duplicate = move |_: &_| ops.duplicate_delivery();
        async move {
            match amqp {
                Some(identity) => {
                    lhcie_adapter_kit::amqp::receive_observed(
                        identity,
                        RECEIVE_IN_FLIGHT as u16,
                        seen,
                        handler,
                        on_duplicate,
                        shutdown,
                    )
                    .await
                }
                None => {
                    lhcie_adapter_kit::receive_observed(
                        connection,
                        RECEIVE_IN_FLIGHT,
                        seen,
                        handler,
                        on_duplicate,
                        shutdown,
                    )
                    .await
                }
            }
        }
    });

    let inbound = kind.serve_inbound(ctx.clone()).await;
    // The inbound side ends on shutdown, or on its own failure: stop the rest.
    shutdown.cancel();
    let stats = receiver.await.ok();
    let report = forwarder.await.ok();
    let _ = heartbeat.await;
    let _ = depth_gauge.await;
    let _ = rejections.await;
    // Last: what the others reported while stopping is sent too.
    ctx.ops.trace().close().await;
    tracing::info!(
        handed_over = stats.map(|s| s.handed_over),
        duplicates = stats.map(|s| s.duplicates),
        forwarded_accepted = report
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.accepted),
        forwarded_rejected = report
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|r| r.rejected),
        pending = ctx.outbox.pending_len(),
        "adapter stopped"
    );
    if let Some(Err(error)) = report {
        tracing::error!(%error, "the outbox forwarder failed");
    }
    inbound
}

/// The broker identity when the exchange's uplink is AMQP (`None`: gRPC).
fn amqp_identity(ctx: &AdapterContext) -> anyhow::Result<Option<AmqpIdentity>> {
    if ctx.exchange.uplink != UplinkKind::Amqp {
        return Ok(None);
    }
    let broker = ctx
        .file
        .broker
        .as_ref()
        .context("uplink = \"amqp\" needs [broker] in the adapter file")?;
    let broker = broker.for_exchange(&ctx.exchange.id)?;
    tracing::info!(broker = %broker.redacted_url(), "uplink and deliveries over AMQP");
    Ok(Some(AmqpIdentity {
        broker,
        exchange: ctx.exchange.id.clone(),
    }))
}

/// Logs every rejection the hub gives (message id and reason only).
async fn log_rejections(outbox: Outbox, shutdown: CancellationToken) {
    let mut answers = outbox.subscribe();
    loop {
        tokio::select! {
            answer = answers.recv() => match answer {
                Ok(answer) => {
                    if let Outcome::Rejected(rejection) = &answer.outcome {
                        tracing::warn!(
                            message_id = %answer.message_id,
                            reason = reason_name(rejection),
                            "the hub rejected a message"
                        );
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "rejection log fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The hub's reject reason as its protobuf name.
pub fn reason_name(rejection: &hubpb::Rejected) -> &'static str {
    hubpb::RejectReason::try_from(rejection.reason)
        .unwrap_or_default()
        .as_str_name()
}

/// Sleeps `delay` unless shutdown comes first (then false).
pub async fn pause(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.cancelled() => false,
    }
}

//! The `hl7v2-mllp` kind: HL7 v2 over MLLP, both ways.
//!
//! - [`inbound`]: the local systems send on the MLLP listener; each
//!   message is parsed, translated, stored in the outbox, then answered.
//! - [`outbound`]: deliveries whose original is HL7 v2 go, byte for byte,
//!   to the local system's MLLP endpoint (`deliver_to`).
//! - [`late_nacks`]: a rejection the hub gives after the message was
//!   answered AA is reported to the local system (`notify_to`, by default
//!   `deliver_to`) as an ACK message of its own, until it is accepted;
//!   [`ack_window`] keeps it from reporting what the inbound ACK says.
//! - [`returned_acks`]: negative acknowledgements that come back as
//!   deliveries (the hub's "not permitted", a receiver's negative
//!   response, over AMQP the hub's rejection) are reported to the local
//!   system as ACK messages addressed from the original's stored MSH.
//! - [`acks`]: the acknowledgements this kind writes and reads beyond
//!   those `lhcie-hl7v2` builds (the hub's rejection; the local ACK's MSA).
//! - [`limits`]: the MLLP listener's limits from `[hl7v2.limits]`, and the
//!   `AR` for a frame over the maximum size.
//! - [`tls`]: MLLP over TLS both ways, from `[hl7v2.tls]` (listener) and
//!   `[hl7v2.deliver_tls]` (deliveries and late ACKs).
//! - [`document_types`]: the TXA-2 document types both directions use,
//!   the defaults with `[[hl7v2.document_types]]`.
//!
//! What each answer means to a sending system, and why a policy refusal
//! is a final `AE`: `docs/hl7v2-adapter.md`.

pub mod ack_window;
pub mod acks;
pub mod inbound;
pub mod late_nacks;
pub mod limits;
pub mod outbound;
pub mod returned_acks;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lhcie_adapter_kit::{Disposition, Incoming};
use lhcie_config::{Exchange, Hl7v2Settings};
use lhcie_mllp::{MllpSender, SenderConfig};

use crate::context::AdapterContext;
use crate::kind::AdapterKind;

/// The TXA-2 document types this adapter reads and writes: the defaults
/// ([`lhcie_hl7v2::document_types`]) with the configured
/// `[[hl7v2.document_types]]` added or replacing them.
pub fn document_types(
    settings: &Hl7v2Settings,
) -> Vec<lhcie_hl7v2::document_types::DocumentTypeMapping> {
    let configured: Vec<_> = settings
        .document_types
        .iter()
        .map(|t| lhcie_hl7v2::document_types::DocumentTypeMapping {
            txa_type: t.code.clone(),
            category: t.category,
            document_type: lhcie_model::Coding::snomed(t.snomed.as_str(), t.display.as_str()),
        })
        .collect();
    lhcie_hl7v2::document_types::with_configured(&configured)
}

/// The HL7 v2 / MLLP adapter of one exchange.
pub struct Hl7v2Mllp {
    listen: SocketAddr,
    settings: Hl7v2Settings,
    sender: MllpSender,
    notify_to: String,
    /// To `notify_to`, for negative acknowledgements that come back as
    /// deliveries.
    notify: MllpSender,
}

impl Hl7v2Mllp {
    /// An adapter listening on `listen` and delivering to `deliver_to`
    /// (`host:port`); late rejections go to `settings.notify_to`, by
    /// default `deliver_to` too. Fails if the TLS files cannot be used.
    pub fn new(
        exchange: &Exchange,
        listen: SocketAddr,
        deliver_to: String,
        settings: Hl7v2Settings,
    ) -> anyhow::Result<Self> {
        let notify_to = settings
            .notify_to
            .clone()
            .unwrap_or_else(|| deliver_to.clone());
        tracing::debug!(exchange = %exchange.id, %listen, %deliver_to, %notify_to, "HL7 v2 / MLLP adapter");
        let sender = local_sender(deliver_to, &settings)?;
        let notify = local_sender(notify_to.clone(), &settings)?;
        Ok(Self {
            listen,
            settings,
            sender,
            notify_to,
            notify,
        })
    }
}

/// A sender to the local system (over TLS with `[hl7v2.deliver_tls]`);
/// the callers retry with their own backoff.
fn local_sender(target: String, settings: &Hl7v2Settings) -> anyhow::Result<MllpSender> {
    let sender = MllpSender::new(
        target,
        SenderConfig {
            connect_attempts: 1,
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_millis(settings.delivery_ack_timeout_ms),
            ..SenderConfig::default()
        },
    );
    Ok(match &settings.deliver_tls {
        Some(config) => {
            let (connector, server_name) = tls::connector(config)?;
            sender.with_tls(connector, server_name)
        }
        None => sender,
    })
}

impl AdapterKind for Hl7v2Mllp {
    fn name(&self) -> &'static str {
        "hl7v2-mllp"
    }

    async fn serve_inbound(&self, ctx: AdapterContext) -> anyhow::Result<()> {
        let window = Arc::new(ack_window::AckWindow::default());
        let stop = ctx.shutdown.child_token();
        let late = late_nacks::LateNacks {
            outbox: ctx.outbox.clone(),
            ops: ctx.ops.clone(),
            sender: local_sender(self.notify_to.clone(), &self.settings)?,
            window: window.clone(),
            retry_max: Duration::from_millis(self.settings.delivery_retry_max_ms),
        };
        let late = tokio::spawn(late.run(stop.clone()));
        let served = inbound::serve(self.listen, self.settings.clone(), window, ctx).await;
        stop.cancel();
        let _ = late.await;
        served
    }

    async fn deliver(&self, incoming: Incoming, ctx: &AdapterContext) -> Disposition {
        let mut tracker = ctx.ops.delivery(&incoming);
        if let Some(ack) = returned_acks::acknowledgement(&incoming.envelope) {
            return returned_acks::deliver(
                &self.notify,
                &ctx.outbox,
                &incoming.envelope,
                ack,
                &mut tracker,
                Duration::from_millis(self.settings.delivery_retry_max_ms),
                &ctx.shutdown,
            )
            .await;
        }
        outbound::deliver(
            &self.sender,
            &self.settings,
            incoming,
            &mut tracker,
            &ctx.shutdown,
        )
        .await
    }
}

#[cfg(test)]
mod document_type_tests {
    use lhcie_config::Hl7v2DocumentType;
    use lhcie_model::Category;

    use super::*;

    #[test]
    fn fhir_reads_every_hl7_default_type_into_the_same_category() {
        let fhir = lhcie_fhir_r4::default_document_types();
        let hl7 = lhcie_hl7v2::document_types::default_document_types();
        for m in &hl7 {
            let shared = hl7
                .iter()
                .filter(|o| o.document_type.code == m.document_type.code)
                .count();
            let category = fhir
                .iter()
                .find(|f| f.document_type == m.document_type)
                .map(|f| f.category);
            assert!(category.is_some(), "{}: FHIR does not read it", m.txa_type);
            if shared == 1 {
                assert_eq!(category, Some(m.category), "{}", m.txa_type);
            }
        }
    }

    #[test]
    fn configured_types_are_added_to_the_defaults() {
        let settings = Hl7v2Settings {
            document_types: vec![Hl7v2DocumentType {
                code: "XLET".into(),
                category: Category::DischargeSummary,
                snomed: "823691000000103".into(),
                display: "Clinical letter".into(),
            }],
            ..Hl7v2Settings::default()
        };
        let types = document_types(&settings);
        let defaults = lhcie_hl7v2::document_types::default_document_types();
        assert_eq!(types.len(), defaults.len() + 1);
        assert_eq!(types.last().map(|t| t.txa_type.as_str()), Some("XLET"));
    }
}

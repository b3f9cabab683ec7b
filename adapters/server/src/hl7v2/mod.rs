//! The `hl7v2-mllp` kind: HL7 v2 over MLLP, both ways.
//!
//! - [`inbound`]: the local systems send on the MLLP listener; each
//!   message is parsed, translated, stored in the outbox, then answered.
//! - [`outbound`]: deliveries whose original is HL7 v2 go, byte for byte,
//!   to the local system's MLLP endpoint (`deliver_to`).
//! - [`acks`]: the acknowledgements this kind writes and reads beyond
//!   those `lhcie-hl7v2` builds (the hub's rejection; the local ACK's MSA).

pub mod acks;
pub mod inbound;
pub mod outbound;

use std::net::SocketAddr;
use std::time::Duration;

use lhcie_adapter_kit::{Disposition, Incoming};
use lhcie_config::{Exchange, Hl7v2Settings};
use lhcie_mllp::{MllpSender, SenderConfig};

use crate::context::AdapterContext;
use crate::kind::AdapterKind;

/// The HL7 v2 / MLLP adapter of one exchange.
pub struct Hl7v2Mllp {
    listen: SocketAddr,
    settings: Hl7v2Settings,
    sender: MllpSender,
}

impl Hl7v2Mllp {
    /// An adapter listening on `listen` and delivering to `deliver_to`
    /// (`host:port`).
    pub fn new(
        exchange: &Exchange,
        listen: SocketAddr,
        deliver_to: String,
        settings: Hl7v2Settings,
    ) -> Self {
        tracing::debug!(exchange = %exchange.id, %listen, %deliver_to, "HL7 v2 / MLLP adapter");
        let sender = MllpSender::new(
            deliver_to,
            SenderConfig {
                // The delivery loop retries with its own backoff.
                connect_attempts: 1,
                connect_timeout: Duration::from_secs(5),
                ack_timeout: Duration::from_millis(settings.delivery_ack_timeout_ms),
                ..SenderConfig::default()
            },
        );
        Self {
            listen,
            settings,
            sender,
        }
    }
}

impl AdapterKind for Hl7v2Mllp {
    fn name(&self) -> &'static str {
        "hl7v2-mllp"
    }

    async fn serve_inbound(&self, ctx: AdapterContext) -> anyhow::Result<()> {
        inbound::serve(self.listen, self.settings.clone(), ctx).await
    }

    async fn deliver(&self, incoming: Incoming, ctx: &AdapterContext) -> Disposition {
        outbound::deliver(&self.sender, &self.settings, incoming, &ctx.shutdown).await
    }
}

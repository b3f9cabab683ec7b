//! The `fhir-r4` kind: FHIR R4 messaging over HTTP, both ways.
//!
//! - [`inbound`]: the local systems post message Bundles
//!   (`$process-message`) and DocumentReferences; each is read, translated
//!   (`lhcie_fhir_r4`), stored in the outbox, then answered with an ITK3
//!   response or an OperationOutcome.
//! - [`outbound`]: deliveries go to `[deliver_to]/$process-message`: FHIR
//!   originals unchanged, everything else rendered from the canonical model
//!   (cross-format), acknowledgements as ITK3 response messages; the local
//!   answer decides between delivered, retry and a final negative
//!   acknowledgement back to the sender ([`acks`]).
//! - [`late_responses`]: rejections by the hub after the local system was
//!   answered, posted to it as response messages.
//! - [`delivered`]: header ids of delivered messages, so the local system's
//!   later response messages refer to the right message.
//! - [`client`]: the HTTP client (TLS, bearer token, timeouts).

pub mod acks;
pub mod client;
pub mod delivered;
pub mod inbound;
pub mod late_responses;
pub mod outbound;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lhcie_adapter_kit::{Disposition, Incoming};
use lhcie_config::FhirSettings;

use crate::context::AdapterContext;
use crate::hl7v2::ack_window::AckWindow;
use crate::kind::AdapterKind;

/// The FHIR R4 adapter of one exchange.
pub struct FhirR4 {
    listen: SocketAddr,
    settings: FhirSettings,
    client: client::LocalClient,
    delivered: delivered::DeliveredHeaders,
    source_endpoint: String,
}

impl FhirR4 {
    /// An adapter listening on `listen` and delivering to the base URL
    /// `deliver_to`; its own store under `store_dir`.
    pub fn new(
        listen: SocketAddr,
        deliver_to: &str,
        settings: FhirSettings,
        store_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let client = client::LocalClient::new(deliver_to, &settings)?;
        let delivered = delivered::DeliveredHeaders::open(&store_dir.join("fhir-delivered"))
            .with_context(|| {
                format!(
                    "opening the delivered-headers store in {}",
                    store_dir.display()
                )
            })?;
        Ok(Self {
            listen,
            settings,
            client,
            delivered,
            source_endpoint: format!("http://{listen}"),
        })
    }
}

impl AdapterKind for FhirR4 {
    fn name(&self) -> &'static str {
        "fhir-r4"
    }

    async fn serve_inbound(&self, ctx: AdapterContext) -> anyhow::Result<()> {
        let window = Arc::new(AckWindow::default());
        let stop = ctx.shutdown.child_token();
        let late = late_responses::LateResponses {
            outbox: ctx.outbox.clone(),
            ops: ctx.ops.clone(),
            client: self.client.clone(),
            window: window.clone(),
            retry_max: Duration::from_millis(self.settings.delivery_retry_max_ms),
            source_endpoint: self.source_endpoint.clone(),
        };
        let late = tokio::spawn(late.run(stop.clone()));
        let served = inbound::serve(
            self.listen,
            self.settings.clone(),
            window,
            self.delivered.clone(),
            ctx,
        )
        .await;
        stop.cancel();
        let _ = late.await;
        served
    }

    async fn deliver(&self, incoming: Incoming, ctx: &AdapterContext) -> Disposition {
        let mut tracker = ctx.ops.delivery(&incoming);
        outbound::Deliverer {
            client: &self.client,
            outbox: &ctx.outbox,
            delivered: &self.delivered,
            exchange: &ctx.exchange.id,
            retry_max: Duration::from_millis(self.settings.delivery_retry_max_ms),
            source_endpoint: &self.source_endpoint,
        }
        .deliver(incoming, &mut tracker, &ctx.shutdown)
        .await
    }
}

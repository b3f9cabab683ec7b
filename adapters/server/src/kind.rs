//! The adapter kinds: one implementation of [`AdapterKind`] per kind of
//! local system. The [`runtime`](crate::runtime) supplies the rest.

use std::future::Future;

use lhcie_adapter_kit::{Disposition, Incoming};
use lhcie_config::AdapterConfig;

use crate::context::AdapterContext;

/// One kind of adapter (HL7 v2 over MLLP, FHIR R4, ...): how messages come
/// in from the local system, and how deliveries go out to it.
pub trait AdapterKind: Send + Sync + 'static {
    /// The kind's name, as in the topology (and in heartbeats).
    fn name(&self) -> &'static str;

    /// Serves the local systems until `ctx.shutdown`: takes their messages,
    /// translates them, puts them in `ctx.outbox` and answers them. An
    /// error (e.g. the listen address is taken) stops the adapter.
    fn serve_inbound(&self, ctx: AdapterContext)
    -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Hands one delivery from the hub to the local system and says what
    /// became of it. Called one delivery at a time, in order; it may take
    /// as long as the local system is unreachable (return
    /// [`Disposition::Retry`] on shutdown).
    fn deliver(
        &self,
        incoming: Incoming,
        ctx: &AdapterContext,
    ) -> impl Future<Output = Disposition> + Send;
}

/// Fails with a clear message for kinds this binary does not serve.
pub fn check_supported(adapter: &AdapterConfig) -> anyhow::Result<()> {
    match adapter {
        AdapterConfig::Hl7v2Mllp { .. } | AdapterConfig::FhirR4 { .. } => Ok(()),
        AdapterConfig::Native {} => anyhow::bail!(
            "adapter kind \"native\": the local system speaks the canonical model itself (gRPC or AMQP to the hub); there is nothing for this binary to run (it serves \"hl7v2-mllp\" and \"fhir-r4\")"
        ),
    }
}

//! Telling the hub this adapter is up.

use std::time::Duration;

use lhcie_proto::hub as hubpb;
use tokio_util::sync::CancellationToken;

use crate::connection::HubConnection;

/// Sends a heartbeat now and then at the interval the hub asks for, until
/// `shutdown`. `outbox_depth` reports how many messages wait to be sent.
pub async fn heartbeat(
    connection: HubConnection,
    adapter_kind: &'static str,
    outbox_depth: impl Fn() -> u64,
    shutdown: CancellationToken,
) {
    let mut interval = Duration::from_secs(10);
    while !shutdown.is_cancelled() {
        let beat = async {
            let mut client = connection.connect().await.map_err(|e| e.to_string())?;
            client
                .heartbeat(hubpb::HeartbeatRequest {
                    adapter_kind: adapter_kind.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    outbox_depth: outbox_depth(),
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| s.to_string())
        };
        match beat.await {
            Ok(answer) => {
                interval = Duration::from_secs(u64::from(answer.interval_seconds.clamp(1, 300)))
            }
            Err(reason) => tracing::warn!(%reason, "heartbeat failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

//! # lhcie-runtime: what every long-running process shares
//!
//! - [`group_commit`]: one flusher thread per sled database, sharing each
//!   fsync among the writers waiting (the hub's store, an adapter's
//!   outbox).
//! - [`cancel_on_signal`]: stopping gracefully on SIGTERM or Ctrl-C (the
//!   hub, registry nodes, adapters).
//! - [`metrics`]: the Prometheus recorder and the `/metrics` endpoint every
//!   process serves.
//! - [`net`]: binding TCP listeners; every accepted connection gets
//!   `TCP_NODELAY` (every server of the project binds through it).

#[cfg(feature = "full")]
pub mod group_commit;
#[cfg(feature = "full")]
pub mod metrics;
pub mod net;

#[cfg(feature = "full")]
pub use group_commit::{CommitError, GroupCommit};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("signal received: stopping");
        token.cancel();
    });
}

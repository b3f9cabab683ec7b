//! Group commit for log appends: Raft is told an append is durable only
//! after an fsync that started after the append was written. Appends that
//! arrive while an fsync runs share the next one.

use openraft::storage::LogFlushed;
use tokio::sync::mpsc;

use crate::types::TypeConfig;

/// Hands appends to the flusher task.
#[derive(Clone)]
pub(crate) struct Flusher {
    pending: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
}

impl Flusher {
    /// Starts the flusher task for `db`. It stops once every handle is
    /// dropped.
    pub(crate) fn start(db: sled::Db) -> Self {
        let (pending, mut waiting) = mpsc::unbounded_channel::<LogFlushed<TypeConfig>>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = waiting.recv().await {
                batch.push(first);
                while let Ok(more) = waiting.try_recv() {
                    batch.push(more);
                }
                let result = db.flush_async().await;
                for callback in batch.drain(..) {
                    callback.log_io_completed(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| std::io::Error::other(e.to_string())),
                    );
                }
            }
        });
        Self { pending }
    }

    /// Calls `callback` once everything written so far is on disk.
    pub(crate) fn after_flush(&self, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::error::SendError(callback)) = self.pending.send(callback) {
            callback.log_io_completed(Err(std::io::Error::other("the log flusher has stopped")));
        }
    }
}

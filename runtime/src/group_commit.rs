//! Group commit for a sled database: one flusher thread shares each flush
//! (fsync) among every writer waiting at the time.
//!
//! Writers write, then call [`GroupCommit::durable`], which returns once a
//! flush that started after the call has finished. Only the flusher ever
//! flushes: sled 0.34 can deadlock when several `flush_async` calls run at
//! once under concurrent writes (its log flusher waits behind a writer
//! that waits for the flush), which is what many MLLP connections putting
//! into one outbox at once did. One flusher also means one fsync for many
//! writers under load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

/// A flush failed, or the flusher has stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// sled could not flush.
    #[error("flush failed: {0}")]
    Flush(String),
    /// The flusher has stopped (the store is closing).
    #[error("the flusher has stopped")]
    Stopped,
}

struct Shared {
    /// Tickets handed out (each taken after its writer's writes).
    issued: AtomicU64,
    /// Whether the flusher should stop once nothing is waiting.
    stopped: Mutex<bool>,
    wake: Condvar,
    /// The highest ticket the last flush covered, or its error.
    flushed: watch::Sender<Result<u64, CommitError>>,
}

/// The flusher of one sled database; stopped (after a last flush of what
/// is waiting) when dropped.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher of `db`.
    pub fn start(db: sled::Db) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            issued: AtomicU64::new(0),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            flushed: watch::channel(Ok(0)).0,
        });
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn({
                let shared = shared.clone();
                move || flusher(&shared, &db)
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until everything written before the call is on disk.
    pub async fn durable(&self) -> Result<(), CommitError> {
        let ticket = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.shared.flushed.subscribe();
        {
            // Under the lock, so the flusher cannot miss the wake-up
            // between its check and its wait.
            let _guard = self
                .shared
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_one();
        }
        loop {
            match &*flushed.borrow_and_update() {
                Ok(done) if *done >= ticket => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(error.clone()),
            }
            flushed.changed().await.map_err(|_| CommitError::Stopped)?;
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        *self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flusher(shared: &Shared, db: &sled::Db) {
    let mut done = 0;
    loop {
        {
            let mut stopped = shared.stopped.lock().unwrap_or_else(|e| e.into_inner());
            while shared.issued.load(Ordering::SeqCst) == done && !*stopped {
                stopped = shared.wake.wait(stopped).unwrap_or_else(|e| e.into_inner());
            }
            if shared.issued.load(Ordering::SeqCst) == done && *stopped {
                return;
            }
        }
        // Every ticket issued so far was taken after its writes, so a flush
        // that starts now covers them all.
        let target = shared.issued.load(Ordering::SeqCst);
        match db.flush() {
            Ok(_) => {
                done = target;
                let _previous = shared.flushed.send_replace(Ok(done));
            }
            Err(error) => {
                tracing::error!(%error, "flush failed; retrying");
                let _previous = shared
                    .flushed
                    .send_replace(Err(CommitError::Flush(error.to_string())));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many writers putting and waiting at once all become durable, and
    /// nothing deadlocks (sled 0.34 did with concurrent `flush_async`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_writers_are_all_made_durable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let commit = Arc::new(GroupCommit::start(db.clone()).unwrap());
            let mut writers = Vec::new();
            for writer in 0..50u32 {
                let (db, commit) = (db.clone(), commit.clone());
                writers.push(tokio::spawn(async move {
                    for n in 0..40u32 {
                        let key = format!("{writer:03}-{n:03}");
                        db.insert(key.as_bytes(), vec![7u8; 600]).unwrap();
                        commit.durable().await.unwrap();
                    }
                }));
            }
            tokio::time::timeout(Duration::from_secs(60), async {
                for writer in writers {
                    writer.await.unwrap();
                }
            })
            .await
            .expect("writers finished: no deadlock");
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        assert_eq!(db.len(), 50 * 40);
    }
}

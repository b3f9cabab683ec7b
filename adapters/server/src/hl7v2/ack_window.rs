//! The messages whose answer is still being decided by the inbound side:
//! the [`AckWindow`] keeps the late-rejection tasks (HL7 v2
//! [`super::late_nacks`], FHIR `late_responses`) from reporting a
//! rejection that the inbound side is about to put in the message's own
//! answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lhcie_adapter_kit::outbox::{Answer, Outcome};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// Message ids the inbound side is answering right now (with a count, as
/// the same message may be resent on another connection meanwhile).
#[derive(Debug, Default)]
pub struct AckWindow {
    open: Mutex<HashMap<String, usize>>,
    closed: Notify,
}

impl AckWindow {
    /// Marks `message_id` as being answered until the guard is dropped.
    pub fn enter(self: &Arc<Self>, message_id: &str) -> WindowGuard {
        *self.lock().entry(message_id.to_owned()).or_default() += 1;
        WindowGuard {
            window: self.clone(),
            message_id: message_id.to_owned(),
        }
    }

    /// Whether the inbound side is answering `message_id` right now.
    pub fn contains(&self, message_id: &str) -> bool {
        self.lock().contains_key(message_id)
    }

    /// Completes once a message left the window since the last call (a
    /// permit is kept if none was waiting).
    pub async fn closed(&self) {
        self.closed.notified().await;
    }

    /// Waits until there may be a rejection to report: a new one among
    /// `answers`, or (if `deferred`, some were skipped because they were
    /// being answered) a message leaving the window. False on shutdown.
    pub async fn next_sweep(
        &self,
        answers: &mut broadcast::Receiver<Answer>,
        deferred: bool,
        shutdown: &CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = self.closed(), if deferred => return true,
                answer = answers.recv() => match answer {
                    Ok(Answer { outcome: Outcome::Rejected(_), .. }) => return true,
                    Ok(_) => {}
                    // Missed some: a sweep reads the whole list anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                },
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps a message id in the [`AckWindow`] while alive.
#[derive(Debug)]
pub struct WindowGuard {
    window: Arc<AckWindow>,
    message_id: String,
}

impl Drop for WindowGuard {
    fn drop(&mut self) {
        {
            let mut open = self.window.lock();
            if let Some(count) = open.get_mut(&self.message_id) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&self.message_id);
                }
            }
        }
        self.window.closed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_stays_in_the_window_until_its_last_guard_is_dropped() {
        let window = Arc::new(AckWindow::default());
        let first = window.enter("m1");
        let second = window.enter("m1");
        assert!(window.contains("m1"));
        drop(first);
        assert!(window.contains("m1"));
        drop(second);
        assert!(!window.contains("m1"));
    }
}

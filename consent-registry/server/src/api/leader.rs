//! Leadership: sending callers to the leader, and proving, every heartbeat
//! interval, that this node still leads (so watchers know their copy is
//! current).

use std::time::{Duration, Instant};

use openraft::ServerState;
use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::types::{Node, NodeId, Raft};

/// The metadata entry that names the leader's API address.
pub const LEADER_HEADER: &str = "lhcie-leader";

/// This node confirmed with a quorum that it led, at `started`, and had
/// applied everything committed by then once `read_index` was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    /// When the confirmation began.
    pub started: Instant,
    /// The revision that had to be applied for reads to be current.
    pub read_index: u64,
}

/// Whether this node leads, and where the leader is if not.
#[derive(Clone)]
pub struct Leadership {
    raft: Raft,
    node_id: NodeId,
}

impl Leadership {
    /// Leadership of `raft` on node `node_id`.
    pub fn new(raft: Raft, node_id: NodeId) -> Self {
        Self { raft, node_id }
    }

    /// `Ok` if this node leads; otherwise the status that sends the caller
    /// to the leader.
    pub fn require(&self) -> Result<(), tonic::Status> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state == ServerState::Leader && metrics.current_leader == Some(self.node_id) {
            return Ok(());
        }
        let leader = metrics.current_leader.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .map(|node| (id, node.clone()))
        });
        Err(self.redirect(leader))
    }

    /// The status for a caller who must go to `leader` (if known).
    pub fn redirect(&self, leader: Option<(NodeId, Node)>) -> tonic::Status {
        match leader {
            Some((id, node)) if id != self.node_id => {
                let mut status = tonic::Status::failed_precondition(format!(
                    "node {} is not the leader; node {id} is, at {}",
                    self.node_id, node.api_address
                ));
                if let Ok(value) = node.api_address.parse() {
                    status.metadata_mut().insert(LEADER_HEADER, value);
                }
                status
            }
            _ => tonic::Status::unavailable(
                "no leader is known yet (an election is under way); retry shortly",
            ),
        }
    }

    /// The status for a failed replicated write.
    pub fn write_failed(
        &self,
        error: RaftError<NodeId, ClientWriteError<NodeId, Node>>,
    ) -> tonic::Status {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
                leader_id,
                leader_node,
            })) => self.redirect(leader_id.zip(leader_node)),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                tonic::Status::failed_precondition(e.to_string())
            }
            RaftError::Fatal(fatal) => {
                tonic::Status::unavailable(format!("this node has stopped: {fatal}"))
            }
        }
    }
}

/// Confirms leadership every `interval` while this node leads, and
/// publishes the latest confirmation (`None` when there is none).
pub fn spawn_confirmer(
    raft: Raft,
    node_id: NodeId,
    interval: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Option<Confirmation>> {
    let (publish, confirmations) = watch::channel(None);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let leads = raft.metrics().borrow().current_leader == Some(node_id);
            if !leads {
                publish.send_replace(None);
                continue;
            }
            let started = Instant::now();
            match tokio::time::timeout(interval * 5, raft.ensure_linearizable()).await {
                Ok(Ok(read)) => {
                    publish.send_replace(Some(Confirmation {
                        started,
                        read_index: read.map(|id| id.index).unwrap_or(0),
                    }));
                }
                Ok(Err(_)) | Err(_) => {
                    publish.send_replace(None);
                }
            }
        }
    });
    confirmations
}

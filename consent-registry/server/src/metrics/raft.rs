//! Gauges of the node's Raft state, from openraft's metrics channel
//! (`Raft::metrics`): a task sets them each time the channel changes
//! (elections, appends, commits, snapshots, membership changes), so a
//! scrape always sees the latest state without asking Raft.

use std::collections::BTreeSet;

use openraft::{RaftMetrics, ServerState};
use tokio_util::sync::CancellationToken;

use crate::types::{Node, NodeId, Raft};

/// 1 on the leader, else 0.
pub const IS_LEADER: &str = "lhcie_registry_is_leader";
/// 1 if this node knows a current leader (itself included), else 0.
pub const HAS_LEADER: &str = "lhcie_registry_has_leader";
/// The current leader's node id; 0 when none is known (ids start at 1).
pub const LEADER_ID: &str = "lhcie_registry_leader_id";
/// The current Raft term.
pub const TERM: &str = "lhcie_registry_term";
/// The last applied log index: the registry's revision here.
pub const REVISION: &str = "lhcie_registry_revision";
/// The last log index appended here (applied or not).
pub const LAST_LOG_INDEX: &str = "lhcie_registry_last_log_index";
/// The last log index in this node's latest snapshot (0: none yet).
pub const SNAPSHOT_INDEX: &str = "lhcie_registry_snapshot_index";
/// Voting members of the cluster, as this node knows it.
pub const VOTERS: &str = "lhcie_registry_voters";
/// On the leader, per follower (or learner): log entries it has yet to
/// receive.
pub const REPLICATION_LAG: &str = "lhcie_registry_replication_lag_entries";

pub(super) fn describe() {
    metrics::describe_gauge!(IS_LEADER, "1 if this node is the leader, else 0.");
    metrics::describe_gauge!(
        HAS_LEADER,
        "1 if this node knows a current leader (itself included), else 0."
    );
    metrics::describe_gauge!(
        LEADER_ID,
        "The current leader's node id as this node knows it; 0 when none is known."
    );
    metrics::describe_gauge!(TERM, "The current Raft term.");
    metrics::describe_gauge!(
        REVISION,
        "The last log index applied here: the registry revision this node's state is at."
    );
    metrics::describe_gauge!(LAST_LOG_INDEX, "The last log index appended here.");
    metrics::describe_gauge!(
        SNAPSHOT_INDEX,
        "The last log index in this node's latest snapshot; 0 if none."
    );
    metrics::describe_gauge!(VOTERS, "Voting members of the cluster.");
    metrics::describe_gauge!(
        REPLICATION_LAG,
        "On the leader: log entries each follower (or learner) has yet to receive; 0 elsewhere."
    );
}

/// What the gauges show, from one observation of Raft's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftGauges {
    /// This node leads.
    pub is_leader: bool,
    /// The leader this node knows, if any.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// The last applied index.
    pub revision: u64,
    /// The last log index.
    pub last_log_index: u64,
    /// The last index in the latest snapshot.
    pub snapshot_index: u64,
    /// The number of voters.
    pub voters: usize,
    /// On the leader, each other member's lag in entries.
    pub lag: Vec<(NodeId, u64)>,
}

impl RaftGauges {
    /// The gauges for `metrics`.
    pub fn of(metrics: &RaftMetrics<NodeId, Node>) -> Self {
        let is_leader =
            metrics.state == ServerState::Leader && metrics.current_leader == Some(metrics.id);
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let lag = match (&metrics.replication, is_leader) {
            (Some(replication), true) => replication
                .iter()
                .filter(|(id, _)| **id != metrics.id)
                .map(|(id, matched)| {
                    let matched = matched.map_or(0, |log_id| log_id.index);
                    (*id, last_log_index.saturating_sub(matched))
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            is_leader,
            leader: metrics.current_leader,
            term: metrics.current_term,
            revision: metrics.last_applied.map_or(0, |log_id| log_id.index),
            last_log_index,
            snapshot_index: metrics.snapshot.map_or(0, |log_id| log_id.index),
            voters: metrics.membership_config.membership().voter_ids().count(),
            lag,
        }
    }

    /// Sets the gauges. `lagging` is every follower a lag was ever set for
    /// (kept up to date here): those no longer reported are set to 0.
    pub fn publish(&self, lagging: &mut BTreeSet<NodeId>) {
        metrics::gauge!(IS_LEADER).set(f64::from(u8::from(self.is_leader)));
        metrics::gauge!(HAS_LEADER).set(f64::from(u8::from(self.leader.is_some())));
        metrics::gauge!(LEADER_ID).set(self.leader.unwrap_or(0) as f64);
        metrics::gauge!(TERM).set(self.term as f64);
        metrics::gauge!(REVISION).set(self.revision as f64);
        metrics::gauge!(LAST_LOG_INDEX).set(self.last_log_index as f64);
        metrics::gauge!(SNAPSHOT_INDEX).set(self.snapshot_index as f64);
        metrics::gauge!(VOTERS).set(self.voters as f64);
        let now: BTreeSet<NodeId> = self.lag.iter().map(|(id, _)| *id).collect();
        for gone in lagging.difference(&now) {
            metrics::gauge!(REPLICATION_LAG, "follower" => gone.to_string()).set(0.0);
        }
        for (id, lag) in &self.lag {
            metrics::gauge!(REPLICATION_LAG, "follower" => id.to_string()).set(*lag as f64);
        }
        lagging.extend(now);
    }
}

/// Keeps the gauges current until `shutdown` or until Raft stops.
pub fn spawn(raft: &Raft, shutdown: CancellationToken) {
    let mut changes = raft.metrics();
    tokio::spawn(async move {
        let mut lagging = BTreeSet::new();
        loop {
            let gauges = RaftGauges::of(&changes.borrow_and_update());
            gauges.publish(&mut lagging);
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};

    use super::*;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// Node `id` of a cluster of voters 1, 2 and 3 in term 4, led by
    /// `leader`.
    fn observed(id: NodeId, leader: Option<NodeId>) -> RaftMetrics<NodeId, Node> {
        let mut metrics = RaftMetrics::new_initial(id);
        metrics.current_term = 4;
        metrics.current_leader = leader;
        metrics.state = if leader == Some(id) {
            ServerState::Leader
        } else {
            ServerState::Follower
        };
        metrics.last_log_index = Some(12);
        metrics.last_applied = Some(log_id(4, 10));
        metrics.snapshot = Some(log_id(3, 5));
        let nodes: BTreeMap<NodeId, Node> = (1..=3).map(|n| (n, Node::default())).collect();
        metrics.membership_config = Arc::new(StoredMembership::new(
            Some(log_id(1, 1)),
            Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes),
        ));
        if leader == Some(id) {
            metrics.replication = Some(BTreeMap::from([
                (1, Some(log_id(4, 12))),
                (2, Some(log_id(4, 9))),
                (3, None),
            ]));
        }
        metrics
    }

    #[test]
    fn the_leader_reports_itself_and_each_followers_lag() {
        let gauges = RaftGauges::of(&observed(1, Some(1)));
        assert_eq!(
            gauges,
            RaftGauges {
                is_leader: true,
                leader: Some(1),
                term: 4,
                revision: 10,
                last_log_index: 12,
                snapshot_index: 5,
                voters: 3,
                lag: vec![(2, 3), (3, 12)],
            }
        );
    }

    #[test]
    fn a_follower_names_the_leader_and_reports_no_lag() {
        let gauges = RaftGauges::of(&observed(2, Some(1)));
        assert!(!gauges.is_leader);
        assert_eq!(gauges.leader, Some(1));
        assert!(gauges.lag.is_empty());
        let during_an_election = RaftGauges::of(&observed(2, None));
        assert_eq!(during_an_election.leader, None);
        let fresh = RaftGauges::of(&RaftMetrics::new_initial(7));
        assert_eq!((fresh.revision, fresh.voters, fresh.term), (0, 0, 0));
    }

    #[test]
    fn the_exposition_shows_the_gauges_and_zeroes_a_lost_followers_lag() {
        assert!(crate::metrics::install());
        let mut lagging = BTreeSet::new();
        let mut gauges = RaftGauges::of(&observed(1, Some(1)));
        // Follower ids no other test uses: the recorder is process-wide.
        gauges.lag = vec![(901, 7), (902, 2)];
        gauges.publish(&mut lagging);
        let render = || lhcie_runtime::metrics::handle().unwrap().render();
        let text = render();
        assert!(
            text.contains("lhcie_registry_replication_lag_entries{follower=\"901\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE lhcie_registry_is_leader gauge"),
            "{text}"
        );
        gauges.lag = vec![(902, 0)];
        gauges.publish(&mut lagging);
        let text = render();
        assert!(
            text.contains("lhcie_registry_replication_lag_entries{follower=\"901\"} 0"),
            "{text}"
        );
        assert_eq!(lagging, BTreeSet::from([901, 902]));
    }
}

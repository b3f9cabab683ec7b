//! Cluster administration (`lhcie.registry.v1.ClusterAdmin`), on the
//! internal Raft port: forming the cluster, adding and removing nodes.

use std::collections::{BTreeMap, BTreeSet};

use lhcie_proto::registry as pb;
use lhcie_proto::registry::cluster_admin_server::ClusterAdmin;
use openraft::ChangeMembers;

use crate::api::authorise::Authentication;
use crate::api::leader::Leadership;
use crate::types::{Node, NodeId, Raft};

/// The service.
pub struct ClusterAdminService {
    raft: Raft,
    leadership: Leadership,
    /// The members the cluster is formed with by `Initialize`.
    initial: BTreeMap<NodeId, Node>,
    /// Only the administration tool may call.
    auth: Authentication,
}

impl ClusterAdminService {
    /// Administers `raft`; `Initialize` forms the cluster of `initial`.
    pub fn new(
        raft: Raft,
        node_id: NodeId,
        initial: BTreeMap<NodeId, Node>,
        auth: Authentication,
    ) -> Self {
        Self {
            leadership: Leadership::new(raft.clone(), node_id),
            raft,
            initial,
            auth,
        }
    }
}

fn reply(detail: String) -> tonic::Response<pb::AdminReply> {
    tonic::Response::new(pb::AdminReply { detail })
}

#[tonic::async_trait]
impl ClusterAdmin for ClusterAdminService {
    async fn initialize(
        &self,
        request: tonic::Request<pb::InitializeRequest>,
    ) -> Result<tonic::Response<pb::AdminReply>, tonic::Status> {
        self.auth.authorise_cluster_admin(&request, "Initialize")?;
        self.raft
            .initialize(self.initial.clone())
            .await
            .map_err(|e| tonic::Status::failed_precondition(e.to_string()))?;
        Ok(reply(format!(
            "formed a cluster of nodes {:?}",
            self.initial.keys().collect::<Vec<_>>()
        )))
    }

    async fn add_node(
        &self,
        request: tonic::Request<pb::AddNodeRequest>,
    ) -> Result<tonic::Response<pb::AdminReply>, tonic::Status> {
        let caller = self.auth.authorise_cluster_admin(&request, "AddNode")?;
        self.leadership.require()?;
        let request = request.into_inner();
        if request.node_id == 0 || request.raft_address.is_empty() || request.api_address.is_empty()
        {
            return Err(tonic::Status::invalid_argument(
                "node_id (1 or more), raft_address and api_address are required",
            ));
        }
        let node = Node {
            raft_address: request.raft_address,
            api_address: request.api_address,
        };
        // As a learner first, until it has caught up; then as a voter.
        self.raft
            .add_learner(request.node_id, node, true)
            .await
            .map_err(|e| self.leadership.write_failed(e))?;
        self.raft
            .change_membership(
                ChangeMembers::AddVoterIds(BTreeSet::from([request.node_id])),
                false,
            )
            .await
            .map_err(|e| self.leadership.write_failed(e))?;
        tracing::info!(node = request.node_id, by = %caller.identity, "node added as a voter");
        Ok(reply(format!("node {} is a voter", request.node_id)))
    }

    async fn remove_node(
        &self,
        request: tonic::Request<pb::RemoveNodeRequest>,
    ) -> Result<tonic::Response<pb::AdminReply>, tonic::Status> {
        let caller = self.auth.authorise_cluster_admin(&request, "RemoveNode")?;
        self.leadership.require()?;
        let node_id = request.into_inner().node_id;
        self.raft
            .change_membership(
                ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                false,
            )
            .await
            .map_err(|e| self.leadership.write_failed(e))?;
        tracing::info!(node = node_id, by = %caller.identity, "node removed");
        Ok(reply(format!("node {node_id} is no longer a member")))
    }
}

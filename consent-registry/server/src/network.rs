//! Raft between nodes: the client side (openraft's `RaftNetwork`) and the
//! server side (`lhcie.registry.v1.RaftInternal`), a gRPC service separate
//! from the public API. Raft's messages travel as postcard inside a
//! `RaftPayload`; a reply carries the remote node's `Result`.

use std::sync::Arc;
use std::time::Duration;

use lhcie_proto::registry::RaftPayload;
use lhcie_proto::registry::raft_internal_client::RaftInternalClient;
use lhcie_proto::registry::raft_internal_server::RaftInternal;
use lhcie_registry_client::TlsConnector;
use lhcie_tls::Principal;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use crate::api::authorise::Authentication;

use crate::types::{Node, NodeId, Raft, TypeConfig};

/// The largest Raft message accepted (snapshot chunks and entry batches).
pub const MAX_RAFT_MESSAGE: usize = 64 * 1024 * 1024;

/// The most bytes of entries sent to a follower at once. openraft gives an
/// append the heartbeat interval to complete, the follower's fsync
/// included: bigger batches (imports make big entries) would time out
/// again and again and leave the follower behind for good. A bigger batch
/// is refused before it is sent, with a hint of how many entries fit.
pub const MAX_APPEND_BYTES: usize = 2 * 1024 * 1024;

fn to_payload<T: Serialize>(value: &T) -> Result<RaftPayload, postcard::Error> {
    Ok(RaftPayload {
        data: postcard::to_stdvec(value)?.into(),
    })
}

fn encode<T: Serialize>(value: &T) -> Result<RaftPayload, NetworkError> {
    to_payload(value).map_err(|e| NetworkError::new(&e))
}

fn from_payload<T: DeserializeOwned>(payload: &RaftPayload) -> Result<T, postcard::Error> {
    postcard::from_bytes(&payload.data)
}

/// Makes connections to other nodes: with mutual TLS (this node's
/// certificate, the cluster's CA, and the other node's certificate must
/// name the node it is meant to be, `urn:lhcie:registry-node:<target>`)
/// unless the node is a plaintext development node.
#[derive(Debug, Clone, Default)]
pub struct Network {
    tls: Option<lhcie_tls::principal_verifier::Pem>,
}

impl Network {
    /// Connections with this node's TLS identity (None: plaintext,
    /// loopback development).
    pub fn new(tls: Option<lhcie_tls::principal_verifier::Pem>) -> Self {
        Self { tls }
    }

    fn channel(&self, target: NodeId, address: &str) -> Result<Channel, String> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        let Some(pem) = &self.tls else {
            return Ok(endpoint.connect_lazy());
        };
        let accept: lhcie_tls::principal_verifier::AcceptPrincipal =
            Arc::new(move |principal| *principal == Principal::RegistryNode(target));
        let config = lhcie_tls::principal_verifier::client_config_from_pem(pem, accept)
            .map_err(|e| e.to_string())?;
        Ok(endpoint.connect_with_connector_lazy(TlsConnector::new(config)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        let channel = self.channel(target, &node.raft_address);
        Connection { target, channel }
    }
}

/// A connection to one node.
pub struct Connection {
    target: NodeId,
    channel: Result<Channel, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

/// The Raft calls.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl Connection {
    /// Sends one message and decodes the remote node's answer.
    async fn call<Resp, E>(
        &mut self,
        rpc: Rpc,
        payload: RaftPayload,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&Failure(e))))?;
        let mut client = RaftInternalClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE)
            .max_encoding_message_size(MAX_RAFT_MESSAGE);
        let mut request = tonic::Request::new(payload);
        request.set_timeout(option.hard_ttl());
        let reply = match rpc {
            Rpc::AppendEntries => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::InstallSnapshot => client.install_snapshot(request).await,
        };
        let reply = reply.map_err(|status| {
            let failure = Failure(format!("{rpc:?} to node {}: {status}", self.target));
            match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    RPCError::Unreachable(Unreachable::new(&failure))
                }
                _ => RPCError::Network(NetworkError::new(&failure)),
            }
        })?;
        let result: Result<Resp, E> =
            from_payload(reply.get_ref()).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let payload = encode(&rpc).map_err(RPCError::Network)?;
        if payload.data.len() > MAX_APPEND_BYTES && rpc.entries.len() > 1 {
            let fit = rpc.entries.len() * MAX_APPEND_BYTES / payload.data.len();
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit.max(1) as u64),
            ));
        }
        self.call(Rpc::AppendEntries, payload, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(
            Rpc::InstallSnapshot,
            encode(&rpc).map_err(RPCError::Network)?,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(Rpc::Vote, encode(&rpc).map_err(RPCError::Network)?, &option)
            .await
    }
}

/// The server side: hands messages from other nodes to the local Raft,
/// only from members (see `RaftService::is_member`).
pub struct RaftService {
    raft: Raft,
    auth: Authentication,
    /// The configured initial members.
    configured: std::collections::BTreeSet<NodeId>,
}

impl RaftService {
    /// Serves `raft`; `configured` are the configured initial members.
    pub fn new(
        raft: Raft,
        auth: Authentication,
        configured: std::collections::BTreeSet<NodeId>,
    ) -> Self {
        Self {
            raft,
            auth,
            configured,
        }
    }

    /// Whether node `id` may send Raft messages here: a configured initial
    /// member, or a node of the current membership (voter or learner). A
    /// node with no membership yet (one waiting to be added with `cluster
    /// add`) accepts any registry node certificate of its CA, as it cannot
    /// know its cluster before it is contacted.
    fn is_member(&self, id: NodeId) -> bool {
        if self.configured.contains(&id) {
            return true;
        }
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let mut nodes = membership.nodes().peekable();
        if nodes.peek().is_none() {
            return true;
        }
        nodes.any(|(member, _)| *member == id)
    }

    fn check<T>(&self, request: &tonic::Request<T>, rpc: &str) -> Result<(), tonic::Status> {
        self.auth
            .authorise_raft(request, rpc, |id| self.is_member(id))
    }
}

fn bad_payload(error: postcard::Error) -> tonic::Status {
    tonic::Status::invalid_argument(format!("not a Raft message: {error}"))
}

fn reply<T: Serialize>(result: &T) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
    to_payload(result)
        .map(tonic::Response::new)
        .map_err(|e| tonic::Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl RaftInternal for RaftService {
    async fn append_entries(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        self.check(&request, "AppendEntries")?;
        let rpc: AppendEntriesRequest<TypeConfig> =
            from_payload(request.get_ref()).map_err(bad_payload)?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        self.check(&request, "Vote")?;
        let rpc: VoteRequest<NodeId> = from_payload(request.get_ref()).map_err(bad_payload)?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        self.check(&request, "InstallSnapshot")?;
        let rpc: InstallSnapshotRequest<TypeConfig> =
            from_payload(request.get_ref()).map_err(bad_payload)?;
        reply(&self.raft.install_snapshot(rpc).await)
    }
}

#[cfg(test)]
mod tests {
    use lhcie_consent::{Command, Proposal};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn raft_messages_survive_the_wire() {
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 9)),
            entries: vec![Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), 10),
                payload: EntryPayload::Normal(Proposal {
                    command: Command::RevokeIsa {
                        id: "ISA-1".into(),
                        reason: "breach".into(),
                    },
                    by: "dpo".into(),
                    at: datetime!(2026-11-21 12:00:00.123456789 UTC),
                }),
            }],
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), 9)),
        };
        let payload = to_payload(&request).unwrap();
        let back: AppendEntriesRequest<TypeConfig> = from_payload(&payload).unwrap();
        assert_eq!(format!("{back:?}"), format!("{request:?}"));

        let error: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
            Err(RaftError::Fatal(openraft::error::Fatal::Stopped));
        let back: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
            from_payload(&to_payload(&error).unwrap()).unwrap();
        assert_eq!(back, error);
    }

    fn big_entries(count: u64) -> AppendEntriesRequest<TypeConfig> {
        let entry = |index| Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
            payload: EntryPayload::Normal(Proposal {
                command: Command::RevokeIsa {
                    id: "ISA-1".into(),
                    reason: "x".repeat(1024 * 1024),
                },
                by: "dpo".into(),
                at: datetime!(2026-11-21 12:00 UTC),
            }),
        };
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: None,
            entries: (1..=count).map(entry).collect(),
            leader_commit: None,
        }
    }

    /// Too many bytes of entries are refused before sending, with how many
    /// fit; one entry is always sent, however big.
    #[tokio::test]
    async fn appends_over_the_byte_cap_are_refused_with_a_hint() {
        let mut unreachable = Connection {
            target: 2,
            channel: Err("not connected".into()),
        };
        let option = RPCOption::new(Duration::from_millis(100));
        match unreachable
            .append_entries(big_entries(5), option.clone())
            .await
        {
            Err(RPCError::PayloadTooLarge(too_large)) => {
                assert_eq!(too_large.entries_hint(), 1)
            }
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
        match unreachable.append_entries(big_entries(1), option).await {
            Err(RPCError::Unreachable(_) | RPCError::Network(_)) => {}
            other => panic!("expected an attempt to send, got {other:?}"),
        }
    }
}

//! A registry client that finds the leader and follows it.
//!
//! Every call but `Status` is served by the leader. A follower answers
//! FAILED_PRECONDITION naming the leader (`lhcie-leader`), or UNAVAILABLE
//! while an election is under way; the client goes to the leader, or tries
//! the next node, until the call's deadline. A call whose outcome is
//! unknown (the connection broke after it was sent) is retried only if it
//! is idempotent: reads, and writes keyed by the caller's own id.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lhcie_proto::registry::consent_registry_client::ConsentRegistryClient;
use tonic::transport::{Channel, Endpoint};

/// The metadata entry naming the leader's API address.
pub const LEADER_HEADER: &str = "lhcie-leader";
/// The metadata entry naming the caller.
pub const ACTOR_HEADER: &str = "lhcie-actor";

/// The largest message the client sends or accepts.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Whether a call may be repeated when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes that name their record (setting a directive by
    /// id): doing them twice is doing them once.
    Idempotent,
    /// Everything else: repeated only when the node certainly did not act
    /// (it redirected, or there is no leader).
    OnlyIfNotSent,
}

/// A client of the registry cluster.
#[derive(Clone)]
pub struct RegistryClient {
    endpoints: Arc<Vec<String>>,
    actor: String,
    target: Arc<Mutex<Target>>,
    deadline: Duration,
}

struct Target {
    address: String,
    channel: Channel,
    next_endpoint: usize,
}

fn channel(address: &str) -> Result<Channel, tonic::Status> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| tonic::Status::invalid_argument(format!("registry address {address}: {e}")))?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("endpoints", &self.endpoints)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client of the nodes at `endpoints` (`host:port`), acting as
    /// `actor` (recorded on every change it makes).
    pub fn new(endpoints: Vec<String>, actor: impl Into<String>) -> Result<Self, tonic::Status> {
        let first = endpoints
            .first()
            .ok_or_else(|| tonic::Status::invalid_argument("name at least one registry node"))?
            .clone();
        Ok(Self {
            target: Arc::new(Mutex::new(Target {
                channel: channel(&first)?,
                address: first,
                next_endpoint: 1,
            })),
            endpoints: Arc::new(endpoints),
            actor: actor.into(),
            deadline: Duration::from_secs(15),
        })
    }

    /// How long a call keeps looking for the leader (15 s by default).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The address calls currently go to.
    pub fn current_target(&self) -> String {
        self.target.lock().expect("target lock").address.clone()
    }

    /// A request carrying the caller's name.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = self.actor.parse() {
            request.metadata_mut().insert(ACTOR_HEADER, value);
        }
        request
    }

    fn current(&self) -> (String, ConsentRegistryClient<Channel>) {
        let target = self.target.lock().expect("target lock");
        let client = ConsentRegistryClient::new(target.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        (target.address.clone(), client)
    }

    fn go_to(&self, address: &str) -> Result<(), tonic::Status> {
        let mut target = self.target.lock().expect("target lock");
        if target.address != address {
            target.channel = channel(address)?;
            target.address = address.to_owned();
        }
        Ok(())
    }

    fn next_node(&self, failed: &str) -> Result<(), tonic::Status> {
        let mut target = self.target.lock().expect("target lock");
        if target.address != failed {
            return Ok(()); // someone moved on already
        }
        let next = self.endpoints[target.next_endpoint % self.endpoints.len()].clone();
        target.next_endpoint += 1;
        target.channel = channel(&next)?;
        target.address = next;
        Ok(())
    }

    /// After a call or stream failed outside [`RegistryClient::call`]: go
    /// to the leader it names, or else to the next node.
    pub fn after_failure(&self, status: Option<&tonic::Status>) {
        let address = self.current_target();
        let moved = match status.map(classify) {
            Some(Next::Leader(leader)) => self.go_to(&leader),
            _ => self.next_node(&address),
        };
        if let Err(error) = moved {
            tracing::warn!(%error, "cannot move to another registry node");
        }
    }

    /// Sends one message to the leader (see [`RegistryClient::call`]):
    /// `call` is given a client and the message, with the actor attached,
    /// and makes one attempt.
    pub async fn unary<M, T, F, Fut>(
        &self,
        retry: Retry,
        message: &M,
        call: F,
    ) -> Result<T, tonic::Status>
    where
        M: Clone,
        F: Fn(ConsentRegistryClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call(retry, |client| call(client, self.request(message.clone())))
            .await
    }

    /// Calls the leader: `call` is given a client and makes one attempt; it
    /// may be called again, on another node.
    pub async fn call<T, F, Fut>(&self, retry: Retry, call: F) -> Result<T, tonic::Status>
    where
        F: Fn(ConsentRegistryClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let (address, client) = self.current();
            let status = match call(client).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            if started.elapsed() >= self.deadline {
                return Err(status);
            }
            match classify(&status) {
                Next::Leader(leader) => {
                    self.go_to(&leader)?;
                    continue;
                }
                Next::AnotherNode => self.next_node(&address)?,
                Next::AnotherNodeIfIdempotent if retry == Retry::Idempotent => {
                    self.next_node(&address)?
                }
                Next::AnotherNodeIfIdempotent | Next::GiveUp => return Err(status),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

enum Next {
    Leader(String),
    AnotherNode,
    AnotherNodeIfIdempotent,
    GiveUp,
}

fn classify(status: &tonic::Status) -> Next {
    let leader = status
        .metadata()
        .get(LEADER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (status.code(), leader) {
        (tonic::Code::FailedPrecondition, Some(leader)) => Next::Leader(leader),
        // No leader yet, or a node shutting down: it did not act.
        (tonic::Code::Unavailable, _) if is_registry_refusal(status) => Next::AnotherNode,
        // The connection failed: before sending (safe) or after (unknown).
        (tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled, _) => {
            Next::AnotherNodeIfIdempotent
        }
        _ => Next::GiveUp,
    }
}

/// Whether an UNAVAILABLE came from a registry node that did not act
/// (rather than from the transport).
fn is_registry_refusal(status: &tonic::Status) -> bool {
    let message = status.message();
    message.starts_with("no leader is known yet")
        || message.starts_with("the registry node is shutting down")
}

//! The public registry API (`lhcie.registry.v1.ConsentRegistry`), served
//! by the leader.
//!
//! - [`authorise`]: who is asking (the client certificate) and what they
//!   may call: the authorisation table.
//! - [`writes`]: proposing commands, broken rules as statuses.
//! - [`leader`]: redirecting to the leader, and the periodic proof of
//!   leadership that watch heartbeats carry.
//! - [`watch`]: the change feed caches follow.
//! - `decide`: decisions on the registry's own copy.

pub mod authorise;
mod decide;
pub mod leader;
pub mod watch;
pub mod writes;

use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use lhcie_consent::{
    Agreement, CarerGrant, Command, ConsentModel, Directive, IsaParty, IsaTerms, OrgRef, Signature,
};
use lhcie_hub_core::RouteTable;
use lhcie_model::{NhsNumber, OdsCode, ValidationError};
use lhcie_proto::convert::registry::agreement_to_wire;
use lhcie_proto::registry as pb;
use pb::consent_registry_server::ConsentRegistry;
use time::OffsetDateTime;
use tokio_stream::wrappers::ReceiverStream;

use self::authorise::{Authentication, Rpc, WatchLimits};
use self::leader::Leadership;
use self::watch::WatchContext;
use crate::store::Registry;
use crate::types::{NodeId, Outcome, Raft};

/// Directives per replicated write in an import.
pub const IMPORT_CHUNK: usize = 2000;

/// The service.
#[derive(Clone)]
pub struct RegistryApi {
    pub(crate) raft: Raft,
    pub(crate) registry: Arc<Registry>,
    pub(crate) node_id: NodeId,
    pub(crate) leadership: Leadership,
    pub(crate) placements: Arc<RouteTable>,
    pub(crate) consent_model: ConsentModel,
    pub(crate) max_batch: usize,
    pub(crate) watch: WatchContext,
    pub(crate) auth: Authentication,
    pub(crate) watch_limits: WatchLimits,
}

impl RegistryApi {
    /// The API of one node.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        raft: Raft,
        registry: Arc<Registry>,
        node_id: NodeId,
        placements: Arc<RouteTable>,
        consent_model: ConsentModel,
        max_batch: usize,
        watch_heartbeat: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
        auth: Authentication,
    ) -> Self {
        let leadership = Leadership::new(raft.clone(), node_id);
        let confirmations =
            leader::spawn_confirmer(raft.clone(), node_id, watch_heartbeat, shutdown.clone());
        let watch = WatchContext {
            registry: registry.clone(),
            leadership: leadership.clone(),
            confirmations,
            heartbeat: watch_heartbeat,
            consent_model,
            shutdown,
        };
        Self {
            raft,
            registry,
            node_id,
            leadership,
            placements,
            consent_model,
            max_batch,
            watch,
            auth,
            watch_limits: WatchLimits::default(),
        }
    }

    /// The caller's identity, recorded as the actor, if it may call `rpc`.
    fn actor<T>(&self, request: &tonic::Request<T>, rpc: Rpc) -> Result<String, tonic::Status> {
        Ok(self.auth.authorise(request, rpc)?.identity)
    }

    fn agreement_reply(&self, revision: u64, agreement: &Agreement) -> pb::AgreementReply {
        pb::AgreementReply {
            agreement: Some(agreement_to_wire(agreement, OffsetDateTime::now_utc())),
            revision,
        }
    }

    async fn agreement_command(
        &self,
        actor: String,
        command: Command,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        match self.propose(command, actor).await? {
            (revision, Outcome::Agreement(agreement)) => Ok(tonic::Response::new(
                self.agreement_reply(revision, &agreement),
            )),
            (_, other) => Err(unexpected(other)),
        }
    }

    async fn directive_command(
        &self,
        actor: String,
        command: Command,
    ) -> Result<tonic::Response<pb::DirectiveReply>, tonic::Status> {
        match self.propose(command, actor).await? {
            (revision, Outcome::Directive(directive)) => {
                Ok(tonic::Response::new(pb::DirectiveReply {
                    directive: Some(directive.into()),
                    revision,
                }))
            }
            (_, other) => Err(unexpected(other)),
        }
    }

    async fn grant_command(
        &self,
        actor: String,
        command: Command,
    ) -> Result<tonic::Response<pb::CarerGrantReply>, tonic::Status> {
        match self.propose(command, actor).await? {
            (revision, Outcome::Grant(grant)) => Ok(tonic::Response::new(pb::CarerGrantReply {
                grant: Some(grant.into()),
                revision,
            })),
            (_, other) => Err(unexpected(other)),
        }
    }
}

fn unexpected(outcome: Outcome) -> tonic::Status {
    tonic::Status::internal(format!("unexpected outcome {}", outcome_name(&outcome)))
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Agreement(_) => "agreement",
        Outcome::Directive(_) => "directive",
        Outcome::Grant(_) => "grant",
        Outcome::Imported { .. } => "import",
        Outcome::Nothing => "nothing",
    }
}

fn invalid(error: ValidationError) -> tonic::Status {
    tonic::Status::invalid_argument(error.to_string())
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, tonic::Status> {
    value.ok_or_else(|| invalid(ValidationError::missing(field)))
}

fn terms(terms: Option<pb::IsaTerms>) -> Result<IsaTerms, tonic::Status> {
    IsaTerms::try_from(required(terms, "terms")?).map_err(|e| invalid(e.within("terms")))
}

fn id(value: String, field: &str) -> Result<String, tonic::Status> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(invalid(ValidationError::missing(field)));
    }
    Ok(value)
}

fn patient(value: &str) -> Result<NhsNumber, tonic::Status> {
    NhsNumber::parse(value.trim())
        .map_err(|e| tonic::Status::invalid_argument(format!("nhs_number: {e}")))
}

impl RegistryApi {
    /// Every party of an agreement must be in the topology: an organisation
    /// an exchange serves (the topology admits only organisations the ODS
    /// reference data lists as open), an exchange, or a region of one. An
    /// agreement naming anything else could never be signed for or used.
    fn check_parties(&self, terms: &IsaTerms) -> Result<(), tonic::Status> {
        let unknown: Vec<String> = terms
            .parties
            .iter()
            .filter(|party| match party {
                IsaParty::Organisation(code) => self.placements.placement(code).is_none(),
                IsaParty::Exchange(id) => !self.placements.knows_exchange(id),
                IsaParty::Region(region) => !self.placements.knows_region(region),
            })
            .map(|party| match party {
                IsaParty::Organisation(code) => format!(
                    "organisation {code} is not served by any exchange (unknown to the ODS reference data, closed, or not connected)"
                ),
                IsaParty::Exchange(id) => format!("exchange {id} is not in the topology"),
                IsaParty::Region(region) => format!("region {region} has no exchange in the topology"),
            })
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(tonic::Status::invalid_argument(format!(
                "terms.parties: {}",
                unknown.join("; ")
            )))
        }
    }

    /// A signature for a region or exchange party must come from an
    /// organisation of that region or exchange (an organisation party's
    /// own code is checked by the agreement).
    fn check_signatory(&self, signature: &Signature) -> Result<(), tonic::Status> {
        if matches!(signature.party, IsaParty::Organisation(_)) {
            return Ok(());
        }
        let code = &signature.organisation;
        let belongs = self.placements.placement(code).is_some_and(|at| {
            signature.party.includes(&OrgRef {
                ods_code: code,
                exchange: &at.exchange,
                region: &at.region,
            })
        });
        if belongs {
            Ok(())
        } else {
            Err(tonic::Status::failed_precondition(format!(
                "organisation {code} cannot sign for party {}: it is not one of its organisations",
                signature.party
            )))
        }
    }
}

fn store_failed(error: crate::store::StoreFailure) -> tonic::Status {
    tonic::Status::internal(format!("registry store: {error}"))
}

type WatchStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::WatchEvent, tonic::Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ConsentRegistry for RegistryApi {
    async fn draft_isa(
        &self,
        request: tonic::Request<pb::DraftIsaRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::DraftIsa)?;
        let body = request.into_inner();
        let terms = terms(body.terms)?;
        self.check_parties(&terms)?;
        let command = Command::DraftIsa {
            id: id(body.isa_id, "isa_id")?,
            terms,
        };
        self.agreement_command(actor, command).await
    }

    async fn amend_isa(
        &self,
        request: tonic::Request<pb::AmendIsaRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::AmendIsa)?;
        let body = request.into_inner();
        let terms = terms(body.terms)?;
        self.check_parties(&terms)?;
        let command = Command::AmendIsa {
            id: id(body.isa_id, "isa_id")?,
            terms,
        };
        self.agreement_command(actor, command).await
    }

    async fn sign_isa(
        &self,
        request: tonic::Request<pb::SignIsaRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::SignIsa)?;
        let body = request.into_inner();
        let mut signature = Signature::try_from(required(body.signature, "signature")?)
            .map_err(|e| invalid(e.within("signature")))?;
        self.check_signatory(&signature)?;
        // The person is asserted by the caller; the record says which
        // authenticated service asserted it.
        signature.signer = format!("{} (asserted by {actor})", signature.signer.trim());
        let command = Command::SignIsa {
            id: id(body.isa_id, "isa_id")?,
            version: body.version,
            signature,
        };
        self.agreement_command(actor, command).await
    }

    async fn suspend_isa(
        &self,
        request: tonic::Request<pb::IsaStatusRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::SuspendIsa)?;
        let body = request.into_inner();
        let command = Command::SuspendIsa {
            id: id(body.isa_id, "isa_id")?,
            reason: id(body.reason, "reason")?,
        };
        self.agreement_command(actor, command).await
    }

    async fn reinstate_isa(
        &self,
        request: tonic::Request<pb::IsaStatusRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::ReinstateIsa)?;
        let body = request.into_inner();
        let command = Command::ReinstateIsa {
            id: id(body.isa_id, "isa_id")?,
            reason: id(body.reason, "reason")?,
        };
        self.agreement_command(actor, command).await
    }

    async fn revoke_isa(
        &self,
        request: tonic::Request<pb::IsaStatusRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::RevokeIsa)?;
        let body = request.into_inner();
        let command = Command::RevokeIsa {
            id: id(body.isa_id, "isa_id")?,
            reason: id(body.reason, "reason")?,
        };
        self.agreement_command(actor, command).await
    }

    async fn get_isa(
        &self,
        request: tonic::Request<pb::GetIsaRequest>,
    ) -> Result<tonic::Response<pb::AgreementReply>, tonic::Status> {
        self.auth.authorise(&request, Rpc::GetIsa)?;
        self.leadership.require()?;
        let isa_id = id(request.into_inner().isa_id, "isa_id")?;
        let revision = self.registry.revision();
        let agreement = self
            .registry
            .agreement(&isa_id)
            .ok_or_else(|| tonic::Status::not_found(format!("no agreement {isa_id}")))?;
        Ok(tonic::Response::new(
            self.agreement_reply(revision, &agreement),
        ))
    }

    async fn list_isas(
        &self,
        request: tonic::Request<pb::ListIsasRequest>,
    ) -> Result<tonic::Response<pb::ListIsasResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::ListIsas)?;
        self.leadership.require()?;
        let party = request.into_inner().party_ods_code;
        let revision = self.registry.revision();
        let mut agreements = self.registry.agreements();
        if !party.trim().is_empty() {
            let code = OdsCode::parse(party.trim())
                .map_err(|e| tonic::Status::invalid_argument(format!("party_ods_code: {e}")))?;
            let placement = self.placements.placement(&code).cloned();
            agreements.retain(|agreement| {
                agreement.versions.iter().any(|version| {
                    version
                        .terms
                        .parties
                        .iter()
                        .any(|party| match (&placement, party) {
                            (Some(at), party) => party.includes(&OrgRef {
                                ods_code: &code,
                                exchange: &at.exchange,
                                region: &at.region,
                            }),
                            (None, IsaParty::Organisation(named)) => named == &code,
                            (None, _) => false,
                        })
                })
            });
        }
        let now = OffsetDateTime::now_utc();
        Ok(tonic::Response::new(pb::ListIsasResponse {
            agreements: agreements
                .iter()
                .map(|a| agreement_to_wire(a, now))
                .collect(),
            revision,
        }))
    }

    async fn set_directive(
        &self,
        request: tonic::Request<pb::SetDirectiveRequest>,
    ) -> Result<tonic::Response<pb::DirectiveReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::SetDirective)?;
        let directive = Directive::try_from(required(request.into_inner().directive, "directive")?)
            .map_err(|e| invalid(e.within("directive")))?;
        self.directive_command(actor, Command::SetDirective(directive))
            .await
    }

    async fn withdraw_directive(
        &self,
        request: tonic::Request<pb::WithdrawDirectiveRequest>,
    ) -> Result<tonic::Response<pb::DirectiveReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::WithdrawDirective)?;
        let body = request.into_inner();
        let command = Command::WithdrawDirective {
            id: id(body.directive_id, "directive_id")?,
            reason: id(body.reason, "reason")?,
        };
        self.directive_command(actor, command).await
    }

    async fn list_directives(
        &self,
        request: tonic::Request<pb::PatientRequest>,
    ) -> Result<tonic::Response<pb::ListDirectivesResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::ListDirectives)?;
        self.leadership.require()?;
        let nhs_number = patient(&request.into_inner().nhs_number)?;
        let revision = self.registry.revision();
        let directives = self
            .registry
            .directives_of(&nhs_number)
            .map_err(store_failed)?;
        Ok(tonic::Response::new(pb::ListDirectivesResponse {
            directives: directives.into_iter().map(Into::into).collect(),
            revision,
        }))
    }

    async fn directive_history(
        &self,
        request: tonic::Request<pb::PatientRequest>,
    ) -> Result<tonic::Response<pb::DirectiveHistoryResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::DirectiveHistory)?;
        self.leadership.require()?;
        let nhs_number = patient(&request.into_inner().nhs_number)?;
        let events = self.registry.history(&nhs_number).map_err(store_failed)?;
        Ok(tonic::Response::new(pb::DirectiveHistoryResponse {
            events: events
                .into_iter()
                .map(|event| pb::DirectiveEvent {
                    revision: event.revision,
                    action: event.action.as_str().to_owned(),
                    directive: Some(event.directive.into()),
                })
                .collect(),
        }))
    }

    async fn import_directives(
        &self,
        request: tonic::Request<tonic::Streaming<pb::ImportDirectivesRequest>>,
    ) -> Result<tonic::Response<pb::ImportDirectivesResponse>, tonic::Status> {
        let actor = self.actor(&request, Rpc::ImportDirectives)?;
        self.leadership.require()?;
        let mut batches = request.into_inner();
        let mut reply = pb::ImportDirectivesResponse::default();
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            let source_exchange = id(batch.source_exchange_id, "source_exchange_id")?;
            let mut valid = Vec::with_capacity(batch.directives.len());
            for (index, wire) in batch.directives.into_iter().enumerate() {
                let label = if wire.directive_id.is_empty() {
                    format!("directive #{index}")
                } else {
                    wire.directive_id.clone()
                };
                match Directive::try_from(wire) {
                    Ok(directive) => valid.push(directive),
                    Err(error) => {
                        reply.rejected += 1;
                        reply.errors.push(format!("{label}: {error}"));
                    }
                }
            }
            for chunk in valid.chunks(IMPORT_CHUNK) {
                let command = Command::ImportDirectives {
                    source_exchange: source_exchange.clone(),
                    directives: chunk.to_vec(),
                };
                match self.propose(command, actor.clone()).await? {
                    (revision, Outcome::Imported { imported, rejected }) => {
                        reply.imported += imported;
                        reply.rejected += rejected.len() as u64;
                        reply.errors.extend(rejected);
                        reply.revision = revision;
                    }
                    (_, other) => return Err(unexpected(other)),
                }
            }
        }
        // Keep the reply small: the counts are exact, the first errors are
        // examples.
        reply.errors.truncate(1000);
        Ok(tonic::Response::new(reply))
    }

    async fn grant_carer(
        &self,
        request: tonic::Request<pb::GrantCarerRequest>,
    ) -> Result<tonic::Response<pb::CarerGrantReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::GrantCarer)?;
        let grant = CarerGrant::try_from(required(request.into_inner().grant, "grant")?)
            .map_err(|e| invalid(e.within("grant")))?;
        self.grant_command(actor, Command::GrantCarer(grant)).await
    }

    async fn revoke_carer(
        &self,
        request: tonic::Request<pb::RevokeCarerRequest>,
    ) -> Result<tonic::Response<pb::CarerGrantReply>, tonic::Status> {
        let actor = self.actor(&request, Rpc::RevokeCarer)?;
        let body = request.into_inner();
        let command = Command::RevokeCarer {
            id: id(body.grant_id, "grant_id")?,
            reason: id(body.reason, "reason")?,
        };
        self.grant_command(actor, command).await
    }

    async fn list_carer_grants(
        &self,
        request: tonic::Request<pb::PatientRequest>,
    ) -> Result<tonic::Response<pb::ListCarerGrantsResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::ListCarerGrants)?;
        self.leadership.require()?;
        let nhs_number = patient(&request.into_inner().nhs_number)?;
        let grants = self.registry.grants_of(&nhs_number).map_err(store_failed)?;
        Ok(tonic::Response::new(pb::ListCarerGrantsResponse {
            grants: grants.into_iter().map(Into::into).collect(),
        }))
    }

    async fn decide(
        &self,
        request: tonic::Request<pb::DecideRequest>,
    ) -> Result<tonic::Response<pb::Decision>, tonic::Status> {
        self.auth.authorise(&request, Rpc::Decide)?;
        self.leadership.require()?;
        self.decide_one(request.into_inner())
            .map(tonic::Response::new)
    }

    async fn decide_batch(
        &self,
        request: tonic::Request<pb::DecideBatchRequest>,
    ) -> Result<tonic::Response<pb::DecideBatchResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::DecideBatch)?;
        self.leadership.require()?;
        let requests = request.into_inner().requests;
        if requests.len() > self.max_batch {
            return Err(tonic::Status::invalid_argument(format!(
                "{} decisions asked for; at most {} per batch",
                requests.len(),
                self.max_batch
            )));
        }
        let decisions = requests
            .into_iter()
            .enumerate()
            .map(|(index, request)| {
                self.decide_one(request).map_err(|status| {
                    tonic::Status::new(
                        status.code(),
                        format!("requests[{index}]: {}", status.message()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(tonic::Response::new(pb::DecideBatchResponse { decisions }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: tonic::Request<pb::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let caller = self.auth.authorise(&request, Rpc::Watch)?;
        self.leadership.require()?;
        let place = self.watch_limits.take(&caller.identity)?;
        let from = request.into_inner().from_revision;
        let (out, events) = tokio::sync::mpsc::channel(1024);
        let context = self.watch.clone();
        tokio::spawn(async move {
            let _place = place;
            watch::run(context, from, out).await
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(events))))
    }

    async fn status(
        &self,
        request: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StatusResponse>, tonic::Status> {
        self.auth.authorise(&request, Rpc::Status)?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader_api_address = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .map(|node| node.api_address.clone())
            .unwrap_or_default();
        Ok(tonic::Response::new(pb::StatusResponse {
            node_id: self.node_id,
            leader_api_address,
            leader_id: metrics.current_leader.unwrap_or(0),
            revision: self.registry.revision(),
            term: metrics.current_term,
            members: membership
                .nodes()
                .map(|(id, node)| pb::ClusterMember {
                    node_id: *id,
                    raft_address: node.raft_address.clone(),
                    api_address: node.api_address.clone(),
                    voter: voters.contains(id),
                })
                .collect(),
            is_leader: metrics.current_leader == Some(self.node_id),
        }))
    }
}

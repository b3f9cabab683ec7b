//! Decisions on the registry's own copy, for tools and for explaining a
//! decision; the hub decides from its cache instead.

use lhcie_consent::{DecisionRequest, Directive, OrgRef, decide_from_history};
use lhcie_model::{NhsNumber, OdsCode};
use lhcie_proto::convert::registry::{
    category_from_wire, decision_to_wire, purpose_from_wire, time_from_wire,
};
use lhcie_proto::registry as pb;
use time::OffsetDateTime;

use super::RegistryApi;

fn invalid(error: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(error.to_string())
}

impl RegistryApi {
    /// Decides one flow.
    pub(super) fn decide_one(
        &self,
        request: pb::DecideRequest,
    ) -> Result<pb::Decision, tonic::Status> {
        let current = self.registry.revision();
        let nhs_number = match request.nhs_number.trim() {
            "" => None,
            text => Some(NhsNumber::parse(text).map_err(|e| invalid(format!("nhs_number: {e}")))?),
        };
        let sender =
            OdsCode::parse(&request.sender_ods).map_err(|e| invalid(format!("sender_ods: {e}")))?;
        let recipient = OdsCode::parse(&request.recipient_ods)
            .map_err(|e| invalid(format!("recipient_ods: {e}")))?;
        let placement = |code: &OdsCode, field: &str| {
            self.placements.placement(code).ok_or_else(|| {
                tonic::Status::not_found(format!(
                    "{field}: organisation {code} is not in the topology"
                ))
            })
        };
        let sender_at = placement(&sender, "sender_ods")?;
        let recipient_at = placement(&recipient, "recipient_ods")?;
        let category = category_from_wire(request.category, "category").map_err(invalid)?;
        let purpose = purpose_from_wire(request.purpose, "purpose").map_err(invalid)?;
        let at = time_from_wire(request.at, "at")
            .map_err(invalid)?
            .unwrap_or_else(OffsetDateTime::now_utc);
        let (revision, known_at) = self.as_of(request.as_of_revision, current)?;
        let directive_states: Vec<Directive> = match &nhs_number {
            Some(nhs_number) => self
                .registry
                .history(nhs_number)
                .map_err(|e| tonic::Status::internal(format!("reading directives: {e}")))?
                .into_iter()
                .filter(|event| event.revision <= revision)
                .map(|event| event.directive)
                .collect(),
            None => Vec::new(),
        };
        let question = DecisionRequest {
            nhs_number: nhs_number.as_ref(),
            sender: OrgRef {
                ods_code: &sender,
                exchange: &sender_at.exchange,
                region: &sender_at.region,
            },
            recipient: OrgRef {
                ods_code: &recipient,
                exchange: &recipient_at.exchange,
                region: &recipient_at.region,
            },
            category,
            purpose,
            at,
        };
        let agreements = self.registry.agreements.read().expect("agreements lock");
        let decision = decide_from_history(
            &question,
            agreements.values(),
            &directive_states,
            self.consent_model,
            known_at,
        );
        Ok(decision_to_wire(&decision, revision))
    }

    /// The revision to decide as of, and, when it is a past one, the time
    /// of its last proposal (what was recorded by then is what the registry
    /// held).
    fn as_of(
        &self,
        asked: u64,
        current: u64,
    ) -> Result<(u64, Option<OffsetDateTime>), tonic::Status> {
        if asked == 0 || asked == current {
            return Ok((current, None));
        }
        if asked > current {
            return Err(tonic::Status::failed_precondition(format!(
                "as_of_revision {asked} is beyond this node's revision {current}: ask the leader, or again shortly"
            )));
        }
        let read_failed = |e: crate::store::StoreFailure| {
            tonic::Status::internal(format!("reading the log's clock: {e}"))
        };
        if let Some(from) = self.registry.clocks_from().map_err(read_failed)?
            && asked <= from
        {
            return Err(tonic::Status::failed_precondition(format!(
                "as_of_revision {asked} is from before this registry recorded revision times (it was upgraded at revision {from}): ask by time (`at`) without a revision"
            )));
        }
        let clock = self.registry.clock_at(asked).map_err(read_failed)?;
        Ok((asked, Some(clock.unwrap_or(OffsetDateTime::UNIX_EPOCH))))
    }
}

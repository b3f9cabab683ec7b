//! Replicated writes: proposing to Raft (as the authenticated caller), and what broken rules
//! mean on the wire.

use std::time::{Duration, Instant};

use lhcie_consent::{Command, CommandError, IsaError, Proposal};
use time::OffsetDateTime;

use super::RegistryApi;
use crate::metrics::WriteResult;
use crate::types::{Applied, Outcome};

/// The metadata entry older clients named themselves in. It has no
/// authority: the actor is the caller's certificate identity
/// (`authorise`).
pub const ACTOR_HEADER: &str = "lhcie-actor";

/// How long a write may wait to be committed before the caller is told
/// its outcome is unknown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A broken rule on the wire. Messages name records by id, never a
/// patient.
pub fn rule_broken(error: CommandError) -> tonic::Status {
    let message = error.to_string();
    match error {
        CommandError::NoSuchAgreement(_)
        | CommandError::NoSuchDirective(_)
        | CommandError::NoSuchGrant(_)
        | CommandError::Isa(IsaError::NoSuchVersion { .. }) => tonic::Status::not_found(message),
        CommandError::AgreementExists(_) => tonic::Status::already_exists(message),
        CommandError::Invalid(_) | CommandError::Isa(IsaError::InvalidTerms(_)) => {
            tonic::Status::invalid_argument(message)
        }
        CommandError::AlreadyWithdrawn(_) | CommandError::Isa(_) => {
            tonic::Status::failed_precondition(message)
        }
    }
}

impl RegistryApi {
    /// Proposes `command` on behalf of `actor` and waits until it is
    /// committed by a quorum and applied here. The time recorded is the
    /// leader's clock now.
    pub(super) async fn propose(
        &self,
        command: Command,
        actor: String,
    ) -> Result<(u64, Outcome), tonic::Status> {
        self.leadership.require()?;
        let received = Instant::now();
        let kind = lhcie_consent::commands::name(&command);
        let proposal = Proposal {
            command,
            by: actor,
            at: OffsetDateTime::now_utc(),
        };
        let written = match tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(proposal))
            .await
        {
            Ok(Ok(written)) => written,
            Ok(Err(error)) => {
                crate::metrics::write(kind, WriteResult::Failed, None);
                return Err(self.leadership.write_failed(error));
            }
            Err(_) => {
                crate::metrics::write(kind, WriteResult::Failed, None);
                return Err(tonic::Status::unavailable(format!(
                    "{kind} was not committed within {} s (the cluster may have lost its quorum); it may still be applied: read it back before retrying",
                    WRITE_TIMEOUT.as_secs()
                )));
            }
        };
        let Applied { revision, outcome } = written.data;
        let result = if outcome.is_ok() {
            WriteResult::Applied
        } else {
            WriteResult::Refused
        };
        crate::metrics::write(kind, result, Some(received.elapsed()));
        outcome.map(|o| (revision, o)).map_err(rule_broken)
    }
}

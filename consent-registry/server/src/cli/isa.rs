//! `registry isa …`: drafting, signing, amending, suspending, revoking and
//! listing information sharing agreements.

use clap::{Args, Subcommand};
use lhcie_proto::registry as pb;
use lhcie_registry_client::{RegistryClient, Retry};

use super::args;
use super::print;

#[derive(Subcommand)]
pub enum IsaCommand {
    /// Draft a new agreement (version 1).
    Draft(TermsArgs),
    /// Draft the next version of an agreement; the version in force stays
    /// in force until the new one is signed by every party and valid.
    Amend(TermsArgs),
    /// Sign a version on behalf of a party.
    Sign {
        /// The agreement.
        #[arg(long)]
        id: String,
        /// The version.
        #[arg(long)]
        version: u32,
        /// The party signed for: ods:CODE, exchange:ID or region:CODE.
        #[arg(long, value_parser = args::party)]
        party: pb::IsaParty,
        /// Who signs (a person).
        #[arg(long)]
        signer: String,
        /// Their role, e.g. "Caldicott Guardian".
        #[arg(long)]
        role: String,
        /// Their organisation's ODS code.
        #[arg(long, value_parser = args::ods)]
        organisation: String,
    },
    /// Suspend an agreement: nothing flows under it until reinstated.
    Suspend(StatusArgs),
    /// Lift a suspension.
    Reinstate(StatusArgs),
    /// Revoke an agreement for good.
    Revoke(StatusArgs),
    /// One agreement, every version.
    Show {
        /// The agreement.
        #[arg(long)]
        id: String,
    },
    /// Every agreement (or those a party is in).
    List {
        /// Only agreements this organisation is a party to (directly, or by
        /// its exchange or region).
        #[arg(long, value_parser = args::ods)]
        party: Option<String>,
    },
}

#[derive(Args)]
pub struct TermsArgs {
    /// The agreement's id.
    #[arg(long)]
    id: String,
    /// Its title.
    #[arg(long)]
    title: String,
    /// A party (repeat): ods:CODE, exchange:ID or region:CODE.
    #[arg(long = "party", required = true, value_parser = args::party)]
    parties: Vec<pb::IsaParty>,
    /// A purpose of use (repeat), e.g. direct-care.
    #[arg(long = "purpose", required = true, value_parser = args::purpose)]
    purposes: Vec<i32>,
    /// A category of information (repeat), e.g. discharge-summary.
    #[arg(long = "category", required = true, value_parser = args::category)]
    categories: Vec<i32>,
    /// The legal basis for sharing.
    #[arg(long)]
    legal_basis: String,
    /// Valid from (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = args::start)]
    from: prost_types::Timestamp,
    /// Valid until (inclusive date, or RFC 3339 instant); open-ended if
    /// absent.
    #[arg(long, value_parser = args::end)]
    until: Option<prost_types::Timestamp>,
    /// Where the signed document is kept.
    #[arg(long)]
    document: Option<String>,
    /// Let an emergency-care flow override a patient's refusal under this
    /// agreement (break-glass; every override is recorded, reviewed at the
    /// hub and told to the patient).
    #[arg(long)]
    emergency_override: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The agreement.
    #[arg(long)]
    id: String,
    /// Why (recorded).
    #[arg(long)]
    reason: String,
}

impl TermsArgs {
    fn terms(&self) -> pb::IsaTerms {
        pb::IsaTerms {
            title: self.title.clone(),
            parties: self.parties.clone(),
            purposes: self.purposes.clone(),
            categories: self.categories.clone(),
            legal_basis: self.legal_basis.clone(),
            valid_from: Some(self.from),
            valid_until: self.until,
            document_reference: self.document.clone().unwrap_or_default(),
            emergency_override: self.emergency_override,
        }
    }
}

pub async fn run(client: &RegistryClient, command: &IsaCommand) -> anyhow::Result<()> {
    let reply = match command {
        IsaCommand::Draft(terms) => {
            let request = pb::DraftIsaRequest {
                isa_id: terms.id.clone(),
                terms: Some(terms.terms()),
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.draft_isa(r).await
                })
                .await?
        }
        IsaCommand::Amend(terms) => {
            let request = pb::AmendIsaRequest {
                isa_id: terms.id.clone(),
                terms: Some(terms.terms()),
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.amend_isa(r).await
                })
                .await?
        }
        IsaCommand::Sign {
            id,
            version,
            party,
            signer,
            role,
            organisation,
        } => {
            let request = pb::SignIsaRequest {
                isa_id: id.clone(),
                version: *version,
                signature: Some(pb::Signature {
                    party: Some(party.clone()),
                    signer: signer.clone(),
                    role: role.clone(),
                    organisation_ods: organisation.clone(),
                    signed_at: None,
                }),
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.sign_isa(r).await
                })
                .await?
        }
        IsaCommand::Suspend(status)
        | IsaCommand::Reinstate(status)
        | IsaCommand::Revoke(status) => {
            let request = pb::IsaStatusRequest {
                isa_id: status.id.clone(),
                reason: status.reason.clone(),
            };
            let which = match command {
                IsaCommand::Suspend(_) => 0,
                IsaCommand::Reinstate(_) => 1,
                _ => 2,
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    match which {
                        0 => c.suspend_isa(r).await,
                        1 => c.reinstate_isa(r).await,
                        _ => c.revoke_isa(r).await,
                    }
                })
                .await?
        }
        IsaCommand::Show { id } => {
            let request = pb::GetIsaRequest { isa_id: id.clone() };
            client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.get_isa(r).await
                })
                .await?
        }
        IsaCommand::List { party } => {
            let request = pb::ListIsasRequest {
                party_ods_code: party.clone().unwrap_or_default(),
            };
            let list = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.list_isas(r).await
                })
                .await?;
            if list.agreements.is_empty() {
                println!("no agreements (registry revision {})", list.revision);
            }
            for agreement in &list.agreements {
                print::agreement_line(agreement);
            }
            return Ok(());
        }
    };
    if let Some(agreement) = &reply.agreement {
        print::agreement(agreement);
    }
    println!("registry revision {}", reply.revision);
    Ok(())
}

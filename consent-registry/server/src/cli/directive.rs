//! `registry directive …` and `registry carer …`: patients' choices and
//! the people they let act for them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use lhcie_proto::registry as pb;
use lhcie_registry_client::{RegistryClient, Retry};

use super::{args, print};

#[derive(Subcommand)]
pub enum DirectiveCommand {
    /// Record (or replace) a directive.
    Set(SetArgs),
    /// Withdraw a directive (it stays in the history).
    Withdraw {
        /// The directive.
        #[arg(long)]
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// A patient's directives.
    List {
        /// The patient.
        #[arg(long, value_parser = args::nhs)]
        nhs: String,
    },
    /// Every change to a patient's directives.
    History {
        /// The patient.
        #[arg(long, value_parser = args::nhs)]
        nhs: String,
    },
    /// Import an exchange's existing consent records from a CSV file with
    /// the header `directive_id,nhs_number,rule,value,valid_from,valid_until`
    /// (rule: dissent-all, deny-organisation, deny-category,
    /// allow-organisation; value: the ODS code or category).
    Import {
        /// The CSV file.
        #[arg(long)]
        file: PathBuf,
        /// The exchange the records come from.
        #[arg(long)]
        exchange: String,
        /// Directives per message.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

#[derive(Args)]
pub struct SetArgs {
    /// The directive's id (setting it again replaces it).
    #[arg(long)]
    id: String,
    /// The patient.
    #[arg(long, value_parser = args::nhs)]
    nhs: String,
    /// Dissent from all sharing.
    #[arg(long, group = "rule")]
    dissent_all: bool,
    /// Deny this organisation (ODS code).
    #[arg(long, group = "rule", value_parser = args::ods)]
    deny_organisation: Option<String>,
    /// Deny this category of information.
    #[arg(long, group = "rule", value_parser = args::category)]
    deny_category: Option<i32>,
    /// Allow this organisation despite a broader dissent (and, under
    /// explicit opt-in, the opt-in).
    #[arg(long, group = "rule", value_parser = args::ods)]
    allow_organisation: Option<String>,
    /// In force from (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = args::start)]
    from: prost_types::Timestamp,
    /// In force until (inclusive date or RFC 3339 instant).
    #[arg(long, value_parser = args::end)]
    until: Option<prost_types::Timestamp>,
    /// Where it came from: patient-account or clinician.
    #[arg(long, default_value = "clinician")]
    source: String,
}

#[derive(Subcommand)]
pub enum CarerCommand {
    /// Record a patient's grant to a carer or proxy.
    Grant {
        /// The grant's id.
        #[arg(long)]
        id: String,
        /// The patient.
        #[arg(long, value_parser = args::nhs)]
        nhs: String,
        /// The carer's name.
        #[arg(long)]
        name: String,
        /// How to reach them.
        #[arg(long)]
        contact: String,
        /// What they may do (repeat), e.g. view-record, manage-sharing.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// From (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_parser = args::start)]
        from: prost_types::Timestamp,
        /// Until (inclusive date or RFC 3339 instant).
        #[arg(long, value_parser = args::end)]
        until: Option<prost_types::Timestamp>,
    },
    /// Revoke a grant.
    Revoke {
        /// The grant.
        #[arg(long)]
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// A patient's grants.
    List {
        /// The patient.
        #[arg(long, value_parser = args::nhs)]
        nhs: String,
    },
}

fn rule_of(args: &SetArgs) -> anyhow::Result<pb::directive::Rule> {
    use pb::directive::Rule;
    Ok(
        match (
            &args.deny_organisation,
            args.deny_category,
            &args.allow_organisation,
        ) {
            (Some(code), _, _) => Rule::DenyOrganisation(code.clone()),
            (_, Some(category), _) => Rule::DenyCategory(category),
            (_, _, Some(code)) => Rule::AllowOrganisation(code.clone()),
            _ if args.dissent_all => Rule::DissentAll(true),
            _ => anyhow::bail!(
                "give one of --dissent-all, --deny-organisation, --deny-category, --allow-organisation"
            ),
        },
    )
}

fn source_of(text: &str) -> anyhow::Result<i32> {
    Ok(match text {
        "patient-account" => pb::DirectiveSource::PatientAccount as i32,
        "clinician" => pb::DirectiveSource::Clinician as i32,
        other => anyhow::bail!(
            "--source {other}: patient-account or clinician (imports use `directive import`)"
        ),
    })
}

pub async fn run(client: &RegistryClient, command: &DirectiveCommand) -> anyhow::Result<()> {
    match command {
        DirectiveCommand::Set(set) => {
            let request = pb::SetDirectiveRequest {
                directive: Some(pb::Directive {
                    directive_id: set.id.clone(),
                    nhs_number: set.nhs.clone(),
                    rule: Some(rule_of(set)?),
                    valid_from: Some(set.from),
                    valid_until: set.until,
                    source: source_of(&set.source)?,
                    ..Default::default()
                }),
            };
            // Setting a directive by id twice is setting it once.
            let reply = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.set_directive(r).await
                })
                .await?;
            if let Some(directive) = &reply.directive {
                print::directive(directive);
            }
            println!("registry revision {}", reply.revision);
        }
        DirectiveCommand::Withdraw { id, reason } => {
            let request = pb::WithdrawDirectiveRequest {
                directive_id: id.clone(),
                reason: reason.clone(),
            };
            let reply = client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.withdraw_directive(r).await
                })
                .await?;
            if let Some(directive) = &reply.directive {
                print::directive(directive);
            }
            println!("registry revision {}", reply.revision);
        }
        DirectiveCommand::List { nhs } => {
            let request = pb::PatientRequest {
                nhs_number: nhs.clone(),
            };
            let reply = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.list_directives(r).await
                })
                .await?;
            if reply.directives.is_empty() {
                println!("no directives: the consent model decides for this patient");
            }
            for directive in &reply.directives {
                print::directive(directive);
            }
        }
        DirectiveCommand::History { nhs } => {
            let request = pb::PatientRequest {
                nhs_number: nhs.clone(),
            };
            let reply = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.directive_history(r).await
                })
                .await?;
            for event in &reply.events {
                print!("revision {} {}: ", event.revision, event.action);
                if let Some(directive) = &event.directive {
                    print::directive(directive);
                }
            }
        }
        DirectiveCommand::Import {
            file,
            exchange,
            batch,
        } => import(client, file, exchange, *batch).await?,
    }
    Ok(())
}

async fn import(
    client: &RegistryClient,
    file: &PathBuf,
    exchange: &str,
    batch: usize,
) -> anyhow::Result<()> {
    use pb::directive::Rule;
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("reading {}", file.display()))?;
    let mut batches = Vec::new();
    let mut current = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} line {}", file.display(), line + 2))?;
        let field = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
        let at = |what: &str| format!("{} line {}: {what}", file.display(), line + 2);
        let rule = match field(2).as_str() {
            "dissent-all" => Rule::DissentAll(true),
            "deny-organisation" => Rule::DenyOrganisation(field(3)),
            "deny-category" => {
                Rule::DenyCategory(args::category(&field(3)).map_err(|e| anyhow::anyhow!(at(&e)))?)
            }
            "allow-organisation" => Rule::AllowOrganisation(field(3)),
            other => anyhow::bail!(at(&format!("rule `{other}`"))),
        };
        let until = field(5);
        current.push(pb::Directive {
            directive_id: field(0),
            nhs_number: field(1),
            rule: Some(rule),
            valid_from: Some(args::start(&field(4)).map_err(|e| anyhow::anyhow!(at(&e)))?),
            valid_until: if until.is_empty() {
                None
            } else {
                Some(args::end(&until).map_err(|e| anyhow::anyhow!(at(&e)))?)
            },
            source: pb::DirectiveSource::BulkImport as i32,
            ..Default::default()
        });
        if current.len() >= batch.max(1) {
            batches.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    let messages: Vec<pb::ImportDirectivesRequest> = batches
        .into_iter()
        .map(|directives| pb::ImportDirectivesRequest {
            source_exchange_id: exchange.to_owned(),
            directives,
        })
        .collect();
    // Importing the same ids again replaces them: safe to repeat.
    let reply = client
        .call(Retry::Idempotent, |mut c| {
            let request = client.request(tokio_stream::iter(messages.clone()));
            async move { c.import_directives(request).await }
        })
        .await?;
    println!(
        "imported {}, rejected {} (registry revision {})",
        reply.imported, reply.rejected, reply.revision
    );
    for error in &reply.errors {
        println!("  {error}");
    }
    Ok(())
}

pub async fn run_carer(client: &RegistryClient, command: &CarerCommand) -> anyhow::Result<()> {
    match command {
        CarerCommand::Grant {
            id,
            nhs,
            name,
            contact,
            scopes,
            from,
            until,
        } => {
            let request = pb::GrantCarerRequest {
                grant: Some(pb::CarerGrant {
                    grant_id: id.clone(),
                    patient_nhs_number: nhs.clone(),
                    carer_name: name.clone(),
                    carer_contact: contact.clone(),
                    scopes: scopes.clone(),
                    valid_from: Some(*from),
                    valid_until: *until,
                    ..Default::default()
                }),
            };
            let reply = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.grant_carer(r).await
                })
                .await?;
            println!(
                "grant {} recorded (registry revision {})",
                id, reply.revision
            );
        }
        CarerCommand::Revoke { id, reason } => {
            let request = pb::RevokeCarerRequest {
                grant_id: id.clone(),
                reason: reason.clone(),
            };
            let reply = client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.revoke_carer(r).await
                })
                .await?;
            println!(
                "grant {} revoked (registry revision {})",
                id, reply.revision
            );
        }
        CarerCommand::List { nhs } => {
            let request = pb::PatientRequest {
                nhs_number: nhs.clone(),
            };
            let reply = client
                .unary(Retry::Idempotent, &request, |mut c, r| async move {
                    c.list_carer_grants(r).await
                })
                .await?;
            for grant in &reply.grants {
                let state = if grant.revocation.is_some() {
                    "revoked"
                } else {
                    "in the record"
                };
                println!(
                    "{}  {} ({})  scopes {}  valid {} to {}  {}",
                    grant.grant_id,
                    grant.carer_name,
                    grant.carer_contact,
                    grant.scopes.join(","),
                    print::time(&grant.valid_from),
                    print::time(&grant.valid_until),
                    state
                );
            }
        }
    }
    Ok(())
}

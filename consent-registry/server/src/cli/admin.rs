//! `registry decide`, `status`, `cluster`, `seed` and `check-config`.

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};
use lhcie_config::{PolicyConfig, RegistryConfig, Topology};
use lhcie_proto::registry as pb;
use lhcie_proto::registry::cluster_admin_client::ClusterAdminClient;
use lhcie_registry_client::{RegistryClient, Retry};

use super::args;

#[derive(Args)]
pub struct DecideArgs {
    /// The patient (leave out to see what happens without one).
    #[arg(long, value_parser = args::nhs)]
    nhs: Option<String>,
    /// The sending organisation's ODS code.
    #[arg(long, value_parser = args::ods)]
    sender: String,
    /// The receiving organisation's ODS code.
    #[arg(long, value_parser = args::ods)]
    recipient: String,
    /// The category, e.g. discharge-summary.
    #[arg(long, value_parser = args::category)]
    category: i32,
    /// The purpose of use.
    #[arg(long, value_parser = args::purpose, default_value = "direct-care")]
    purpose: i32,
    /// When (default: now). A past moment is decided from the record as
    /// it stood then.
    #[arg(long, value_parser = args::start)]
    at: Option<prost_types::Timestamp>,
    /// With only what the registry held at this revision (e.g. the one a
    /// hub decision was made at, from its audit).
    #[arg(long)]
    as_of_revision: Option<u64>,
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    Add {
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// Its Raft address (host:port).
        #[arg(long)]
        raft: String,
        /// Its API address (host:port).
        #[arg(long)]
        api: String,
    },
    /// Remove a node from the cluster.
    Remove {
        /// The node's id.
        #[arg(long)]
        id: u64,
    },
}

/// Why a decision went the way it did, in words.
pub fn explain(decision: &pb::Decision, sender: &str, recipient: &str) -> String {
    let isa = format!("{} version {}", decision.isa_id, decision.isa_version);
    let directives = decision.directive_ids.join(", ");
    match decision.reason.as_str() {
        "no-agreement" => format!(
            "no information sharing agreement in force covers {sender} to {recipient} for this category and purpose; nothing may flow without one, even in an emergency"
        ),
        "patient-not-identified" => format!(
            "{isa} covers the flow, but without an NHS number the patient's choices cannot be checked, so it is denied (fail closed)"
        ),
        "patient-denied-organisation" => {
            format!(
                "{isa} covers the flow, but the patient's directive {directives} denies {recipient}"
            )
        }
        "patient-denied-category" => format!(
            "{isa} covers the flow, but the patient's directive {directives} denies this category of information"
        ),
        "patient-dissents" => format!(
            "{isa} covers the flow, but the patient dissents from all sharing (directive {directives}) and has not allowed {recipient}"
        ),
        "no-recorded-consent" => format!(
            "{isa} covers the flow, but consent is explicit opt-in and the patient has not allowed {recipient}"
        ),
        "patient-allowed-organisation" => {
            format!(
                "{isa} covers the flow and the patient's directive {directives} allows {recipient}"
            )
        }
        "implied-consent" => format!(
            "{isa} covers the flow and the patient has recorded no objection: consent for direct care is implied"
        ),
        "emergency-override" => format!(
            "{isa} covers the flow; it is emergency care, which overrides the patient's refusal{}: it must be recorded as emergency access",
            if directives.is_empty() {
                String::new()
            } else {
                format!(" (directive {directives})")
            }
        ),
        other => format!("reason {other}"),
    }
}

pub async fn decide(client: &RegistryClient, args: &DecideArgs) -> anyhow::Result<()> {
    let request = pb::DecideRequest {
        nhs_number: args.nhs.clone().unwrap_or_default(),
        sender_ods: args.sender.clone(),
        recipient_ods: args.recipient.clone(),
        category: args.category,
        purpose: args.purpose,
        at: args.at,
        as_of_revision: args.as_of_revision.unwrap_or(0),
    };
    let decision = client
        .unary(Retry::Idempotent, &request, |mut c, r| async move {
            c.decide(r).await
        })
        .await?;
    println!(
        "{}: {}",
        if decision.permitted { "PERMIT" } else { "DENY" },
        explain(&decision, &args.sender, &args.recipient)
    );
    println!("  reason: {}", decision.reason);
    if !decision.isa_id.is_empty() {
        println!("  agreement: {} v{}", decision.isa_id, decision.isa_version);
    }
    if !decision.directive_ids.is_empty() {
        println!("  directives: {}", decision.directive_ids.join(", "));
    }
    for obligation in &decision.obligations {
        let name = pb::Obligation::try_from(*obligation)
            .map(|o| o.as_str_name())
            .unwrap_or("?");
        println!("  obligation: {name}");
    }
    println!("  registry revision {}", decision.revision);
    Ok(())
}

pub async fn status(client: &RegistryClient) -> anyhow::Result<()> {
    let status = client
        .call(Retry::Idempotent, |mut c| {
            let request = client.request(pb::StatusRequest {});
            async move { c.status(request).await }
        })
        .await?;
    println!(
        "node {} ({}), term {}, revision {}",
        status.node_id,
        if status.is_leader {
            "leader"
        } else {
            "follower"
        },
        status.term,
        status.revision
    );
    if status.leader_id == 0 {
        println!("no leader known");
    } else {
        println!(
            "leader: node {} at {}",
            status.leader_id, status.leader_api_address
        );
    }
    for member in &status.members {
        println!(
            "  node {}  raft {}  api {}  {}",
            member.node_id,
            member.raft_address,
            member.api_address,
            if member.voter { "voter" } else { "learner" }
        );
    }
    Ok(())
}

/// The leader's Raft address, from the status of any node.
async fn leader_raft_address(client: &RegistryClient) -> anyhow::Result<String> {
    let status = client
        .call(Retry::Idempotent, |mut c| {
            let request = client.request(pb::StatusRequest {});
            async move { c.status(request).await }
        })
        .await?;
    status
        .members
        .iter()
        .find(|m| m.node_id == status.leader_id)
        .map(|m| m.raft_address.clone())
        .ok_or_else(|| anyhow::anyhow!("no leader is known yet; retry shortly"))
}

pub async fn cluster(
    client: &RegistryClient,
    tls: Option<&lhcie_registry_client::RegistryTls>,
    command: &ClusterCommand,
) -> anyhow::Result<()> {
    let address = leader_raft_address(client).await?;
    let endpoint = match tls {
        Some(tls) => {
            let read = |path: &std::path::Path| {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            let config = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(read(&tls.ca)?))
                .identity(tonic::transport::Identity::from_pem(
                    read(&tls.cert)?,
                    read(&tls.key)?,
                ));
            tonic::transport::Endpoint::from_shared(format!("https://{address}"))?
                .tls_config(config)?
        }
        None => tonic::transport::Endpoint::from_shared(format!("http://{address}"))?,
    };
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to the leader's Raft port {address}"))?;
    let mut admin = ClusterAdminClient::new(channel);
    let reply = match command {
        ClusterCommand::Add { id, raft, api } => {
            admin
                .add_node(pb::AddNodeRequest {
                    node_id: *id,
                    raft_address: raft.clone(),
                    api_address: api.clone(),
                })
                .await?
        }
        ClusterCommand::Remove { id } => {
            admin
                .remove_node(pb::RemoveNodeRequest { node_id: *id })
                .await?
        }
    };
    println!("{}", reply.into_inner().detail);
    Ok(())
}

pub async fn seed(client: &RegistryClient, policy: &Path, topology: &Path) -> anyhow::Result<()> {
    let topology = Topology::load(topology)?;
    let policy = PolicyConfig::load(policy, &topology)?;
    for agreement in &policy.agreements {
        let Some(first) = agreement.versions.first() else {
            continue;
        };
        let request = pb::DraftIsaRequest {
            isa_id: agreement.id.clone(),
            terms: Some(first.terms.clone().into()),
        };
        let drafted = client
            .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                c.draft_isa(r).await
            })
            .await;
        match drafted {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                println!("{}: already in the registry", agreement.id);
                continue;
            }
            Err(status) => {
                return Err(status).with_context(|| format!("drafting {}", agreement.id));
            }
        }
        for signature in &first.signatures {
            // The policy file signs a region or exchange party in the
            // name of no organisation; the registry wants one of the
            // party's own organisations to sign for it.
            let mut signature = signature.clone();
            if let Some(code) = topology.exchanges().iter().find_map(|exchange| {
                exchange.organisations.iter().find(|code| {
                    signature.party.includes(&lhcie_consent::OrgRef {
                        ods_code: code,
                        exchange: &exchange.id,
                        region: &exchange.region,
                    })
                })
            }) {
                signature.organisation = code.clone();
            }
            let request = pb::SignIsaRequest {
                isa_id: agreement.id.clone(),
                version: first.version,
                signature: Some(signature.into()),
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    c.sign_isa(r).await
                })
                .await
                .with_context(|| format!("signing {}", agreement.id))?;
        }
        let suspended = agreement
            .suspensions
            .last()
            .filter(|s| s.reinstated.is_none())
            .map(|s| s.suspended.clone());
        let status_change = [(&suspended, 0), (&agreement.revocation, 1)];
        for (note, which) in status_change {
            let Some(note) = note else { continue };
            let request = pb::IsaStatusRequest {
                isa_id: agreement.id.clone(),
                reason: note.reason.clone(),
            };
            client
                .unary(Retry::OnlyIfNotSent, &request, |mut c, r| async move {
                    if which == 0 {
                        c.suspend_isa(r).await
                    } else {
                        c.revoke_isa(r).await
                    }
                })
                .await?;
        }
        println!(
            "{}: drafted{}",
            agreement.id,
            if first.signatures.is_empty() {
                " (awaiting signatures)".to_owned()
            } else {
                format!(" and signed for {} parties", first.signatures.len())
            }
        );
    }
    for directive in &policy.directives {
        let request = pb::SetDirectiveRequest {
            directive: Some(directive.clone().into()),
        };
        client
            .unary(Retry::Idempotent, &request, |mut c, r| async move {
                c.set_directive(r).await
            })
            .await
            .with_context(|| format!("recording directive {}", directive.id))?;
        println!("{}: recorded", directive.id);
    }
    Ok(())
}

pub fn check_config(file: &Path) -> anyhow::Result<()> {
    let config = RegistryConfig::load(file)?;
    let topology = Topology::load(&config.topology)?;
    let placements = lhcie_registry::node::placements(&topology);
    println!(
        "registry node {}: raft {} (advertised {}), api {} (advertised {}), data in {}",
        config.node_id,
        config.raft.listen,
        config.raft_address(),
        config.api.listen,
        config.api_address(),
        config.data_dir.display()
    );
    match &config.metrics {
        Some(metrics) => println!("metrics on http://{}/metrics", metrics.listen),
        None => println!("no metrics endpoint"),
    }
    match &config.tls {
        Some(tls) => println!(
            "mutual TLS on both ports: CA {}, node certificate {}",
            tls.ca.display(),
            tls.cert.display()
        ),
        None => println!(
            "PLAINTEXT on loopback (development): callers act as {}",
            config.api.insecure_acts_as.as_deref().unwrap_or("nobody")
        ),
    }
    println!(
        "consent model {:?}; topology {} with {} organisations",
        config.consent_model,
        config.topology.display(),
        placements.len()
    );
    if config.cluster.initial_members.is_empty() {
        println!("single-node cluster");
    } else {
        for member in &config.cluster.initial_members {
            println!(
                "  initial member {}: raft {} api {}",
                member.id, member.raft, member.api
            );
        }
    }
    Ok(())
}

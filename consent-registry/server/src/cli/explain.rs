//! `registry explain --audit FILE`: a past message's decisions, from the
//! hub's audit records (`hub audit <message-id>` prints them), made again
//! by the registry for the moment the hub decided, as of the registry
//! revision the hub's copy held. Each is shown beside what the hub
//! recorded, and said to be the same or not.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use lhcie_hub_core::{AuditOutcome, AuditRecipient, AuditRecord};
use lhcie_proto::{canonical, registry as pb};
use lhcie_registry_client::{RegistryClient, Retry};
use time::format_description::well_known::Rfc3339;

use super::admin::explain;

/// Reads the audit records (a file, or `-` for standard input) and explains
/// every recipient's decision; fails if any is not reproduced.
pub async fn run(client: &RegistryClient, audit: &Path) -> anyhow::Result<()> {
    let records = read(audit)?;
    let mut differing = 0;
    for record in &records {
        differing += explain_record(client, record).await?;
    }
    if differing > 0 {
        bail!("{differing} decision(s) were not reproduced: see above");
    }
    Ok(())
}

/// The records in the file: a list of them, or the hub's trace answer
/// (`{"records": [...]}`).
fn read(path: &Path) -> anyhow::Result<Vec<AuditRecord>> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).context("the audit records are not JSON")?;
    let list = match value.get("records") {
        Some(records) => records.clone(),
        None => value,
    };
    serde_json::from_value(list)
        .context("not the hub's audit records (print them with `hub audit <message-id>`)")
}

/// Explains one record; returns how many of its decisions differ.
async fn explain_record(client: &RegistryClient, record: &AuditRecord) -> anyhow::Result<u32> {
    let decided_at = record.decided_at.format(&Rfc3339)?;
    println!(
        "message {} decided by the hub at {decided_at}",
        record.message_id
    );
    let recipients = match &record.outcome {
        AuditOutcome::Routed { recipients } => recipients,
        AuditOutcome::Rejected { reason, .. } => {
            println!("  rejected before any decision ({reason}): nothing to explain");
            return Ok(0);
        }
    };
    let (Some(sender), Some(category), Some(purpose)) =
        (&record.sender, record.category, record.purpose)
    else {
        bail!(
            "record of {} has no sender, category or purpose",
            record.message_id
        );
    };
    let mut differing = 0;
    for recipient in recipients {
        let request = pb::DecideRequest {
            nhs_number: record.nhs_number.clone().unwrap_or_default(),
            sender_ods: sender.clone(),
            recipient_ods: recipient.recipient.clone(),
            category: canonical::Category::from(category) as i32,
            purpose: canonical::PurposeOfUse::from(purpose) as i32,
            at: Some(prost_types::Timestamp {
                seconds: record.decided_at.unix_timestamp(),
                nanos: i32::try_from(record.decided_at.nanosecond()).unwrap_or(0),
            }),
            as_of_revision: recipient.registry_revision.unwrap_or(0),
        };
        let again = client
            .unary(Retry::Idempotent, &request, |mut c, r| async move {
                c.decide(r).await
            })
            .await?;
        if !show(recipient, &again, sender) {
            differing += 1;
        }
    }
    Ok(differing)
}

/// Prints the hub's decision and the registry's; whether they agree.
fn show(recipient: &AuditRecipient, again: &pb::Decision, sender: &str) -> bool {
    let isa = |isa: &Option<(String, u32)>| {
        isa.as_ref()
            .map_or("no agreement".to_owned(), |(id, v)| format!("{id} v{v}"))
    };
    println!(
        "  {} ({}): {}: {}, {}",
        recipient.recipient,
        recipient.exchange,
        recipient.decision,
        recipient.reason,
        isa(&recipient.isa)
    );
    let as_of = match recipient.registry_revision {
        Some(revision) => format!("as of registry revision {revision}"),
        None => "with everything recorded since (the hub recorded no revision)".to_owned(),
    };
    println!(
        "    the registry, {as_of}: {}: {}",
        if again.permitted { "PERMIT" } else { "DENY" },
        explain(again, sender, &recipient.recipient)
    );
    let again_isa = (!again.isa_id.is_empty()).then(|| (again.isa_id.clone(), again.isa_version));
    let same = (recipient.decision == "forwarded") == again.permitted
        && recipient.reason == again.reason
        && recipient.isa == again_isa
        && recipient.directives == again.directive_ids;
    println!(
        "    {}",
        if same {
            "the same decision"
        } else {
            "NOT the same decision"
        }
    );
    same
}

//! # native-adapter: a throwaway native adapter
//!
//! For local systems that already speak the canonical model, and for
//! trying the hub. It connects with its exchange's client certificate from
//! a development PKI (`hub dev-pki`).
//!
//! - `native-adapter send`: submit one example envelope (discharge summary,
//!   care event, ...) from an organisation of the exchange, and print the
//!   hub's answer: the route and the outcome per recipient.
//! - `native-adapter receive`: receive the exchange's deliveries, print the
//!   routing facts of each (message id, category, recipients: never patient
//!   data), and send a positive infrastructure acknowledgement (a delivery
//!   receipt) back to the sender where one was asked for.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lhcie_adapter_kit::{ClientTls, Disposition, HubConnection, SeenStore, Uplink};
use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, AcknowledgementRequest, Addressing, Body, Category,
    Envelope, ExchangeId, MessageId, NhsNumber, OdsCode, Party, PurposeOfUse, Recipient,
    RecipientIntent, examples, itk_response,
};
use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "native-adapter",
    version,
    about = "A native (canonical gRPC) adapter for trying the hub"
)]
struct Cli {
    /// The hub's gRPC endpoint.
    #[arg(long, default_value = "https://127.0.0.1:50051")]
    hub: String,
    /// Development PKI folder (from `hub dev-pki`).
    #[arg(long, default_value = "var/pki")]
    pki: PathBuf,
    /// The exchange this adapter serves.
    #[arg(long)]
    exchange: ExchangeId,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Example {
    DischargeSummary,
    RepatriationRequest,
    CancerDocument,
    EndOfLifeCarePlan,
    CareEvent,
    Result,
    Referral,
}

#[derive(Subcommand)]
enum Command {
    /// Submit one example envelope and print the hub's answer.
    Send {
        /// Which example.
        #[arg(long, value_enum, default_value = "discharge-summary")]
        example: Example,
        /// The sending organisation (must belong to the exchange).
        #[arg(long)]
        from: OdsCode,
        /// Recipient organisations (default: the example's own).
        #[arg(long)]
        to: Vec<OdsCode>,
        /// The patient's NHS number (default: the example patient).
        #[arg(long)]
        nhs_number: Option<NhsNumber>,
    },
    /// Receive deliveries until interrupted, or until `--count` arrived.
    Receive {
        /// Stop after this many deliveries.
        #[arg(long)]
        count: Option<u64>,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LHCIE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("native-adapter: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("native-adapter: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn connection(cli: &Cli) -> HubConnection {
    let layout = lhcie_tls::PkiLayout::new(&cli.pki);
    HubConnection {
        endpoint: cli.hub.clone(),
        tls: cli.hub.starts_with("https://").then(|| ClientTls {
            ca: layout.ca_cert(),
            cert: layout.exchange_cert(&cli.exchange),
            key: layout.exchange_key(&cli.exchange),
            server_name: "localhost".into(),
        }),
        exchange: cli.exchange.clone(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Send {
            example,
            from,
            to,
            nhs_number,
        } => {
            let mut envelope = match example {
                Example::DischargeSummary => examples::discharge_summary(),
                Example::RepatriationRequest => examples::repatriation_request(),
                Example::CancerDocument => examples::cancer_document(),
                Example::EndOfLifeCarePlan => examples::end_of_life_care_plan(),
                Example::CareEvent => examples::care_event_attendance(),
                Example::Result => examples::result(),
                Example::Referral => examples::referral(),
            };
            envelope.message_id = MessageId::new_random();
            envelope.created_at = time::OffsetDateTime::now_utc();
            envelope.sender = Party {
                ods_code: from.clone(),
                exchange_id: cli.exchange.clone(),
                sending_system: Some("native-adapter".into()),
            };
            if !to.is_empty() {
                envelope.addressing.recipients = to
                    .iter()
                    .map(|code| Recipient {
                        ods_code: code.clone(),
                        intent: RecipientIntent::ForAction,
                    })
                    .collect();
            }
            if let (Some(number), Some(patient)) = (nhs_number, envelope.patient.as_mut()) {
                patient.nhs_number = Some(*number);
            }
            let answer = send_one(&cli, pb::Envelope::from(envelope.clone())).await?;
            print_answer(&envelope, &answer);
            Ok(())
        }
        Command::Receive { count } => receive(&cli, *count).await,
    }
}

async fn send_one(cli: &Cli, envelope: pb::Envelope) -> anyhow::Result<hubpb::SubmitResponse> {
    let shutdown = CancellationToken::new();
    let (uplink, mut answers) = Uplink::start(connection(cli), 1, shutdown.clone());
    uplink.submit(envelope).await.context("submitting")?;
    drop(uplink);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), answers.recv())
        .await
        .context("no answer from the hub within 30 s")?
        .context("the uplink stopped before the hub answered")?;
    shutdown.cancel();
    Ok(answer)
}

fn print_answer(envelope: &Envelope, answer: &hubpb::SubmitResponse) {
    println!(
        "sent {} {} from {} ({}) for patient [NHS number withheld]",
        envelope.category,
        envelope.message_id,
        envelope.sender.ods_code,
        envelope.sender.exchange_id
    );
    match &answer.outcome {
        Some(hubpb::submit_response::Outcome::Accepted(accepted)) => {
            println!(
                "  accepted by the hub{}",
                if accepted.duplicate {
                    " (duplicate: routed before)"
                } else {
                    ""
                }
            );
            for recipient in &accepted.recipients {
                let disposition = match hubpb::Disposition::try_from(recipient.disposition) {
                    Ok(hubpb::Disposition::Forwarded) => "forwarded",
                    Ok(hubpb::Disposition::NotPermitted) => {
                        "NOT PERMITTED by information governance policy"
                    }
                    _ => "unknown",
                };
                println!(
                    "  route: {} -> {} via exchange {}: {disposition}",
                    envelope.sender.ods_code, recipient.ods_code, recipient.exchange_id
                );
            }
        }
        Some(hubpb::submit_response::Outcome::Rejected(rejected)) => {
            let reason = hubpb::RejectReason::try_from(rejected.reason)
                .map(|r| r.as_str_name())
                .unwrap_or("UNKNOWN");
            println!("  REJECTED ({reason}): {}", rejected.detail);
        }
        None => println!("  the hub gave no outcome"),
    }
}

async fn receive(cli: &Cli, count: Option<u64>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    // Receipts get their own uplink, which drains (every receipt answered)
    // before the program exits.
    let (receipts, mut answers) = Uplink::start(connection(cli), 100, CancellationToken::new());
    let receipts_answered = tokio::spawn(async move {
        let mut answered = 0u64;
        while answers.recv().await.is_some() {
            answered += 1;
        }
        answered
    });
    tokio::spawn(lhcie_adapter_kit::heartbeat::heartbeat(
        connection(cli),
        "native",
        || 0,
        shutdown.clone(),
    ));
    let exchange = cli.exchange.clone();
    let mut received = 0u64;
    let done = shutdown.clone();
    println!("receiving for exchange {exchange} (Ctrl-C to stop)");
    let stats = lhcie_adapter_kit::receive(
        connection(cli),
        100,
        SeenStore::temporary().context("opening the seen-message store")?,
        |incoming| {
            received += 1;
            let envelope = incoming.envelope;
            let category = pb::Category::try_from(envelope.category)
                .map(|c| c.as_str_name())
                .unwrap_or("UNKNOWN");
            let sender = envelope
                .sender
                .as_ref()
                .map(|s| s.ods_code.clone())
                .unwrap_or_default();
            println!(
                "delivered {} {} from {} to {}{}",
                category,
                envelope.message_id,
                sender,
                incoming.recipients.join(","),
                if incoming.redelivered {
                    " (redelivered)"
                } else {
                    ""
                }
            );
            let receipt = receipt_for(&envelope, &incoming.recipients, &exchange);
            let receipts = receipts.clone();
            if count.is_some_and(|count| received >= count) {
                done.cancel();
            }
            async move {
                if let Some(receipt) = receipt {
                    let id = receipt.message_id.clone();
                    if receipts.submit(pb::Envelope::from(receipt)).await.is_ok() {
                        println!("  delivery receipt {id} sent back to the sender");
                    }
                }
                Disposition::Delivered
            }
        },
        shutdown.clone(),
    )
    .await;
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), receipts_answered)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    println!(
        "received {} deliveries ({} duplicates skipped); {answered} delivery receipts accepted by the hub",
        stats.handed_over, stats.duplicates
    );
    if let Some(count) = count
        && stats.handed_over < count
    {
        bail!("stopped after {} of {count} deliveries", stats.handed_over);
    }
    Ok(())
}
/// A positive infrastructure acknowledgement, if the sender asked for one.
fn receipt_for(
    envelope: &pb::Envelope,
    recipients: &[String],
    exchange: &ExchangeId,
) -> Option<Envelope> {
    let requested = envelope.acknowledgements_requested.unwrap_or_default();
    if !requested.infrastructure || envelope.category == pb::Category::Acknowledgement as i32 {
        return None;
    }
    let refers_to = MessageId::parse(&envelope.message_id).ok()?;
    let sender = OdsCode::parse(&envelope.sender.as_ref()?.ods_code).ok()?;
    let responder = OdsCode::parse(recipients.first()?).ok()?;
    Some(Envelope {
        message_id: MessageId::new_random(),
        correlation_id: Some(refers_to.to_string()),
        created_at: time::OffsetDateTime::now_utc(),
        sender: Party {
            ods_code: responder,
            exchange_id: exchange.clone(),
            sending_system: Some("native-adapter".into()),
        },
        addressing: Addressing {
            recipients: vec![Recipient {
                ods_code: sender,
                intent: RecipientIntent::ForAction,
            }],
            rule: None,
        },
        purpose: PurposeOfUse::DirectCare,
        category: Category::Acknowledgement,
        patient: None,
        body: Body::Acknowledgement(Acknowledgement::itk(
            refers_to,
            AckLevel::Infrastructure,
            AckOutcome::Positive,
            itk_response::SUCCESS,
            None,
        )),
        original: None,
        acknowledgements_requested: AcknowledgementRequest::default(),
        sender_reference: (!envelope.sender_reference.is_empty())
            .then(|| envelope.sender_reference.clone()),
    })
}

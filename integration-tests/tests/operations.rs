//! Dead letters and replay end to end, with the real registry, hub,
//! RabbitMQ and the `hub dead-letters` CLI: copies withheld because no
//! information sharing agreement covered the flow wait as dead letters;
//! once an agreement is signed they are replayed, through the policy again,
//! and delivered exactly once with their message id — except for the
//! patient who dissented in the meantime, who is denied again. A viewer
//! cannot replay; the trace shows every step; viewing it is audited; a
//! copy the broker dead-lettered is collected too.

use std::process::Command;
use std::time::Duration;

use lhcie_integration_tests::dashboard::{DashboardClient, OpsHub, USERS, start_ops_hub};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::prometheus::{parse, sum};
use lhcie_integration_tests::registry::{set_directive, sign_nwl_sel_agreement, synthetic_patient};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use lhcie_proto::hub as hubpb;
use lhcie_proto::registry as pb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPERATOR: usize = 0;
const VIEWER: usize = 1;
const ADMIN: usize = 2;

fn dissent(nhs: &str) -> pb::SetDirectiveRequest {
    pb::SetDirectiveRequest {
        directive: Some(pb::Directive {
            directive_id: "DIR-OPS-DISSENT".into(),
            nhs_number: nhs.into(),
            rule: Some(pb::directive::Rule::DissentAll(true)),
            valid_from: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            source: pb::DirectiveSource::PatientAccount as i32,
            ..Default::default()
        }),
    }
}

async fn wait_for_revision(hub: &HubProcess, revision: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.get_json("/registry").await["revision"]
        .as_u64()
        .unwrap_or(0)
        < revision
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub did not reach revision {revision}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pending(listing: &Value) -> Vec<&Value> {
    listing["dead_letters"].as_array().unwrap().iter().collect()
}

/// `hub dead-letters …` as the operator; its standard output.
fn ops_cli(env: &TestEnv, dashboard: std::net::SocketAddr, args: &[&str]) -> String {
    let password = env.dir().join("olivia.password");
    std::fs::write(&password, format!("{}\n", USERS[OPERATOR].password)).unwrap();
    let output = Command::new(lhcie_integration_tests::binary("hub"))
        .arg("dead-letters")
        .args(["--url", &format!("http://{dashboard}")])
        .args(["--user", USERS[OPERATOR].name])
        .arg("--password-file")
        .arg(&password)
        .args(args)
        .output()
        .expect("hub dead-letters");
    assert!(
        output.status.success(),
        "hub dead-letters {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_copies_are_replayed_once_an_agreement_is_signed_and_a_dissent_still_denies() {
    with_env(TestEnv::new("ops-replay"), |env| async move {
        let OpsHub {
            cluster,
            hub,
            dashboard,
        } = start_ops_hub(&env).await;
        let operator = DashboardClient::new(dashboard, &USERS[OPERATOR]);
        let viewer = DashboardClient::new(dashboard, &USERS[VIEWER]);
        let admin = DashboardClient::new(dashboard, &USERS[ADMIN]);
        let kings = traffic::receive_grpc(env.connection("sel-kings"));

        // Two discharge summaries to King's: no agreement covers NWL → SEL.
        let staying = synthetic_patient(4101);
        let dissenting = synthetic_patient(4102);
        let first = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RJZ"], 0),
            &staying,
        );
        let second = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RJZ"], 0),
            &dissenting,
        );
        let (first_id, second_id) = (first.message_id.clone(), second.message_id.clone());
        let answers = traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![first, second],
            2,
            Duration::from_secs(30),
        )
        .await;
        for id in [&first_id, &second_id] {
            let Some(hubpb::submit_response::Outcome::Accepted(accepted)) = &answers[id].outcome
            else {
                panic!("accepted: {:?}", answers[id]);
            };
            assert_eq!(
                accepted.recipients[0].disposition,
                hubpb::Disposition::NotPermitted as i32
            );
        }
        let listed = operator
            .get_ok("/api/dead-letters?destination=sel-kings")
            .await;
        let letters = pending(&listed);
        assert_eq!(letters.len(), 2, "{listed}");
        for letter in &letters {
            assert_eq!(letter["reason"], "no-agreement");
            assert_eq!(letter["recipients"], json!(["RJZ"]));
            assert_eq!(letter["state"], "pending");
            assert_eq!(letter["submitted_by"], "nwl-imperial");
        }
        // Nothing is listed with a patient identifier.
        assert!(!listed.to_string().contains(&staying));

        // A viewer may look but not replay; a dry run changes nothing.
        let (status, _) = viewer
            .post(
                "/api/dead-letters/replay",
                &json!({"filter": {"destination": "sel-kings"}, "dry_run": true}),
            )
            .await;
        assert_eq!(status, 403);
        let (status, dry) = operator
            .post(
                "/api/dead-letters/replay",
                &json!({"filter": {"destination": "sel-kings"}, "dry_run": true}),
            )
            .await;
        assert_eq!(status, 200, "{dry}");
        assert!(
            dry["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["outcome"] == "would-deny"),
            "{dry}"
        );
        assert_eq!(
            pending(&operator.get_ok("/api/dead-letters").await).len(),
            2
        );

        // Information governance signs an agreement; one patient dissents.
        sign_nwl_sel_agreement(&cluster);
        let client = cluster.client("patient-account");
        let revision = set_directive(&client, &dissent(&dissenting))
            .await
            .expect("dissent recorded");
        // The directive was recorded after the agreement: its revision covers both.
        wait_for_revision(&hub, revision).await;

        // The operator replays everything pending for King's, with the CLI.
        let printed = ops_cli(
            &env,
            dashboard,
            &["replay", "--destination", "sel-kings", "--rate", "20"],
        );
        let outcome_of = |id: &str| {
            printed
                .lines()
                .find(|line| line.contains(id))
                .unwrap_or_else(|| panic!("{id} in {printed}"))
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_owned()
        };
        assert_eq!(outcome_of(&first_id), "forwarded", "{printed}");
        assert_eq!(outcome_of(&second_id), "denied", "{printed}");

        // Delivered exactly once, with its message id; the dissenting
        // patient's summary never.
        kings.received.wait_for(1, Duration::from_secs(20)).await;
        // A second replay of the same dead letter is refused as not pending.
        let listed = operator
            .get_ok("/api/dead-letters?state=all&destination=sel-kings")
            .await;
        let replayed_id = pending(&listed)
            .iter()
            .find(|l| l["message_id"] == first_id.as_str())
            .unwrap()["id"]
            .clone();
        let (_, again) = operator
            .post("/api/dead-letters/replay", &json!({"ids": [replayed_id]}))
            .await;
        assert_eq!(again["results"][0]["outcome"], "skipped", "{again}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(kings.received.contains(&first_id));
        assert!(!kings.received.contains(&second_id));
        assert_eq!(kings.received.distinct(), 1);
        assert!(kings.received.handed_twice().is_empty());
        kings.stop().await;
        assert!(pending(&operator.get_ok("/api/dead-letters").await).is_empty());
        let all = operator.get_ok("/api/dead-letters?state=all").await;
        let denied = pending(&all)
            .into_iter()
            .find(|l| l["message_id"] == second_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(denied["state"], "replayed");
        assert_eq!(denied["last_replay"]["outcome"], "denied");
        assert_eq!(denied["last_replay"]["by"], "olivia");

        // The trace tells the whole story, and looking at it is audited.
        let trace = viewer.get_ok(&format!("/api/trace/{first_id}")).await;
        assert_eq!(trace["patient"], staying.as_str());
        let stages: Vec<(String, String)> = trace["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["stage"].as_str().unwrap().to_owned(),
                    e["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for expected in [
            ("accepted", ""),
            ("decision", "denied"),
            ("dead-lettered", "no-agreement"),
            ("replayed", "forwarded"),
        ] {
            assert!(
                stages
                    .iter()
                    .any(|(s, c)| s == expected.0 && c == expected.1),
                "{expected:?} in {stages:?}"
            );
        }
        let (status, _) = viewer.get("/api/access-log").await;
        assert_eq!(status, 403);
        let found = operator
            .get_ok(&format!("/api/trace?nhs_number={dissenting}"))
            .await;
        assert_eq!(found["results"][0]["message_id"], second_id.as_str());
        let log = admin.get_ok("/api/access-log").await;
        let entries = log["entries"].as_array().unwrap();
        assert!(
            entries.iter().any(|e| e["user"] == "victor"
                && e["action"] == "trace"
                && e["subject"] == first_id.as_str()),
            "{log}"
        );
        assert!(
            entries
                .iter()
                .any(|e| e["user"] == "olivia" && e["action"] == "search"),
            "{log}"
        );

        // Counted in the metrics.
        let (_, text) = hub.get("/metrics").await.unwrap();
        let samples = parse(&text);
        assert_eq!(
            sum(
                &samples,
                "lhcie_hub_dead_letters_total",
                &[("destination", "sel-kings"), ("reason", "no-agreement")]
            ),
            2.0
        );
        assert_eq!(
            sum(
                &samples,
                "lhcie_hub_replays_total",
                &[("destination", "sel-kings"), ("outcome", "forwarded")]
            ),
            1.0
        );
        assert_eq!(
            sum(
                &samples,
                "lhcie_hub_replays_total",
                &[("destination", "sel-kings"), ("outcome", "denied")]
            ),
            1.0
        );

        // A copy the broker dead-letters (its receiver cannot read it) is
        // collected and listed with the broker's reason.
        let royal_free = traffic::receive_grpc(env.connection("ncl-royal-free"));
        let link = lapin::Connection::connect(
            lhcie_integration_tests::env::BROKER_URL,
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = link.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        channel
            .basic_publish(
                env.names().egress_exchange().as_str().into(),
                "ncl-royal-free".into(),
                Default::default(),
                b"not an envelope",
                lapin::BasicProperties::default()
                    .with_message_id("garbled-1".into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let garbled = loop {
            let listed = operator
                .get_ok("/api/dead-letters?destination=ncl-royal-free")
                .await;
            if let Some(letter) = pending(&listed).first() {
                break (*letter).clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker's dead letter was not collected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(garbled["message_id"], "garbled-1");
        assert_eq!(garbled["reason"], "rejected");
        let (_, replay) = operator
            .post("/api/dead-letters/replay", &json!({"ids": [garbled["id"]]}))
            .await;
        assert_eq!(replay["results"][0]["outcome"], "failed", "{replay}");
        let printed = ops_cli(
            &env,
            dashboard,
            &["discard", "--id", garbled["id"].as_str().unwrap()],
        );
        assert!(printed.contains("1 discarded"), "{printed}");
        royal_free.stop().await;
        let _ = link.close(200, "done".into()).await;
        assert!(
            !hub.log().contains(&staying) && !hub.log().contains(&dissenting),
            "no NHS number in the hub's log"
        );

        // An open dashboard (its live stream) does not hold a graceful
        // shutdown back: the hub ends the stream and stops.
        let watching = DashboardClient::login(dashboard, &USERS[VIEWER]).await;
        let mut stream = tokio::net::TcpStream::connect(dashboard).await.unwrap();
        stream
            .write_all(
                format!(
                    "GET /api/stream HTTP/1.1\r\nHost: {dashboard}\r\n{}\r\n\r\n",
                    watching.credentials_header()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: overview") {
            let read = stream.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the stream ended early");
            seen.extend_from_slice(&buffer[..read]);
        }
        let mut hub = hub;
        let stopping = std::time::Instant::now();
        assert!(hub.terminate().success());
        let stopped = stopping.elapsed();
        assert!(
            stopped < Duration::from_secs(5),
            "the hub took {stopped:?} to stop with a dashboard open (grace 10 s)"
        );
    })
    .await;
}

/// Every route of the admin port that used to name a patient or a message
/// (H1): none answers any more, with or without credentials.
const FORMER_ADMIN_ROUTES: [&str; 5] = [
    "/audit/patients/{nhs}",
    "/audit/messages/{id}",
    "/audit/messages/{id}/events",
    "/dead-letters",
    "/dead-letters?state=all",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_names_no_patient_and_the_dashboard_logs_who_looked_at_whom() {
    with_env(TestEnv::new("adminport"), |env| async move {
        let dashboard = lhcie_integration_tests::dashboard::enable_dashboard(&env, &USERS[..2]);
        let hub = HubProcess::start(&env).await;
        let nhs = synthetic_patient(0);
        let envelope = with_patient(discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0), &nhs);
        let id = envelope.message_id.clone();
        let answers = traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![envelope],
            1,
            Duration::from_secs(30),
        )
        .await;
        assert!(answers.contains_key(&id));

        // The admin port: health, readiness and metrics only.
        for path in FORMER_ADMIN_ROUTES {
            let path = path.replace("{nhs}", &nhs).replace("{id}", &id);
            let (status, body) = hub.get(&path).await.unwrap();
            assert_eq!(status, 404, "GET {path} on the admin port: {body}");
            assert!(!body.contains(&nhs), "GET {path} named the patient");
        }
        assert_eq!(hub.get("/healthz").await.unwrap().0, 200);
        let (status, metrics) = hub.get("/metrics").await.unwrap();
        assert_eq!(status, 200);
        assert!(!metrics.contains(&nhs) && !metrics.contains(&id));

        // The dashboard's API covers the same needs, behind its login.
        let anonymous = [
            format!("/api/trace?nhs_number={nhs}"),
            format!("/api/trace/{id}"),
            "/api/dead-letters".to_owned(),
            "/api/access-log".to_owned(),
        ];
        for path in &anonymous {
            let (status, _, body) = raw_get(dashboard, path, "").await;
            assert_eq!(status, 401, "GET {path} without a login: {body}");
            assert!(!body.contains(&nhs));
        }
        // A viewer's search by NHS number and view of the message are in
        // the access log, with the NHS number, before they are answered.
        let viewer = DashboardClient::login(dashboard, &USERS[VIEWER]).await;
        let found = viewer.get_ok(&format!("/api/trace?nhs_number={nhs}")).await;
        assert_eq!(found["results"][0]["message_id"], id.as_str());
        let trace = viewer.get_ok(&format!("/api/trace/{id}")).await;
        assert_eq!(trace["patient"], nhs.as_str());
        let log = hub
            .ops()
            .get_ok(&format!("/api/access-log?nhs_number={nhs}"))
            .await;
        let entries = log["entries"].as_array().unwrap();
        let by_viewer = |action: &str| {
            entries.iter().any(|e| {
                e["user"] == USERS[VIEWER].name
                    && e["action"] == action
                    && e["nhs_number"] == nhs.as_str()
            })
        };
        assert!(by_viewer("search"), "{log}");
        assert!(by_viewer("trace"), "{log}");
        // Only this patient's.
        let other = hub
            .ops()
            .get_ok(&format!(
                "/api/access-log?nhs_number={}",
                synthetic_patient(1000)
            ))
            .await;
        assert_eq!(other["entries"].as_array().unwrap().len(), 0, "{other}");

        // A live stream ends with the session it was opened with (L4).
        let mut stream = tokio::net::TcpStream::connect(dashboard).await.unwrap();
        stream
            .write_all(
                format!(
                    "GET /api/stream HTTP/1.1\r\nHost: {dashboard}\r\n{}\r\nConnection: close\r\n\r\n",
                    viewer.credentials_header()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut first = vec![0u8; 8192];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut first))
            .await
            .expect("the stream's first bytes")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&first[..read])
        );
        let (status, _) = viewer.post("/api/logout", &json!({})).await;
        assert_eq!(status, 200);
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the stream outlived the logout")
            .unwrap();
    })
    .await;
}

/// A GET with an extra header line: status, headers, body.
async fn raw_get(address: std::net::SocketAddr, path: &str, header: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let header = if header.is_empty() {
        String::new()
    } else {
        format!("{header}\r\n")
    };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{header}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    (status, headers.to_owned(), body.to_owned())
}

fn event(message_id: &str, stage: hubpb::TraceStage) -> hubpb::TraceEvent {
    hubpb::TraceEvent {
        message_id: message_id.to_owned(),
        at_unix_nanos: time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64,
        stage: stage as i32,
        local_code: "AA".into(),
        detail: String::new(),
    }
}

async fn report(env: &TestEnv, exchange: &str, events: Vec<hubpb::TraceEvent>) -> u32 {
    let mut client = env.connection(exchange).connect().await.unwrap();
    client
        .report_events(hubpb::ReportEventsRequest { events })
        .await
        .unwrap()
        .into_inner()
        .recorded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_events_are_accepted_only_from_the_exchanges_a_message_went_between() {
    with_env(TestEnv::new("reportev"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let envelope = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let id = envelope.message_id.clone();
        traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![envelope],
            1,
            Duration::from_secs(30),
        )
        .await;
        use hubpb::TraceStage::{DeliveredToLocal, DeliveryFailed, ReceivedFromLocal};
        // Neither the submitter nor a recipient: refused, recorded nowhere.
        assert_eq!(
            report(
                &env,
                "sel-kings",
                vec![event(&id, DeliveryFailed), event(&id, ReceivedFromLocal)]
            )
            .await,
            0
        );
        // The submitter and the recipient's exchange: recorded.
        assert_eq!(
            report(&env, "nwl-imperial", vec![event(&id, ReceivedFromLocal)]).await,
            1
        );
        assert_eq!(
            report(&env, "ncl-royal-free", vec![event(&id, DeliveredToLocal)]).await,
            1
        );
        // A message the hub never decided: only what a sender reports
        // before the hub decides.
        let unknown = lhcie_model::MessageId::new_random().to_string();
        assert_eq!(
            report(
                &env,
                "sel-kings",
                vec![
                    event(&unknown, DeliveredToLocal),
                    event(&unknown, ReceivedFromLocal)
                ]
            )
            .await,
            1
        );
        let timeline = hub.events_of_message(&id).await;
        let adapters: Vec<(String, String)> = timeline
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["layer"] == "adapter")
            .map(|e| {
                (
                    e["exchange"].as_str().unwrap().to_owned(),
                    e["stage"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            adapters,
            [
                ("nwl-imperial".to_owned(), "received-from-local".to_owned()),
                ("ncl-royal-free".to_owned(), "delivered-to-local".to_owned()),
            ],
            "{timeline:#}"
        );
        let (_, text) = hub.get("/metrics").await.unwrap();
        assert_eq!(
            sum(
                &parse(&text),
                "lhcie_hub_trace_events_refused_total",
                &[("exchange", "sel-kings")]
            ),
            3.0
        );
    })
    .await;
}

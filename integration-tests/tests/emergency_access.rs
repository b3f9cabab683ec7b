//! Emergency (break-glass) access end to end (security review H6), with
//! the real registry, hub and RabbitMQ: an emergency-care envelope for a
//! patient who refused the recipient is delivered because the agreement
//! opts in to emergency override; the hub counts it on `/metrics`, lists
//! it as a pending review on the dashboard and publishes one notification
//! naming the patient to the patient-notification queue (which no adapter
//! may read or write) before answering. A viewer cannot close the review;
//! an operator closes it, as themself, which removes it from the pending
//! reviews and is written to the access log. A copy withheld for want of
//! an agreement and replayed once an emergency agreement is signed is
//! reviewed and told to the patient in the same way.

use std::net::SocketAddr;
use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lhcie_integration_tests::dashboard::{DashboardClient, OpsHub, USERS, start_ops_hub};
use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::prometheus::{parse, value};
use lhcie_integration_tests::registry::{
    RegistryCluster, deny_organisation, registry_cli, set_directive, synthetic_patient,
};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use lhcie_proto::{canonical as pb, hub as hubpb};
use serde_json::{Value, json};

const OPERATOR: usize = 0;
const VIEWER: usize = 1;
const ADMIN: usize = 2;

/// The override counter for emergency copies from Imperial that overrode
/// the patient's own refusal.
async fn overrides_counted(hub: &HubProcess) -> f64 {
    let (_, text) = hub.get("/metrics").await.expect("metrics");
    value(
        &parse(&text),
        "lhcie_hub_emergency_overrides_total",
        &[("exchange", "nwl-imperial"), ("refusal_overridden", "true")],
    )
}

/// A discharge summary from Imperial (RYJ) to `to` for `nhs`, sent for
/// emergency care.
fn emergency_summary(to: &str, nhs: &str) -> pb::Envelope {
    let mut envelope = with_patient(discharge_summary("nwl-imperial", "RYJ", &[to], 0), nhs);
    envelope.purpose = pb::PurposeOfUse::EmergencyCare as i32;
    envelope
}

/// Submits one envelope from Imperial; the disposition of its recipient.
async fn submit(env: &TestEnv, envelope: pb::Envelope) -> hubpb::Disposition {
    let id = envelope.message_id.clone();
    let answers = traffic::submit_all(
        env.connection("nwl-imperial"),
        vec![envelope],
        1,
        Duration::from_secs(30),
    )
    .await;
    let Some(hubpb::submit_response::Outcome::Accepted(accepted)) = &answers[&id].outcome else {
        panic!("accepted: {:?}", answers[&id]);
    };
    hubpb::Disposition::try_from(accepted.recipients[0].disposition).unwrap()
}

/// Every message on the patient notifications' queue, taken as the hub's
/// broker user (`guest` in tests): (properties, JSON body).
async fn take_notifications(env: &TestEnv) -> Vec<(lapin::BasicProperties, Value)> {
    let connection = lhcie_broker::connect(&env.broker(), "test notifications")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = env.names().patient_notifications_queue();
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let body = serde_json::from_slice(&message.data).expect("a JSON notification");
        taken.push((message.properties.clone(), body));
    }
    let _ = connection.close(200, "done".into()).await;
    taken
}

/// Whether an adapter's broker user may read the notification queue or
/// publish to its exchange: (read, write) refused by the broker.
async fn adapter_refused(env: &TestEnv) -> (bool, bool) {
    let identity = env.provision_users(&["ncl-royal-free"]).await.remove(0);
    let connection = lhcie_broker::connect(&identity.broker, "test adapter user")
        .await
        .expect("the adapter's user logs in");
    let reader = connection.create_channel().await.unwrap();
    let queue = env.names().patient_notifications_queue();
    let read = reader
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await;
    let writer = connection.create_channel().await.unwrap();
    writer
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let exchange = env.names().patient_notifications_exchange();
    let published = match writer
        .basic_publish(
            exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            b"{}",
            lapin::BasicProperties::default(),
        )
        .await
    {
        Ok(confirm) => confirm.await.map(|c| c.is_ack()),
        Err(error) => Err(error),
    };
    let _ = connection.close(200, "done".into()).await;
    (read.is_err(), !matches!(published, Ok(true)))
}

fn reviews(listing: &Value) -> Vec<Value> {
    listing["reviews"].as_array().expect("reviews").clone()
}

async fn pending_reviews(client: &DashboardClient) -> Vec<Value> {
    reviews(&client.get_ok("/api/emergency-access").await)
}

async fn overview_pending(client: &DashboardClient) -> u64 {
    client.get_ok("/api/overview").await["totals"]["emergency_reviews_pending"]
        .as_u64()
        .expect("emergency_reviews_pending in the overview")
}

/// Waits until the hub's pending-reviews gauge shows `expected` (it is
/// refreshed every 2 s).
async fn gauge_reaches(hub: &HubProcess, expected: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = hub.get("/metrics").await.expect("metrics");
        let samples = parse(&text);
        if samples
            .iter()
            .any(|s| s.name == "lhcie_hub_emergency_reviews_pending" && s.value == expected)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lhcie_hub_emergency_reviews_pending never showed {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn close(client: &DashboardClient, body: Value) -> (u16, Value) {
    client.post("/api/emergency-access/close", &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_override_is_counted_queued_for_review_and_told_to_the_patient() {
    with_env(TestEnv::new("emergency"), |env| async move {
        let policy = std::fs::read_to_string(env.policy_file()).unwrap();
        assert!(
            policy.contains("emergency_override = true"),
            "the test agreement must opt in to emergency override:\n{policy}"
        );
        let OpsHub { hub, dashboard, .. } = start_ops_hub(&env).await;
        let dashboard: SocketAddr = dashboard;
        let operator = DashboardClient::login(dashboard, &USERS[OPERATOR]).await;
        let viewer = DashboardClient::login(dashboard, &USERS[VIEWER]).await;
        let admin = DashboardClient::new(dashboard, &USERS[ADMIN]);
        assert_eq!(
            overrides_counted(&hub).await,
            0.0,
            "present at zero from start"
        );
        assert!(pending_reviews(&operator).await.is_empty());
        let royal_free = traffic::receive_grpc(env.connection("ncl-royal-free"));

        // The patient refused the Royal Free; the sender says emergency.
        let envelope = emergency_summary("RAL", DENIED_PATIENT);
        let id = envelope.message_id.clone();
        assert_eq!(submit(&env, envelope).await, hubpb::Disposition::Forwarded);
        royal_free
            .received
            .wait_for(1, Duration::from_secs(20))
            .await;
        assert!(royal_free.received.contains(&id));
        royal_free.stop().await;

        // Counted.
        assert_eq!(overrides_counted(&hub).await, 1.0);

        // Queued for review, naming no patient; the overview counts it.
        let pending = pending_reviews(&operator).await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        let review = &pending[0];
        for (field, expected) in [
            ("message_id", id.as_str()),
            ("recipient", "RAL"),
            ("exchange", "ncl-royal-free"),
            ("sender", "RYJ"),
            ("submitted_by", "nwl-imperial"),
            ("category", "discharge-summary"),
            ("state", "pending"),
        ] {
            assert_eq!(review[field], expected, "{field} in {review}");
        }
        assert_eq!(review["notify_patient"], true);
        assert!(review["decided_at"].is_string());
        assert!(!review.to_string().contains(DENIED_PATIENT));
        assert_eq!(overview_pending(&operator).await, 1);
        gauge_reaches(&hub, 1.0).await;

        // One notification naming the patient waits for the
        // patient-notification service.
        let notifications = take_notifications(&env).await;
        assert_eq!(notifications.len(), 1, "{notifications:?}");
        let (properties, notification) = &notifications[0];
        assert_eq!(
            properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        assert_eq!(properties.delivery_mode(), &Some(2), "persistent");
        assert_eq!(notification["version"], 1);
        assert_eq!(notification["kind"], "emergency-override");
        assert_eq!(notification["message_id"], id.as_str());
        assert_eq!(notification["nhs_number"], DENIED_PATIENT);
        assert_eq!(notification["sender"], "RYJ");
        assert_eq!(notification["purpose"], "emergency-care");
        assert_eq!(notification["category"], "discharge-summary");
        assert_eq!(notification["recipients"][0]["ods_code"], "RAL");
        assert_eq!(notification["recipients"][0]["agreement_id"], "ISA-TEST-1");
        assert!(notification["recipients"][0]["agreement_version"].is_u64());
        assert!(
            notification["text"]
                .as_str()
                .is_some_and(|t| t.contains("emergency") && t.contains("RAL")),
            "{notification}"
        );
        assert!(
            !hub.log().contains(DENIED_PATIENT),
            "no NHS number in the log"
        );

        // No adapter may read the notifications or publish its own.
        assert_eq!(adapter_refused(&env).await, (true, true));

        // A viewer may look but not close; nobody closes as someone else
        // or without saying why.
        let review_id = review["id"].as_str().unwrap().to_owned();
        let note = "Confirmed with the RAL emergency department: patient unconscious on arrival.";
        let (status, _) = close(
            &viewer,
            json!({"id": review_id, "outcome": "appropriate", "note": note}),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = close(
            &operator,
            json!({"id": review_id, "outcome": "appropriate", "note": note, "by": "victor"}),
        )
        .await;
        assert_eq!(status, 422, "a request naming who closes is refused");
        let (status, _) = close(
            &operator,
            json!({"id": review_id, "outcome": "appropriate", "note": "  "}),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = close(
            &operator,
            json!({"id": review_id, "outcome": "fine", "note": note}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(pending_reviews(&operator).await.len(), 1);

        // The operator closes it.
        let (status, closed) = close(
            &operator,
            json!({"id": review_id, "outcome": "appropriate", "note": note}),
        )
        .await;
        assert_eq!(status, 200, "{closed}");
        assert_eq!(closed["review"]["closure"]["by"], "olivia");
        assert_eq!(closed["review"]["closure"]["outcome"], "appropriate");
        assert!(pending_reviews(&operator).await.is_empty());
        assert_eq!(overview_pending(&viewer).await, 0);
        let closed_list = reviews(&viewer.get_ok("/api/emergency-access?state=closed").await);
        assert_eq!(closed_list.len(), 1);
        assert_eq!(closed_list[0]["closure"]["note"], note);
        let (status, again) = close(
            &operator,
            json!({"id": review_id, "outcome": "inappropriate", "note": note}),
        )
        .await;
        assert_eq!(status, 409, "{again}");
        gauge_reaches(&hub, 0.0).await;

        // Closing is in the access log, with the patient.
        let log = admin
            .get_ok(&format!("/api/access-log?nhs_number={DENIED_PATIENT}"))
            .await;
        let closings: Vec<&Value> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "close-emergency-review")
            .collect();
        assert_eq!(closings.len(), 1, "{log}");
        assert_eq!(closings[0]["user"], "olivia");
        assert_eq!(closings[0]["subject"], id.as_str());
    })
    .await;
}

/// Drafts and signs an agreement between North West and South East London
/// for discharge summaries in emergency care that opts in to emergency
/// override (the test policy has no NWL–SEL agreement).
fn sign_nwl_sel_emergency_agreement(cluster: &RegistryCluster) {
    registry_cli(
        cluster,
        &[
            "isa",
            "draft",
            "--id",
            "ISA-NWL-SEL-EMERGENCY",
            "--title",
            "NWL and SEL emergency care",
            "--party",
            "region:NWL",
            "--party",
            "region:SEL",
            "--purpose",
            "emergency-care",
            "--category",
            "discharge-summary",
            "--legal-basis",
            "UK GDPR 6(1)(d), 9(2)(c)",
            "--from",
            "2020-01-01",
            "--emergency-override",
        ],
    );
    for (party, organisation) in [("region:NWL", "RYJ"), ("region:SEL", "RJZ")] {
        registry_cli(
            cluster,
            &[
                "isa",
                "sign",
                "--id",
                "ISA-NWL-SEL-EMERGENCY",
                "--version",
                "1",
                "--party",
                party,
                "--signer",
                "Dr A. Guardian",
                "--role",
                "Caldicott Guardian",
                "--organisation",
                organisation,
            ],
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_copy_an_emergency_lets_through_is_reviewed_and_told_to_the_patient() {
    with_env(TestEnv::new("emergency-replay"), |env| async move {
        let OpsHub {
            cluster,
            hub,
            dashboard,
        } = start_ops_hub(&env).await;
        let operator = DashboardClient::new(dashboard, &USERS[OPERATOR]);
        let kings = traffic::receive_grpc(env.connection("sel-kings"));

        // No agreement covers NWL → SEL: the copy waits as a dead letter,
        // and nothing is reviewed or told yet.
        let patient = synthetic_patient(6101);
        let envelope = emergency_summary("RJZ", &patient);
        let id = envelope.message_id.clone();
        assert_eq!(
            submit(&env, envelope).await,
            hubpb::Disposition::NotPermitted
        );
        assert!(pending_reviews(&operator).await.is_empty());
        assert!(take_notifications(&env).await.is_empty());

        // An emergency agreement is signed; the patient refuses King's.
        sign_nwl_sel_emergency_agreement(&cluster);
        let revision = set_directive(
            &cluster.client("patient-account"),
            &deny_organisation("DIR-REPLAY-1", &patient, "RJZ"),
        )
        .await
        .expect("refusal recorded");
        wait_for_revision(&hub, revision).await;

        // Replayed: an emergency override of the patient's refusal.
        let (status, replay) = operator
            .post(
                "/api/dead-letters/replay",
                &json!({"filter": {"destination": "sel-kings"}, "dry_run": false}),
            )
            .await;
        assert_eq!(status, 200, "{replay}");
        assert_eq!(replay["results"][0]["outcome"], "forwarded", "{replay}");
        assert_eq!(
            replay["results"][0]["detail"], "RJZ: emergency-override",
            "{replay}"
        );
        kings.received.wait_for(1, Duration::from_secs(20)).await;
        assert!(kings.received.contains(&id));
        kings.stop().await;

        let pending = pending_reviews(&operator).await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0]["message_id"], id.as_str());
        assert_eq!(pending[0]["recipient"], "RJZ");
        assert_eq!(pending[0]["notify_patient"], true);
        let notifications = take_notifications(&env).await;
        assert_eq!(notifications.len(), 1, "{notifications:?}");
        let notification = &notifications[0].1;
        assert_eq!(notification["nhs_number"], patient.as_str());
        assert_eq!(notification["recipients"][0]["ods_code"], "RJZ");
        assert_eq!(
            notification["recipients"][0]["agreement_id"],
            "ISA-NWL-SEL-EMERGENCY"
        );
        assert_eq!(overrides_counted(&hub).await, 1.0);
        assert!(
            !hub.log().contains(patient.as_str()),
            "no NHS number in the log"
        );
    })
    .await;
}

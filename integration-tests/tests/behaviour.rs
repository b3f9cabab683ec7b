//! What senders and recipients see: rejections with precise reasons,
//! denials that reveal nothing, duplicates, delivery receipts, the audit.

use std::time::Duration;

use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use lhcie_proto::{canonical as pb, hub as hubpb};

fn rejected(answer: &hubpb::SubmitResponse) -> (hubpb::RejectReason, String) {
    match &answer.outcome {
        Some(hubpb::submit_response::Outcome::Rejected(r)) => (
            hubpb::RejectReason::try_from(r.reason).unwrap(),
            r.detail.clone(),
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn accepted(answer: &hubpb::SubmitResponse) -> hubpb::Accepted {
    match &answer.outcome {
        Some(hubpb::submit_response::Outcome::Accepted(a)) => a.clone(),
        other => panic!("expected acceptance, got {other:?}"),
    }
}

async fn submit(
    env: &TestEnv,
    exchange: &str,
    envelopes: Vec<pb::Envelope>,
) -> Vec<hubpb::SubmitResponse> {
    let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
    let answers = traffic::submit_all(
        env.connection(exchange),
        envelopes,
        100,
        Duration::from_secs(30),
    )
    .await;
    ids.iter().map(|id| answers[id].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_rejected_with_their_precise_reason_and_reach_no_one() {
    with_env(TestEnv::new("reject"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let base = || discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);

        let unknown_recipient = discharge_summary("nwl-imperial", "RYJ", &["RAL", "RJ1"], 0);
        let mut unknown_category = base();
        unknown_category.category = 42;
        let invalid_nhs = with_patient(base(), "9434765918");
        let mut not_ours = base();
        not_ours.sender.as_mut().unwrap().ods_code = "RAL".into();
        let mut other_exchange = base();
        other_exchange.sender.as_mut().unwrap().exchange_id = "ncl-royal-free".into();
        let mut no_body = base();
        no_body.body = None;
        let mut too_large = base();
        if let Some(pb::envelope::Body::Document(document)) = &mut too_large.body {
            document.sections[0].text = "x".repeat(1_100_000);
        }
        let answers = submit(
            &env,
            "nwl-imperial",
            vec![unknown_recipient, unknown_category, invalid_nhs, not_ours, other_exchange, no_body, too_large],
        )
        .await;
        use hubpb::RejectReason as R;
        let expected = [
            (R::UnknownRecipient, "addressing.recipients[1].ods_code: RJ1 is not served by any exchange on this hub"),
            (R::UnknownCategory, "category: 42 is not a category this hub knows"),
            (R::InvalidNhsNumber, "patient.nhs_number: NHS number fails the modulus 11 check"),
            (R::SenderNotAuthorised, "sender.ods_code RAL is not an organisation of exchange nwl-imperial"),
            (R::SenderNotAuthorised, "sender.exchange_id is ncl-royal-free but the envelope was submitted by exchange nwl-imperial"),
            (R::InvalidEnvelope, "body: is required"),
            (R::TooLarge, "bytes; this hub accepts at most 1048576"),
        ];
        for (answer, (reason, detail)) in answers.iter().zip(expected) {
            let (got_reason, got_detail) = rejected(answer);
            assert_eq!(got_reason, reason, "{got_detail}");
            assert!(got_detail.contains(detail), "{got_detail} does not say {detail}");
            assert!(!got_detail.contains("9434765918"), "a rejection repeated the NHS number");
        }
        // The audit has every rejection.
        for answer in &answers {
            let audit = hub.audit_of_message(&answer.message_id).await;
            assert!(audit[0]["outcome"]["rejected"]["reason"].is_string(), "{audit}");
        }
        // Nothing reached any exchange.
        for (exchange, _, _) in lhcie_integration_tests::env::EXCHANGES {
            let queue = env.names().egress_queue(&exchange.parse().unwrap());
            assert_eq!(traffic::queue_depth(&env, &queue).await, 0, "{exchange} received something");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_over_amqp_is_dead_lettered_with_its_reason_and_the_sender_told() {
    with_env(TestEnv::new("rejectamqp"), |env| async move {
        let identities = env.provision_users(&["nwl-imperial"]).await;
        let hub = HubProcess::start(&env).await;
        let bad = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0),
            "9434765918",
        );
        let id = bad.message_id.clone();
        traffic::publish_all_amqp(identities[0].clone(), vec![bad], 1).await;
        let dlq = env
            .names()
            .dead_letter_queue(&lhcie_broker::Destination::Ingress);
        let own = env.names().egress_queue(&"nwl-imperial".parse().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while traffic::queue_depth(&env, &own).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no negative acknowledgement"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The broker dead-lettered it with the reason; the hub keeps it for
        // an operator.
        let dead = hub.dead_letters("ingress", 1).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["message_id"], id.as_str());
        assert_eq!(dead[0]["reason"], "invalid-nhs-number");
        assert_eq!(
            dead[0]["detail"],
            "patient.nhs_number: NHS number fails the modulus 11 check"
        );
        assert_eq!(traffic::queue_depth(&env, &dlq).await, 0);
        let acks = traffic::drain(&env, &own).await;
        let Some(pb::envelope::Body::Acknowledgement(ack)) = &acks[0].0.body else {
            panic!("not an acknowledgement")
        };
        assert_eq!(ack.refers_to_message_id, id);
        assert_eq!(ack.outcome, pb::AckOutcome::Negative as i32);
        assert_eq!(ack.code.as_ref().unwrap().code, "invalid-nhs-number");
        assert!(
            ack.text.contains("fails the modulus 11 check"),
            "{}",
            ack.text
        );
        assert_eq!(
            traffic::queue_depth(
                &env,
                &env.names().egress_queue(&"ncl-royal-free".parse().unwrap())
            )
            .await,
            0
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_recipient_gets_nothing_and_the_sender_learns_nothing_of_why() {
    with_env(TestEnv::new("deny"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let denied = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RAL", "RKE"], 0),
            DENIED_PATIENT,
        );
        let answers = submit(&env, "nwl-imperial", vec![denied.clone()]).await;
        let outcome = accepted(&answers[0]);
        let dispositions: Vec<(String, i32)> = outcome
            .recipients
            .iter()
            .map(|r| (r.ods_code.clone(), r.disposition))
            .collect();
        assert_eq!(
            dispositions,
            [
                ("RAL".to_owned(), hubpb::Disposition::NotPermitted as i32),
                ("RKE".to_owned(), hubpb::Disposition::Forwarded as i32)
            ]
        );
        // RAL's exchange got nothing; RKE's got its copy.
        assert_eq!(
            traffic::queue_depth(
                &env,
                &env.names().egress_queue(&"ncl-royal-free".parse().unwrap())
            )
            .await,
            0
        );
        assert_eq!(
            traffic::queue_depth(
                &env,
                &env.names()
                    .egress_queue(&"ncl-whittington".parse().unwrap())
            )
            .await,
            1
        );
        // The sender's exchange gets a negative acknowledgement that says
        // nothing of the patient's choice.
        let own = traffic::drain(
            &env,
            &env.names().egress_queue(&"nwl-imperial".parse().unwrap()),
        )
        .await;
        assert_eq!(own.len(), 1);
        let Some(pb::envelope::Body::Acknowledgement(ack)) = &own[0].0.body else {
            panic!("not an acknowledgement")
        };
        assert_eq!(ack.outcome, pb::AckOutcome::Negative as i32);
        assert_eq!(ack.refers_to_message_id, denied.message_id);
        assert_eq!(
            ack.text,
            "recipient RAL: not permitted by information governance policy"
        );
        assert!(
            own[0].0.patient.is_none(),
            "the acknowledgement names the patient"
        );
        let said = format!("{} {:?}", ack.text, ack.code).to_lowercase();
        for secret in [
            "patient",
            "denied",
            "dir-test-1",
            DENIED_PATIENT,
            "consent",
            "directive",
        ] {
            assert!(
                !said.contains(secret),
                "the acknowledgement mentions {secret}: {said}"
            );
        }
        // The audit has the reason, the agreement and the directive, and is
        // searchable by NHS number.
        let audit = hub.audit_of_patient(DENIED_PATIENT).await;
        let recipients = &audit[0]["outcome"]["routed"]["recipients"];
        assert_eq!(recipients[0]["decision"], "denied");
        assert_eq!(recipients[0]["reason"], "patient-denied-organisation");
        assert_eq!(recipients[0]["directives"][0], "DIR-TEST-1");
        assert_eq!(recipients[0]["isa"][0], "ISA-TEST-1");
        assert_eq!(recipients[1]["decision"], "forwarded");
        // No agreement covers referrals: denied too.
        let mut referral = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        referral.category = pb::Category::Referral as i32;
        referral.body = Some(pb::envelope::Body::Referral(pb::Referral {
            referral_id: "REF-1".into(),
            ..Default::default()
        }));
        let answers = submit(&env, "nwl-imperial", vec![referral.clone()]).await;
        assert_eq!(
            accepted(&answers[0]).recipients[0].disposition,
            hubpb::Disposition::NotPermitted as i32
        );
        let audit = hub.audit_of_message(&referral.message_id).await;
        assert_eq!(
            audit[0]["outcome"]["routed"]["recipients"][0]["reason"],
            "no-agreement"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmitted_envelope_is_answered_again_but_not_routed_again() {
    with_env(TestEnv::new("dup"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let envelope = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let first = submit(&env, "nwl-imperial", vec![envelope.clone()]).await;
        assert!(!accepted(&first[0]).duplicate);
        let second = submit(&env, "nwl-imperial", vec![envelope.clone()]).await;
        let again = accepted(&second[0]);
        assert!(again.duplicate);
        assert_eq!(again.recipients, accepted(&first[0]).recipients);
        let queue = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
        assert_eq!(traffic::queue_depth(&env, &queue).await, 1, "routed once");
        // Another exchange reusing the id is not taken for a duplicate: ids
        // are de-duplicated per submitting exchange.
        let mut borrowed = discharge_summary("ncl-whittington", "RKE", &["RAL"], 0);
        borrowed.message_id = envelope.message_id.clone();
        let third = submit(&env, "ncl-whittington", vec![borrowed]).await;
        assert!(!accepted(&third[0]).duplicate);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_receipt_travels_back_to_the_sender() {
    with_env(TestEnv::new("receipt"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let document = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        submit(&env, "nwl-imperial", vec![document.clone()]).await;
        let receiver = traffic::receive_grpc(env.connection("ncl-royal-free"));
        receiver.received.wait_for(1, Duration::from_secs(20)).await;
        receiver.stop().await;
        // The Royal Free's adapter acknowledges: business, positive.
        let receipt = pb::Envelope {
            message_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: document.message_id.clone(),
            created_at: Some(prost_types_now()),
            sender: Some(pb::Party {
                ods_code: "RAL".into(),
                exchange_id: "ncl-royal-free".into(),
                sending_system: String::new(),
            }),
            addressing: Some(pb::Addressing {
                recipients: vec![pb::Recipient {
                    ods_code: "RYJ".into(),
                    intent: 0,
                }],
                rule: 0,
            }),
            purpose: pb::PurposeOfUse::DirectCare as i32,
            category: pb::Category::Acknowledgement as i32,
            body: Some(pb::envelope::Body::Acknowledgement(pb::Acknowledgement {
                refers_to_message_id: document.message_id.clone(),
                level: pb::AckLevel::Business as i32,
                outcome: pb::AckOutcome::Positive as i32,
                code: Some(pb::Coding {
                    system: lhcie_model::ITK_RESPONSE_CODE_SYSTEM.into(),
                    code: "30001".into(),
                    display: "Patient known here".into(),
                }),
                text: String::new(),
            })),
            ..Default::default()
        };
        let answers = submit(&env, "ncl-royal-free", vec![receipt.clone()]).await;
        assert_eq!(
            accepted(&answers[0]).recipients[0].exchange_id,
            "nwl-imperial"
        );
        let sender_side = traffic::receive_grpc(env.connection("nwl-imperial"));
        sender_side
            .received
            .wait_for(1, Duration::from_secs(20))
            .await;
        assert!(sender_side.received.contains(&receipt.message_id));
        sender_side.stop().await;
    })
    .await;
}

fn prost_types_now() -> prost_types::Timestamp {
    let now = time::OffsetDateTime::now_utc();
    prost_types::Timestamp {
        seconds: now.unix_timestamp(),
        nanos: now.nanosecond() as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_delivery_is_dead_lettered_after_the_limit_and_blocks_nothing() {
    with_env(TestEnv::new("poison"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let poison = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let fine: Vec<_> = (0..20)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0))
            .collect();
        let mut all = vec![poison.clone()];
        all.extend(fine.iter().cloned());
        submit(&env, "nwl-imperial", all).await;
        // A local system that can never take the poison envelope.
        let shutdown = tokio_util::sync::CancellationToken::new();
        let poison_id = poison.message_id.clone();
        let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = delivered.clone();
        let task = tokio::spawn(lhcie_adapter_kit::receive(
            env.connection("ncl-royal-free"),
            10,
            lhcie_adapter_kit::SeenStore::temporary().unwrap(),
            move |incoming| {
                let id = incoming.envelope.message_id.clone();
                let poison = id == poison_id;
                if !poison {
                    seen.lock().unwrap().push(id);
                }
                async move {
                    if poison {
                        lhcie_adapter_kit::Disposition::Retry
                    } else {
                        lhcie_adapter_kit::Disposition::Delivered
                    }
                }
            },
            shutdown.clone(),
        ));
        let dlq = env
            .names()
            .dead_letter_queue(&lhcie_broker::Destination::Exchange(
                "ncl-royal-free".parse().unwrap(),
            ));
        let dead = hub.dead_letters("ncl-royal-free", 1).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered.lock().unwrap().len() < fine.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the poison envelope blocked the others"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["message_id"], poison.message_id.as_str());
        assert_eq!(dead[0]["reason"], "delivery_limit");
        assert_eq!(dead[0]["recipients"], serde_json::json!(["RAL"]));
        assert_eq!(traffic::queue_depth(&env, &dlq).await, 0);
    })
    .await;
}

/// Receivers tell deliveries apart by submitting exchange, message id and
/// recipients, not by message id alone: an exchange that sends another
/// exchange's predicted message id first suppresses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predicted_message_id_from_another_exchange_suppresses_nothing() {
    with_env(TestEnv::new("predicted"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_grpc(env.connection("ncl-royal-free"));
        let real = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let mut predicted = discharge_summary("ncl-whittington", "RKE", &["RAL"], 0);
        predicted.message_id = real.message_id.clone();
        let first = submit(&env, "ncl-whittington", vec![predicted]).await;
        assert_eq!(
            accepted(&first[0]).recipients[0].disposition,
            hubpb::Disposition::Forwarded as i32
        );
        receiver.received.wait_for(1, Duration::from_secs(20)).await;
        let second = submit(&env, "nwl-imperial", vec![real.clone()]).await;
        assert!(
            !accepted(&second[0]).duplicate,
            "another exchange's message"
        );
        let received = receiver.received.clone();
        assert!(
            received
                .until(Duration::from_secs(20), |r| !r.handed_twice().is_empty())
                .await,
            "the real message was dropped as a duplicate of the predicted one"
        );
        let stats = receiver.stop().await;
        assert_eq!(stats.duplicates, 0);
        assert_eq!(received.handed_twice(), vec![real.message_id]);
    })
    .await;
}

/// An acknowledgement from the Royal Free answering `refers_to`, addressed
/// to `to`.
fn receipt(refers_to: &str, to: &str) -> pb::Envelope {
    pb::Envelope {
        message_id: uuid::Uuid::new_v4().to_string(),
        created_at: Some(prost_types_now()),
        sender: Some(pb::Party {
            ods_code: "RAL".into(),
            exchange_id: "ncl-royal-free".into(),
            sending_system: String::new(),
        }),
        addressing: Some(pb::Addressing {
            recipients: vec![pb::Recipient {
                ods_code: to.into(),
                intent: 0,
            }],
            rule: 0,
        }),
        purpose: pb::PurposeOfUse::DirectCare as i32,
        category: pb::Category::Acknowledgement as i32,
        body: Some(pb::envelope::Body::Acknowledgement(pb::Acknowledgement {
            refers_to_message_id: refers_to.into(),
            level: pb::AckLevel::Business as i32,
            outcome: pb::AckOutcome::Positive as i32,
            code: None,
            text: String::new(),
        })),
        ..Default::default()
    }
}

/// Acknowledgements travel without a consent decision, so they carry no
/// patient data and answer only a message routed the other way; a payload
/// is delivered only if it is about the patient the decision was made for.
/// Each refusal is answered with what is wrong, and nothing reaches anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_originals_that_could_leak_a_record_are_refused() {
    with_env(TestEnv::new("leaks"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let document = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        submit(&env, "nwl-imperial", vec![document.clone()]).await;

        let mut with_patient = receipt(&document.message_id, "RYJ");
        with_patient.patient = document.patient.clone();
        let mut with_original = receipt(&document.message_id, "RYJ");
        with_original.original = Some(pb::OriginalPayload {
            media_type: "application/fhir+json".into(),
            content: lhcie_model::Bytes::from_static(br#"{"resourceType":"Bundle"}"#),
        });
        let unknown = receipt(&uuid::Uuid::new_v4().to_string(), "RYJ");
        let elsewhere = receipt(&document.message_id, "RKE");
        let answers = submit(
            &env,
            "ncl-royal-free",
            vec![with_patient, with_original, unknown, elsewhere],
        )
        .await;
        let expected = [
            "carries no patient",
            "carries no original",
            "is not a message this hub routed",
            "goes back to the sender",
        ];
        for (answer, expected) in answers.iter().zip(expected) {
            let (reason, detail) = rejected(answer);
            assert_eq!(reason, hubpb::RejectReason::InvalidEnvelope);
            assert!(detail.contains(expected), "{detail}");
        }
        // The sender cannot acknowledge its own message to itself.
        let mut backwards = receipt(&document.message_id, "RAL");
        backwards.sender = Some(pb::Party {
            ods_code: "RYJ".into(),
            exchange_id: "nwl-imperial".into(),
            sending_system: String::new(),
        });
        let (_, detail) = rejected(&submit(&env, "nwl-imperial", vec![backwards]).await[0]);
        assert!(detail.contains("goes back to the sender"), "{detail}");

        // An HL7 v2 original about another patient than the envelope's.
        let mut hl7 = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        hl7.original = Some(pb::OriginalPayload {
            media_type: "x-application/hl7-v2+er7".into(),
            content: lhcie_model::Bytes::from_static(
                b"MSH|^~\\&|PAS|RYJ|HUB|LHCIE|20261120021900||MDM^T02|42|P|2.4\rPID|1||9000000009^^^NHS^NH||OTHER^PATIENT\r",
            ),
        });
        // A FHIR Bundle with a second Patient beside the subject.
        let mut fhir = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let patient = |id: &str, nhs: &str| {
            format!(r#"{{"resource":{{"resourceType":"Patient","id":"{id}","identifier":[{{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"{nhs}"}}]}}}}"#)
        };
        fhir.original = Some(pb::OriginalPayload {
            media_type: "application/fhir+json".into(),
            content: format!(
                r#"{{"resourceType":"Bundle","type":"message","entry":[{},{}]}}"#,
                patient("a", "9434765919"),
                patient("b", DENIED_PATIENT)
            )
            .into_bytes()
            .into(),
        });
        let answers = submit(&env, "nwl-imperial", vec![hl7, fhir]).await;
        let (_, detail) = rejected(&answers[0]);
        assert!(detail.contains("PID-3"), "{detail}");
        let (_, detail) = rejected(&answers[1]);
        assert!(detail.contains("2 Patient resources"), "{detail}");
        for answer in &answers {
            let (_, detail) = rejected(answer);
            assert!(!detail.contains(DENIED_PATIENT), "{detail}");
        }

        // Only the first document reached the Royal Free; Imperial got nothing.
        for (exchange, expected) in [("ncl-royal-free", 1), ("nwl-imperial", 0)] {
            let egress = env.names().egress_queue(&exchange.parse().unwrap());
            assert_eq!(traffic::queue_depth(&env, &egress).await, expected, "{exchange}");
        }
    })
    .await;
}

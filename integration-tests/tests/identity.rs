//! Identity: every adapter proves its exchange, by client certificate on
//! gRPC and by its own broker user on AMQP, and can act only for that
//! exchange.

use std::time::Duration;

use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::{BasicProperties, types::FieldTable};
use lhcie_adapter_kit::{ClientTls, HubConnection};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary};
use lhcie_proto::hub as hubpb;

/// Opens a Submit stream and sends one envelope; the first answer or error.
async fn try_submit(connection: &HubConnection) -> Result<hubpb::SubmitResponse, String> {
    let mut client = connection
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let envelope = discharge_summary(connection.exchange.as_str(), "RYJ", &["RAL"], 0);
    let request = tokio_stream::iter(vec![hubpb::SubmitRequest {
        envelope: Some(envelope),
    }]);
    let mut stream = client
        .submit(request)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    match stream.message().await {
        Ok(Some(answer)) => Ok(answer),
        Ok(None) => Err("no answer".into()),
        Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_callers_must_present_a_certificate_naming_a_known_exchange() {
    with_env(TestEnv::new("idgrpc"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let endpoint = format!("https://127.0.0.1:{}", env.grpc_port);
        let exchange = "nwl-imperial".parse().unwrap();

        // The right certificate works.
        assert!(try_submit(&env.connection("nwl-imperial")).await.is_ok());

        // No certificate: the TLS handshake is refused.
        let no_certificate = async {
            let tls =
                lhcie_tls::tonic_config::client_without_identity(&env.pki.ca_cert(), "localhost")
                    .unwrap();
            let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            let mut client = hubpb::exchange_client::ExchangeClient::new(channel);
            client
                .heartbeat(hubpb::HeartbeatRequest::default())
                .await
                .map(|_| ())
                .map_err(|s| s.to_string())
        };
        assert!(
            no_certificate.await.is_err(),
            "a client without a certificate was served"
        );

        // A certificate for the same exchange from a CA the hub does not
        // trust: refused.
        let rogue_ca = lhcie_tls::DevCa::generate().unwrap();
        let rogue = rogue_ca.issue_exchange(&exchange).unwrap();
        let (cert, key) = env.pki.write_extra("rogue", &rogue).unwrap();
        let rogue_connection = HubConnection {
            endpoint: endpoint.clone(),
            tls: Some(ClientTls {
                ca: env.pki.ca_cert(),
                cert,
                key,
                server_name: "localhost".into(),
            }),
            exchange: exchange.clone(),
        };
        assert!(
            try_submit(&rogue_connection).await.is_err(),
            "a certificate from an untrusted CA was accepted"
        );

        // A trusted certificate naming an exchange that is not in the
        // topology: permission denied.
        let unknown = env
            .ca
            .issue_exchange(&"sel-nowhere".parse().unwrap())
            .unwrap();
        let (cert, key) = env.pki.write_extra("unknown", &unknown).unwrap();
        let unknown_connection = HubConnection {
            endpoint: endpoint.clone(),
            tls: Some(ClientTls {
                ca: env.pki.ca_cert(),
                cert,
                key,
                server_name: "localhost".into(),
            }),
            exchange: "sel-nowhere".parse().unwrap(),
        };
        let error = try_submit(&unknown_connection).await.unwrap_err();
        assert!(
            error.contains("PermissionDenied") && error.contains("not in this hub's topology"),
            "{error}"
        );

        // A trusted certificate without an exchange name: unauthenticated.
        let nameless = env.ca.issue_client("urn:example:nobody", "nobody").unwrap();
        let (cert, key) = env.pki.write_extra("nameless", &nameless).unwrap();
        let nameless_connection = HubConnection {
            endpoint,
            tls: Some(ClientTls {
                ca: env.pki.ca_cert(),
                cert,
                key,
                server_name: "localhost".into(),
            }),
            exchange,
        };
        let error = try_submit(&nameless_connection).await.unwrap_err();
        assert!(
            error.contains("Unauthenticated") && error.contains("names no exchange"),
            "{error}"
        );

        // Nothing but the one legitimate envelope reached the recipient.
        let queue = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
        assert_eq!(traffic::queue_depth(&env, &queue).await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_one_exchange_cannot_send_for_another() {
    with_env(TestEnv::new("idcross"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        // Imperial's certificate, an envelope claiming to come from the
        // Royal Free through its own exchange.
        let impersonation = discharge_summary("ncl-royal-free", "RAL", &["RKE"], 0);
        let answers = traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![impersonation.clone()],
            1,
            Duration::from_secs(20),
        )
        .await;
        let Some(hubpb::submit_response::Outcome::Rejected(rejected)) =
            &answers[&impersonation.message_id].outcome
        else {
            panic!("impersonation was not rejected");
        };
        assert_eq!(
            rejected.reason,
            hubpb::RejectReason::SenderNotAuthorised as i32
        );
        let queue = env
            .names()
            .egress_queue(&"ncl-whittington".parse().unwrap());
        assert_eq!(traffic::queue_depth(&env, &queue).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_users_can_touch_only_their_own_queue_and_the_ingress() {
    with_env(TestEnv::new("idamqp"), |env| async move {
        let identities = env
            .provision_users(&["nwl-imperial", "ncl-royal-free"])
            .await;
        let _hub = HubProcess::start(&env).await;
        let imperial = &identities[0];
        let connection = lhcie_broker::connect(&imperial.broker, "identity test")
            .await
            .unwrap();
        let names = env.names();

        // Its own queue: allowed.
        let channel = connection.create_channel().await.unwrap();
        let own = names.egress_queue(&"nwl-imperial".parse().unwrap());
        channel
            .basic_consume(
                own.as_str().into(),
                "own".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consuming its own queue");

        // Another exchange's queue: refused by the broker.
        let channel = connection.create_channel().await.unwrap();
        let other = names.egress_queue(&"ncl-royal-free".parse().unwrap());
        let error = channel
            .basic_consume(
                other.as_str().into(),
                "other".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("read another exchange's queue");
        assert!(
            error.to_string().contains("ACCESS_REFUSED")
                || error.to_string().contains("ACCESS-REFUSED"),
            "{error}"
        );

        // Publishing straight to another exchange's deliveries, bypassing
        // the hub: refused.
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        let outcome = async {
            channel
                .basic_publish(
                    names.egress_exchange().as_str().into(),
                    "ncl-royal-free".into(),
                    BasicPublishOptions::default(),
                    b"bypass",
                    BasicProperties::default(),
                )
                .await?
                .await
        }
        .await;
        assert!(outcome.is_err(), "published to the egress exchange");

        // Claiming to be another user in the user-id property: refused.
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        let forged = async {
            channel
                .basic_publish(
                    names.ingress_exchange().as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    b"forged",
                    BasicProperties::default().with_user_id(
                        names
                            .adapter_user(&"ncl-royal-free".parse().unwrap())
                            .into(),
                    ),
                )
                .await?
                .await
        }
        .await;
        assert!(forged.is_err(), "published with another user's user-id");
        let _ = connection.close(200, "done".into()).await;
        assert_eq!(traffic::queue_depth(&env, &other).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_without_a_broker_identity_is_dead_lettered() {
    with_env(TestEnv::new("idanon"), |env| async move {
        let hub = HubProcess::start(&env).await;
        // Published by the administrative guest user, without user-id.
        let connection = lhcie_broker::connect(&env.broker(), "anonymous")
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        let envelope = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        channel
            .basic_publish(
                env.names().ingress_exchange().as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &prost::Message::encode_to_vec(&envelope),
                BasicProperties::default().with_message_id(envelope.message_id.as_str().into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
        let dlq = env
            .names()
            .dead_letter_queue(&lhcie_broker::Destination::Ingress);
        let dead = hub.dead_letters("ingress", 1).await;
        assert_eq!(dead[0]["reason"], "unidentified-publisher");
        assert_eq!(dead[0]["message_id"], envelope.message_id.as_str());
        assert_eq!(traffic::queue_depth(&env, &dlq).await, 0);
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

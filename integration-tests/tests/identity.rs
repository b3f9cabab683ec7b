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

/// H4: an ingress letter the broker dead-lettered is attributed to the
/// broker user that published it, never to the exchange a publisher-set
/// `lhcie-submitted-by` header names; without a validated user it is
/// "identity unverified" and replay refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_dead_letter_takes_its_submitter_from_the_broker_user_not_a_forged_header() {
    with_env(TestEnv::new("idforge"), |env| async move {
        let identities = env.provision_users(&["nwl-imperial"]).await;
        // The hub does not consume the ingress queue, so what is published
        // expires there and the broker dead-letters it.
        let config = std::fs::read_to_string(&env.hub_config).unwrap();
        std::fs::write(
            &env.hub_config,
            config.replace(
                "[amqp_ingress]\nenabled = true",
                "[amqp_ingress]\nenabled = false",
            ),
        )
        .unwrap();
        let hub = HubProcess::start(&env).await;
        let names = env.names();
        let connection = lhcie_broker::connect(&identities[0].broker, "forger")
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        // Exchange nwl-imperial claims, in the header, to be ncl-royal-free
        // and sends as ncl-royal-free's organisation.
        let forged_header = |user_id: bool| {
            let mut headers = FieldTable::default();
            headers.insert(
                "lhcie-submitted-by".into(),
                lapin::types::AMQPValue::LongString("ncl-royal-free".into()),
            );
            headers.insert(
                "lhcie-reject-reason".into(),
                lapin::types::AMQPValue::LongString("Patient Smith asked us to".into()),
            );
            let properties = BasicProperties::default()
                .with_expiration("1".into())
                .with_headers(headers);
            if user_id {
                properties.with_user_id(names.adapter_user(&"nwl-imperial".parse().unwrap()).into())
            } else {
                properties
            }
        };
        let mut ids = Vec::new();
        for user_id in [true, false] {
            let envelope = discharge_summary("ncl-royal-free", "RAL", &["RYJ"], 0);
            ids.push(envelope.message_id.clone());
            channel
                .basic_publish(
                    names.ingress_exchange().as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &prost::Message::encode_to_vec(&envelope),
                    forged_header(user_id).with_message_id(envelope.message_id.as_str().into()),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let _ = connection.close(200, "done".into()).await;
        let dead = hub.dead_letters("ingress", 2).await;
        let letter = |id: &str| {
            dead.iter()
                .find(|l| l["message_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} not collected: {dead:?}"))
        };
        let with_user = letter(&ids[0]);
        assert_eq!(with_user["submitted_by"], "nwl-imperial", "{with_user}");
        assert_eq!(with_user["identity_verified"], true);
        assert_eq!(with_user["reason"], "expired", "{with_user}");
        let without = letter(&ids[1]);
        assert_eq!(without["submitted_by"], "", "{without}");
        assert_eq!(without["identity_verified"], false);
        for letter in [&with_user, &without] {
            assert!(!letter.to_string().contains("ncl-royal-free"), "{letter}");
            assert!(!letter.to_string().contains("Smith"), "{letter}");
        }

        // Replay: the unverified one is refused with the reason; the other
        // is decided as nwl-imperial's, whose sender check refuses RAL.
        let ops = hub.ops();
        let (status, answer) = ops
            .post(
                "/api/dead-letters/replay",
                &serde_json::json!({"ids": [without["id"], with_user["id"]]}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results[0]["outcome"], "failed", "{answer}");
        assert!(
            results[0]["detail"]
                .as_str()
                .unwrap()
                .contains("identity unverified"),
            "{answer}"
        );
        assert_eq!(results[1]["outcome"], "rejected", "{answer}");
        let audit = hub.audit_of_message(&ids[0]).await;
        assert_eq!(audit[0]["submitted_by"], "nwl-imperial", "{audit}");
        assert_eq!(
            audit[0]["outcome"]["rejected"]["reason"], "sender-not-authorised",
            "{audit}"
        );
        assert_eq!(
            traffic::queue_depth(&env, &names.egress_queue(&"nwl-imperial".parse().unwrap())).await,
            1,
            "only the hub's negative acknowledgement to nwl-imperial"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_exchange_certificate_is_refused_at_connect_and_others_still_work() {
    with_env(TestEnv::new("idcrl"), |env| async move {
        // The hub checks client certificates against the CA's revocation
        // list, empty at first.
        let crl = lhcie_tls::revocation::crl_path(&env.pki);
        env.ca.write_crl(&crl, &[], 1).unwrap();
        let config = std::fs::read_to_string(&env.hub_config).unwrap();
        assert!(config.contains("client_ca = \"pki/ca.pem\"\n"));
        std::fs::write(
            &env.hub_config,
            config.replace(
                "client_ca = \"pki/ca.pem\"\n",
                "client_ca = \"pki/ca.pem\"\ncrl = \"pki/crl.pem\"\n",
            ),
        )
        .unwrap();
        let hub = HubProcess::start(&env).await;
        let imperial = env.connection("nwl-imperial");
        let royal_free = env.connection("ncl-royal-free");
        assert!(try_submit(&imperial).await.is_ok(), "{}", hub.log());
        assert!(try_submit(&royal_free).await.is_ok(), "{}", hub.log());

        // Imperial's key is compromised: the CA lists its certificate. The
        // running hub reads the new list and refuses Imperial in the
        // handshake; the Royal Free is still served.
        let id = "nwl-imperial".parse().unwrap();
        let compromised = lhcie_tls::Issued {
            cert_pem: std::fs::read_to_string(env.pki.exchange_cert(&id)).unwrap(),
            key_pem: String::new(),
        };
        env.ca.write_crl(&crl, &[&compromised], 2).unwrap();
        // Refused in the TLS handshake (with TLS 1.3 the client learns it
        // at its first request): a transport failure, not an answer from
        // the hub's services. Which one the client reports depends on when
        // the alert reaches it: while connecting, as a transport error, or
        // as its request cancelled by the closed connection.
        let refused = try_submit(&imperial).await;
        let transport_failure = |e: &String| {
            e.starts_with("connect")
                || e.contains("transport error")
                || e.starts_with("Cancelled: operation was canceled")
        };
        assert!(
            refused.as_ref().is_err_and(transport_failure),
            "a revoked certificate was served: {refused:?}"
        );
        assert!(try_submit(&royal_free).await.is_ok(), "{}", hub.log());
        assert!(
            hub.log().contains("certificate revocation list reloaded"),
            "{}",
            hub.log()
        );
        assert!(hub.log().contains("Revoked"), "{}", hub.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_broker_credentials_are_one_private_file_per_exchange() {
    with_env(TestEnv::new("idcreds"), |env| async move {
        use std::os::unix::fs::PermissionsExt;
        let dir = env.dir().join("secrets").join("broker");
        std::fs::create_dir_all(&dir).unwrap();
        // A file left from an earlier run, readable by everyone.
        let stale = dir.join("nwl-imperial.toml");
        std::fs::write(&stale, "stale").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();

        let output = std::process::Command::new(lhcie_integration_tests::binary("hub"))
            .arg("provision-broker-users")
            .arg(&env.hub_config)
            .arg(&dir)
            .output()
            .expect("running hub provision-broker-users");
        let mut created = Vec::new();
        let ids: Vec<&str> = lhcie_integration_tests::env::EXCHANGES
            .iter()
            .map(|(id, _, _)| *id)
            .collect();
        for id in &ids {
            let path = dir.join(format!("{id}.toml"));
            if let Ok(file) =
                lhcie_config::toml_file::read::<lhcie_config::BrokerCredentialsFile>(&path)
            {
                created.push(file.user.clone());
            }
        }
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            for id in &ids {
                let path = dir.join(format!("{id}.toml"));
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
                let text = std::fs::read_to_string(&path).unwrap();
                for other in ids.iter().filter(|other| *other != id) {
                    assert!(!text.contains(other), "{id}'s file names {other}");
                }
                let file: lhcie_config::BrokerCredentialsFile =
                    lhcie_config::toml_file::read(&path).unwrap();
                assert_eq!(file.exchange.as_str(), *id);
                assert_eq!(file.user, format!("{}-{id}", env.prefix));
            }
            assert!(!dir.join("broker-users.toml").exists());
        }));
        let _ = lhcie_broker::users::delete(&created);
        if let Err(failure) = checked {
            std::panic::resume_unwind(failure);
        }
    })
    .await;
}

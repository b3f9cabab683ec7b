//! The registry's transport security and authorisation, with real
//! processes over real sockets: three nodes with mutual TLS on both ports
//! refuse a caller with no certificate or one from another CA, record the
//! certificate's identity whatever `lhcie-actor` says, refuse what the
//! authorisation table does not allow (the hub signing an agreement or
//! reading a patient's directives, Raft messages from a non-member,
//! cluster administration by the hub); the hub's client refuses a server
//! that is not a registry node and a redirect to an address it was not
//! configured with. See `docs/security.md`, "Registry authorisation".

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lhcie_integration_tests::registry::{
    ClusterOptions, RegistryCluster, deny_organisation, service_tls, synthetic_patient,
};
use lhcie_proto::registry as pb;
use lhcie_proto::registry::RaftPayload;
use lhcie_proto::registry::cluster_admin_client::ClusterAdminClient;
use lhcie_proto::registry::consent_registry_client::ConsentRegistryClient;
use lhcie_proto::registry::raft_internal_client::RaftInternalClient;
use lhcie_registry_client::{RegistryClient, RegistryPolicy, RegistryTls, Retry};
use lhcie_tls::PkiLayout;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const ADMIN: &str = "urn:lhcie:service:registry-admin";

/// This cluster's PKI (nodes 1 to 3 and a node 9 that is no member; the
/// services hub, registry-admin and console), and another CA's.
fn pkis(dir: &Path) -> (PkiLayout, PkiLayout) {
    let pki = PkiLayout::new(dir.join("pki"));
    let ca = pki.generate(&[]).unwrap();
    pki.generate_services(&ca, &[1, 2, 3, 9], &["hub", "registry-admin", "console"])
        .unwrap();
    let other = PkiLayout::new(dir.join("other-pki"));
    let other_ca = other.generate(&[]).unwrap();
    other
        .generate_services(&other_ca, &[1], &["registry-admin", "hub"])
        .unwrap();
    (pki, other)
}

/// A channel trusting `ca`, presenting `identity` (certificate, key) if
/// given. The handshake may only fail at the first call (TLS 1.3).
async fn channel(
    address: &str,
    ca: &Path,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<Channel, String> {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

fn service(pki: &PkiLayout, name: &str) -> Option<(PathBuf, PathBuf)> {
    Some((pki.service_cert(name), pki.service_key(name)))
}

fn node(pki: &PkiLayout, id: u64) -> Option<(PathBuf, PathBuf)> {
    Some((pki.registry_node_cert(id), pki.registry_node_key(id)))
}

/// A status call as `identity`: refused at the handshake or answered.
async fn status_as(
    address: &str,
    ca: &Path,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<pb::StatusResponse, String> {
    let channel = channel(address, ca, identity).await?;
    let mut client = ConsentRegistryClient::new(channel);
    tokio::time::timeout(Duration::from_secs(5), client.status(pb::StatusRequest {}))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map(|r| r.into_inner())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

fn assert_denied(status: &tonic::Status, message: &str) {
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(message), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_with_mutual_tls_refuse_whoever_has_no_business() {
    lhcie_integration_tests::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    lhcie_integration_tests::env::write_topology(dir.path());
    let (pki, other) = pkis(dir.path());
    let mut cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        3,
        &ClusterOptions {
            tls: Some(pki.clone()),
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let leader_api = cluster.node(leader).api();
    let leader_raft = format!("127.0.0.1:{}", cluster.node(leader).raft_port);
    let ca = pki.ca_cert();

    // A forged `lhcie-actor`: the change is recorded as made by the
    // certificate's identity, and replicated to every node.
    let admin = cluster.client("mallory-the-forger");
    let reply = admin
        .unary(
            Retry::Idempotent,
            &deny_organisation("D-1", &synthetic_patient(1), "RAL"),
            |mut c, mut r| async move {
                r.metadata_mut()
                    .insert("lhcie-actor", "Dr Forged".parse().unwrap());
                c.set_directive(r).await
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.directive.unwrap().recorded_by, ADMIN);
    for id in 1..=3 {
        cluster
            .wait_revision(id, reply.revision, Duration::from_secs(10))
            .await;
    }

    // No client certificate, or one from another CA: refused.
    let refused = status_as(&leader_api, &ca, None).await.unwrap_err();
    assert!(!refused.is_empty());
    assert!(
        status_as(&leader_api, &ca, service(&other, "registry-admin"))
            .await
            .is_err(),
        "a certificate from another CA was accepted"
    );
    // The same call with this CA's certificate is answered.
    status_as(&leader_api, &ca, service(&pki, "registry-admin"))
        .await
        .unwrap();

    // The hub may not sign an agreement, nor read a patient's choices.
    let hub_channel = channel(&leader_api, &ca, service(&pki, "hub"))
        .await
        .unwrap();
    let mut hub = ConsentRegistryClient::new(hub_channel.clone());
    let sign = pb::SignIsaRequest {
        isa_id: "ISA-TEST-1".into(),
        version: 1,
        signature: Some(pb::Signature {
            party: Some(pb::IsaParty {
                scope: Some(pb::isa_party::Scope::Region("NWL".into())),
            }),
            signer: "Dr A. Guardian".into(),
            role: "Caldicott Guardian".into(),
            organisation_ods: "RYJ".into(),
            signed_at: None,
        }),
    };
    let status = hub.sign_isa(sign).await.unwrap_err();
    assert_denied(&status, "urn:lhcie:service:hub may not call SignIsa");
    for status in [
        hub.list_directives(pb::PatientRequest {
            nhs_number: synthetic_patient(1),
        })
        .await
        .unwrap_err(),
        hub.directive_history(pb::PatientRequest {
            nhs_number: synthetic_patient(1),
        })
        .await
        .unwrap_err(),
        hub.list_carer_grants(pb::PatientRequest {
            nhs_number: synthetic_patient(1),
        })
        .await
        .unwrap_err(),
    ] {
        assert_denied(&status, "urn:lhcie:service:hub may not call");
    }
    // ... but it may watch.
    let mut feed = hub
        .watch(pb::WatchRequest { from_revision: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(feed.message().await.unwrap().is_some());

    // A service the table does not name may call nothing.
    let status = status_as(&leader_api, &ca, service(&pki, "console"))
        .await
        .unwrap_err();
    assert!(
        status.contains("urn:lhcie:service:console may not call Status"),
        "{status}"
    );

    // Raft messages from a certificate that is not a member: refused
    // before they are read. A member's garbage is read (and refused as
    // such).
    for (who, identity) in [
        ("urn:lhcie:registry-node:9", node(&pki, 9)),
        ("urn:lhcie:service:hub", service(&pki, "hub")),
        (
            "urn:lhcie:service:registry-admin",
            service(&pki, "registry-admin"),
        ),
    ] {
        let mut raft = RaftInternalClient::new(channel(&leader_raft, &ca, identity).await.unwrap());
        let payload = RaftPayload {
            data: vec![0xff; 16].into(),
        };
        let status = raft.append_entries(payload.clone()).await.unwrap_err();
        assert_denied(
            &status,
            &format!("{who} may not call RaftInternal.AppendEntries"),
        );
        let status = raft.install_snapshot(payload.clone()).await.unwrap_err();
        assert_denied(
            &status,
            &format!("{who} may not call RaftInternal.InstallSnapshot"),
        );
        let status = raft.vote(payload).await.unwrap_err();
        assert_denied(&status, &format!("{who} may not call RaftInternal.Vote"));
    }
    let member = (1..=3).find(|id| *id != leader).unwrap();
    let mut raft = RaftInternalClient::new(
        channel(&leader_raft, &ca, node(&pki, member))
            .await
            .unwrap(),
    );
    let status = raft
        .append_entries(RaftPayload {
            data: vec![0xff; 16].into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    // No certificate at all on the Raft port: refused at the handshake.
    let unauthenticated = match channel(&leader_raft, &ca, None).await {
        Err(_) => true,
        Ok(channel) => RaftInternalClient::new(channel)
            .vote(RaftPayload::default())
            .await
            .is_err_and(|s| s.code() != tonic::Code::PermissionDenied),
    };
    assert!(unauthenticated);

    // Cluster administration by the hub: refused.
    let mut cluster_admin = ClusterAdminClient::new(
        channel(&leader_raft, &ca, service(&pki, "hub"))
            .await
            .unwrap(),
    );
    let status = cluster_admin
        .remove_node(pb::RemoveNodeRequest { node_id: member })
        .await
        .unwrap_err();
    assert_denied(
        &status,
        "urn:lhcie:service:hub may not call ClusterAdmin.RemoveNode",
    );

    // The hub's client follows the cluster over mutual TLS and is proven
    // current by the leader.
    let client = RegistryClient::new(cluster.endpoints(), "hub")
        .unwrap()
        .with_tls(&RegistryTls {
            nodes: vec![1, 2, 3],
            ..service_tls(&pki, "hub")
        })
        .unwrap();
    let cache = Arc::new(RegistryPolicy::new(Duration::from_secs(2)));
    let shutdown = CancellationToken::new();
    tokio::spawn(lhcie_registry_client::follow(
        client,
        cache.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    let started = tokio::time::Instant::now();
    while !(cache.health().fresh && cache.health().directives == 1) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the hub's copy did not become current: {:?}\n{}",
            cache.health(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();

    // A client that accepts only nodes 7 and 8 refuses these nodes.
    let picky = RegistryClient::new(cluster.endpoints(), "hub")
        .unwrap()
        .with_tls(&RegistryTls {
            nodes: vec![7, 8],
            ..service_tls(&pki, "hub")
        })
        .unwrap()
        .with_deadline(Duration::from_secs(1));
    let refused = picky
        .unary(
            Retry::Idempotent,
            &pb::StatusRequest {},
            |mut c, r| async move { c.status(r).await },
        )
        .await;
    assert!(
        refused.is_err(),
        "a node that is not configured was accepted"
    );

    for node in &mut cluster.nodes {
        node.kill9();
    }
}

/// A fake registry node: answers every call "not the leader, go to `to`",
/// counting calls.
#[derive(Clone)]
struct Redirector {
    to: String,
    calls: Arc<AtomicUsize>,
}

impl tonic::server::NamedService for Redirector {
    const NAME: &'static str = "lhcie.registry.v1.ConsentRegistry";
}

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Redirector {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut status = tonic::Status::failed_precondition("this node does not lead");
        status
            .metadata_mut()
            .insert("lhcie-leader", self.to.parse().unwrap());
        std::future::ready(Ok(status.into_http()))
    }
}

/// Serves a [`Redirector`] (with TLS as `cert`/`key`, client certificates
/// from `ca`, when given); its address and call count.
async fn fake_registry(
    to: &str,
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
    shutdown: &CancellationToken,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key, ca)) = tls {
        builder = builder
            .tls_config(lhcie_tls::tonic_config::server(&cert, &key, &ca).unwrap())
            .unwrap();
    }
    let server = builder
        .add_service(Redirector {
            to: to.to_owned(),
            calls: calls.clone(),
        })
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.clone().cancelled_owned(),
        );
    tokio::spawn(server);
    (address, calls)
}

/// An impostor: counts the connections made to it.
async fn impostor() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (address, connections)
}

async fn status_through(client: &RegistryClient) -> Result<pb::StatusResponse, tonic::Status> {
    client
        .unary(
            Retry::Idempotent,
            &pb::StatusRequest {},
            |mut c, r| async move { c.status(r).await },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_registry_feed_is_not_redirected_to_an_impostor() {
    lhcie_integration_tests::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (pki, other) = pkis(dir.path());
    let shutdown = CancellationToken::new();
    let (impostor, connections) = impostor().await;

    // A registry node (of this CA) that redirects to an address not in the
    // hub's configuration: the hub does not go there.
    let (fake, calls) = fake_registry(
        &impostor,
        Some((
            pki.registry_node_cert(1),
            pki.registry_node_key(1),
            pki.ca_cert(),
        )),
        &shutdown,
    )
    .await;
    let hub = RegistryClient::new(vec![fake.clone()], "hub")
        .unwrap()
        .with_tls(&service_tls(&pki, "hub"))
        .unwrap()
        .with_deadline(Duration::from_secs(1));
    let refused = status_through(&hub).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 1, "the fake was not asked");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the impostor was contacted"
    );
    assert_eq!(hub.current_target(), fake);

    // The same over plaintext (development clients): not followed either.
    let (plain, plain_calls) = fake_registry(&impostor, None, &shutdown).await;
    let hub = RegistryClient::new(vec![plain], "hub")
        .unwrap()
        .with_deadline(Duration::from_secs(1));
    assert!(status_through(&hub).await.is_err());
    assert!(plain_calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the impostor was contacted"
    );

    // An impostor at a configured address: with a certificate of this CA
    // that names no registry node (the hub's own server certificate), or a
    // registry node certificate of another CA, it is refused at the
    // handshake and never asked anything.
    for (cert, key) in [
        (pki.hub_cert(), pki.hub_key()),
        (other.registry_node_cert(1), other.registry_node_key(1)),
    ] {
        let (fake, calls) =
            fake_registry(&impostor, Some((cert, key, pki.ca_cert())), &shutdown).await;
        let hub = RegistryClient::new(vec![fake], "hub")
            .unwrap()
            .with_tls(&service_tls(&pki, "hub"))
            .unwrap()
            .with_deadline(Duration::from_secs(1));
        let refused = status_through(&hub).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{refused:?}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    shutdown.cancel();
}

/// An `AppendEntries` as `identity` on the Raft port: the refusal's text.
async fn append_as(address: &str, ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> String {
    let channel = match channel(address, ca, identity).await {
        Ok(channel) => channel,
        Err(error) => return error,
    };
    let mut raft = RaftInternalClient::new(channel);
    let call = raft.append_entries(RaftPayload {
        data: vec![0xff; 16].into(),
    });
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Err(_) => "timed out".into(),
        Ok(Ok(_)) => "answered".into(),
        Ok(Err(status)) => format!("{:?}: {}", status.code(), status.message()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_on_both_ports_once_the_list_names_it() {
    lhcie_integration_tests::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    lhcie_integration_tests::env::write_topology(dir.path());
    let pki = PkiLayout::new(dir.path().join("pki"));
    let ca = pki.generate(&[]).unwrap();
    pki.generate_services(&ca, &[1], &["hub", "registry-admin"])
        .unwrap();
    let crl = lhcie_tls::revocation::crl_path(&pki);
    ca.write_crl(&crl, &[], 1).unwrap();
    let mut cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        1,
        &ClusterOptions {
            tls: Some(pki.clone()),
            crl: true,
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let api = cluster.node(leader).api();
    let raft = format!("127.0.0.1:{}", cluster.node(leader).raft_port);
    let ca_cert = pki.ca_cert();
    assert!(
        status_as(&api, &ca_cert, service(&pki, "hub"))
            .await
            .is_ok()
    );
    // On the Raft port the hub is known, and refused by the authorisation
    // table (an answer), not at the handshake.
    let before = append_as(&raft, &ca_cert, service(&pki, "hub")).await;
    assert!(before.starts_with("PermissionDenied"), "{before}");

    // The hub's key is compromised: the CA lists its certificate. The node
    // reads the new list at the next handshake.
    let hub = lhcie_tls::Issued {
        cert_pem: std::fs::read_to_string(pki.service_cert("hub")).unwrap(),
        key_pem: String::new(),
    };
    ca.write_crl(&crl, &[&hub], 2).unwrap();
    let refused = status_as(&api, &ca_cert, service(&pki, "hub")).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| !e.starts_with("PermissionDenied")),
        "a revoked certificate was served on the API port: {refused:?}"
    );
    let after = append_as(&raft, &ca_cert, service(&pki, "hub")).await;
    assert!(
        !after.starts_with("PermissionDenied") && after != "answered",
        "a revoked certificate reached the Raft service: {after}"
    );
    // Everyone else is still served.
    assert!(
        status_as(&api, &ca_cert, service(&pki, "registry-admin"))
            .await
            .is_ok()
    );
}

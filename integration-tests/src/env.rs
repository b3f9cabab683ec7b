//! An isolated test environment.

use crate::{free_port, repository};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lhcie_adapter_kit::amqp::AmqpIdentity;
use lhcie_adapter_kit::{ClientTls, HubConnection};
use lhcie_broker::users::{self, AdapterUser};
use lhcie_broker::{BrokerTopology, Declaration, Names};
use lhcie_config::{BrokerConfig, HubConfig, Topology};
use lhcie_model::ExchangeId;
use lhcie_tls::PkiLayout;

/// The broker every test uses.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The exchanges of the test topology, with the organisations they serve.
pub const EXCHANGES: [(&str, &str, &[&str]); 4] = [
    ("nwl-imperial", "NWL", &["RYJ", "E85091"]),
    ("ncl-royal-free", "NCL", &["RAL"]),
    ("ncl-whittington", "NCL", &["RKE"]),
    ("sel-kings", "SEL", &["RJZ"]),
];

/// A test environment: folder, broker prefix, PKI, configuration files,
/// broker users. Call [`TestEnv::cleanup`] at the end (or use
/// [`with_env`]).
pub struct TestEnv {
    dir: tempfile::TempDir,
    /// The broker prefix of this run.
    pub prefix: String,
    /// The hub's configuration file.
    pub hub_config: PathBuf,
    /// The development PKI.
    pub pki: PkiLayout,
    /// Its CA, to issue further certificates.
    pub ca: lhcie_tls::DevCa,
    /// The gRPC port the hub uses (fixed so restarts keep it).
    pub grpc_port: u16,
    /// The admin port.
    pub admin_port: u16,
    users: std::sync::Mutex<Vec<AdapterUser>>,
}

/// Options for the environment's hub configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Delivery limit of the queues.
    pub delivery_limit: u32,
    /// The broker URL the hub uses (tests of an unreachable broker change
    /// it).
    pub hub_broker_url: String,
    /// Largest envelope the hub accepts.
    pub max_envelope_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            delivery_limit: 5,
            hub_broker_url: BROKER_URL.into(),
            max_envelope_bytes: 1024 * 1024,
        }
    }
}

impl TestEnv {
    /// A new environment with default options.
    pub fn new(label: &str) -> Self {
        Self::with_options(label, Options::default())
    }

    /// A new environment.
    pub fn with_options(label: &str, options: Options) -> Self {
        crate::install_crypto();
        let dir = tempfile::tempdir().expect("temporary folder");
        let prefix = format!(
            "it-{label}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let pki = PkiLayout::new(dir.path().join("pki"));
        let ids: Vec<ExchangeId> = EXCHANGES
            .iter()
            .map(|(id, _, _)| ExchangeId::parse(id).unwrap())
            .collect();
        let ca = pki.generate(&ids).expect("development PKI");
        write_topology(dir.path());
        write_policy(dir.path());
        let grpc_port = free_port();
        let admin_port = free_port();
        let hub_config = dir.path().join("hub.toml");
        std::fs::write(
            &hub_config,
            format!(
                r#"topology = "topology.toml"
policy = "policy.toml"
[broker]
url = "{url}"
prefix = "{prefix}"
delivery_limit = {limit}
[grpc]
listen = "127.0.0.1:{grpc_port}"
[grpc.tls]
cert = "pki/hub.pem"
key = "pki/hub.key"
client_ca = "pki/ca.pem"
[amqp_ingress]
enabled = true
prefetch = 500
[admin]
listen = "127.0.0.1:{admin_port}"
[store]
path = "store"
[limits]
max_envelope_bytes = {max}
max_in_flight_per_stream = 1000
shutdown_grace_seconds = 10
"#,
                url = options.hub_broker_url,
                limit = options.delivery_limit,
                max = options.max_envelope_bytes,
            ),
        )
        .expect("hub.toml");
        Self {
            dir,
            prefix,
            hub_config,
            pki,
            ca,
            grpc_port,
            admin_port,
            users: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The environment's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The test topology file.
    pub fn topology_file(&self) -> PathBuf {
        self.dir.path().join("topology.toml")
    }

    /// The test policy file (the registry is seeded from it).
    pub fn policy_file(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// Makes the hub follow the consent registry at `endpoints` instead of
    /// the policy file, holding messages when its copy is older than
    /// `max_staleness_ms`.
    pub fn use_registry(&self, endpoints: &[String], max_staleness_ms: u64) {
        let text = std::fs::read_to_string(&self.hub_config).expect("hub.toml");
        let endpoints: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        let text = text.replace("policy = \"policy.toml\"\n", "")
            + &format!(
                "[registry]\nendpoints = [{}]\nmax_staleness_ms = {max_staleness_ms}\n",
                endpoints.join(", ")
            );
        std::fs::write(&self.hub_config, text).expect("hub.toml");
    }

    /// Like [`TestEnv::use_registry`], over mutual TLS: the hub presents
    /// `pki/services/hub.pem` (`urn:lhcie:service:hub`) and accepts only
    /// registry nodes of this environment's CA. Call
    /// [`TestEnv::registry_pki`] first.
    pub fn use_registry_with_tls(&self, endpoints: &[String], max_staleness_ms: u64) {
        self.use_registry(endpoints, max_staleness_ms);
        let text = std::fs::read_to_string(&self.hub_config).expect("hub.toml")
            + "[registry.tls]\nca = \"pki/ca.pem\"\ncert = \"pki/services/hub.pem\"\nkey = \"pki/services/hub.key\"\n";
        std::fs::write(&self.hub_config, text).expect("hub.toml");
    }

    /// Issues this environment's registry certificates (nodes 1 to 5, the
    /// services `hub` and `registry-admin`) and gives the layout, for
    /// [`crate::registry::ClusterOptions::tls`].
    pub fn registry_pki(&self) -> PkiLayout {
        self.pki
            .generate_services(&self.ca, &[1, 2, 3, 4, 5], &["hub", "registry-admin"])
            .expect("registry certificates");
        self.pki.clone()
    }

    /// The broker names of this run.
    pub fn names(&self) -> Names {
        Names::new(&self.prefix)
    }

    /// The broker settings as the administrative `guest` user.
    pub fn broker(&self) -> BrokerConfig {
        let mut config = BrokerConfig::new(BROKER_URL);
        config.prefix = self.prefix.clone();
        config
    }

    /// How an adapter of `exchange` reaches the hub over gRPC.
    pub fn connection(&self, exchange: &str) -> HubConnection {
        let id = ExchangeId::parse(exchange).unwrap();
        HubConnection {
            endpoint: format!("https://127.0.0.1:{}", self.grpc_port),
            tls: Some(ClientTls {
                ca: self.pki.ca_cert(),
                cert: self.pki.exchange_cert(&id),
                key: self.pki.exchange_key(&id),
                server_name: "localhost".into(),
            }),
            exchange: id,
        }
    }

    /// Provisions broker users for these exchanges' adapters (as
    /// [`TestEnv::provision_users`]) and writes one credentials file per
    /// exchange (`<dir>/<exchange>.toml`, mode 0600) as `hub
    /// provision-broker-users` does, for adapters' `[broker] credentials`.
    /// Returns the folder.
    pub async fn broker_credentials_file(&self, exchanges: &[&str]) -> PathBuf {
        self.provision_users(exchanges).await;
        let dir = self.dir().join("broker-credentials");
        for user in self.users.lock().unwrap().iter() {
            lhcie_config::BrokerCredentialsFile {
                exchange: user.exchange.clone(),
                user: user.name.clone(),
                password: user.password.clone(),
            }
            .write_in(&dir)
            .expect("broker credentials file");
        }
        dir
    }

    /// The broker URL without credentials.
    pub fn broker_address(&self) -> String {
        BROKER_URL.split_once('@').map_or_else(
            || BROKER_URL.to_owned(),
            |(_, host)| format!("amqp://{host}"),
        )
    }

    /// Creates broker users for these exchanges' adapters and waits until
    /// they can log in. Returns their AMQP identities.
    pub async fn provision_users(&self, exchanges: &[&str]) -> Vec<AmqpIdentity> {
        let names = self.names();
        let created: Vec<AdapterUser> = exchanges
            .iter()
            .map(|id| users::adapter_user(&names, &ExchangeId::parse(id).unwrap()).unwrap())
            .collect();
        users::apply(&created, "/")
            .expect("rabbitmqctl import_definitions (tests run where rabbitmqctl works)");
        self.users.lock().unwrap().extend(created.iter().cloned());
        let broker = self.broker();
        users::wait_until_usable(
            &created,
            |u| broker.with_credentials(&u.name, &u.password).url,
            std::time::Duration::from_secs(30),
        )
        .await
        .expect("new broker users can log in");
        created
            .iter()
            .map(|user| AmqpIdentity {
                broker: broker.with_credentials(&user.name, &user.password),
                exchange: user.exchange.clone(),
            })
            .collect()
    }

    /// The validated topology.
    pub fn topology(&self) -> Topology {
        let hub = HubConfig::load(&self.hub_config).expect("hub.toml");
        Topology::load(&hub.topology).expect("topology")
    }

    /// Deletes every queue and exchange the hub declares for this run, and
    /// the broker users.
    pub async fn cleanup(&self) {
        let plan = BrokerTopology::from_config(&self.broker(), &self.topology()).declarations();
        if let Ok(connection) = lhcie_broker::connect(&self.broker(), "test cleanup").await
            && let Ok(channel) = connection.create_channel().await
        {
            for declaration in plan {
                match declaration {
                    Declaration::Queue { name, .. } => {
                        let _ = channel
                            .queue_delete(name.as_str().into(), Default::default())
                            .await;
                    }
                    Declaration::Exchange { name, .. } => {
                        let _ = channel
                            .exchange_delete(name.as_str().into(), Default::default())
                            .await;
                    }
                    Declaration::Binding { .. } => {}
                }
            }
            let _ = connection.close(200, "cleaned up".into()).await;
        }
        let names: Vec<String> = self
            .users
            .lock()
            .unwrap()
            .iter()
            .map(|u| u.name.clone())
            .collect();
        if !names.is_empty() {
            let _ = users::delete(&names);
        }
    }
}

/// Runs a test body in an environment, and always cleans up afterwards,
/// re-raising the body's failure.
pub async fn with_env<F, Fut>(env: TestEnv, body: F)
where
    F: FnOnce(Arc<TestEnv>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let env = Arc::new(env);
    let outcome = tokio::spawn(body(env.clone())).await;
    env.cleanup().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Writes the test topology (`topology.toml`) into `dir`.
pub fn write_topology(dir: &Path) {
    let reference = repository().join("config/reference");
    let mut text = format!(
        "ods_reference = [\"{}\", \"{}\"]\n",
        reference.join("london_nhs_trusts.csv").display(),
        reference.join("london_gp_practices_sample.csv").display()
    );
    for (code, name) in [
        ("NWL", "North West London"),
        ("NCL", "North Central London"),
        ("SEL", "South East London"),
    ] {
        text.push_str(&format!(
            "[[region]]\ncode = \"{code}\"\nname = \"{name}\"\n"
        ));
    }
    for (id, region, organisations) in EXCHANGES {
        let orgs: Vec<String> = organisations.iter().map(|o| format!("\"{o}\"")).collect();
        text.push_str(&format!(
            "[[exchange]]\nid = \"{id}\"\nname = \"{id}\"\nregion = \"{region}\"\norganisations = [{}]\n[exchange.adapter]\nkind = \"native\"\n",
            orgs.join(", ")
        ));
    }
    std::fs::write(dir.join("topology.toml"), text).expect("topology.toml");
}

/// The test policy: North West and North Central London share everything
/// but referrals; South East London has no agreement; patient 9000000009
/// has denied the Royal Free (RAL).
pub const DENIED_PATIENT: &str = "9000000009";

/// Writes the test policy (`policy.toml`) into `dir`.
pub fn write_policy(dir: &Path) {
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            r#"consent_model = "implied"
[[agreement]]
id = "ISA-TEST-1"
title = "Test agreement"
parties = [{{ region = "NWL" }}, {{ region = "NCL" }}]
purposes = ["direct-care", "emergency-care"]
categories = ["discharge-summary", "repatriation-request", "cancer-document", "end-of-life-care-plan", "care-event", "result"]
legal_basis = "test"
valid_from = "2020-01-01"
emergency_override = true
status = "active"
[[directive]]
id = "DIR-TEST-1"
nhs_number = "{DENIED_PATIENT}"
deny_organisation = "RAL"
valid_from = "2020-01-01"
source = "patient-account"
"#
        ),
    )
    .expect("policy.toml");
}

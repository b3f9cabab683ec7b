//! `adapter` processes (kinds `hl7v2-mllp` and `fhir-r4`) for tests and benchmarks: the
//! topology change that makes an exchange an HL7 v2 one, the adapter's
//! file, and the child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lhcie_model::ExchangeId;
use tokio::time::Instant;

use crate::env::TestEnv;

/// Rewrites `exchange`'s block of the environment's topology with `edit`.
fn edit_exchange(env: &TestEnv, exchange: &str, edit: impl Fn(&str) -> String) {
    let file = env.topology_file();
    let text = std::fs::read_to_string(&file).expect("topology.toml");
    let header = format!("id = \"{exchange}\"");
    let mut found = false;
    let blocks: Vec<String> = text
        .split("[[exchange]]\n")
        .map(|block| {
            if block.starts_with(&header) {
                found = true;
                edit(block)
            } else {
                block.to_owned()
            }
        })
        .collect();
    assert!(found, "{exchange} is not in the test topology");
    std::fs::write(&file, blocks.join("[[exchange]]\n")).expect("topology.toml");
}

/// Makes `exchange` an HL7 v2 / MLLP exchange in the environment's
/// topology: its adapter listens on `listen`, its local system on
/// `deliver_to` (both on 127.0.0.1).
pub fn use_hl7v2_adapter(env: &TestEnv, exchange: &str, listen: u16, deliver_to: u16) {
    edit_exchange(env, exchange, |block| {
        block.replace(
            "kind = \"native\"\n",
            &format!(
                "kind = \"hl7v2-mllp\"\nlisten = \"127.0.0.1:{listen}\"\ndeliver_to = \"127.0.0.1:{deliver_to}\"\n"
            ),
        )
    });
}

/// Makes `exchange` a FHIR R4 exchange in the environment's topology: its
/// adapter listens on `listen` (127.0.0.1), deliveries go to the base URL
/// `deliver_to`.
pub fn use_fhir_adapter(env: &TestEnv, exchange: &str, listen: u16, deliver_to: &str) {
    edit_exchange(env, exchange, |block| {
        block.replace(
            "kind = \"native\"\n",
            &format!(
                "kind = \"fhir-r4\"\nlisten = \"127.0.0.1:{listen}\"\ndeliver_to = \"{deliver_to}\"\n"
            ),
        )
    });
}

/// Makes `exchange`'s adapter use the AMQP uplink (`uplink = "amqp"` in
/// the topology); its adapter then needs [`AdapterOptions::broker_credentials`].
pub fn use_amqp_uplink(env: &TestEnv, exchange: &str) {
    edit_exchange(env, exchange, |block| {
        block.replace(
            "[exchange.adapter]\n",
            "uplink = \"amqp\"\n[exchange.adapter]\n",
        )
    });
}

/// Sets `exchange`'s adapter `listen` address in the environment's
/// topology (after [`use_hl7v2_adapter`] or [`use_fhir_adapter`]), e.g. to
/// a non-loopback address.
pub fn use_listen_address(env: &TestEnv, exchange: &str, listen: &str) {
    edit_exchange(env, exchange, |block| {
        block
            .lines()
            .map(|line| {
                if line.starts_with("listen = ") {
                    format!("listen = \"{listen}\"")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
}

/// How an adapter is configured and run.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// How long the ACK waits for the hub's answer after the message is
    /// stored (`[hl7v2] ack_wait_ms`).
    pub ack_wait_ms: u64,
    /// More lines for the `[hl7v2]` table.
    pub extra_hl7v2: String,
    /// `LHCIE_LOG` for the process.
    pub log_level: &'static str,
    /// Lines for the `[fhir]` table (kind `fhir-r4`).
    pub fhir: String,
    /// The folder of per-exchange broker credentials files
    /// (`<dir>/<exchange>.toml`), for an exchange with the AMQP uplink
    /// (writes `[broker]` naming the exchange's own file); see
    /// [`TestEnv::broker_credentials_file`].
    pub broker_credentials: Option<PathBuf>,
    /// More tables after `[fhir]`, e.g. `[fhir.listen_tls]`.
    pub extra_tables: String,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        Self {
            ack_wait_ms: 200,
            extra_hl7v2: "delivery_retry_max_ms = 1000\n".into(),
            log_level: "info",
            broker_credentials: None,
            fhir: "delivery_retry_max_ms = 1000\n".into(),
            extra_tables: String::new(),
        }
    }
}

/// An `adapter serve` child process; killed when dropped.
pub struct AdapterProcess {
    child: Child,
    log: PathBuf,
    metrics: Option<SocketAddr>,
}

impl AdapterProcess {
    /// Writes the adapter's file for `exchange` (connecting to the
    /// environment's hub with the exchange's certificate), starts it, and
    /// waits until its listener (MLLP or HTTP) on `listen` accepts
    /// connections.
    pub async fn start(
        env: &TestEnv,
        exchange: &str,
        listen: u16,
        options: &AdapterOptions,
    ) -> Self {
        Self::start_with_metrics(env, exchange, listen, options, None).await
    }

    /// [`AdapterProcess::start`], serving `GET /metrics` on `metrics`
    /// (writes `[metrics]`; e.g. `127.0.0.1:<free_port()>`).
    pub async fn start_with_metrics(
        env: &TestEnv,
        exchange: &str,
        listen: u16,
        options: &AdapterOptions,
        metrics: Option<SocketAddr>,
    ) -> Self {
        let config = Self::write_config(env, exchange, options, metrics);
        let log = env.dir().join(format!("adapter-{exchange}.log"));
        let child = Command::new(crate::binary("adapter"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("LHCIE_LOG", options.log_level)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("adapter log"))
            .spawn()
            .expect("starting the adapter");
        let mut adapter = Self {
            child,
            log,
            metrics,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", listen))
            .await
            .is_err()
        {
            assert!(
                matches!(adapter.child.try_wait(), Ok(None)),
                "the adapter exited:\n{}",
                adapter.log()
            );
            assert!(
                Instant::now() < deadline,
                "the adapter's MLLP listener did not open:\n{}",
                adapter.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        adapter
    }

    /// Runs `adapter serve` for `exchange` expecting it to refuse to start:
    /// waits up to 15 s for it to exit and returns its exit status and
    /// standard error.
    pub fn run_expecting_exit(
        env: &TestEnv,
        exchange: &str,
        options: &AdapterOptions,
    ) -> (std::process::ExitStatus, String) {
        let config = Self::write_config(env, exchange, options, None);
        let mut child = Command::new(crate::binary("adapter"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("LHCIE_LOG", options.log_level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the adapter");
        // Its exit ends its standard error: read that, then reap it, on a
        // thread, so that a process that never exits fails the test.
        let pid = child.id();
        let (done, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr);
            let status = child.wait().expect("adapter status");
            let _ = done.send((status, stderr));
        });
        exited
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("the adapter did not exit within 15 s")
            })
    }

    /// Writes the adapter's file for `exchange` (connecting to the
    /// environment's hub with the exchange's certificate); returns its path.
    pub fn write_config(
        env: &TestEnv,
        exchange: &str,
        options: &AdapterOptions,
        metrics: Option<SocketAddr>,
    ) -> PathBuf {
        let id = ExchangeId::parse(exchange).expect("exchange id");
        let config = env.dir().join(format!("adapter-{exchange}.toml"));
        let broker = options
            .broker_credentials
            .as_ref()
            .map(|credentials| {
                format!(
                    "[broker]\nurl = \"{}\"\nprefix = \"{}\"\ncredentials = \"{}\"\n",
                    env.broker_address(),
                    env.prefix,
                    credentials.join(format!("{exchange}.toml")).display()
                )
            })
            .unwrap_or_default();
        let metrics_table = metrics
            .map(|listen| format!("[metrics]\nlisten = \"{listen}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                r#"topology = "topology.toml"
exchange = "{exchange}"
[hub]
endpoint = "https://127.0.0.1:{grpc}"
[hub.tls]
ca = "{ca}"
cert = "{cert}"
key = "{key}"
[store]
path = "adapter-{exchange}"
{broker}{metrics_table}[hl7v2]
ack_wait_ms = {ack_wait_ms}
{extra}
[fhir]
{fhir}
{extra_tables}"#,
                grpc = env.grpc_port,
                ca = env.pki.ca_cert().display(),
                cert = env.pki.exchange_cert(&id).display(),
                key = env.pki.exchange_key(&id).display(),
                ack_wait_ms = options.ack_wait_ms,
                extra = options.extra_hl7v2,
                fhir = options.fhir,
                extra_tables = options.extra_tables,
            ),
        )
        .expect("adapter.toml");
        config
    }

    /// Where it serves `GET /metrics` (see
    /// [`AdapterProcess::start_with_metrics`]).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Its log (message ids and counts, never content).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits up to 15 s for the exit (then SIGKILL); true if
    /// it exited successfully in time.
    pub async fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for AdapterProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

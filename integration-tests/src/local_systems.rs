//! Independent local systems for the adapter tests, as Python child
//! processes (killed when dropped): hl7apy's MLLP server
//! (`python/mllp_server.py`) playing a trust's HL7 v2 system, python-hl7's
//! MLLP client (`python/mllp_client.py`) playing a sending system, and a
//! helper to start any of the Python systems that print a ready line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::env::TestEnv;
use crate::{python, repository};

/// A Python child process, killed when dropped.
pub struct PythonProcess(Child);

impl Drop for PythonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `integration-tests/python/<script>` with `args` and waits for
/// its first line, which must start with `READY`.
pub fn start_python(script: &str, args: &[String]) -> PythonProcess {
    let mut child = Command::new(python())
        .arg(repository().join("integration-tests/python").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a Python test system");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("reading the ready line");
    assert!(
        ready.starts_with("READY"),
        "{script} did not start: {ready:?}"
    );
    PythonProcess(child)
}

/// hl7apy's MLLP server playing a local HL7 v2 system: answers AA and
/// records every message (one hex-encoded message per line).
pub struct MllpSystem {
    _process: PythonProcess,
    out: PathBuf,
}

impl MllpSystem {
    /// Listens on `port`, recording into `out` in the environment's folder.
    pub fn start(env: &TestEnv, port: u16, out: &str) -> Self {
        let out = env.dir().join(out);
        let process = start_python(
            "mllp_server.py",
            &[
                "--port".into(),
                port.to_string(),
                "--out".into(),
                out.display().to_string(),
            ],
        );
        Self {
            _process: process,
            out,
        }
    }

    /// Every message received so far, in order, as bytes.
    pub fn received(&self) -> Vec<Vec<u8>> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                (0..line.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                    .collect()
            })
            .collect()
    }

    /// Waits until `count` messages arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration, logs: impl Fn() -> String) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.received().len() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} messages arrived within {timeout:?}\n{}",
                self.received().len(),
                logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One ACK as the Python client read it.
#[derive(Debug)]
pub struct Ack {
    /// MSA-1.
    pub msa1: String,
    /// MSA-2.
    pub msa2: String,
    /// ERR-2.
    pub err2: String,
    /// ERR-3.
    pub err3: String,
}

/// Sends `messages` with python-hl7's MLLPClient, on one connection, and
/// returns the ACKs.
pub fn send_with_python(env: &TestEnv, port: u16, messages: &[Vec<u8>]) -> Vec<Ack> {
    let files: Vec<PathBuf> = messages
        .iter()
        .map(|m| {
            let file = env
                .dir()
                .join(format!("msg-{}.hl7", uuid::Uuid::new_v4().simple()));
            std::fs::write(&file, m).expect("message file");
            file
        })
        .collect();
    let output = Command::new(python())
        .arg(repository().join("integration-tests/python/mllp_client.py"))
        .args(["--port", &port.to_string()])
        .args(&files)
        .output()
        .expect("running the Python MLLP client");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the Python MLLP client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let acks: Vec<Ack> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            Ack {
                msa1: parts[1].into(),
                msa2: parts[2].into(),
                err2: parts[3].into(),
                err3: parts[4].into(),
            }
        })
        .collect();
    assert_eq!(acks.len(), messages.len(), "{stdout}");
    acks
}

//! # lhcie-integration-tests: the whole system, for real
//!
//! Tests here start the real `hub` binary (and adapters), talk to it over
//! real sockets with mutual TLS, and route through the real RabbitMQ at
//! `127.0.0.1:5672`. This crate's library is the harness they share:
//!
//! - [`env`](mod@env): an isolated test environment: a unique broker prefix, a
//!   temporary development PKI, a small topology and policy, per-run broker
//!   users, and cleanup of everything declared.
//! - [`adapter`]: `adapter` processes (kinds `hl7v2-mllp`, `fhir-r4`).
//! - [`local_systems`]: independent Python local systems (hl7apy's MLLP
//!   server and others) as child processes.
//! - [`hub`]: the hub as a child process: start, readiness, `kill -9`,
//!   SIGTERM, admin queries.
//! - [`traffic`]: envelopes to send, and receivers that count what arrives.
//! - [`registry`]: consent registry nodes as child processes, clusters of
//!   them on loopback ports.
//! - [`proxy`]: a TCP proxy a test can cut, to break the hub's registry
//!   feed.
//! - [`ports`]: fixed loopback ports for child processes, reserved so no
//!   other test or outgoing connection takes them first.
//!
//! The binaries must be built first (`make test` does:
//! `cargo build --workspace --bins`).

pub mod adapter;
pub mod dashboard;
pub mod env;
pub mod hub;
pub mod local_systems;
pub mod ports;
pub mod prometheus;
pub mod proxy;
pub mod registry;
pub mod traffic;

/// The path of a workspace binary of the same profile: beside the running
/// executable, or one level up from a test executable in `deps/`.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable folder");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target directory");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (cargo build --workspace --bins; make test does)",
        path.display()
    );
    path
}

/// Installs the ring crypto provider once per process (tests that make TLS
/// clients need it), and sends the in-process components' warnings (the
/// adapter kit's, when tests use it) to the test's output.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LHCIE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The repository's root folder.
pub fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub use ports::free_port;

/// The Python of the test clients' environment (`.venv`, which `make
/// test` prepares).
pub fn python() -> std::path::PathBuf {
    let venv = repository().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} not found: make test creates it (make python: python3 -m venv .venv; .venv/bin/pip install -r integration-tests/python/requirements.txt)",
        venv.display()
    );
    venv
}

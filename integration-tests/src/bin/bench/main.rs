//! `lhcie-bench`: every benchmark of `make bench` (and `make bench-scale`),
//! with real processes on one machine, each beside a reference measured in
//! the same run. One `BENCH` line per figure:
//!
//! ```text
//! BENCH <name> value=<number> unit=<unit> ratio=<number> target=<op><number>
//! ```
//!
//! The hub ([`hub`]):
//! - `hub_raw_rabbitmq`: the reference: a publisher with confirms (window
//!   1000) to a quorum queue and a consumer with manual acks, 1.5 KB
//!   persistent messages.
//! - `hub_grpc_ingress`: adapter → hub over gRPC (mutual TLS, pipelined,
//!   window 1000) → policy check → egress quorum queue → the same consumer.
//! - `hub_amqp_ingress`: adapter → ingress quorum queue (confirms, window
//!   1000) → hub → egress queue → the same consumer.
//! - `hub_latency_p50_at_2000` / `hub_latency_p99_at_2000`: end-to-end
//!   latency (submit → consumer) on the gRPC path at a fixed offered load of
//!   2,000 envelopes/s, with `hub_raw_latency_*` as the reference: raw
//!   RabbitMQ at the same load. Median of three 20-second runs each.
//! - `hub_grpc_ingress_observed` ([`observed`]): the gRPC ingress run with
//!   the operations dashboard open (its live stream read, the overview
//!   polled every second) and `/metrics` scraped every second; the
//!   reference is the same run on the same hub with nobody watching; four
//!   runs each in the order A B B A A B B A, medians compared (target ≥
//!   0.95).
//!
//! The consent registry ([`registry`], [`decisions`]):
//! - `registry_cache_decide` / `registry_cache_lookup_reference`: decisions
//!   per second from the hub's registry copy on one core, measured by
//!   criterion (`cargo bench -p lhcie-registry-client --bench decide`, run
//!   first by `make bench`); the reference is a bare hash lookup of the same
//!   patients.
//! - `registry_raw_sled_fsync`: the reference for writes: batches of 100
//!   directive-sized records written to sled and flushed (fsync), four
//!   writers, one process.
//! - `registry_writes_batched`: directive updates committed by a three-node
//!   cluster (fsync on every node), four clients sending batches of 100;
//!   `registry_commit_p50/p99_batched` their commit latency.
//! - `registry_writes_single`: one directive per write, 32 clients;
//!   `registry_commit_p50/p99_single`.
//! - `registry_propagation_p50/p99`: from asking the registry to record a
//!   patient's refusal to the change being in a hub's copy (the hub's own
//!   cache code, fed by the watch feed of the three-node cluster).
//! - `registry_writes_batched_mtls`, `registry_commit_p99_batched_mtls`,
//!   `registry_propagation_p50/p99_mtls`: the same on a three-node cluster
//!   with mutual TLS on both ports (clients with a service certificate),
//!   with the ratio to the plaintext-loopback figures of the same run.
//!
//! HL7 v2 ([`hl7`]):
//! - `hl7_parse`: the reference: messages per second through
//!   `parse_message` alone on one core, measured by criterion (`cargo bench
//!   -p lhcie-hl7v2 --bench parse_translate`, run first by `make bench`) on
//!   the corpus ADT messages that translate and a synthetic ORU^R01.
//! - `hl7_parse_translate`: the same messages parsed and translated to a
//!   canonical envelope (`translate_received`); ratio to `hl7_parse`, at
//!   least 0.5 (translation costs at most as much again as the parse).
//!
//! HL7 v2 over MLLP into the hub ([`mllp`]): 50 concurrent MLLP
//! connections sending ADT^A01 messages to the `adapter` binary (kind
//! `hl7v2-mllp`, outbox on disk, AA once the outbox put is flushed and the
//! hub's answer awaited at most 5 ms), which forwards them through the hub
//! to the receiving exchange's queue, drained by the benchmark:
//! - `hl7_mllp_raw_reference`: the reference: the same 50 connections
//!   against an in-process `MllpListener` answering AA at once, storing
//!   nothing; messages ACKed per second, back to back for 15 s.
//! - `hl7_mllp_ingest`: the same load on the adapter; ratio to the
//!   reference.
//! - `hl7_mllp_ack_p50_at_1000` / `hl7_mllp_ack_p99_at_1000`: ACK latency
//!   (send → AA) at a fixed offered load of 1,000 messages/s over the 50
//!   connections for 15 s, p99 at most 20 ms;
//!   `hl7_mllp_raw_ack_p50/p99_at_1000` the reference's at the same load.
//!
//! Registry decisions over the wire ([`registry_decide`]), one node on
//! loopback: `registry_decide_single`, `_concurrent` (16 callers) and
//! `_batched` (100 a call), each in decisions/s with p50/p99 per call
//! (target p99 at most 5 ms: no reply waits for a delayed acknowledgement);
//! `registry_decide_batched_as_of`: the same batches for a past moment as
//! of an older revision, ratio to `_batched`.
//!
//! FHIR message ingest ([`fhir`]): 20 concurrent HTTP clients post a
//! ~26 KB discharge summary message to an `adapter` of kind `fhir-r4`:
//! - `fhir_http_raw_reference`: the reference, an in-process HTTP server
//!   answering 200 at once;
//! - `fhir_ingest`: messages/s answered 200 (durably stored), ratio to the
//!   reference; `fhir_response_p50/p99_at_200`: response time at 200/s;
//! - `fhir_translate` (ratio to `fhir_json_parse`, the same bytes into a
//!   JSON value) and `fhir_translate_cost` (µs per message), on one core.
//!
//! `lhcie-bench scale` ([`scale`], `make bench-scale`): 12 million
//! patients' directives imported, the registry's disk and memory, a node
//! restart, and a hub's copy of all of it.
//!
//! `LHCIE_BENCH_ONLY=raw|grpc|amqp|latency|observed|decisions|hl7|mllp|fhir|registry|registry-decide` runs one
//! part; `LHCIE_BENCH_COUNT` sets the messages per hub throughput run
//! (40,000), `LHCIE_BENCH_MLLP_CONNECTIONS` the MLLP connections (50;
//! other values for diagnosis only); `LHCIE_BENCH_VERBOSE=1` prints more.
//! Build in release first (`make bench` does).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod decisions;
mod fhir;
mod hl7;
mod hub;
mod mllp;
mod observed;
mod registry;
mod registry_decide;
mod scale;

/// Prints one figure.
pub fn line(name: &str, value: f64, unit: &str, ratio: Option<f64>, target: Option<&str>) {
    let mut text = format!("BENCH {name} value={value:.1} unit={unit}");
    if let Some(ratio) = ratio {
        text.push_str(&format!(" ratio={ratio:.2}"));
    }
    if let Some(target) = target {
        text.push_str(&format!(" target={target}"));
    }
    println!("{text}");
}

/// Whether to print more than the figures.
pub fn verbose() -> bool {
    std::env::var_os("LHCIE_BENCH_VERBOSE").is_some()
}

/// Percentiles of a sample.
pub struct Percentiles(Vec<f64>);

impl Percentiles {
    /// The sample, sorted.
    pub fn new(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Self(values)
    }

    /// The `q` quantile (0 to 1).
    pub fn at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0[((self.0.len() as f64 - 1.0) * q).round() as usize]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("scale") {
        scale::run().await;
        return;
    }
    let only = std::env::var("LHCIE_BENCH_ONLY").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if ["raw", "grpc", "amqp", "latency"].iter().any(|p| runs(p)) {
        hub::run(only.as_deref()).await;
    }
    if runs("observed") {
        observed::run().await;
    }
    if runs("decisions") {
        decisions::report();
    }
    if runs("hl7") {
        hl7::report();
    }
    if runs("mllp") {
        mllp::run().await;
    }
    if runs("fhir") {
        fhir::run().await;
    }
    if runs("registry") {
        registry::run().await;
    }
    if runs("registry-decide") {
        registry_decide::run().await;
    }
}

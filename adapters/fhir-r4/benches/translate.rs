//! FHIR read + translate throughput on one core (criterion), per message.
//!
//! - `fhir_json_value`: `serde_json::from_slice::<Value>` of the same bytes,
//!   the reference: the raw cost of parsing the JSON we navigate.
//! - `fhir_translate`: `read_message_bundle` of the ~26 KB handwritten
//!   discharge summary message (Composition with eight sections, a PDF
//!   DocumentReference), to a validated canonical envelope.
//!
//! After criterion has run, prints from its estimates (mean time per
//! iteration):
//!
//! `BENCH fhir_translate value=<messages per second> unit=msg/s ratio=<value / reference>`
//!
//! where the reference is the JSON parse's rate on the same bytes, in the
//! same run.

// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use lhcie_fhir_r4::{ReadLimits, read_message_bundle};

// Our binaries' allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn input() -> Vec<u8> {
    std::fs::read(support::fixtures().join("handwritten/discharge_summary_message.json"))
        .expect("the discharge summary fixture")
}

fn benches(c: &mut Criterion) {
    let bytes = input();
    let ctx = support::context();
    let limits = ReadLimits::default();
    read_message_bundle(&bytes, &limits, &ctx).expect("the fixture translates");
    eprintln!(
        "fhir bench input: discharge summary message, {} bytes",
        bytes.len()
    );
    let mut group = c.benchmark_group("fhir");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("fhir_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).expect("json"))
    });
    group.bench_function("fhir_translate", |b| {
        b.iter(|| read_message_bundle(black_box(&bytes), &limits, &ctx).expect("translates"))
    });
    group.finish();
}

/// Criterion's output directory, as criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("criterion")
}

/// Mean nanoseconds per iteration of a benchmark, from its estimates.
fn mean_ns(name: &str) -> Option<f64> {
    let path = criterion_dir()
        .join("fhir")
        .join(name)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    match (mean_ns("fhir_translate"), mean_ns("fhir_json_value")) {
        (Some(t), Some(r)) if t > 0.0 && r > 0.0 => {
            let value = 1e9 / t;
            let reference = 1e9 / r;
            println!(
                "BENCH fhir_translate value={value:.0} unit=msg/s ratio={:.2}",
                value / reference
            );
            println!("BENCH fhir_json_value value={reference:.0} unit=msg/s");
        }
        _ => eprintln!(
            "no criterion estimates found under {}",
            criterion_dir().display()
        ),
    }
}

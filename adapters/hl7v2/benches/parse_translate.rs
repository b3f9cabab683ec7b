//! HL7 v2 throughput on one core (criterion), per message.
//!
//! - `hl7_parse`: `parse_message` alone, the reference: the raw speed of
//!   the underlying parser on the same inputs.
//! - `hl7_parse_translate`: `parse_message` then `translate_received` to a
//!   validated canonical envelope, what the adapter does for each message
//!   it receives.
//!
//! Each iteration handles one message, taken in turn from the input set,
//! so the mean time per iteration is the mean time per message over the
//! mix. The inputs are chosen when the bench starts: every single-message
//! corpus fixture (`tests/fixtures/corpus/`) that is an ADT from `uk-itk`,
//! `hapi`, `nhapi` or `python-hl7`, or an ORU from anywhere in the corpus,
//! and that parses and translates with the golden tests' context. No ORU of
//! the corpus translates (both are missing OBR-25), so one synthetic but
//! realistic ORU^R01 (a full blood count: ORC, OBR, twelve OBX, NTE) is
//! added, built below.
//!
//! `make bench` runs this and `lhcie-bench` prints its `BENCH` lines from
//! criterion's estimates (`target/criterion/hl7/*/new/estimates.json`).

// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/support/context.rs"]
mod support;

use support::context;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lhcie_hl7v2::{TranslateContext, parse_message, translate_received};

// Our binaries' allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Corpus folders whose ADT messages are used.
const ADT_SOURCES: [&str; 4] = ["uk-itk", "hapi", "nhapi", "python-hl7"];

/// A synthetic ORU^R01: a full blood count from a hospital laboratory to
/// a GP practice, twelve numeric OBX with units, ranges and flags, and a
/// note. About 2 KB, like the results we receive.
fn synthetic_oru() -> Vec<u8> {
    let tests = [
        ("718-7", "Haemoglobin", "131", "g/L", "115-165", "N"),
        (
            "6690-2",
            "White cell count",
            "11.8",
            "10*9/L",
            "4.0-11.0",
            "H",
        ),
        (
            "789-8",
            "Red cell count",
            "4.52",
            "10*12/L",
            "3.80-5.80",
            "N",
        ),
        ("4544-3", "Haematocrit", "0.398", "L/L", "0.370-0.470", "N"),
        ("787-2", "Mean cell volume", "88.1", "fL", "80.0-100.0", "N"),
        (
            "785-6",
            "Mean cell haemoglobin",
            "29.0",
            "pg",
            "27.0-32.0",
            "N",
        ),
        ("786-4", "MCHC", "329", "g/L", "315-345", "N"),
        ("777-3", "Platelet count", "412", "10*9/L", "150-400", "H"),
        ("751-8", "Neutrophil count", "8.9", "10*9/L", "2.0-7.5", "H"),
        ("731-0", "Lymphocyte count", "1.9", "10*9/L", "1.5-4.0", "N"),
        ("742-7", "Monocyte count", "0.7", "10*9/L", "0.2-0.8", "N"),
        ("711-2", "Eosinophil count", "0.3", "10*9/L", "0.0-0.4", "N"),
    ];
    let mut text = String::from(
        "MSH|^~\\&|WINPATH|RYJ|GPCONNECT|F83006|20261120093012||ORU^R01^ORU_R01|RYJLAB00482913|P|2.4|||AL|NE|GBR|UNICODE UTF-8\r\
         PID|1||9434765919^^^NHS^NH~H1234567^^^RYJ^MR||SMITH^JANE^ANN^^MRS||19800101|F|||12 ACACIA AVENUE^^LONDON^^W2 1NY^GBR^H||020 7946 0000^PRN^PH|||||||||||||||||N\r\
         PV1|1|O|OPD^^^RYJ||||C1234567^JONES^ALEX^^^DR|||GEN||||||||||V998877^^^RYJ_VISIT\r\
         ORC|RE|ORD448812^F83006|L26-448812^RYJ_LAB||CM||||20261120081500|||G8512345^PATEL^PRIYA^^^DR^^^^^^GMC\r\
         OBR|1|ORD448812^F83006|L26-448812^RYJ_LAB|FBC^Full blood count^WINPATH|||20261120081500|||||||20261120084000|BLOOD^Venous blood|G8512345^PATEL^PRIYA^^^DR^^^^^^GMC||||||20261120093000||HM|F\r",
    );
    for (i, (code, name, value, unit, range, flag)) in tests.iter().enumerate() {
        text.push_str(&format!(
            "OBX|{}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|{range}|{flag}|||F|||20261120081500||B7654321^WRIGHT^SAM^^^DR\r",
            i + 1
        ));
    }
    text.push_str("NTE|1|L|Mild neutrophilia and thrombocytosis; suggest repeat in 4 weeks if clinically indicated.\r");
    text.into_bytes()
}

/// The corpus's files, relative path → bytes, in path order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.parent() != Some(root) {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// Whether a message parses and translates with `ctx`; its type (MSH-9.1).
fn translates(raw: &[u8], ctx: &TranslateContext) -> Option<String> {
    let message = parse_message(raw).ok()?;
    translate_received(raw, &message, ctx).ok()?;
    message.get("MSH-9.1").map(str::to_owned)
}

fn describe(kind: &str, inputs: &[(String, Vec<u8>)]) {
    let bytes: usize = inputs.iter().map(|(_, raw)| raw.len()).sum();
    eprintln!(
        "hl7 inputs: {} {kind} messages, average {} bytes",
        inputs.len(),
        bytes / inputs.len().max(1)
    );
    for (name, raw) in inputs {
        eprintln!("  {name} ({} bytes)", raw.len());
    }
}

fn bench(c: &mut Criterion) {
    let ctx = context();
    let mut adt = Vec::new();
    let mut oru = Vec::new();
    for (rel, raw) in corpus() {
        match translates(&raw, &ctx).as_deref() {
            Some("ADT")
                if ADT_SOURCES
                    .iter()
                    .any(|s| rel.starts_with(&format!("{s}/"))) =>
            {
                adt.push((rel, raw))
            }
            Some("ORU") => oru.push((rel, raw)),
            _ => {}
        }
    }
    let corpus_oru = oru.len();
    let synthetic = synthetic_oru();
    assert_eq!(
        translates(&synthetic, &ctx).as_deref(),
        Some("ORU"),
        "the synthetic ORU translates"
    );
    if corpus_oru == 0 {
        oru.push(("synthetic ORU^R01 (full blood count)".into(), synthetic));
    }
    assert!(!adt.is_empty(), "no corpus ADT translates");
    describe("ADT", &adt);
    describe(
        if corpus_oru == 0 {
            "ORU (synthetic; no corpus ORU translates)"
        } else {
            "ORU"
        },
        &oru,
    );
    let inputs: Vec<Vec<u8>> = adt.into_iter().chain(oru).map(|(_, raw)| raw).collect();
    let total: usize = inputs.iter().map(Vec::len).sum();
    eprintln!(
        "hl7 inputs: {} messages in all, average {} bytes; one message per iteration, in turn",
        inputs.len(),
        total / inputs.len()
    );

    let mut group = c.benchmark_group("hl7");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hl7_parse", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let raw = &inputs[i % inputs.len()];
            i += 1;
            parse_message(black_box(raw)).unwrap()
        })
    });
    group.bench_function("hl7_parse_translate", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let raw = black_box(&inputs[i % inputs.len()]);
            i += 1;
            let message = parse_message(raw).unwrap();
            translate_received(raw, &message, &ctx).unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);

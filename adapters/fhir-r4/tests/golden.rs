//! Golden outcomes of every fixture under tests/fixtures/corpus (third
//! party) and tests/fixtures/handwritten (ours). `tests/fixtures/expected.tsv`
//! lists, per file, the reader used (`message`: `read_message_bundle`,
//! `document`: `read_document_reference`) and the outcome:
//!
//! - `accepted <golden file>`: the Inbound, with the envelope in proto3
//!   canonical JSON (as `lhcie-hl7v2`'s golden tests print it, through
//!   `lhcie-proto` and prost-reflect; the original payload's bytes shown
//!   as their SHA-256 and length), under tests/fixtures/golden/;
//! - `rejected <status> <issue code> <FHIRPath expression or ->`.
//!
//! Regenerate with `LHCIE_UPDATE_GOLDEN=1` and review the diff.

mod support;

use lhcie_fhir_r4::{Inbound, ReadLimits, Rejection, read_document_reference, read_message_bundle};
use lhcie_proto::{FILE_DESCRIPTOR_SET, encode_envelope};
use prost_reflect::{DescriptorPool, DynamicMessage};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

fn envelope_json(envelope: &lhcie_model::Envelope) -> serde_json::Value {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("descriptors");
    let descriptor = pool
        .get_message_by_name("lhcie.canonical.v1.Envelope")
        .expect("Envelope");
    let message =
        DynamicMessage::decode(descriptor, encode_envelope(envelope).as_slice()).expect("decodes");
    let mut value = serde_json::to_value(&message).expect("json");
    if let Some(original) = &envelope.original
        && let Some(o) = value.get_mut("original")
    {
        o["content"] = serde_json::json!(format!(
            "sha256:{} ({} bytes)",
            hex(&Sha256::digest(&original.content)),
            original.content.len()
        ));
    }
    value
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn inbound_json(inbound: &Inbound) -> String {
    let h = &inbound.handling;
    let value = serde_json::json!({
        "envelope": envelope_json(&inbound.envelope),
        "handling": {
            "present": h.present,
            "business_ack": h.business_ack,
            "infrastructure_ack": h.infrastructure_ack,
            "recipient_type": h.recipient_type.map(|r| format!("{r:?}")),
            "message_definition": h.message_definition,
            "sender_reference": h.sender_reference,
            "local_extension": h.local_extension,
        },
        "message_header_id": inbound.message_header_id,
        "response_to": inbound.response_to,
        "not_carried": inbound.not_carried.iter()
            .map(|n| format!("{}: {}", n.expression, n.reason)).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&value).expect("json");
    text.push('\n');
    text
}

fn rejected(r: &Rejection) -> String {
    let issue = r.issue();
    format!(
        "rejected\t{}\t{}\t{}",
        r.status,
        issue.code.as_str(),
        issue.expression.as_deref().unwrap_or("-")
    )
}

/// Every fixture, relative path → bytes.
fn fixtures() -> BTreeMap<String, Vec<u8>> {
    let root = support::fixtures();
    let mut out = BTreeMap::new();
    for top in ["corpus", "handwritten"] {
        for dir in walk(&root.join(top)) {
            let rel = dir
                .strip_prefix(&root)
                .expect("under fixtures")
                .to_string_lossy()
                .replace('\\', "/");
            if rel.ends_with(".json") || rel.ends_with(".txt") && rel.starts_with("handwritten/") {
                out.insert(rel, std::fs::read(&dir).expect("reads"));
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Single resources are POSTed to the DocumentReference endpoint; the
/// rest to $process-message.
fn reader(rel: &str) -> &'static str {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if name.contains("documentreference") || name.contains("document_reference") {
        "document"
    } else {
        "message"
    }
}

#[test]
fn fixtures_match_expected_outcomes() {
    let ctx = support::context();
    let limits = ReadLimits::default();
    let golden_dir = support::fixtures().join("golden");
    let mut rows = Vec::new();
    let mut goldens = BTreeMap::new();
    let files = fixtures();
    assert!(files.len() >= 30, "too few fixtures: {}", files.len());
    for (rel, bytes) in &files {
        let r = reader(rel);
        let result = match r {
            "document" => read_document_reference(bytes, &limits, &ctx),
            _ => read_message_bundle(bytes, &limits, &ctx),
        };
        let outcome = match result {
            Ok(inbound) => {
                let name = format!("{}.json", rel.replace('/', "__").trim_end_matches(".json"));
                goldens.insert(name.clone(), inbound_json(&inbound));
                format!("accepted\t{name}")
            }
            Err(e) => rejected(&e),
        };
        rows.push(format!("{rel}\t{r}\t{outcome}"));
    }
    let mut tsv = String::from(
        "# Outcome of reading every fixture (tests/golden.rs): path, reader, then\n\
         # `accepted <golden file>` or `rejected <status> <issue code> <expression>`.\n",
    );
    for row in &rows {
        tsv.push_str(row);
        tsv.push('\n');
    }
    let tsv_path = support::fixtures().join("expected.tsv");
    if std::env::var_os("LHCIE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&golden_dir).expect("mkdir");
        for entry in std::fs::read_dir(&golden_dir).expect("dir") {
            std::fs::remove_file(entry.expect("entry").path()).expect("rm");
        }
        for (name, text) in &goldens {
            std::fs::write(golden_dir.join(name), text).expect("write");
        }
        std::fs::write(&tsv_path, &tsv).expect("write");
        return;
    }
    let expected = std::fs::read_to_string(&tsv_path).expect("expected.tsv");
    assert_eq!(
        expected, tsv,
        "expected.tsv is stale (LHCIE_UPDATE_GOLDEN=1, then review)"
    );
    let mut stale = Vec::new();
    for (name, text) in &goldens {
        match std::fs::read_to_string(golden_dir.join(name)) {
            Ok(actual) if &actual == text => {}
            Ok(_) => stale.push(format!("{name}: differs")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "golden files stale:\n{}",
        stale.join("\n")
    );
}

/// The corpus's NHS numbers that fail modulus 11 never reach an envelope.
#[test]
fn corpus_numbers_failing_modulus_11_are_refused_without_being_echoed() {
    let ctx = support::context();
    for (rel, bytes) in fixtures() {
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("3478526985") {
            continue;
        }
        let result = match reader(&rel) {
            "document" => read_document_reference(&bytes, &ReadLimits::default(), &ctx),
            _ => read_message_bundle(&bytes, &ReadLimits::default(), &ctx),
        };
        let e = result.expect_err(&rel);
        assert_eq!(e.status, 422, "{rel}");
        let shown = format!("{e} {e:?} {}", e.operation_outcome());
        assert!(!shown.contains("3478526985"), "{rel}");
    }
}

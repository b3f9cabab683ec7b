//! Golden translations of the corpus: every fixture under
//! tests/fixtures/corpus that parses and holds an ADT, ORU, MDM or REF
//! message is translated with a fixed context, and the outcome (the
//! envelope in proto3 canonical JSON, as `proto/examples/*.json`, or the
//! error's code, disposition and position) is compared with
//! tests/fixtures/golden/<dir>__<file>.json. Regenerate with
//! `LHCIE_UPDATE_GOLDEN=1` and review the diff.

#[path = "support/context.rs"]
mod support;

use support::context;

use lhcie_hl7v2::{Message, parse_batch, translate, translate_received};
use lhcie_proto::{FILE_DESCRIPTOR_SET, encode_envelope};
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SUPPORTED: [&str; 4] = ["ADT", "ORU", "MDM", "REF"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn envelope_json(envelope: &lhcie_model::Envelope) -> serde_json::Value {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let descriptor = pool
        .get_message_by_name("lhcie.canonical.v1.Envelope")
        .unwrap();
    let message = DynamicMessage::decode(descriptor, encode_envelope(envelope).as_slice()).unwrap();
    serde_json::to_value(&message).unwrap()
}

fn outcome(raw: Option<&[u8]>, message: &Message) -> serde_json::Value {
    let ctx = context();
    let result = match raw {
        Some(raw) => translate_received(raw, message, &ctx),
        None => translate(message, &ctx),
    };
    match result {
        Ok(t) => envelope_json(&t.envelope),
        Err(e) => serde_json::json!({
            "error": {
                "code": e.code().number(),
                "text": e.code().text(),
                "disposition": e.disposition().ack_code(),
                "kind": e.kind.to_string(),
                "location": e.location.as_ref().map(|l| l.to_string()),
            }
        }),
    }
}

/// Corpus file (relative path) → bytes.
fn corpus() -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
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
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let root = fixtures().join("corpus");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// Golden file name → expected JSON text, for every supported fixture.
fn goldens() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (rel, bytes) in corpus() {
        let Ok(batch) = parse_batch(&bytes) else {
            continue;
        };
        let messages: Vec<&Message> = batch.messages().collect();
        if !messages
            .iter()
            .any(|m| SUPPORTED.contains(&m.get("MSH-9.1").unwrap_or("")))
        {
            continue;
        }
        let value = if messages.len() == 1
            && batch.batches.iter().all(|b| b.header.is_none())
            && batch.file_header.is_none()
        {
            outcome(Some(&bytes), messages[0])
        } else {
            serde_json::Value::Array(messages.iter().map(|m| outcome(None, m)).collect())
        };
        let name = format!("{}.json", rel.replace('/', "__").trim_end_matches(".hl7"));
        let mut text = serde_json::to_string_pretty(&value).unwrap();
        text.push('\n');
        out.insert(name, text);
    }
    out
}

#[test]
fn corpus_translations_match_golden_files() {
    let dir = fixtures().join("golden");
    let expected = goldens();
    assert!(
        expected.len() >= 25,
        "too few supported fixtures: {}",
        expected.len()
    );
    if std::env::var_os("LHCIE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, text) in &expected {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, text) in &expected {
        let file = dir.join(name);
        match std::fs::read_to_string(&file) {
            Ok(actual) if &actual == text => {}
            Ok(_) => stale.push(format!("{name}: differs")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !expected.contains_key(&name) {
            stale.push(format!("{name}: no longer produced"));
        }
    }
    assert!(
        stale.is_empty(),
        "golden files stale (regenerate with LHCIE_UPDATE_GOLDEN=1 and review):\n{}",
        stale.join("\n")
    );
}

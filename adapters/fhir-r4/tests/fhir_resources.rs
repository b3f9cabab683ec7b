//! Independent validation: every Bundle this crate renders (messages of
//! every body kind, responses, and re-renderings of the handwritten
//! fixtures) is written to a temporary directory and validated by Python's
//! `fhir.resources` (integration-tests/python/validate_fhir.py). The
//! repository's `.venv` must exist: `make python` creates it.

mod support;

use lhcie_fhir_r4::{
    ReadLimits, read_document_reference, read_message_bundle, render_message, render_response,
};
use lhcie_model::{AckLevel, AckOutcome, Acknowledgement, Body, Category, examples, itk_response};
use std::path::PathBuf;
use std::process::Command;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let venv = repository().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} not found: run `make python` (python3 -m venv .venv; .venv/bin/pip install -r integration-tests/python/requirements.txt)",
        venv.display()
    );
    venv
}

#[test]
fn rendered_bundles_are_valid_r4_for_fhir_resources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = support::render_context();
    let mut written = 0;
    let mut write = |name: &str, value: &serde_json::Value| {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write");
        written += 1;
    };
    for envelope in examples::all() {
        let name = envelope.category.as_str();
        match &envelope.body {
            Body::Result(_) => {}
            Body::Acknowledgement(a) => {
                write(
                    name,
                    &render_response(&envelope, a.refers_to.as_str(), &ctx).expect("renders"),
                );
            }
            _ => write(name, &render_message(&envelope, &ctx).expect("renders")),
        }
    }
    // Negative business response, with text.
    let mut nack = examples::acknowledgement();
    if let Body::Acknowledgement(a) = &mut nack.body {
        *a = Acknowledgement::itk(
            a.refers_to.clone(),
            AckLevel::Business,
            AckOutcome::Negative,
            itk_response::PATIENT_NOT_KNOWN,
            Some("Patient not known here".into()),
        );
    }
    write(
        "nack",
        &render_response(&nack, "9a1c2e3f-0000-4000-8000-000000000000", &ctx).expect("renders"),
    );
    // What we read from the handwritten fixtures, rendered again.
    let read_ctx = support::context();
    for name in [
        "discharge_summary_message",
        "repatriation_message",
        "ed_attendance_message",
        "admission_message",
    ] {
        let bytes = std::fs::read(support::fixtures().join(format!("handwritten/{name}.json")))
            .expect("fixture");
        let inbound =
            read_message_bundle(&bytes, &ReadLimits::default(), &read_ctx).expect("reads");
        write(
            &format!("reread_{name}"),
            &render_message(&inbound.envelope, &ctx).expect("renders"),
        );
    }
    let bytes = std::fs::read(support::fixtures().join("handwritten/document_reference_post.json"))
        .expect("fixture");
    let inbound =
        read_document_reference(&bytes, &ReadLimits::default(), &read_ctx).expect("reads");
    assert_eq!(inbound.envelope.category, Category::DischargeSummary);
    write(
        "reread_document_reference",
        &render_message(&inbound.envelope, &ctx).expect("renders"),
    );
    assert!(written >= 12, "{written}");

    let output = Command::new(python())
        .arg(repository().join("integration-tests/python/validate_fhir.py"))
        .arg(dir.path())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fhir.resources refused rendered Bundles:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{written} valid, 0 invalid")),
        "{stdout}"
    );
}

#[test]
fn the_validator_itself_refuses_invalid_bundles() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.json"),
        br#"{"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Encounter","status":"finished"}}]}"#,
    )
    .expect("write");
    let status = Command::new(python())
        .arg(repository().join("integration-tests/python/validate_fhir.py"))
        .arg(dir.path())
        .output()
        .expect("python runs")
        .status;
    assert!(!status.success());
}

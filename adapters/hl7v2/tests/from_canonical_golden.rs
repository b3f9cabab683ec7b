//! Golden rendered messages: a few envelopes rendered with a fixed context
//! and compared byte-exact with tests/fixtures/rendered/<case>.hl7
//! (segments end with CR; view them with `tr '\r' '\n'`). Regenerate with
//! `LHCIE_UPDATE_GOLDEN=1` and review the diff.
//!
//! The same messages are then read by two independent parsers, hl7apy and
//! python-hl7 (integration-tests/python/validate_hl7v2.py), which check the
//! message type and key fields against expectations written from the
//! envelopes (not from the rendered bytes).

#[path = "from_canonical_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use lhcie_hl7v2::from_canonical::control_id_for;
use lhcie_hl7v2::{render_acknowledgement, render_envelope};
use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, AttachmentContent, Body, Envelope, HumanName, examples,
    itk_response,
};
use support::rctx;

fn rendered_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rendered")
}

/// A discharge summary with delimiters, escapes, line breaks and
/// non-ASCII text in the places people write.
fn awkward_discharge_summary() -> Envelope {
    let mut e = examples::discharge_summary();
    e.message_id = lhcie_model::MessageId::parse("awkward-ds-1").unwrap();
    e.patient.as_mut().unwrap().name = Some(HumanName {
        family: Some("O'NEILL-ŻÓŁW|^&~\\".into()),
        given: vec!["ZOË".into(), "ANN".into(), "MARIE".into()],
        prefix: Some("Ms".into()),
        suffix: None,
    });
    let Body::Document(d) = &mut e.body else {
        unreachable!()
    };
    d.sections.push(lhcie_model::DocumentSection {
        code: Some(lhcie_model::Coding::snomed("182836005", "Review of medication")),
        title: "Medications | changes".into(),
        text: "<p>Stop <b>warfarin</b> &amp; start apixaban 5&nbsp;mg</p><ul><li>Review in 2/52</li></ul>".into(),
        media_type: "text/html".into(),
    });
    d.sections[0].text = "Line 1: A^B & C~D \\ E|F\r\nLine 2 — ünïcödé\n\nLine 4".into();
    e
}

/// The golden cases: name, envelope.
fn envelopes() -> Vec<(&'static str, Envelope)> {
    vec![
        ("mdm_t02_discharge_summary", examples::discharge_summary()),
        (
            "mdm_t02_end_of_life_care_plan",
            examples::end_of_life_care_plan(),
        ),
        ("mdm_t02_awkward_text", awkward_discharge_summary()),
        ("adt_a04_attendance", examples::care_event_attendance()),
        ("oru_r01_result", examples::result()),
        ("ref_i12_referral", examples::referral()),
        ("ack_envelope", examples::acknowledgement()),
    ]
}

fn negative_ack() -> Vec<u8> {
    let ack = Acknowledgement::itk(
        lhcie_model::MessageId::parse("0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a01").unwrap(),
        AckLevel::Infrastructure,
        AckOutcome::Negative,
        itk_response::DUPLICATE_MESSAGE,
        Some("Duplicate message | already received".into()),
    );
    let mut ctx = rctx();
    ctx.sending_facility = Some("RAL".into());
    render_acknowledgement(&ack, Some("MSG00042"), &ctx).unwrap()
}

/// Every golden message's bytes.
fn rendered() -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = envelopes()
        .into_iter()
        .map(|(name, e)| (name.to_owned(), render_envelope(&e, &rctx()).unwrap()))
        .collect();
    out.insert("ack_negative".into(), negative_ack());
    out
}

#[test]
fn rendered_messages_match_golden_files() {
    let dir = rendered_dir();
    let update = std::env::var_os("LHCIE_UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for (name, bytes) in rendered() {
        let path = dir.join(format!("{name}.hl7"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let expected = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (LHCIE_UPDATE_GOLDEN=1 writes it)", path.display())
        });
        if expected != bytes {
            mismatched.push(name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "differ from golden files: {mismatched:?}"
    );
    // No stale golden files.
    let names = rendered();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let stem = file.strip_suffix(".hl7").unwrap_or(&file);
        assert!(names.contains_key(stem), "stale golden file {file}");
    }
}

/// What the independent parsers must find, written from the envelope.
fn expectations(e: &Envelope) -> serde_json::Value {
    let mut x = serde_json::json!({
        "message_type": match &e.body {
            Body::Document(_) => "MDM^T02^MDM_T02",
            Body::CareEvent(_) => "ADT^A04^ADT_A01",
            Body::Result(_) => "ORU^R01^ORU_R01",
            Body::Referral(_) => "REF^I12^REF_I12",
            Body::Acknowledgement(_) => "ACK^^ACK",
        },
        "control_id": control_id_for(&e.message_id),
        "sending_facility": e.sender.ods_code.as_str(),
    });
    if let Some(nhs) = e.patient.as_ref().and_then(|p| p.nhs_number) {
        x["nhs_number"] = nhs.as_str().into();
    }
    if let Some(family) = e
        .patient
        .as_ref()
        .and_then(|p| p.name.as_ref())
        .and_then(|n| n.family.clone())
    {
        x["family_name"] = family.into();
    }
    let attachments = match &e.body {
        Body::Document(d) => {
            x["document_id"] = d.document_id.clone().into();
            x["obx_count"] = (d.sections.len() + d.attachments.len()).into();
            d.attachments.clone()
        }
        Body::Result(r) => {
            x["obx_count"] = (r.observations.len() + r.attachments.len()).into();
            r.attachments.clone()
        }
        Body::Referral(r) => {
            x["referral_id"] = r.referral_id.clone().into();
            r.attachments.clone()
        }
        Body::Acknowledgement(a) => {
            x["msa"] = serde_json::json!(["AA", control_id_for(&a.refers_to)]);
            vec![]
        }
        Body::CareEvent(_) => vec![],
    };
    let b64 = |a: &lhcie_model::Attachment| match &a.content {
        AttachmentContent::Inline(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AttachmentContent::Url(_) => unreachable!("golden attachments are inline"),
    };
    x["attachments_base64"] = attachments.iter().map(b64).collect::<Vec<_>>().into();
    x
}

#[test]
fn independent_parsers_read_the_rendered_messages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make python` at the repository root to create the Python environment (hl7apy, hl7)",
        python.display()
    );
    let dir = std::env::temp_dir().join(format!("lhcie-hl7v2-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, e) in envelopes() {
        let path = dir.join(format!("{name}.hl7"));
        std::fs::write(&path, render_envelope(&e, &rctx()).unwrap()).unwrap();
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&expectations(&e)).unwrap(),
        )
        .unwrap();
        files.push(path);
    }
    let ack = dir.join("ack_negative.hl7");
    std::fs::write(&ack, negative_ack()).unwrap();
    std::fs::write(
        dir.join("ack_negative.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "message_type": "ACK^^ACK",
            "sending_facility": "RAL",
            "msa": ["AR", "MSG00042"],
            "err_code": "20007",
            "err_text": "Duplicate message | already received",
            "attachments_base64": [],
        }))
        .unwrap(),
    )
    .unwrap();
    files.push(ack);
    let output = std::process::Command::new(&python)
        .arg(root.join("integration-tests/python/validate_hl7v2.py"))
        .args(&files)
        .output()
        .expect("runs the validator");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "validator failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        files.len(),
        "{stdout}"
    );
}

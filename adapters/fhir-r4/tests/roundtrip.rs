//! Canonical → FHIR → canonical, for every body kind this crate renders:
//! the envelope read back equals the one rendered, except for what the
//! render module documents (message id, original, plain-text sections).

mod support;

use lhcie_fhir_r4::{ReadLimits, read_message_bundle, render_message, render_response};
use lhcie_model::{Body, Envelope, examples};

/// Plain-text sections become XHTML (documented); do that up front.
fn html_sections(mut envelope: Envelope) -> Envelope {
    if let Body::Document(d) = &mut envelope.body {
        for s in &mut d.sections {
            if s.media_type == "text/plain" {
                s.text = format!(
                    "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>",
                    s.text
                );
                s.media_type = "text/html".into();
            }
        }
    }
    envelope
}

fn check(expected: Envelope, bytes: Vec<u8>) {
    let ctx = support::context_for(&expected.sender.exchange_id);
    let inbound = read_message_bundle(&bytes, &ReadLimits::default(), &ctx)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.category));
    let mut actual = inbound.envelope;
    // A response is read as a bare acknowledgement: no original (it could
    // name the patient); everything else keeps its bytes.
    let kept = if matches!(actual.body, Body::Acknowledgement(_)) {
        None
    } else {
        Some(bytes)
    };
    assert_eq!(actual.original.as_ref().map(|o| o.content.to_vec()), kept);
    actual.message_id = expected.message_id.clone();
    actual.original = expected.original.clone();
    assert_eq!(actual, expected, "{}", expected.category);
}

#[test]
fn every_rendered_body_kind_reads_back_the_same() {
    let ctx = support::render_context();
    let mut kinds = std::collections::BTreeSet::new();
    for envelope in examples::all() {
        let envelope = html_sections(envelope);
        let value = match &envelope.body {
            Body::Result(_) => {
                assert!(render_message(&envelope, &ctx).is_err());
                continue;
            }
            Body::Acknowledgement(a) => render_response(&envelope, a.refers_to.as_str(), &ctx),
            _ => render_message(&envelope, &ctx),
        }
        .expect("renders");
        kinds.insert(format!("{:?}", envelope.body.kind()));
        check(envelope, serde_json::to_vec(&value).expect("json"));
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn rendering_is_deterministic_and_message_header_first() {
    let ctx = support::render_context();
    let envelope = examples::discharge_summary();
    let a = render_message(&envelope, &ctx).expect("renders");
    assert_eq!(a, render_message(&envelope, &ctx).expect("renders"));
    assert_eq!(a["entry"][0]["resource"]["resourceType"], "MessageHeader");
    assert_eq!(
        a["entry"][0]["resource"]["id"],
        envelope.message_id.as_str()
    );
}

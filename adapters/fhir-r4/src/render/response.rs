//! ITK3-style response messages: an acknowledgement envelope → a message
//! Bundle whose MessageHeader has `response` (the identifier of the
//! message answered, `ok` or `fatal-error`: every ITK3 negative is final)
//! and an OperationOutcome with the ITK3 code in `issue.details.coding`.

use lhcie_model::{AckOutcome, Body, Envelope};
use serde_json::json;

use super::{Builder, RenderContext, RenderError, bundle, header};
use crate::systems::ITK_RESPONSE_CODE_SYSTEM;

/// Renders an acknowledgement envelope as a response message Bundle.
/// `responds_to` is the `MessageHeader.id` of the message answered, as the
/// local system sent it (for messages read by this crate:
/// [`crate::Inbound::message_header_id`]).
pub fn render_response(
    envelope: &Envelope,
    responds_to: &str,
    ctx: &RenderContext,
) -> Result<serde_json::Value, RenderError> {
    let Body::Acknowledgement(ack) = &envelope.body else {
        return Err(RenderError::NotAcknowledgement);
    };
    let mut b = Builder {
        envelope,
        entries: Vec::new(),
    };
    let positive = ack.outcome == AckOutcome::Positive;
    let mut issue = json!({
        "severity": if positive { "information" } else { "error" },
        "code": if positive { "informational" } else { "processing" },
    });
    if let Some(code) = &ack.code {
        let mut coding = json!({"system": code.system, "code": code.code});
        if code.system == ITK_RESPONSE_CODE_SYSTEM
            && let Some(text) = ack.text.as_ref().or(code.display.as_ref())
        {
            coding["display"] = json!(text);
        }
        issue["details"] = json!({"coding": [coding]});
    }
    let oo = b.add(
        "OperationOutcome",
        json!({"resourceType": "OperationOutcome", "issue": [issue]}),
    );
    let response = json!({
        "identifier": responds_to,
        "code": if positive { "ok" } else { "fatal-error" },
        "details": {"reference": oo},
    });
    let header = header(&mut b, ctx, "acknowledgement".into(), &[], Some(response));
    let entries = std::mem::take(&mut b.entries);
    Ok(bundle(envelope, header, entries))
}

//! Acknowledgement → `ACK` (original mode): `MSH MSA [ERR]`.
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | (message) | MSH-9 `ACK^^ACK`; no MSH-15/16 |
//! | outcome, level | MSA-1: positive `AA`; the hub's "not permitted" `AE` (final: the same message would be refused again); other negative infrastructure `AR` (the message could not be taken in); negative business `AE` (taken in, but the service could not act on it) |
//! | the original's control id | MSA-2: as given by the caller, else [`super::control_id_for`] the acknowledged message id (the control id this renderer gave that message) |
//! | text | MSA-3 |
//! | code | ERR-1 (ELD, the v2.4 form) `^^^<code>&<text or display>&<system>`, written for a negative outcome, or a positive one whose code is not plain success; ITK3 codes are system `ITK3`; a negative one without a code gets HL7 table 0357 `207`; the hub's "not permitted" gets `NOTPERMITTED&<text>&99LHCIE` (no table 0357 code fits) |
//!
//! The acknowledgement level has no field of its own; it shows in MSA-1
//! only for negative outcomes.

use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, HUB_RESPONSE_CODE_SYSTEM, ITK_RESPONSE_CODE_SYSTEM,
    hub_response, itk_response,
};

use super::build::{SegmentBuilder, coding_system_name, rep, reps, subs, value};
use super::{
    Header, RenderContext, RenderError, control_id, control_id_for, finish, hashed_control_id, msh,
};
use crate::Component;
use crate::translate::ErrorCode;

/// Whether `ack` is the hub's "not permitted" for a recipient.
fn is_not_permitted(ack: &Acknowledgement) -> bool {
    ack.code.as_ref().is_some_and(|c| {
        c.system == HUB_RESPONSE_CODE_SYSTEM && c.code == hub_response::NOT_PERMITTED
    })
}

/// MSA-1 for an acknowledgement.
fn msa_code(ack: &Acknowledgement) -> &'static str {
    match (ack.outcome, ack.level) {
        (AckOutcome::Positive, _) => "AA",
        // Final, not to be resent: see `docs/hl7v2-adapter.md`.
        (AckOutcome::Negative, _) if is_not_permitted(ack) => "AE",
        (AckOutcome::Negative, AckLevel::Infrastructure) => "AR",
        (AckOutcome::Negative, AckLevel::Business) => "AE",
    }
}

/// Renders an acknowledgement as an HL7 v2.4 `ACK`. `original_control_id`
/// is the MSH-10 of the message acknowledged, when the caller knows it
/// (e.g. the message came in as HL7 v2: its envelope's
/// `sender_reference`); without it MSA-2 is [`control_id_for`] the
/// acknowledged message id. MSH-7 is [`RenderContext::now`], MSH-4
/// [`RenderContext::sending_facility`], MSH-10 derived from the
/// acknowledgement unless the context gives one.
pub fn render_acknowledgement(
    ack: &Acknowledgement,
    original_control_id: Option<&str>,
    ctx: &RenderContext,
) -> Result<Vec<u8>, RenderError> {
    let level = match ack.level {
        AckLevel::Infrastructure => "infrastructure",
        AckLevel::Business => "business",
    };
    let cid = control_id(ctx, || {
        hashed_control_id(&[
            "lhcie-hl7v2-ack-control-id-v1",
            ack.refers_to.as_str(),
            level,
            msa_code(ack),
        ])
    })?;
    let header = Header {
        facility: ctx.sending_facility.as_deref().unwrap_or(""),
        time: ctx.now,
        message_type: ["ACK", "", "ACK"],
        control_id: cid,
        acks: None,
    };
    render(ack, original_control_id, ctx, header)
}

/// The ACK with a prepared header (MSH-15/16 are never written).
pub(crate) fn render(
    ack: &Acknowledgement,
    original_control_id: Option<&str>,
    ctx: &RenderContext,
    mut header: Header<'_>,
) -> Result<Vec<u8>, RenderError> {
    header.acks = None;
    let original = original_control_id
        .map(str::to_owned)
        .unwrap_or_else(|| control_id_for(&ack.refers_to));
    let mut msa = SegmentBuilder::new("MSA");
    msa.set(1, value(msa_code(ack))).set(2, value(original));
    if let Some(text) = &ack.text {
        msa.set(3, value(text.as_str()));
    }
    let mut segments = vec![msh(ctx, &header), msa.build()];

    let plain_success = ack
        .code
        .as_ref()
        .is_none_or(|c| c.system == ITK_RESPONSE_CODE_SYSTEM && c.code == itk_response::SUCCESS);
    if ack.outcome == AckOutcome::Negative || !plain_success {
        let (code, display, system) = match &ack.code {
            Some(_) if is_not_permitted(ack) => {
                let code = ErrorCode::NotPermittedByPolicy;
                (
                    code.identifier(),
                    Some(code.text().to_owned()),
                    code.system().to_owned(),
                )
            }
            Some(c) => {
                let system = if c.system == ITK_RESPONSE_CODE_SYSTEM {
                    "ITK3".to_owned()
                } else {
                    coding_system_name(&c.system)
                };
                (c.code.clone(), c.display.clone(), system)
            }
            None => ("207".to_owned(), None, "HL70357".to_owned()),
        };
        let text = ack
            .text
            .clone()
            .or(display)
            .unwrap_or_else(|| match code.as_str() {
                "207" => "Application internal error".into(),
                _ => String::new(),
            });
        let eld = rep(vec![
            Component::from_value(""),
            Component::from_value(""),
            Component::from_value(""),
            subs(&[&code, &text, &system]),
        ]);
        segments.push(SegmentBuilder::new("ERR").set(1, reps(vec![eld])).build());
    }
    Ok(finish(segments))
}

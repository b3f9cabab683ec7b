//! Shared by the `from_canonical*` tests: the render context (to EPR at the
//! Royal Free, RAL), the translate context that reads the rendered messages
//! back (the same document types), and the round trip itself. Compiled on
//! its own too, with a test that the two contexts agree.

#![allow(dead_code)]

use lhcie_hl7v2::from_canonical::default_document_types;
use lhcie_hl7v2::{RenderContext, TranslateContext, parse_message, render_envelope, translate};
use lhcie_model::{Envelope, ExchangeId, OdsCode};

/// Rendering to application `EPR` at facility `RAL`, now 2026-11-20 15:00.
pub fn rctx() -> RenderContext {
    RenderContext::new("EPR", "RAL", time::macros::datetime!(2026-11-20 15:00 UTC))
}

/// Translating as exchange `ncl-royal-free` with the rendering side's
/// document types.
pub fn tctx() -> TranslateContext {
    let mut ctx = TranslateContext::new(
        ExchangeId::parse("ncl-royal-free").unwrap(),
        time::macros::datetime!(2026-11-20 15:00 UTC),
    );
    ctx.document_types = default_document_types();
    ctx.default_recipients = vec![OdsCode::parse("RAL").unwrap()];
    ctx
}

/// `translate(parse(render_envelope(e)))`.
pub fn roundtrip(e: &Envelope) -> Envelope {
    let bytes = render_envelope(e, &rctx()).expect("renders");
    let message = parse_message(&bytes).expect("rendered message parses");
    translate(&message, &tctx()).expect("translates").envelope
}

#[test]
fn every_document_category_has_a_txa_type_both_ways() {
    let types = default_document_types();
    for category in lhcie_model::Category::ALL {
        let is_document = category.body_kind() == lhcie_model::BodyKind::Document;
        assert_eq!(
            types.iter().any(|m| m.category == category),
            is_document,
            "{category}"
        );
    }
    assert_eq!(tctx().document_types, rctx().document_types);
}

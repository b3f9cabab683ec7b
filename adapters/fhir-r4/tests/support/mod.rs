//! Shared by the integration tests: contexts and paths.
#![allow(dead_code)]

use lhcie_fhir_r4::{RenderContext, RouteRule, RouteTarget, TranslateContext};
use lhcie_model::{Category, ExchangeId, OdsCode, RecipientIntent, RoutingRule};
use std::path::{Path, PathBuf};
use time::macros::datetime;

/// The reading context of the golden tests: exchange `nel-test`, default
/// recipient RAL, no sender check.
pub fn context() -> TranslateContext {
    let mut ctx = TranslateContext::new(
        ExchangeId::parse("nel-test").expect("exchange"),
        datetime!(2026-01-02 03:04:05 UTC),
    );
    ctx.default_recipients = vec![OdsCode::parse("RAL").expect("ods")];
    ctx
}

/// A reading context for `exchange`, with care events routed by the hub's
/// registered-GP rule.
pub fn context_for(exchange: &ExchangeId) -> TranslateContext {
    let mut ctx = TranslateContext::new(exchange.clone(), datetime!(2026-01-02 03:04:05 UTC));
    ctx.rules.push(RouteRule {
        categories: vec![Category::CareEvent],
        event_kinds: vec![],
        patient_classes: vec![],
        target: RouteTarget::HubRule(RoutingRule::RegisteredGp),
        intent: RecipientIntent::ForInformation,
    });
    ctx
}

/// The rendering context of the tests.
pub fn render_context() -> RenderContext {
    RenderContext::new(
        "https://adapter.nwl.example/fhir",
        "https://ehr.example/fhir/$process-message",
        datetime!(2026-01-02 03:04:05 UTC),
    )
}

/// tests/fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

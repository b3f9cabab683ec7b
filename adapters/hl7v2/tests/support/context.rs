//! The translation context of the golden tests and the benchmark: an
//! exchange `nwl-test` sending as Imperial (RYJ) to the Royal Free (RAL) by
//! default, emergency attendances to the registered GP practice, London
//! local time.

use lhcie_hl7v2::TranslateContext;
use lhcie_hl7v2::translate::{LocalTime, RouteRule, RouteTarget};
use lhcie_model::{ExchangeId, OdsCode, PatientClass, RecipientIntent};

/// The shared context.
pub fn context() -> TranslateContext {
    let mut ctx = TranslateContext::new(
        ExchangeId::parse("nwl-test").unwrap(),
        time::macros::datetime!(2026-11-20 12:00 UTC),
    );
    ctx.sender_ods = Some(OdsCode::parse("RYJ").unwrap());
    ctx.default_recipients = vec![OdsCode::parse("RAL").unwrap()];
    ctx.rules = vec![RouteRule {
        categories: vec![],
        event_kinds: vec![],
        patient_classes: vec![PatientClass::Emergency],
        target: RouteTarget::RegisteredGpPractice,
        intent: RecipientIntent::ForInformation,
    }];
    ctx.local_time = LocalTime::EuropeLondon;
    ctx
}

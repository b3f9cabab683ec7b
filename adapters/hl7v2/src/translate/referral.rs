//! REF I12 → referral.
//!
//! RF1-6 (originating referral identifier) is the referral id; RF1-2
//! priority (table 0280); RF1-3 referral type as the service requested;
//! RF1-10 reason; RF1-7 when. The PRD with role RP (PRD-1) is the
//! requester (PRD-2 name, PRD-7 identifier); the PRD with role RT gives the
//! recipient service (PRD-4 point of care, else PRD-2 name). NTE-3 texts
//! (labelled by NTE-4) make the summary. ED OBX become attachments.

use lhcie_model::{Author, Identifier, Referral, ReferralPriority};

use super::TranslateContext;
use super::error::{TranslateError, TranslateErrorKind};
use super::fields::{Seg, comp};
use super::result::{ed_attachment, obx_segments};
use super::values::{coding, practitioner_from_xpn};
use crate::Message;

pub(crate) fn referral(
    message: &Message,
    ctx: &TranslateContext,
) -> Result<Referral, TranslateError> {
    let rf1 = Seg::required_segment(message, "RF1")?;
    let referral_id = rf1.required(6, 1)?.to_owned();
    let priority = match rf1.get(2, 1).map(|p| p.to_ascii_uppercase()) {
        None => ReferralPriority::Routine,
        Some(p) => match p.as_str() {
            "R" => ReferralPriority::Routine,
            "A" => ReferralPriority::Asap,
            "S" => ReferralPriority::Stat,
            "U" => ReferralPriority::Urgent,
            _ => {
                return Err(TranslateError::at(
                    TranslateErrorKind::UnknownCode,
                    rf1.loc(2).comp(1),
                ));
            }
        },
    };
    let prd_with_role = |role: &str| {
        Seg::all(message, "PRD").find(|p| p.get(1, 1).is_some_and(|r| r.eq_ignore_ascii_case(role)))
    };
    let requester = prd_with_role("RP").and_then(|prd| {
        let mut practitioner = prd.rep(2).and_then(practitioner_from_xpn)?;
        for (_, r) in prd.reps(7) {
            if let Some(id) = comp(r, 1) {
                practitioner.identifiers.push(Identifier {
                    system: comp(r, 2)
                        .unwrap_or("urn:lhcie:hl7v2:local-practitioner")
                        .to_owned(),
                    value: id.to_owned(),
                    type_code: None,
                });
            }
        }
        Some(Author {
            practitioner: Some(practitioner),
            organisation: None,
        })
    });
    let recipient_service = prd_with_role("RT").and_then(|prd| {
        prd.get(4, 1).map(str::to_owned).or_else(|| {
            prd.rep(2)
                .and_then(super::patient::xpn)
                .and_then(|n| n.family)
        })
    });
    let summary: Vec<String> = Seg::all(message, "NTE")
        .filter_map(|nte| {
            let text = nte
                .reps(3)
                .filter_map(|(_, r)| comp(r, 1))
                .collect::<Vec<_>>()
                .join("\n");
            if text.is_empty() {
                return None;
            }
            let label = nte.get(4, 2).or_else(|| nte.get(4, 1));
            Some(match label {
                Some(l) => format!("{l}: {text}"),
                None => text,
            })
        })
        .collect();
    let mut attachments = Vec::new();
    for (_, obx) in obx_segments(message) {
        if obx.get(2, 1).is_some_and(|t| t.eq_ignore_ascii_case("ED")) {
            let title = obx.get(3, 2).map(str::to_owned);
            for (r, rep) in obx.reps(5) {
                attachments.push(ed_attachment(obx, r, rep, title.clone())?);
            }
        }
    }
    Ok(Referral {
        referral_id,
        service_requested: rf1.rep(3).and_then(coding),
        reason: rf1.rep(10).and_then(coding),
        priority,
        requester,
        recipient_service,
        requested_at: rf1.datetime(7, ctx.local_time)?,
        summary: (!summary.is_empty()).then(|| summary.join("\n")),
        attachments,
    })
}

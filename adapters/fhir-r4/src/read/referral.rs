//! Referrals: the focus `ServiceRequest` → [`Referral`] (BaRS and HL7 v2
//! I12 style messages).
//!
//! `supportingInfo` references to DocumentReferences become attachments.

use lhcie_model::{Referral, ReferralPriority};

use super::document::attachments_into;
use super::{Subject, author};
use crate::bundle::{Entries, Entry};
use crate::datetime;
use crate::identity;
use crate::outcome::Rejection;
use crate::systems::LHCIE_REFERRAL_ID;

/// The referral of a message whose focus is a ServiceRequest.
pub(super) fn referral<'a>(
    entries: &Entries<'a>,
    focus: &Entry<'a>,
) -> Result<(Referral, Subject<'a>), Rejection> {
    let s = &focus.resource;
    if focus.resource_type != "ServiceRequest" {
        return Err(Rejection::not_supported(
            &s.at("resourceType"),
            "a referral's focus is its ServiceRequest",
        ));
    }
    let identifiers = s.arr("identifier")?;
    let mut referral_id = None;
    for i in &identifiers {
        if i.str("system")? == Some(LHCIE_REFERRAL_ID) {
            referral_id = i.str("value")?;
        }
    }
    if referral_id.is_none()
        && let Some(i) = identifiers.first()
    {
        referral_id = i.str("value")?;
    }
    let referral_id = referral_id
        .or(s.str("id")?)
        .or(focus.full_url)
        .ok_or_else(|| Rejection::required(&s.at("identifier"), "the referral needs an id"))?;
    let priority = match s.str("priority")? {
        None | Some("routine") => ReferralPriority::Routine,
        Some("urgent") => ReferralPriority::Urgent,
        Some("asap") => ReferralPriority::Asap,
        Some("stat") => ReferralPriority::Stat,
        Some(_) => {
            return Err(Rejection::value(
                &s.at("priority"),
                "not a RequestPriority code",
            ));
        }
    };
    let mut attachments = Vec::new();
    for info in s.arr("supportingInfo")? {
        if let Some(r) = info.str("reference")? {
            let target = entries.resolve_str(r, &info.at("reference"))?;
            if target.resource_type == "DocumentReference" {
                attachments_into(&target.resource, &mut attachments)?;
            }
        }
    }
    let referral = Referral {
        referral_id: referral_id.to_owned(),
        service_requested: identity::concept(s, "code")?,
        reason: match s.first("reasonCode")? {
            Some(r) => identity::concept_of(&r)?,
            None => None,
        },
        priority,
        requester: match s.obj("requester")? {
            Some(r) => Some(author(entries, &r)?),
            None => None,
        },
        recipient_service: match s.first("performer")? {
            Some(p) => p.str("display")?.map(str::to_owned),
            None => None,
        },
        requested_at: datetime::date_time(s, "authoredOn")?,
        summary: match s.first("note")? {
            Some(n) => n.str("text")?.map(str::to_owned),
            None => None,
        },
        attachments,
    };
    Ok((referral, Subject::of(s)?))
}

//! Referral → `REF^I12^REF_I12` (the inverse of the translator's REF
//! reading):
//! `MSH RF1 PRD(RP) [PRD(RT)] PID [OBR {OBX}] [NTE]`.
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | (status) | RF1-1 `P` (pending) |
//! | priority | RF1-2: routine `R`, urgent `U`, ASAP `A`, stat `S` |
//! | service requested | RF1-3 (referral type, CE) |
//! | referral id | RF1-6 (originating referral identifier) |
//! | requested at | RF1-7 (effective date) |
//! | reason | RF1-10 (CE) |
//! | requester | PRD with PRD-1 `RP`: PRD-2 name, PRD-4.4 the organisation's ODS code, PRD-7 identifiers `value^system` |
//! | recipient service | PRD with PRD-1 `RT`: PRD-4.1 (point of care) |
//! | summary | NTE-3, one repetition per line |
//! | attachments | OBX (as for documents) after an OBR whose OBR-4 is `REFATT^Referral attachments^99LHCIE` |
//!
//! Read back by the translator with these differences: a requester without
//! a name is not read (PRD-2 is where it starts); the requester's
//! organisation and identifier types are not read; summary lines are
//! trimmed and blank ones dropped.

use lhcie_model::{PatientIdentity, Referral, ReferralPriority};

use super::attachment::{self, LOCAL_SYSTEM};
use super::build::{SegmentBuilder, ce, comps, lines_field, rep_of, reps, ts, value, xpn};
use super::patient::pid;
use super::{Header, RenderContext, msh};
use crate::Segment;

fn prd_requester(r: &Referral) -> Option<Segment> {
    let author = r.requester.as_ref()?;
    let mut b = SegmentBuilder::new("PRD");
    b.set(1, value("RP"));
    if let Some(p) = &author.practitioner {
        b.set_opt(2, p.name.as_ref().map(|n| reps(vec![xpn(n)])));
        if !p.identifiers.is_empty() {
            b.set(
                7,
                reps(
                    p.identifiers
                        .iter()
                        .map(|i| rep_of(&[&i.value, &i.system]))
                        .collect(),
                ),
            );
        }
    }
    if let Some(org) = &author.organisation {
        b.set(4, comps(&["", "", "", org.as_str()]));
    }
    Some(b.build())
}

/// The segments of the REF^I12 for a referral.
pub(crate) fn segments<'a>(
    r: &Referral,
    patient: &PatientIdentity,
    ctx: &RenderContext,
    header: impl Fn([&'static str; 3]) -> Header<'a>,
) -> Vec<Segment> {
    let priority = match r.priority {
        ReferralPriority::Routine => "R",
        ReferralPriority::Urgent => "U",
        ReferralPriority::Asap => "A",
        ReferralPriority::Stat => "S",
    };
    let mut rf1 = SegmentBuilder::new("RF1");
    rf1.set(1, value("P")).set(2, value(priority));
    rf1.set_opt(3, r.service_requested.as_ref().map(|c| reps(vec![ce(c)])));
    rf1.set(6, value(r.referral_id.as_str()));
    rf1.set_opt(7, r.requested_at.map(|t| value(ts(t))));
    rf1.set_opt(10, r.reason.as_ref().map(|c| reps(vec![ce(c)])));
    let mut segments = vec![msh(ctx, &header(["REF", "I12", "REF_I12"])), rf1.build()];
    segments.extend(prd_requester(r));
    if let Some(service) = &r.recipient_service {
        segments.push(
            SegmentBuilder::new("PRD")
                .set(1, value("RT"))
                .set(4, comps(&[service]))
                .build(),
        );
    }
    segments.push(pid(patient));
    if !r.attachments.is_empty() {
        segments.push(
            SegmentBuilder::new("OBR")
                .set(1, value("1"))
                .set(4, comps(&["REFATT", "Referral attachments", LOCAL_SYSTEM]))
                .build(),
        );
        for (i, a) in r.attachments.iter().enumerate() {
            segments.push(attachment::obx(i + 1, a, "F").build());
        }
    }
    if let Some(summary) = &r.summary {
        segments.push(
            SegmentBuilder::new("NTE")
                .set(1, value("1"))
                .set(3, lines_field(summary))
                .build(),
        );
    }
    segments
}

//! The patient: PID, PD1 and MRG.
//!
//! | canonical | HL7 v2 |
//! |---|---|
//! | NHS number | PID-3 repetition `<number>^^^NHS^NH` (first) |
//! | local identifiers | further PID-3 repetitions, `value^^^<system as HD>^<type>` |
//! | name | PID-5 (XPN) |
//! | birth date | PID-7 (`YYYYMMDD`) |
//! | gender | PID-8: `M` `F` `O` `U` (table 0001) |
//! | postcode | PID-11.5 (XAD zip), not written for a restricted record |
//! | deceased | PID-29 date/time, PID-30 `Y` |
//! | NHS number verification | PID-32 `NSTS<code>` (ITK identity reliability) |
//! | registered GP practice | PD1-3 `^^<ODS code>` (XON-3), not written for a restricted record |
//! | restricted | PD1-12 protection indicator `Y` |
//! | merged identity | MRG-1, the same forms as PID-3 |
//!
//! The translator does not read PD1-12, so `restricted` does not come back.

use lhcie_model::{Gender, PatientIdentity};

use super::build::{SegmentBuilder, cx, dt, rep_of, reps, ts, value};
use crate::{Repetition, Segment};

/// PID-3 / MRG-1 repetitions: the NHS number first, then local ids.
fn identifiers(p: &PatientIdentity) -> Vec<Repetition> {
    let mut out = Vec::new();
    if let Some(nhs) = &p.nhs_number {
        out.push(rep_of(&[nhs.as_str(), "", "", "NHS", "NH"]));
    }
    out.extend(p.local_identifiers.iter().map(cx));
    out
}

fn gender(g: Gender) -> &'static str {
    match g {
        Gender::Male => "M",
        Gender::Female => "F",
        Gender::Other => "O",
        Gender::Unknown => "U",
    }
}

/// The PID segment.
pub(crate) fn pid(p: &PatientIdentity) -> Segment {
    let mut b = SegmentBuilder::new("PID");
    b.set(1, value("1")).set(3, reps(identifiers(p)));
    b.set_opt(5, p.name.as_ref().map(|n| reps(vec![super::build::xpn(n)])));
    b.set_opt(7, p.birth_date.map(|d| value(dt(d))));
    b.set_opt(8, p.gender.map(|g| value(gender(g))));
    if !p.restricted {
        b.set_opt(
            11,
            p.postcode
                .as_deref()
                .map(|pc| reps(vec![rep_of(&["", "", "", "", pc])])),
        );
    }
    if let Some(t) = p.deceased_at {
        b.set(29, value(ts(t))).set(30, value("Y"));
    }
    b.set_opt(
        32,
        p.nhs_number_verification
            .as_deref()
            .map(|v| value(format!("NSTS{v}"))),
    );
    b.build()
}

/// The PD1 segment, if there is anything to say (registered GP, or the
/// record is restricted).
pub(crate) fn pd1(p: &PatientIdentity) -> Option<Segment> {
    if p.restricted {
        return Some(SegmentBuilder::new("PD1").set(12, value("Y")).build());
    }
    let gp = p.registered_gp_practice.as_ref()?;
    Some(
        SegmentBuilder::new("PD1")
            .set(3, reps(vec![rep_of(&["", "", gp.as_str()])]))
            .build(),
    )
}

/// The MRG segment for the identity merged away.
pub(crate) fn mrg(merged: &PatientIdentity) -> Segment {
    SegmentBuilder::new("MRG")
        .set(1, reps(identifiers(merged)))
        .build()
}

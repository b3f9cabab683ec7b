//! The patient: PID (identifiers, name, birth date, sex, address, death),
//! PD1-3 (registered GP practice), and MRG-1 for merges.

use lhcie_model::{Gender, HumanName, Identifier, NhsNumber, OdsCode, PatientIdentity};

use super::error::{TranslateError, TranslateErrorKind};
use super::fields::{LocalTime, Seg, comp, sub};
use crate::{Message, Repetition};

/// The OID of the NHS number (England and Wales), as used in CX-4.2.
pub const NHS_NUMBER_OID: &str = "2.16.840.1.113883.2.1.4.1";

/// True if a CX repetition is an NHS number: assigning authority (CX-4.1
/// namespace, or CX-4.2 the NHS number OID) says NHS, or the identifier
/// type (CX-5) is `NH`. Seen as `^^^NHS^NH`, `^^^NHS`, `^^^^NH`.
pub fn is_nhs_number_cx(rep: &Repetition) -> bool {
    let authority_nhs = sub(rep, 4, 1).is_some_and(|a| a.eq_ignore_ascii_case("NHS"))
        || sub(rep, 4, 2) == Some(NHS_NUMBER_OID);
    let type_nh = comp(rep, 5).is_some_and(|t| t.eq_ignore_ascii_case("NH"));
    authority_nhs || type_nh
}

/// The NHS numbers in PID-3 of each PID segment of a message (one list per
/// segment, in order; a list is empty where PID-3 names none), as written
/// less spaces and not validated. What the hub compares with the patient an
/// envelope was decided for, so that the bytes delivered are about that
/// patient.
pub fn nhs_numbers_in_pid(message: &Message) -> Vec<Vec<String>> {
    Seg::all(message, "PID")
        .map(|pid| {
            let mut numbers: Vec<String> = Vec::new();
            for (_, rep) in pid.reps(3) {
                if let Some(value) = comp(rep, 1)
                    && is_nhs_number_cx(rep)
                {
                    let compact: String = value.chars().filter(|c| *c != ' ').collect();
                    if !numbers.contains(&compact) {
                        numbers.push(compact);
                    }
                }
            }
            numbers
        })
        .collect()
}

/// The identifiers of a CX list field (PID-3, MRG-1): the NHS number
/// (validated) and the others as local identifiers.
fn identifiers(
    seg: Seg<'_>,
    field: usize,
    fallback_authority: &str,
) -> Result<(Option<NhsNumber>, Vec<Identifier>), TranslateError> {
    let mut nhs: Option<NhsNumber> = None;
    let mut local = Vec::new();
    for (r, rep) in seg.reps(field) {
        let Some(value) = comp(rep, 1) else {
            continue;
        };
        if is_nhs_number_cx(rep) {
            // Spaces are a common presentation (943 476 5919).
            let compact: String = value.chars().filter(|c| *c != ' ').collect();
            let number = NhsNumber::parse(&compact).map_err(|_| {
                TranslateError::at(
                    TranslateErrorKind::InvalidNhsNumber,
                    seg.loc(field).rep(r).comp(1),
                )
            })?;
            match nhs {
                Some(existing) if existing != number => {
                    return Err(TranslateError::at(
                        TranslateErrorKind::ConflictingNhsNumbers,
                        seg.loc(field).rep(r).comp(1),
                    ));
                }
                _ => nhs = Some(number),
            }
        } else {
            let system = sub(rep, 4, 1)
                .or_else(|| sub(rep, 4, 2))
                .or_else(|| sub(rep, 6, 1))
                .unwrap_or(fallback_authority);
            local.push(Identifier {
                system: system.to_owned(),
                value: value.to_owned(),
                type_code: comp(rep, 5).map(str::to_owned),
            });
        }
    }
    Ok((nhs, local))
}

/// An XPN name.
pub(crate) fn xpn(rep: &Repetition) -> Option<HumanName> {
    let name = HumanName {
        family: sub(rep, 1, 1).map(str::to_owned),
        given: [comp(rep, 2), comp(rep, 3)]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect(),
        prefix: comp(rep, 5).map(str::to_owned),
        suffix: comp(rep, 4).map(str::to_owned),
    };
    (name != HumanName::default()).then_some(name)
}

/// PID-8 (HL7 table 0001, and the NHS Data Dictionary person gender codes
/// the ITK profile uses: 1 male, 2 female, 9 not specified, 0 not known).
fn gender(seg: Seg<'_>) -> Result<Option<Gender>, TranslateError> {
    let Some(v) = seg.get(8, 1) else {
        return Ok(None);
    };
    let g = match v.to_ascii_uppercase().as_str() {
        "M" | "1" => Gender::Male,
        "F" | "2" => Gender::Female,
        "O" | "A" | "N" => Gender::Other,
        "U" | "0" | "9" | "X" => Gender::Unknown,
        _ => {
            return Err(TranslateError::at(
                TranslateErrorKind::UnknownCode,
                seg.loc(8).comp(1),
            ));
        }
    };
    Ok(Some(g))
}

/// PD1-3 (XON): the organisation identifier is XON-10 (v2.5 on), or XON-3
/// (the ID number) before; it must be an ODS code.
fn registered_gp(message: &Message) -> Result<Option<OdsCode>, TranslateError> {
    let Some(pd1) = Seg::first(message, "PD1") else {
        return Ok(None);
    };
    let Some(rep) = pd1.rep(3) else {
        return Ok(None);
    };
    let (c, code) = match (comp(rep, 10), comp(rep, 3)) {
        (Some(code), _) => (10, code),
        (None, Some(code)) => (3, code),
        (None, None) => return Ok(None),
    };
    OdsCode::parse(code).map(Some).map_err(|_| {
        TranslateError::at(
            TranslateErrorKind::InvalidOdsCode,
            pd1.loc(3).rep(1).comp(c),
        )
    })
}

/// The patient identity from PID and PD1. `fallback_authority` names the
/// system of identifiers with no assigning authority (the sending facility).
pub(crate) fn patient(
    message: &Message,
    fallback_authority: &str,
    local_time: LocalTime,
) -> Result<PatientIdentity, TranslateError> {
    let pid = Seg::required_segment(message, "PID")?;
    let (mut nhs_number, mut local_identifiers) = identifiers(pid, 3, fallback_authority)?;
    // Before v2.3.1 the NHS number sometimes travels in PID-2 (external id).
    if nhs_number.is_none() {
        let (nhs2, _) = identifiers(pid, 2, fallback_authority)?;
        nhs_number = nhs2;
    }
    local_identifiers.dedup();
    let name = pid.reps(5).find_map(|(_, r)| xpn(r));
    let birth_date = pid.date(7)?;
    let gender = gender(pid)?;
    let postcode = pid
        .reps(11)
        .find_map(|(_, r)| comp(r, 5).map(str::to_owned));
    let deceased_at = pid.datetime(29, local_time)?;
    // PID-32 identity reliability: the ITK profile's NHS number status
    // (NSTS01..NSTS08) gives the NHS Data Dictionary verification code.
    let nhs_number_verification = pid.reps(32).find_map(|(_, r)| {
        let v = comp(r, 1)?;
        let code = v.strip_prefix("NSTS")?;
        (code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_owned())
    });
    Ok(PatientIdentity {
        nhs_number,
        nhs_number_verification,
        local_identifiers,
        name,
        birth_date,
        gender,
        postcode,
        registered_gp_practice: registered_gp(message)?,
        deceased_at,
        restricted: false,
    })
}

/// The identity merged away (MRG-1, prior patient identifier list).
pub(crate) fn merged_from(
    message: &Message,
    fallback_authority: &str,
) -> Result<PatientIdentity, TranslateError> {
    let mrg = Seg::required_segment(message, "MRG")?;
    let (nhs_number, local_identifiers) = identifiers(mrg, 1, fallback_authority)?;
    if nhs_number.is_none() && local_identifiers.is_empty() {
        return Err(TranslateError::at(
            TranslateErrorKind::MissingField,
            mrg.loc(1).comp(1),
        ));
    }
    Ok(PatientIdentity {
        nhs_number,
        local_identifiers,
        ..Default::default()
    })
}

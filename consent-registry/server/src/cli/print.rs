//! Printing registry records for people.

use lhcie_proto::canonical;
use lhcie_proto::registry as pb;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn time(at: &Option<prost_types::Timestamp>) -> String {
    at.as_ref()
        .and_then(|t| {
            OffsetDateTime::from_unix_timestamp(t.seconds)
                .ok()
                .and_then(|at| at.format(&Rfc3339).ok())
        })
        .unwrap_or_else(|| "-".into())
}

pub fn party(party: &Option<pb::IsaParty>) -> String {
    use pb::isa_party::Scope;
    match party.as_ref().and_then(|p| p.scope.as_ref()) {
        Some(Scope::OdsCode(code)) => format!("ods:{code}"),
        Some(Scope::ExchangeId(id)) => format!("exchange:{id}"),
        Some(Scope::Region(region)) => format!("region:{region}"),
        None => "?".into(),
    }
}

fn status(value: i32) -> &'static str {
    match pb::IsaStatus::try_from(value) {
        Ok(pb::IsaStatus::Draft) => "draft (awaiting signatures)",
        Ok(pb::IsaStatus::Signed) => "signed (not yet valid)",
        Ok(pb::IsaStatus::Active) => "active",
        Ok(pb::IsaStatus::Superseded) => "superseded",
        Ok(pb::IsaStatus::Expired) => "expired",
        Ok(pb::IsaStatus::Suspended) => "suspended",
        Ok(pb::IsaStatus::Revoked) => "revoked",
        _ => "unknown",
    }
}

fn names<T>(
    values: &[i32],
    name: impl Fn(i32) -> Option<T>,
    show: impl Fn(T) -> &'static str,
) -> String {
    values
        .iter()
        .map(|v| name(*v).map(&show).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn category_name(value: i32) -> &'static str {
    canonical::Category::try_from(value)
        .map(|c| c.as_str_name())
        .unwrap_or("?")
}

pub fn agreement_line(agreement: &pb::Agreement) {
    let latest = agreement.versions.last();
    let title = latest
        .and_then(|v| v.terms.as_ref())
        .map(|t| t.title.as_str())
        .unwrap_or("");
    let statuses: Vec<String> = agreement
        .versions
        .iter()
        .map(|v| format!("v{} {}", v.version, status(v.status)))
        .collect();
    println!("{}  {}  [{}]", agreement.isa_id, title, statuses.join("; "));
}

pub fn agreement(agreement: &pb::Agreement) {
    println!("agreement {}", agreement.isa_id);
    for version in &agreement.versions {
        println!("  version {}: {}", version.version, status(version.status));
        if let Some(terms) = &version.terms {
            println!("    title: {}", terms.title);
            let parties: Vec<String> = terms
                .parties
                .iter()
                .map(|p| party(&Some(p.clone())))
                .collect();
            println!("    parties: {}", parties.join(", "));
            println!(
                "    purposes: {}",
                names(
                    &terms.purposes,
                    |v| canonical::PurposeOfUse::try_from(v).ok(),
                    |p| p.as_str_name()
                )
            );
            println!(
                "    categories: {}",
                terms
                    .categories
                    .iter()
                    .map(|c| category_name(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("    legal basis: {}", terms.legal_basis);
            if terms.emergency_override {
                println!(
                    "    emergency override: allowed (break-glass may override a patient's refusal)"
                );
            }
            println!(
                "    valid: {} to {}",
                time(&terms.valid_from),
                time(&terms.valid_until)
            );
            if !terms.document_reference.is_empty() {
                println!("    document: {}", terms.document_reference);
            }
        }
        println!(
            "    drafted by {} at {}",
            version.drafted_by,
            time(&version.drafted_at)
        );
        for signature in &version.signatures {
            println!(
                "    signed for {} by {} ({}, {}) at {}",
                party(&signature.party),
                signature.signer,
                signature.role,
                signature.organisation_ods,
                time(&signature.signed_at)
            );
        }
    }
    for suspension in &agreement.suspensions {
        if let Some(note) = &suspension.suspended {
            println!(
                "  suspended at {} by {}: {}",
                time(&note.at),
                note.by,
                note.reason
            );
        }
        if let Some(note) = &suspension.reinstated {
            println!(
                "  reinstated at {} by {}: {}",
                time(&note.at),
                note.by,
                note.reason
            );
        }
    }
    if let Some(note) = &agreement.revocation {
        println!(
            "  revoked at {} by {}: {}",
            time(&note.at),
            note.by,
            note.reason
        );
    }
}

pub fn rule(directive: &pb::Directive) -> String {
    use pb::directive::Rule;
    match &directive.rule {
        Some(Rule::DissentAll(_)) => "dissents from all sharing".into(),
        Some(Rule::DenyOrganisation(code)) => format!("denies organisation {code}"),
        Some(Rule::DenyCategory(c)) => format!("denies category {}", category_name(*c)),
        Some(Rule::AllowOrganisation(code)) => format!("allows organisation {code}"),
        None => "?".into(),
    }
}

pub fn directive(directive: &pb::Directive) {
    let state = match &directive.withdrawal {
        Some(note) => format!(
            "withdrawn at {} by {}: {}",
            time(&note.at),
            note.by,
            note.reason
        ),
        None => "in the record".into(),
    };
    let source = pb::DirectiveSource::try_from(directive.source)
        .map(|s| s.as_str_name())
        .unwrap_or("?");
    println!(
        "{}  {}  valid {} to {}  source {}  recorded by {} at {}  {}",
        directive.directive_id,
        rule(directive),
        time(&directive.valid_from),
        time(&directive.valid_until),
        source,
        directive.recorded_by,
        time(&directive.recorded_at),
        state
    );
}

//! The policy file: information sharing agreements and patient directives
//! the hub decides with until the replicated registry serves them.

use std::path::Path;

use lhcie_consent::{
    Agreement, ConsentModel, Directive, DirectiveRule, DirectiveSource, IsaParty, IsaTerms,
    Signature, StatusNote,
};
use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::error::Problems;
use crate::{ConfigError, Topology, toml_file};

/// The policy file as written (see `config/demo/policy.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// How consent is taken where a patient has recorded nothing.
    #[serde(default)]
    pub consent_model: ConsentModel,
    /// The agreements.
    #[serde(default, rename = "agreement")]
    pub agreements: Vec<AgreementConfig>,
    /// The directives.
    #[serde(default, rename = "directive")]
    pub directives: Vec<DirectiveConfig>,
}

/// An information sharing agreement as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementConfig {
    /// Stable id.
    pub id: String,
    /// Version, from 1.
    #[serde(default = "one")]
    pub version: u32,
    /// Title.
    pub title: String,
    /// Parties: `{ organisation = "RYJ" }`, `{ exchange = "nwl-imperial" }`
    /// or `{ region = "NWL" }`.
    pub parties: Vec<PartyConfig>,
    /// Purposes of use, e.g. `["direct-care", "emergency-care"]`.
    pub purposes: Vec<PurposeOfUse>,
    /// Categories, e.g. `["discharge-summary"]`.
    pub categories: Vec<Category>,
    /// Legal basis.
    pub legal_basis: String,
    /// First day (`YYYY-MM-DD`, from midnight UTC) or an RFC 3339 instant.
    pub valid_from: String,
    /// Last day (`YYYY-MM-DD`, to the end of that day UTC) or an RFC 3339
    /// instant (exclusive). Absent for open-ended.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Whether an emergency-care flow may override a patient's refusal
    /// under this agreement (break-glass). Off unless written.
    #[serde(default)]
    pub emergency_override: bool,
    /// `draft`, `active`, `suspended` or `revoked`.
    pub status: StatusConfig,
}

fn one() -> u32 {
    1
}

/// A party as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum PartyConfig {
    /// One organisation.
    Organisation(OdsCode),
    /// Every organisation of an exchange.
    Exchange(ExchangeId),
    /// Every organisation of a region.
    Region(String),
}

/// An agreement's status as written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StatusConfig {
    /// Not yet signed by every party.
    Draft,
    /// In force within its dates.
    Active,
    /// Stopped for now.
    Suspended,
    /// Ended.
    Revoked,
}

/// A patient's directive as written: exactly one of `dissent_all`,
/// `deny_organisation`, `deny_category`, `allow_organisation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectiveConfig {
    /// Stable id.
    pub id: String,
    /// The patient's NHS number.
    pub nhs_number: String,
    /// Dissent from all sharing.
    #[serde(default)]
    pub dissent_all: bool,
    /// Do not share with this organisation.
    #[serde(default)]
    pub deny_organisation: Option<OdsCode>,
    /// Do not share this category.
    #[serde(default)]
    pub deny_category: Option<Category>,
    /// Share with this organisation despite a broader dissent.
    #[serde(default)]
    pub allow_organisation: Option<OdsCode>,
    /// First day or instant (as for agreements).
    pub valid_from: String,
    /// Last day or end instant; absent for open-ended.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// `patient-account`, `clinician` or `bulk-import`.
    pub source: SourceConfig,
}

/// Where a directive came from.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceConfig {
    /// The patient's online account.
    PatientAccount,
    /// A clinician on the patient's behalf.
    Clinician,
    /// A bulk import from a local exchange.
    BulkImport,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The consent model.
    pub consent_model: ConsentModel,
    /// The agreements.
    pub agreements: Vec<Agreement>,
    /// The directives.
    pub directives: Vec<Directive>,
}

impl PolicyConfig {
    /// Loads a policy file and checks it against the topology: parties must
    /// name known organisations, exchanges and regions; directive NHS numbers
    /// must be valid; dates must parse.
    pub fn load(file: &Path, topology: &Topology) -> Result<Self, ConfigError> {
        let raw: PolicyFile = toml_file::read(file)?;
        let mut problems = Problems::default();
        let mut agreements = Vec::new();
        for (i, agreement) in raw.agreements.into_iter().enumerate() {
            let key = format!("agreement[{i}] ({})", agreement.id);
            if let Some(isa) = agreement_from(agreement, &key, topology, &mut problems) {
                agreements.push(isa);
            }
        }
        let mut directives = Vec::new();
        for (i, directive) in raw.directives.into_iter().enumerate() {
            let key = format!("directive[{i}] ({})", directive.id);
            if let Some(directive) = directive_from(directive, &key, &mut problems) {
                directives.push(directive);
            }
        }
        problems.into_result(file)?;
        Ok(Self {
            consent_model: raw.consent_model,
            agreements,
            directives,
        })
    }
}

/// Who the policy file's agreements and directives are recorded as
/// signed and recorded by.
pub const SIGNED_BY_POLICY_FILE: &str = "policy file";

fn agreement_from(
    raw: AgreementConfig,
    key: &str,
    topology: &Topology,
    problems: &mut Problems,
) -> Option<Agreement> {
    let before = problems.len();
    if raw.id.trim().is_empty() {
        problems.add(format!("{key}.id"), "is required");
    }
    if raw.version == 0 {
        problems.add(format!("{key}.version"), "versions start at 1");
    }
    if raw.parties.is_empty() {
        problems.add(format!("{key}.parties"), "name at least one party");
    }
    let mut parties = Vec::new();
    for (j, party) in raw.parties.into_iter().enumerate() {
        let party_key = format!("{key}.parties[{j}]");
        match party {
            PartyConfig::Organisation(code) => {
                if topology.exchange_serving(&code).is_none() {
                    problems.add(
                        party_key,
                        format!(
                            "organisation {code} is not served by any exchange in the topology"
                        ),
                    );
                }
                parties.push(IsaParty::Organisation(code));
            }
            PartyConfig::Exchange(id) => {
                if topology.exchange(&id).is_none() {
                    problems.add(party_key, format!("exchange {id} is not in the topology"));
                }
                parties.push(IsaParty::Exchange(id));
            }
            PartyConfig::Region(code) => {
                if !topology.regions().any(|r| r.code == code) {
                    problems.add(party_key, format!("region {code} is not in the topology"));
                }
                parties.push(IsaParty::Region(code));
            }
        }
    }
    if raw.purposes.is_empty() {
        problems.add(
            format!("{key}.purposes"),
            "name at least one purpose of use",
        );
    }
    if raw.categories.is_empty() {
        problems.add(format!("{key}.categories"), "name at least one category");
    }
    let valid_from = parse_start(&raw.valid_from, &format!("{key}.valid_from"), problems);
    let valid_until = raw
        .valid_until
        .as_deref()
        .and_then(|text| parse_end(text, &format!("{key}.valid_until"), problems));
    if let (Some(from), Some(until)) = (valid_from, valid_until)
        && until <= from
    {
        problems.add(format!("{key}.valid_until"), "must be after valid_from");
    }
    if problems.len() > before {
        return None;
    }
    let valid_from = valid_from?;
    let terms = IsaTerms {
        title: raw.title,
        parties,
        purposes: raw.purposes.into_iter().collect(),
        categories: raw.categories.into_iter().collect(),
        legal_basis: raw.legal_basis,
        valid_from,
        valid_until,
        document_reference: None,
        emergency_override: raw.emergency_override,
    };
    let mut agreement = match Agreement::draft(&raw.id, terms, SIGNED_BY_POLICY_FILE, valid_from) {
        Ok(agreement) => agreement,
        Err(e) => {
            problems.add(key.to_owned(), e.to_string());
            return None;
        }
    };
    // The file states the outcome of signing, not the signatures: an
    // agreement it calls active is taken as signed for every party.
    if raw.status != StatusConfig::Draft {
        for party in agreement.versions[0].terms.parties.clone() {
            let organisation = match &party {
                IsaParty::Organisation(code) => code.clone(),
                _ => OdsCode::parse("LHCIE").expect("a valid ODS code shape"),
            };
            let signature = Signature {
                party,
                signer: SIGNED_BY_POLICY_FILE.into(),
                role: "configured".into(),
                organisation,
                signed_at: valid_from,
            };
            agreement.sign(1, signature).ok()?;
        }
    }
    let note = StatusNote {
        at: valid_from,
        by: SIGNED_BY_POLICY_FILE.into(),
        reason: format!("status {:?} in the policy file", raw.status).to_lowercase(),
    };
    match raw.status {
        StatusConfig::Suspended => agreement.suspend(note).ok()?,
        StatusConfig::Revoked => agreement.revoke(note).ok()?,
        StatusConfig::Draft | StatusConfig::Active => {}
    }
    Some(agreement)
}

fn directive_from(raw: DirectiveConfig, key: &str, problems: &mut Problems) -> Option<Directive> {
    let before = problems.len();
    let nhs_number = match NhsNumber::parse(&raw.nhs_number) {
        Ok(number) => Some(number),
        Err(e) => {
            problems.add(format!("{key}.nhs_number"), e.to_string());
            None
        }
    };
    let mut rules = Vec::new();
    if raw.dissent_all {
        rules.push(DirectiveRule::DissentAll);
    }
    if let Some(code) = raw.deny_organisation {
        rules.push(DirectiveRule::DenyOrganisation(code));
    }
    if let Some(category) = raw.deny_category {
        rules.push(DirectiveRule::DenyCategory(category));
    }
    if let Some(code) = raw.allow_organisation {
        rules.push(DirectiveRule::AllowOrganisation(code));
    }
    if rules.len() != 1 {
        problems.add(
            key.to_owned(),
            "give exactly one of dissent_all = true, deny_organisation, deny_category, allow_organisation",
        );
    }
    let valid_from = parse_start(&raw.valid_from, &format!("{key}.valid_from"), problems);
    let valid_until = raw
        .valid_until
        .as_deref()
        .and_then(|text| parse_end(text, &format!("{key}.valid_until"), problems));
    if problems.len() > before {
        return None;
    }
    let valid_from = valid_from?;
    Some(Directive {
        id: raw.id,
        nhs_number: nhs_number?,
        rule: rules.pop()?,
        valid_from,
        valid_until,
        source: match raw.source {
            SourceConfig::PatientAccount => DirectiveSource::PatientAccount,
            SourceConfig::Clinician => DirectiveSource::Clinician,
            SourceConfig::BulkImport => DirectiveSource::BulkImport,
        },
        recorded_by: SIGNED_BY_POLICY_FILE.into(),
        recorded_at: valid_from,
        withdrawal: None,
    })
}

/// A start as written in configuration or on a command line: a date
/// (`YYYY-MM-DD`, from its first instant, UTC) or an RFC 3339 instant.
pub fn start_of(text: &str) -> Result<OffsetDateTime, String> {
    let mut problems = Problems::default();
    parse_start(text, "", &mut problems).ok_or_else(|| problems.first_message())
}

/// An end as written: a date means through the end of that day (the
/// exclusive end is the next midnight, UTC), or an RFC 3339 instant.
pub fn end_of(text: &str) -> Result<OffsetDateTime, String> {
    let mut problems = Problems::default();
    parse_end(text, "", &mut problems).ok_or_else(|| problems.first_message())
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// A start: a date means its first instant (UTC).
fn parse_start(text: &str, key: &str, problems: &mut Problems) -> Option<OffsetDateTime> {
    if let Some(date) = parse_date(text) {
        return Some(date.midnight().assume_utc());
    }
    parse_instant(text, key, problems)
}

/// An end: a date means through the end of that day, so the exclusive end
/// is the next midnight (UTC).
fn parse_end(text: &str, key: &str, problems: &mut Problems) -> Option<OffsetDateTime> {
    if let Some(date) = parse_date(text) {
        return Some(date.midnight().assume_utc() + Duration::days(1));
    }
    parse_instant(text, key, problems)
}

fn parse_instant(text: &str, key: &str, problems: &mut Problems) -> Option<OffsetDateTime> {
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => Some(at),
        Err(_) => {
            problems.add(
                key.to_owned(),
                format!("`{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"),
            );
            None
        }
    }
}

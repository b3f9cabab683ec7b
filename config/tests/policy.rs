//! The policy file: the demo loads; mistakes are reported with their key.

use std::path::Path;

use lhcie_config::{ConfigError, PolicyConfig, Topology};
use lhcie_consent::{ConsentModel, DirectiveRule, IsaStatus};
use time::macros::{date, datetime};

fn topology() -> Topology {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/topology.toml");
    Topology::load_as_of(&file, date!(2026 - 11 - 21)).unwrap()
}

fn load(toml: &str) -> Result<PolicyConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, toml).unwrap();
    PolicyConfig::load(&file, &topology())
}

fn messages(error: &ConfigError) -> Vec<String> {
    error
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect()
}

#[test]
fn the_demo_policy_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/policy.toml");
    let policy = PolicyConfig::load(&file, &topology()).unwrap();
    assert_eq!(policy.consent_model, ConsentModel::Implied);
    assert_eq!(policy.agreements.len(), 4);
    let toc = &policy.agreements[0].versions[0].terms;
    assert_eq!(toc.valid_from, datetime!(2026-01-01 00:00 UTC));
    assert_eq!(
        toc.valid_until,
        Some(datetime!(2028-01-01 00:00 UTC)),
        "through the end of 2027-12-31"
    );
    let during = datetime!(2026-11-21 12:00 UTC);
    assert_eq!(
        policy.agreements[0].status_of(1, during),
        Some(IsaStatus::Active)
    );
    assert_eq!(
        policy.agreements[3].status_of(1, during),
        Some(IsaStatus::Draft)
    );
    assert!(toc.emergency_override, "written for transfers of care");
    let cancer = &policy.agreements[1].versions[0].terms;
    assert!(!cancer.emergency_override, "off unless written");
    assert_eq!(policy.directives.len(), 3);
    assert!(matches!(
        policy.directives[1].rule,
        DirectiveRule::DissentAll
    ));
}

#[test]
fn mistakes_are_named() {
    let error = load(
        r#"
[[agreement]]
id = "ISA-X"
title = "X"
parties = [{ region = "MID" }, { exchange = "ncl-nowhere" }, { organisation = "RJ99" }]
purposes = []
categories = ["discharge-summary"]
legal_basis = "x"
valid_from = "2026-13-01"
valid_until = "2025-01-01"
status = "active"

[[directive]]
id = "D-1"
nhs_number = "9434765918"
dissent_all = true
deny_organisation = "RAL"
valid_from = "2026-01-01"
source = "patient-account"
"#,
    )
    .unwrap_err();
    assert_eq!(
        messages(&error),
        [
            "agreement[0] (ISA-X).parties[0]: region MID is not in the topology",
            "agreement[0] (ISA-X).parties[1]: exchange ncl-nowhere is not in the topology",
            "agreement[0] (ISA-X).parties[2]: organisation RJ99 is not served by any exchange in the topology",
            "agreement[0] (ISA-X).purposes: name at least one purpose of use",
            "agreement[0] (ISA-X).valid_from: `2026-13-01` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant",
            "directive[0] (D-1).nhs_number: NHS number fails the modulus 11 check",
            "directive[0] (D-1): give exactly one of dissent_all = true, deny_organisation, deny_category, allow_organisation",
        ]
    );
}

#[test]
fn unknown_categories_and_purposes_are_refused_with_their_key() {
    let error = load(
        r#"
[[agreement]]
id = "ISA-X"
title = "X"
parties = [{ region = "NWL" }]
purposes = ["research"]
categories = ["discharge-summary"]
legal_basis = "x"
valid_from = "2026-01-01"
status = "active"
"#,
    )
    .unwrap_err();
    assert_eq!(error.problems[0].key, "agreement[0].purposes[0]");
    assert!(
        error.problems[0]
            .message
            .contains("unknown variant `research`")
    );
}

#[test]
fn an_end_before_the_start_is_refused() {
    let error = load(
        r#"
[[agreement]]
id = "ISA-X"
title = "X"
parties = [{ region = "NWL" }]
purposes = ["direct-care"]
categories = ["discharge-summary"]
legal_basis = "x"
valid_from = "2026-06-01T00:00:00Z"
valid_until = "2026-05-31"
status = "active"
"#,
    )
    .unwrap_err();
    assert_eq!(
        messages(&error),
        ["agreement[0] (ISA-X).valid_until: must be after valid_from"]
    );
}

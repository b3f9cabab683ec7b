//! The demo topology loads, and broken topologies give precise errors.

use std::path::{Path, PathBuf};

use lhcie_config::{AdapterConfig, ConfigError, Topology, Uplink};
use lhcie_model::{ExchangeId, OdsCode};
use time::macros::date;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/topology.toml")
}

/// Writes a topology into a temporary folder beside a copy of the reference
/// data, and loads it as of 2026-11-21.
fn load(toml: &str) -> Result<Topology, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    for name in ["london_nhs_trusts.csv", "london_gp_practices_sample.csv"] {
        std::fs::copy(reference.join(name), dir.path().join(name)).unwrap();
    }
    let file = dir.path().join("topology.toml");
    std::fs::write(&file, toml).unwrap();
    Topology::load_as_of(&file, date!(2026 - 11 - 21))
}

const HEADER: &str = r#"
ods_reference = ["london_nhs_trusts.csv", "london_gp_practices_sample.csv"]

[[region]]
code = "NWL"
name = "North West London"

[[region]]
code = "NCL"
name = "North Central London"
"#;

fn with_exchanges(exchanges: &str) -> String {
    format!("{HEADER}\n{exchanges}")
}

const GOOD_EXCHANGES: &str = r#"
[[exchange]]
id = "nwl-imperial"
name = "Imperial"
region = "NWL"
organisations = ["RYJ"]
[exchange.adapter]
kind = "native"

[[exchange]]
id = "ncl-whittington"
name = "Whittington"
region = "NCL"
organisations = ["RKE", "F83006"]
uplink = "amqp"
[exchange.adapter]
kind = "hl7v2-mllp"
listen = "127.0.0.1:26001"
deliver_to = "127.0.0.1:27001"
"#;

fn messages(error: &ConfigError) -> Vec<String> {
    error
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect()
}

#[test]
fn the_demo_topology_of_london_is_valid() {
    let topology = Topology::load_as_of(&demo(), date!(2026 - 11 - 21)).unwrap();
    let regions: Vec<&str> = topology.regions().map(|r| r.code.as_str()).collect();
    assert_eq!(regions, ["NCL", "NEL", "NWL", "SEL", "SWL"]);
    assert!((30..=40).contains(&topology.exchanges().len()));
    // Every kind of adapter and both uplinks are represented.
    for kind in ["native", "hl7v2-mllp", "fhir-r4"] {
        assert!(
            topology
                .exchanges()
                .iter()
                .any(|e| e.adapter.kind() == kind),
            "{kind}"
        );
    }
    assert!(
        topology
            .exchanges()
            .iter()
            .any(|e| e.uplink == Uplink::Amqp)
    );
    // The Ealing patient who collapses in Haringey: an Ealing practice and a
    // North Central London trust are both served.
    let ealing = topology
        .exchange_serving(&OdsCode::parse("E85091").unwrap())
        .unwrap();
    assert_eq!(ealing.region, "NWL");
    let royal_free = topology
        .exchange_serving(&OdsCode::parse("RAL").unwrap())
        .unwrap();
    assert_eq!(royal_free.id, ExchangeId::parse("ncl-royal-free").unwrap());
    assert_eq!(royal_free.region, "NCL");
}

#[test]
fn the_demo_topology_loads_today_too() {
    Topology::load(&demo()).unwrap();
}

#[test]
fn a_good_small_topology_loads() {
    let topology = load(&with_exchanges(GOOD_EXCHANGES)).unwrap();
    let whittington = topology
        .exchange(&ExchangeId::parse("ncl-whittington").unwrap())
        .unwrap();
    assert_eq!(whittington.uplink, Uplink::Amqp);
    assert!(matches!(
        whittington.adapter,
        AdapterConfig::Hl7v2Mllp { .. }
    ));
    let practice = topology
        .organisation(&OdsCode::parse("F83006").unwrap())
        .unwrap();
    assert_eq!(practice.name, "AMPTHILL PRACTICE");
}

#[test]
fn a_closed_organisation_is_rejected_by_name_and_date() {
    let error = load(&with_exchanges(
        r#"
[[exchange]]
id = "ncl-north-mid"
name = "North Middlesex"
region = "NCL"
organisations = ["RAL", "RAP"]
[exchange.adapter]
kind = "native"
"#,
    ))
    .unwrap_err();
    assert_eq!(
        messages(&error),
        [
            "exchange[0] (ncl-north-mid).organisations[1]: RAP (NORTH MIDDLESEX UNIVERSITY HOSPITAL NHS TRUST) closed on 2024-12-31 and can no longer receive messages; remove it or name its successor"
        ]
    );
    assert!(error.to_string().contains("topology.toml"), "{error}");
}

#[test]
fn an_organisation_in_two_exchanges_is_rejected() {
    let error = load(&with_exchanges(&format!(
        "{GOOD_EXCHANGES}
[[exchange]]
id = \"nwl-again\"
name = \"Again\"
region = \"NWL\"
organisations = [\"RYJ\"]
[exchange.adapter]
kind = \"native\"
"
    )))
    .unwrap_err();
    assert_eq!(
        messages(&error),
        [
            "exchange[2] (nwl-again).organisations[0]: RYJ is already served by exchange nwl-imperial; an organisation belongs to exactly one exchange"
        ]
    );
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let error = load(&with_exchanges(
        r#"
[[exchange]]
id = "sel-x"
name = "X"
region = "SEL"
organisations = ["ZZZ99", "RNK"]
[exchange.adapter]
kind = "hl7v2-mllp"
listen = "127.0.0.1:26001"
deliver_to = "127.0.0.1:27001"

[[exchange]]
id = "sel-x"
name = "Y"
region = "NWL"
organisations = []
[exchange.adapter]
kind = "fhir-r4"
listen = "127.0.0.1:26001"
deliver_to = "http://127.0.0.1:29001/fhir"
"#,
    ))
    .unwrap_err();
    assert_eq!(
        messages(&error),
        [
            "exchange[0] (sel-x).region: unknown region `SEL` (known: NCL, NWL)",
            "exchange[0] (sel-x).organisations[0]: ZZZ99 is not in the ODS reference data; add it to a reference file or correct the code",
            "exchange[0] (sel-x).organisations[1]: RNK (TAVISTOCK AND PORTMAN NHS FOUNDATION TRUST) closed on 2026-03-31 and can no longer receive messages; remove it or name its successor",
            "exchange[1].id: exchange id sel-x is used twice",
            "exchange[1] (sel-x).organisations: an exchange must serve at least one organisation",
            "exchange[1] (sel-x).adapter.listen: 127.0.0.1:26001 is also the listen address of exchange sel-x",
        ]
    );
}

#[test]
fn an_organisation_not_yet_open_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    std::fs::copy(
        reference.join("london_nhs_trusts.csv"),
        dir.path().join("trusts.csv"),
    )
    .unwrap();
    let file = dir.path().join("topology.toml");
    std::fs::write(
        &file,
        r#"
ods_reference = ["trusts.csv"]
[[region]]
code = "SEL"
name = "South East London"
[[exchange]]
id = "sel-online"
name = "Online"
region = "SEL"
organisations = ["K0N6A"]
[exchange.adapter]
kind = "native"
"#,
    )
    .unwrap();
    let error = Topology::load_as_of(&file, date!(2026 - 05 - 01)).unwrap_err();
    assert_eq!(
        messages(&error),
        [
            "exchange[0] (sel-online).organisations[0]: K0N6A (THE ONLINE NHS TRUST) does not open until 2026-06-01"
        ]
    );
    assert!(Topology::load_as_of(&file, date!(2026 - 06 - 01)).is_ok());
}

#[test]
fn unknown_keys_are_errors_with_path_and_line() {
    let error = load(&with_exchanges(
        r#"
[[exchange]]
id = "nwl-imperial"
name = "Imperial"
region = "NWL"
organisations = ["RYJ"]
organizations = ["RYJ"]
[exchange.adapter]
kind = "native"
"#,
    ))
    .unwrap_err();
    let problem = &error.problems[0];
    assert_eq!(problem.key, "exchange[0].organizations");
    assert!(
        problem.message.contains("unknown field `organizations`"),
        "{}",
        problem.message
    );
    // The header is 10 lines and two blank ones; the bad key is on line 18.
    assert_eq!(problem.line, Some(18), "{error}");
}

#[test]
fn unknown_keys_inside_the_adapter_are_errors() {
    let error = load(&with_exchanges(
        r#"
[[exchange]]
id = "nwl-imperial"
name = "Imperial"
region = "NWL"
organisations = ["RYJ"]
[exchange.adapter]
kind = "hl7v2-mllp"
listen = "127.0.0.1:26001"
deliver_to = "127.0.0.1:27001"
deliver_too = "127.0.0.1:27002"
"#,
    ))
    .unwrap_err();
    let problem = &error.problems[0];
    assert_eq!(problem.key, "exchange[0].adapter");
    assert!(
        problem.message.contains("deliver_too"),
        "{}",
        problem.message
    );
}

#[test]
fn malformed_values_name_their_key() {
    for (snippet, key, fragment) in [
        (r#"id = "NWL Imperial""#, "exchange[0].id", "exchange id"),
        (
            r#"kind = "mesh""#,
            "exchange[0].adapter.kind",
            "unknown variant `mesh`",
        ),
        (
            r#"organisations = ["ryj"]"#,
            "exchange[0].organisations[0]",
            "upper-case",
        ),
        (
            r#"uplink = "smtp""#,
            "exchange[0].uplink",
            "unknown variant `smtp`",
        ),
        // Inside the internally tagged adapter table serde reports the table,
        // not the field; the message still says what is wrong.
        (
            r#"listen = "localhost""#,
            "exchange[0].adapter",
            "socket address",
        ),
    ] {
        let base = r#"
[[exchange]]
id = "nwl-imperial"
name = "Imperial"
region = "NWL"
organisations = ["RYJ"]
uplink = "grpc"
[exchange.adapter]
kind = "hl7v2-mllp"
listen = "127.0.0.1:26001"
deliver_to = "127.0.0.1:27001"
"#;
        let field = snippet.split(" = ").next().unwrap();
        let toml: String = base
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{field} = ")) {
                    snippet
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let error = load(&with_exchanges(&toml)).unwrap_err();
        let problem = &error.problems[0];
        assert_eq!(problem.key, key, "{snippet}: {error}");
        assert!(
            problem.message.contains(fragment),
            "{snippet}: {}",
            problem.message
        );
        assert!(problem.line.is_some(), "{snippet}: no line in {error}");
    }
}

#[test]
fn a_toml_syntax_error_gives_the_line() {
    let error = load("ods_reference = [\n\n[[region]\n").unwrap_err();
    assert!(error.problems[0].line.is_some(), "{error}");
}

#[test]
fn a_missing_reference_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topology.toml");
    std::fs::write(&file, with_exchanges(GOOD_EXCHANGES)).unwrap();
    let error = Topology::load(&file).unwrap_err();
    assert!(error.file.ends_with("london_nhs_trusts.csv"), "{error}");
    assert!(
        error.to_string().contains("cannot read the file"),
        "{error}"
    );
}

#[test]
fn the_hub_exchange_id_is_reserved() {
    let error = load(&with_exchanges(
        r#"
[[exchange]]
id = "hub"
name = "Pretender"
region = "NWL"
organisations = ["RYJ"]
[exchange.adapter]
kind = "native"
"#,
    ))
    .unwrap_err();
    assert_eq!(
        messages(&error),
        ["exchange[0].id: `hub` is reserved for the hub itself"]
    );
}

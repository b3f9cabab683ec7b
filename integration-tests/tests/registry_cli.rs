//! The `registry` administration tool against a real registry node: an
//! agreement's life from draft to revocation, a patient's directives, an
//! import, carer grants, and decisions explained. The node runs with mutual
//! TLS; the tool presents the `registry-admin` certificate, and every
//! change is recorded as made by that identity whatever `--actor` says.

use std::time::Duration;

use lhcie_integration_tests::env::write_topology;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster};

const ADMIN: &str = "urn:lhcie:service:registry-admin";

struct Cli<'a> {
    cluster: &'a RegistryCluster,
}

impl Cli<'_> {
    /// The tool, asserting an actor the registry must not believe.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        self.cluster
            .cli(&[args, &["--actor", "caldicott-guardian"]].concat())
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|e| panic!("registry {args:?} failed: {e}"))
    }

    fn decide(&self, nhs: &str, recipient: &str) -> String {
        self.ok(&[
            "decide",
            "--nhs",
            nhs,
            "--sender",
            "RYJ",
            "--recipient",
            recipient,
            "--category",
            "discharge-summary",
        ])
    }
}

const DRAFT: &[&str] = &[
    "--id",
    "ISA-CLI-1",
    "--title",
    "NWL and NCL transfers of care",
    "--party",
    "region:NWL",
    "--party",
    "region:NCL",
    "--purpose",
    "direct-care",
    "--purpose",
    "emergency-care",
    "--category",
    "discharge-summary",
    "--legal-basis",
    "UK GDPR 6(1)(e), 9(2)(h)",
    "--from",
    "2026-01-01",
];

fn sign(cli: &Cli<'_>, version: &str, party: &str) -> String {
    cli.ok(&[
        "isa",
        "sign",
        "--id",
        "ISA-CLI-1",
        "--version",
        version,
        "--party",
        party,
        "--signer",
        "Dr A. Guardian",
        "--role",
        "Caldicott Guardian",
        "--organisation",
        // A region party is signed for by one of its organisations.
        if party == "region:NCL" { "RAL" } else { "RYJ" },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_tool_manages_agreements_directives_and_explains_decisions() {
    lhcie_integration_tests::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    write_topology(dir.path());
    let pki = lhcie_tls::PkiLayout::new(dir.path().join("pki"));
    let ca = pki.generate(&[]).unwrap();
    pki.generate_services(&ca, &[1], &["registry-admin"])
        .unwrap();
    let cluster = RegistryCluster::start(
        dir.path(),
        &dir.path().join("topology.toml"),
        1,
        &ClusterOptions {
            tls: Some(pki),
            ..ClusterOptions::default()
        },
    );
    cluster.leader(Duration::from_secs(20)).await;
    let cli = Cli { cluster: &cluster };
    let patient = "9000000009";

    // No agreement: nothing flows.
    assert!(
        cli.decide(patient, "RAL")
            .starts_with("DENY: no information sharing agreement")
    );

    // Drafted, then signed party by party: active once all have signed.
    let drafted = cli.ok(&[&["isa", "draft"][..], DRAFT].concat());
    assert!(drafted.contains("version 1: draft"), "{drafted}");
    // The actor is the certificate's identity, never the name asserted.
    assert!(
        drafted.contains(&format!("drafted by {ADMIN}")),
        "{drafted}"
    );
    assert!(!drafted.contains("caldicott-guardian"), "{drafted}");
    let half = sign(&cli, "1", "region:NWL");
    assert!(half.contains("version 1: draft"), "{half}");
    assert!(cli.decide(patient, "RAL").starts_with("DENY"));
    let signed = sign(&cli, "1", "region:NCL");
    assert!(signed.contains("version 1: active"), "{signed}");
    assert!(
        signed.contains(&format!(
            "signed for region:NCL by Dr A. Guardian (asserted by {ADMIN}) (Caldicott Guardian, RAL)"
        )),
        "{signed}"
    );
    // A region party cannot be signed for by an organisation elsewhere.
    let error = cli
        .run(&[
            "isa",
            "sign",
            "--id",
            "ISA-CLI-1",
            "--version",
            "1",
            "--party",
            "region:NCL",
            "--signer",
            "x",
            "--role",
            "y",
            "--organisation",
            "RYJ",
        ])
        .unwrap_err();
    assert!(error.contains("RYJ cannot sign for party"), "{error}");
    let permit = cli.decide(patient, "RAL");
    assert!(
        permit.starts_with("PERMIT: ISA-CLI-1 version 1 covers the flow"),
        "{permit}"
    );
    assert!(permit.contains("reason: implied-consent"));

    // Signing a version that does not exist says so.
    let error = cli
        .run(&[
            "isa",
            "sign",
            "--id",
            "ISA-CLI-1",
            "--version",
            "9",
            "--party",
            "region:NWL",
            "--signer",
            "x",
            "--role",
            "y",
            "--organisation",
            "RYJ",
        ])
        .unwrap_err();
    assert!(error.contains("has no version 9"), "{error}");

    // An amendment awaits its signatures; version 1 stays in force. The
    // amendment lets emergency care override a patient's refusal; version 1
    // did not.
    let amended = cli.ok(&[&["isa", "amend"][..], DRAFT, &["--emergency-override"]].concat());
    assert!(
        amended.contains("version 1: active") && amended.contains("version 2: draft"),
        "{amended}"
    );
    let (v1, v2) = amended
        .split_once("version 2")
        .expect("both versions shown");
    assert!(!v1.contains("emergency override: allowed"), "{amended}");
    assert!(v2.contains("emergency override: allowed"), "{amended}");
    assert!(cli.decide(patient, "RAL").contains("ISA-CLI-1 version 1"));
    sign(&cli, "2", "region:NWL");
    sign(&cli, "2", "region:NCL");
    assert!(cli.decide(patient, "RAL").contains("ISA-CLI-1 version 2"));
    let listed = cli.ok(&["isa", "list", "--party", "RAL"]);
    assert!(listed.contains("v1 superseded; v2 active"), "{listed}");
    assert!(
        cli.ok(&["isa", "list", "--party", "RJZ"])
            .contains("no agreements")
    );

    // Suspended: nothing flows, not even in an emergency; reinstated: it does.
    cli.ok(&[
        "isa",
        "suspend",
        "--id",
        "ISA-CLI-1",
        "--reason",
        "breach under review",
    ]);
    assert!(
        cli.decide(patient, "RAL")
            .starts_with("DENY: no information sharing agreement")
    );
    let emergency = cli.ok(&[
        "decide",
        "--nhs",
        patient,
        "--sender",
        "RYJ",
        "--recipient",
        "RAL",
        "--category",
        "discharge-summary",
        "--purpose",
        "emergency-care",
    ]);
    assert!(emergency.starts_with("DENY"), "{emergency}");
    cli.ok(&[
        "isa",
        "reinstate",
        "--id",
        "ISA-CLI-1",
        "--reason",
        "review closed",
    ]);
    assert!(cli.decide(patient, "RAL").starts_with("PERMIT"));

    // The patient denies the Royal Free; emergency care overrides it, with
    // obligations; withdrawn, sharing resumes; the history keeps it all.
    let set = cli.ok(&[
        "directive",
        "set",
        "--id",
        "DIR-CLI-1",
        "--nhs",
        patient,
        "--deny-organisation",
        "RAL",
        "--from",
        "2026-01-01",
        "--source",
        "patient-account",
    ]);
    assert!(set.contains("denies organisation RAL"), "{set}");
    let denied = cli.decide(patient, "RAL");
    assert!(
        denied.starts_with("DENY: ISA-CLI-1 version 2 covers the flow, but the patient's directive DIR-CLI-1 denies RAL"),
        "{denied}"
    );
    assert!(cli.decide(patient, "RKE").starts_with("PERMIT"));
    let emergency = cli.ok(&[
        "decide",
        "--nhs",
        patient,
        "--sender",
        "RYJ",
        "--recipient",
        "RAL",
        "--category",
        "discharge-summary",
        "--purpose",
        "emergency-care",
    ]);
    assert!(
        emergency.starts_with("PERMIT") && emergency.contains("overrides the patient's refusal"),
        "{emergency}"
    );
    assert!(
        emergency.contains("OBLIGATION_RECORD_EMERGENCY_ACCESS")
            && emergency.contains("OBLIGATION_NOTIFY_PATIENT")
    );
    cli.ok(&[
        "directive",
        "withdraw",
        "--id",
        "DIR-CLI-1",
        "--reason",
        "changed my mind",
    ]);
    assert!(cli.decide(patient, "RAL").starts_with("PERMIT"));
    let history = cli.ok(&["directive", "history", "--nhs", patient]);
    assert!(
        history.contains(" set: DIR-CLI-1") && history.contains(" withdrawn: DIR-CLI-1"),
        "{history}"
    );
    assert!(
        history.contains(&format!("recorded by {ADMIN}")),
        "{history}"
    );
    // Without a patient the choices cannot be checked: fail closed.
    let anonymous = cli.ok(&[
        "decide",
        "--sender",
        "RYJ",
        "--recipient",
        "RAL",
        "--category",
        "discharge-summary",
    ]);
    assert!(anonymous.contains("without an NHS number"), "{anonymous}");

    // Revoked for good.
    cli.ok(&[
        "isa",
        "revoke",
        "--id",
        "ISA-CLI-1",
        "--reason",
        "replaced by a pan-London ISA",
    ]);
    assert!(
        cli.decide(patient, "RAL")
            .starts_with("DENY: no information sharing agreement")
    );
    let error = cli
        .run(&["isa", "reinstate", "--id", "ISA-CLI-1", "--reason", "oops"])
        .unwrap_err();
    assert!(error.contains("is revoked"), "{error}");

    // An import records what it can and says what it could not.
    let csv = dir.path().join("import.csv");
    std::fs::write(
        &csv,
        "directive_id,nhs_number,rule,value,valid_from,valid_until\n\
         IMP-1,9000000017,dissent-all,,2026-01-01,\n\
         IMP-2,9000000025,deny-category,care-event,2026-01-01,2026-12-31\n\
         IMP-3,1234567890,dissent-all,,2026-01-01,\n",
    )
    .unwrap();
    let imported = cli.ok(&[
        "directive",
        "import",
        "--file",
        csv.to_str().unwrap(),
        "--exchange",
        "nwl-imperial",
    ]);
    assert!(imported.contains("imported 2, rejected 1"), "{imported}");
    assert!(imported.contains("IMP-3: nhs_number"), "{imported}");
    let listed = cli.ok(&["directive", "list", "--nhs", "9000000025"]);
    assert!(
        listed.contains("BULK_IMPORT")
            && listed.contains(&format!("import from nwl-imperial by {ADMIN}")),
        "{listed}"
    );

    // Carer grants.
    cli.ok(&[
        "carer",
        "grant",
        "--id",
        "G-1",
        "--nhs",
        patient,
        "--name",
        "B. Carer",
        "--contact",
        "b.carer@example.invalid",
        "--scope",
        "view-record",
        "--from",
        "2026-01-01",
    ]);
    assert!(
        cli.ok(&["carer", "list", "--nhs", patient])
            .contains("G-1  B. Carer")
    );
    cli.ok(&[
        "carer",
        "revoke",
        "--id",
        "G-1",
        "--reason",
        "patient asked",
    ]);
    assert!(
        cli.ok(&["carer", "list", "--nhs", patient])
            .contains("revoked")
    );

    // Bad input is refused before it reaches the registry.
    let error = cli
        .run(&["directive", "list", "--nhs", "9000000008"])
        .unwrap_err();
    assert!(error.contains("not a valid NHS number"), "{error}");
}

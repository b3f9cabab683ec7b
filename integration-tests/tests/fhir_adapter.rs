//! The `adapter` binary of kind `fhir-r4`, end to end with real processes,
//! the real hub and RabbitMQ, and independent systems on both sides: a
//! Python FHIR client (urllib) posts as Imperial's EPR, a Python FHIR
//! endpoint validates with `fhir.resources` what a trust receives, hl7apy's
//! MLLP server plays an HL7 v2 trust and python-hl7's MLLP client an HL7
//! v2 sender. Cross-format both ways, acknowledgements back to the sender,
//! and bad input. Needs the Python environment `make test` prepares.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use lhcie_integration_tests::adapter::{
    AdapterOptions, AdapterProcess, use_fhir_adapter, use_hl7v2_adapter,
};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::local_systems::{MllpSystem, PythonProcess, start_python};
use lhcie_integration_tests::{free_port, python, repository};
use serde_json::Value;

/// Imperial (RYJ) sends, the Royal Free (RAL) receives.
const SENDER: &str = "nwl-imperial";
const RECEIVER: &str = "ncl-royal-free";

fn fixture(name: &str) -> PathBuf {
    repository()
        .join("adapters/fhir-r4/tests/fixtures/handwritten")
        .join(name)
}

/// The handwritten discharge summary (RYJ → RAL, ~26 KB, a Composition and
/// a PDF DocumentReference); its MessageHeader id.
const DISCHARGE: &str = "discharge_summary_message.json";
const DISCHARGE_HEADER_ID: &str = "9a1c2e3f-0000-4000-8000-000000000000";

/// A trust's FHIR endpoint (fhir_server.py): what it received, validated.
struct FhirSystem {
    _process: PythonProcess,
    out: PathBuf,
    port: u16,
}

/// One message a FHIR system received.
struct Received {
    body: Value,
    verdict: String,
    meta: Value,
}

impl FhirSystem {
    fn start(env: &TestEnv, name: &str, answer: &str) -> Self {
        let port = free_port();
        let out = env.dir().join(name);
        let process = start_python(
            "fhir_server.py",
            &[
                "--port".into(),
                port.to_string(),
                "--out".into(),
                out.display().to_string(),
                "--answer".into(),
                answer.into(),
            ],
        );
        Self {
            _process: process,
            out,
            port,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir", self.port)
    }

    fn received(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "verdict"));
        files.sort();
        files
            .iter()
            .map(|verdict| Received {
                body: serde_json::from_slice(
                    &std::fs::read(verdict.with_extension("json")).unwrap(),
                )
                .unwrap(),
                verdict: std::fs::read_to_string(verdict).unwrap(),
                meta: serde_json::from_slice(
                    &std::fs::read(verdict.with_extension("meta")).unwrap(),
                )
                .unwrap(),
            })
            .collect()
    }

    async fn wait_for(&self, count: usize, logs: impl Fn() -> String) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} messages arrived\n{}",
                received.len(),
                logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the independent FHIR client got back.
struct Posted {
    status: u16,
    verdict: String,
    body: Value,
}

fn post(url: &str, file: &Path, content_type: &str) -> Posted {
    post_with(url, file, content_type, &[]).unwrap_or_else(|tls| panic!("TLS refused: {tls}"))
}

/// [`post`] with more arguments for the client (`--token`, `--ca`,
/// `--cert`, `--key`); `Err` with the reason if the TLS handshake was
/// refused.
fn post_with(
    url: &str,
    file: &Path,
    content_type: &str,
    extra: &[String],
) -> Result<Posted, String> {
    let output = Command::new(python())
        .arg(repository().join("integration-tests/python/fhir_post.py"))
        .args(["--url", url, "--content-type", content_type, "--file"])
        .arg(file)
        .args(extra)
        .output()
        .expect("running the Python FHIR client");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    if let Some(reason) = stdout.strip_prefix("TLSERROR ") {
        return Err(reason.trim().to_owned());
    }
    let mut lines = stdout.lines();
    let status = lines
        .next()
        .unwrap()
        .strip_prefix("STATUS ")
        .unwrap()
        .parse()
        .unwrap();
    let verdict = lines
        .next()
        .unwrap()
        .strip_prefix("VERDICT ")
        .unwrap()
        .to_owned();
    let body = serde_json::from_str(lines.next().unwrap()).unwrap();
    Ok(Posted {
        status,
        verdict,
        body,
    })
}

/// The resources of a Bundle of the given type.
fn resources<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

/// The ITK3 response code and `MessageHeader.response` of a response Bundle.
fn response_of(bundle: &Value) -> (String, String, String) {
    let header = resources(bundle, "MessageHeader")[0];
    let outcome = resources(bundle, "OperationOutcome")[0];
    (
        header["response"]["identifier"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        header["response"]["code"].as_str().unwrap_or("").to_owned(),
        outcome["issue"][0]["details"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

fn field_of(message: &str, segment: &str, n: usize) -> Vec<String> {
    message
        .split('\r')
        .filter(|l| l.starts_with(&format!("{segment}|")))
        .map(|line| {
            let n = if segment == "MSH" { n - 1 } else { n };
            line.split('|').nth(n).unwrap_or_default().to_owned()
        })
        .collect()
}

/// A synthetic `MDM^T02` letter from RYJ to RAL with TXA-2.1 `txa_type`.
fn mdm_letter(control_id: &str, txa_type: &str) -> String {
    format!(
        "MSH|^~\\&|EPR|RYJ|EPR|RAL|202601011200||MDM^T02^MDM_T02|{control_id}|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0\r\
         EVN|T02|202601011200\r\
         PID|1||3333333333^^^NHS^NH~RYJ123^^^RYJ^MR||SMITH^ANNA||19700101|F\r\
         PV1|1|O\r\
         TXA|1|{txa_type}|TX|202601011100|C1234567^JONES^MARY|||||||{control_id}-DOC|||||AU\r\
         OBX|1|TX|LETTER^Letter text||Seen today. Plan agreed.||||||F\r"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinic_operation_and_ed_letters_reach_a_fhir_trust_with_their_document_type() {
    with_env(TestEnv::new("hl7-letters-to-fhir"), |env| async move {
        let (mllp_listen, mllp_local, fhir_listen) = (free_port(), free_port(), free_port());
        let royal_free = FhirSystem::start(&env, "royal-free", "ok");
        use_hl7v2_adapter(&env, SENDER, mllp_listen, mllp_local);
        use_fhir_adapter(&env, RECEIVER, fhir_listen, &royal_free.base());
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions::default();
        let mut sending = AdapterProcess::start(&env, SENDER, mllp_listen, &options).await;
        let mut receiving = AdapterProcess::start(&env, RECEIVER, fhir_listen, &options).await;
        let logs = || {
            format!(
                "--- HL7 adapter\n{}\n--- FHIR adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };
        // TXA-2.1 → the SNOMED CT type (lhcie_hl7v2::document_types).
        let letters = [
            ("LET0001", "CN", "823691000000103"),
            ("LET0002", "OP", "371526002"),
            ("LET0003", "ED", "371534008"),
        ];
        let files: Vec<PathBuf> = letters
            .iter()
            .map(|(id, txa, _)| {
                let file = env.dir().join(format!("{id}.hl7"));
                std::fs::write(&file, mdm_letter(id, txa)).unwrap();
                file
            })
            .collect();
        let output = Command::new(python())
            .arg(repository().join("integration-tests/python/mllp_client.py"))
            .args(["--port", &mllp_listen.to_string()])
            .args(&files)
            .output()
            .unwrap();
        let acks = String::from_utf8_lossy(&output.stdout).into_owned();
        for (id, _, _) in &letters {
            assert!(acks.contains(&format!(" AA {id} ")), "{acks}\n{}", logs());
        }

        let received = royal_free.wait_for(letters.len(), logs).await;
        let mut codes = Vec::new();
        for bundle in &received {
            assert_eq!(bundle.verdict, "valid", "{}", bundle.body);
            assert_eq!(bundle.body["type"], "message");
            let compositions = resources(&bundle.body, "Composition");
            assert_eq!(compositions.len(), 1, "{}", bundle.body);
            let coding = &compositions[0]["type"]["coding"][0];
            assert_eq!(coding["system"], "http://snomed.info/sct");
            codes.push(coding["code"].as_str().unwrap_or_default().to_owned());
        }
        codes.sort();
        let mut expected: Vec<String> = letters.iter().map(|(_, _, c)| (*c).to_owned()).collect();
        expected.sort();
        assert_eq!(codes, expected, "{}", logs());
        assert!(!logs().contains("3333333333"), "an NHS number was logged");
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_discharge_summary_reaches_an_hl7v2_trust_as_mdm_with_its_pdf() {
    with_env(TestEnv::new("fhir-to-hl7"), |env| async move {
        let (fhir_listen, mllp_listen, mllp_local) = (free_port(), free_port(), free_port());
        let imperial = FhirSystem::start(&env, "imperial", "ok");
        use_fhir_adapter(&env, SENDER, fhir_listen, &imperial.base());
        use_hl7v2_adapter(&env, RECEIVER, mllp_listen, mllp_local);
        let royal_free = MllpSystem::start(&env, mllp_local, "mllp-received.hex");
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions::default();
        let mut sending = AdapterProcess::start(&env, SENDER, fhir_listen, &options).await;
        let mut receiving = AdapterProcess::start(&env, RECEIVER, mllp_listen, &options).await;
        let logs = || {
            format!(
                "--- FHIR adapter\n{}\n--- HL7 adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };
        let url = format!("http://127.0.0.1:{fhir_listen}/$process-message");

        let answer = post(&url, &fixture(DISCHARGE), "application/fhir+json");
        assert_eq!(answer.status, 200, "{}\n{}", answer.body, logs());
        assert_eq!(answer.verdict, "valid");
        assert_eq!(
            response_of(&answer.body),
            (DISCHARGE_HEADER_ID.into(), "ok".into(), "20013".into())
        );

        royal_free.wait_for(1, Duration::from_secs(30), logs).await;
        let mdm = String::from_utf8(royal_free.received().remove(0)).unwrap();
        assert!(
            field_of(&mdm, "MSH", 9)[0].starts_with("MDM^T02"),
            "{mdm:?}"
        );
        assert_eq!(field_of(&mdm, "MSH", 6)[0], "RAL");
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(fixture(DISCHARGE)).unwrap()).unwrap();
        let nhs = resources(&bundle, "Patient")[0]["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(field_of(&mdm, "PID", 3)[0].contains(&nhs), "{mdm:?}");
        // The PDF arrives byte for byte in an OBX ED.
        let pdf = resources(&bundle, "DocumentReference")[0]["content"][0]["attachment"]["data"]
            .as_str()
            .unwrap();
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(pdf)
            .unwrap();
        let ed: Vec<String> = field_of(&mdm, "OBX", 5)
            .into_iter()
            .zip(field_of(&mdm, "OBX", 2))
            .filter(|(_, kind)| kind == "ED")
            .map(|(value, _)| value)
            .collect();
        assert_eq!(ed.len(), 1, "{mdm:?}");
        let data = ed[0].split('^').nth(4).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
            pdf
        );
        // The sections travel as text.
        assert!(
            field_of(&mdm, "OBX", 2)
                .iter()
                .filter(|k| *k == "TX" || *k == "FT")
                .count()
                >= 2
        );

        // The same message again: the duplicate code, no second delivery.
        let again = post(&url, &fixture(DISCHARGE), "application/fhir+json");
        assert_eq!(again.status, 200);
        assert_eq!(
            response_of(&again.body),
            (
                DISCHARGE_HEADER_ID.into(),
                "fatal-error".into(),
                "20007".into()
            )
        );
        // Bad input: clear errors, nothing forwarded.
        let lower = post(
            &url,
            &fixture("bad_lower_case_ods_system.json"),
            "application/fhir+json",
        );
        assert_eq!(lower.status, 422, "{}", lower.body);
        assert_eq!(lower.verdict, "valid");
        assert!(
            lower.body["issue"][0]["expression"][0]
                .as_str()
                .unwrap()
                .ends_with(".system"),
            "{}",
            lower.body
        );
        let not_json = post(&url, &fixture("not_json.txt"), "application/fhir+json");
        assert_eq!(not_json.status, 400, "{}", not_json.body);
        let wrong_type = post(&url, &fixture(DISCHARGE), "text/plain");
        assert_eq!(wrong_type.status, 415, "{}", wrong_type.body);
        let huge = env.dir().join("huge.json");
        // Just over the 10 MiB default limit.
        std::fs::write(&huge, vec![b' '; 10 * 1024 * 1024 + 4096]).unwrap();
        let too_large = post(&url, &huge, "application/fhir+json");
        assert_eq!(too_large.status, 413, "{}", too_large.body);
        let deep = env.dir().join("deep.json");
        std::fs::write(&deep, "[".repeat(100_000) + &"]".repeat(100_000)).unwrap();
        assert_eq!(post(&url, &deep, "application/fhir+json").status, 400);

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(royal_free.received().len(), 1, "{}", logs());
        assert!(!logs().contains(&nhs), "an NHS number was logged");
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hl7v2_admission_reaches_a_fhir_trust_as_a_valid_event_message() {
    with_env(TestEnv::new("hl7-to-fhir"), |env| async move {
        let (mllp_listen, mllp_local, fhir_listen) = (free_port(), free_port(), free_port());
        let royal_free = FhirSystem::start(&env, "royal-free", "ok");
        use_hl7v2_adapter(&env, SENDER, mllp_listen, mllp_local);
        use_fhir_adapter(&env, RECEIVER, fhir_listen, &royal_free.base());
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions::default();
        let mut sending = AdapterProcess::start(&env, SENDER, mllp_listen, &options).await;
        let mut receiving = AdapterProcess::start(&env, RECEIVER, fhir_listen, &options).await;
        let logs = || {
            format!(
                "--- HL7 adapter\n{}\n--- FHIR adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };
        // The NHS ITK ADT^A01 example (Apache-2.0), from RYJ to RAL.
        let fixture = std::fs::read_to_string(
            repository().join("adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7"),
        )
        .unwrap();
        let mut lines: Vec<String> = fixture.lines().map(str::to_owned).collect();
        lines[0] = "MSH|^~\\&|PAS|RYJ|EPR|RAL|202601011200||ADT^A01^ADT_A01|FHIR0001|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0".into();
        let message = env.dir().join("adt.hl7");
        std::fs::write(&message, lines.join("\r") + "\r").unwrap();
        let output = Command::new(python())
            .arg(repository().join("integration-tests/python/mllp_client.py"))
            .args(["--port", &mllp_listen.to_string()])
            .arg(&message)
            .output()
            .unwrap();
        let acks = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(acks.contains(" AA FHIR0001 "), "{acks}\n{}", logs());

        let received = royal_free.wait_for(1, logs).await;
        let bundle = &received[0];
        assert_eq!(bundle.verdict, "valid", "{}", bundle.body);
        assert_eq!(bundle.meta["path"], "/fhir/$process-message");
        assert_eq!(bundle.meta["content_type"], "application/fhir+json");
        assert_eq!(bundle.body["type"], "message");
        let patient = resources(&bundle.body, "Patient");
        assert_eq!(patient.len(), 1, "{}", bundle.body);
        assert_eq!(
            patient[0]["identifier"][0]["system"],
            "https://fhir.nhs.uk/Id/nhs-number"
        );
        assert_eq!(patient[0]["identifier"][0]["value"], "3333333333");
        assert_eq!(resources(&bundle.body, "Encounter").len(), 1, "{}", bundle.body);
        // Nothing signals "no more will come": a short grace for a late
        // copy of a refused request (there should be none: 20013 above).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(royal_free.received().len(), 1, "{}", logs());
        assert!(!logs().contains("3333333333"), "an NHS number was logged");
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_travel_back_to_the_fhir_sender() {
    with_env(TestEnv::new("fhir-acks"), |env| async move {
        let (imperial_listen, royal_free_listen) = (free_port(), free_port());
        let imperial = FhirSystem::start(&env, "imperial", "ok");
        // The Royal Free's system takes the message and answers that the
        // patient is not known there (a business response).
        let royal_free = FhirSystem::start(&env, "royal-free", "business:30002");
        use_fhir_adapter(&env, SENDER, imperial_listen, &imperial.base());
        use_fhir_adapter(&env, RECEIVER, royal_free_listen, &royal_free.base());
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions::default();
        let mut sending = AdapterProcess::start(&env, SENDER, imperial_listen, &options).await;
        // The Royal Free's endpoint wants a bearer token.
        let token = env.dir().join("royal-free-token");
        std::fs::write(&token, "s3cret-token\n").unwrap();
        let with_token = AdapterOptions {
            fhir: format!(
                "delivery_retry_max_ms = 1000\nbearer_token_file = \"{}\"\n",
                token.display()
            ),
            ..AdapterOptions::default()
        };
        let mut receiving =
            AdapterProcess::start(&env, RECEIVER, royal_free_listen, &with_token).await;
        let logs = || {
            format!(
                "--- Imperial adapter\n{}\n--- Royal Free adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };
        let url = format!("http://127.0.0.1:{imperial_listen}/$process-message");
        let answer = post(&url, &fixture(DISCHARGE), "application/fhir+json");
        assert_eq!(answer.status, 200, "{}", answer.body);

        // Delivered unchanged to the Royal Free, with the token.
        let delivered = royal_free.wait_for(1, logs).await;
        assert_eq!(delivered[0].meta["authorization"], "Bearer s3cret-token");
        assert!(!logs().contains("s3cret"), "the token was logged");
        assert_eq!(
            delivered[0].body,
            serde_json::from_slice::<Value>(&std::fs::read(fixture(DISCHARGE)).unwrap()).unwrap()
        );
        // Both acknowledgements reach Imperial's system as ITK3 response
        // messages answering its own MessageHeader id.
        let responses = imperial.wait_for(2, logs).await;
        let mut got: Vec<(String, String, String)> =
            responses.iter().map(|r| response_of(&r.body)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    DISCHARGE_HEADER_ID.into(),
                    "fatal-error".into(),
                    "30002".into()
                ),
                (DISCHARGE_HEADER_ID.into(), "ok".into(), "20013".into()),
            ],
            "{}",
            logs()
        );
        for response in &responses {
            assert_eq!(response.verdict, "valid", "{}", response.body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(imperial.received().len(), 2, "{}", logs());
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

/// Writes `text` to `name` in the environment's folder, owner-readable only.
fn secret_file(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.dir().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The ITK3 code of a 200 answer to `$process-message`, or the
/// OperationOutcome's issue code of a refusal.
fn code_of(answer: &Posted) -> String {
    if answer.body["resourceType"] == "OperationOutcome" {
        answer.body["issue"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    } else {
        response_of(&answer.body).2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_bearer_tokens_configured_only_a_known_token_gets_a_message_in() {
    with_env(TestEnv::new("fhir-inbound-token"), |env| async move {
        let (listen, royal_free_listen) = (free_port(), free_port());
        let royal_free = FhirSystem::start(&env, "royal-free", "ok");
        use_fhir_adapter(&env, SENDER, listen, "http://127.0.0.1:9/fhir");
        use_fhir_adapter(&env, RECEIVER, royal_free_listen, &royal_free.base());
        let hub = HubProcess::start(&env).await;
        let token = "epr-client-0123456789abcdefghijklmnopqrstuv";
        let tokens = secret_file(&env, "inbound-tokens", &format!("# the EPR\n{token}\n"));
        let options = AdapterOptions {
            fhir: format!(
                "delivery_retry_max_ms = 1000\ninbound_tokens_file = \"{}\"\n",
                tokens.display()
            ),
            ..AdapterOptions::default()
        };
        let mut sending = AdapterProcess::start(&env, SENDER, listen, &options).await;
        let mut receiving = AdapterProcess::start(
            &env,
            RECEIVER,
            royal_free_listen,
            &AdapterOptions::default(),
        )
        .await;
        let logs = || {
            format!(
                "--- Imperial adapter\n{}\n--- Royal Free adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };
        let url = format!("http://127.0.0.1:{listen}/$process-message");
        let post_token = |token: Option<&str>| {
            let extra: Vec<String> = token
                .map(|t| vec!["--token".into(), t.into()])
                .unwrap_or_default();
            post_with(&url, &fixture(DISCHARGE), "application/fhir+json", &extra).unwrap()
        };

        let none = post_token(None);
        assert_eq!(none.status, 401, "{}", none.body);
        assert_eq!(none.verdict, "valid", "{}", none.body);
        assert_eq!(code_of(&none), "login");
        let wrong = post_token(Some("epr-client-0123456789abcdefghijklmnopqrstuX"));
        assert_eq!(wrong.status, 401, "{}", wrong.body);
        assert_eq!(code_of(&wrong), "login");
        // Neither refused request was processed: the same message is new
        // (20013, not the duplicate 20007) when it comes with the token.
        let right = post_token(Some(token));
        assert_eq!(right.status, 200, "{}\n{}", right.body, logs());
        assert_eq!(code_of(&right), "20013", "{}", right.body);
        let delivered = royal_free.wait_for(1, logs).await;
        assert_eq!(delivered.len(), 1);
        // Nothing signals "no more will come": a short grace for a late
        // copy of a refused request (there should be none: 20013 above).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(royal_free.received().len(), 1, "{}", logs());
        assert!(!logs().contains(token), "a token was logged");
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_refuses_a_client_certificate_from_another_ca() {
    with_env(TestEnv::new("fhir-inbound-mtls"), |env| async move {
        let listen = free_port();
        use_fhir_adapter(&env, SENDER, listen, "http://127.0.0.1:9/fhir");
        let hub = HubProcess::start(&env).await;
        // The trust's own CA: the listener's certificate and the EPR's
        // client certificate; and a stranger's CA.
        let local = lhcie_tls::DevCa::generate().unwrap();
        let stranger = lhcie_tls::DevCa::generate().unwrap();
        let write = |name: &str, text: &str| {
            let path = env.dir().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let server = local.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let client = local.issue_client("urn:example:epr", "epr").unwrap();
        let outsider = stranger.issue_client("urn:example:epr", "epr").unwrap();
        let ca = write("local-ca.pem", local.cert_pem());
        let (server_cert, server_key) = (
            write("listener.pem", &server.cert_pem),
            write("listener.key", &server.key_pem),
        );
        let (client_cert, client_key) = (
            write("epr.pem", &client.cert_pem),
            write("epr.key", &client.key_pem),
        );
        let (outsider_cert, outsider_key) = (
            write("outsider.pem", &outsider.cert_pem),
            write("outsider.key", &outsider.key_pem),
        );
        let options = AdapterOptions {
            extra_tables: format!(
                "[fhir.listen_tls]\ncert = \"{server_cert}\"\nkey = \"{server_key}\"\nclient_ca = \"{ca}\"\n"
            ),
            ..AdapterOptions::default()
        };
        let mut sending = AdapterProcess::start(&env, SENDER, listen, &options).await;
        let url = format!("https://localhost:{listen}/$process-message");
        let with = |cert: &str, key: &str| {
            let mut extra = vec!["--ca".to_owned(), ca.clone()];
            if !cert.is_empty() {
                extra.extend(["--cert".into(), cert.into(), "--key".into(), key.into()]);
            }
            post_with(&url, &fixture(DISCHARGE), "application/fhir+json", &extra)
        };

        let refused = with(&outsider_cert, &outsider_key);
        assert!(refused.is_err(), "another CA's certificate was accepted");
        let refused = with("", "");
        assert!(refused.is_err(), "no certificate was accepted");
        assert!(sending.log().contains("TLS handshake refused"), "{}", sending.log());
        let accepted = with(&client_cert, &client_key).expect("the trust's client is accepted");
        assert_eq!(accepted.status, 200, "{}\n{}", accepted.body, hub.log());
        assert_eq!(code_of(&accepted), "20013", "{}", accepted.body);
        assert!(sending.stop().await, "{}", sending.log());
    })
    .await;
}

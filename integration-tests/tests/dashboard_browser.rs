//! The operations dashboard in a real browser (Debian's Chromium, driven by
//! Playwright's `playwright-core`, `integration-tests/browser/dashboard.mjs`)
//! against a real hub, registry and RabbitMQ while traffic flows: an
//! operator logs in, sees the counters move without reloading, opens a
//! message's trace, replays a dead letter (dry run, then for real); a
//! viewer cannot replay. Screenshots are kept in the target folder and
//! their paths printed. `make test` installs Chromium and playwright-core
//! (`scripts/ensure-browser.sh`).

use std::path::PathBuf;
use std::time::Duration;

use lhcie_integration_tests::dashboard::{DashboardClient, OpsHub, USERS, start_ops_hub};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::registry::{sign_nwl_sel_agreement, synthetic_patient};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn browser_dir() -> PathBuf {
    lhcie_integration_tests::repository().join("integration-tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_traces_and_replays_in_the_browser_and_a_viewer_cannot_replay() {
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/ensure-browser.sh (make test does)"
    );
    with_env(TestEnv::new("ops-browser"), |env| async move {
        let OpsHub {
            cluster,
            hub,
            dashboard,
        } = start_ops_hub(&env).await;
        let operator = DashboardClient::new(dashboard, &USERS[0]);
        let kings = traffic::receive_grpc(env.connection("sel-kings"));

        // A summary for King's, withheld (no agreement), and one for the
        // Royal Free, forwarded: the dead letter and the trace to look at.
        let withheld = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RJZ"], 0),
            &synthetic_patient(5201),
        );
        let traced = with_patient(
            discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0),
            &synthetic_patient(5202),
        );
        let (withheld_id, traced_id) = (withheld.message_id.clone(), traced.message_id.clone());
        traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![withheld, traced],
            2,
            Duration::from_secs(30),
        )
        .await;

        // The agreement is signed; wait until the hub's copy has it (a dry
        // run changes nothing).
        sign_nwl_sel_agreement(&cluster);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, dry) = operator
                .post(
                    "/api/dead-letters/replay",
                    &json!({"filter": {"destination": "sel-kings"}, "dry_run": true}),
                )
                .await;
            if dry["results"][0]["outcome"] == "would-forward" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agreement did not reach the hub: {dry}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Traffic flows while the browser watches.
        let flowing = CancellationToken::new();
        let traffic = {
            let flowing = flowing.clone();
            let connection = env.connection("nwl-imperial");
            tokio::spawn(async move {
                let mut sent = 0;
                while !flowing.is_cancelled() {
                    let envelope = discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
                    traffic::submit_all(
                        connection.clone(),
                        vec![envelope],
                        1,
                        Duration::from_secs(10),
                    )
                    .await;
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                sent
            })
        };

        let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&screenshots).unwrap();
        let output = tokio::process::Command::new("node")
            .current_dir(browser_dir())
            .arg("dashboard.mjs")
            .args(["--url", &format!("http://{dashboard}")])
            .args([
                "--operator",
                &format!("{}:{}", USERS[0].name, USERS[0].password),
            ])
            .args([
                "--viewer",
                &format!("{}:{}", USERS[1].name, USERS[1].password),
            ])
            .args(["--trace-message-id", &traced_id])
            .args(["--dead-letter-message-id", &withheld_id])
            .arg("--screenshots")
            .arg(&screenshots)
            .args(["--timeout-seconds", "90"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .expect("the browser run finished")
            .expect("node runs");
        flowing.cancel();
        let sent = traffic.await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        assert!(
            output.status.success(),
            "the browser scenario failed (exit {:?}):\n{stdout}",
            output.status.code()
        );
        assert!(sent > 0);
        for step in ["login-operator", "live-update", "trace", "replay", "viewer"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&format!("\"step\":\"{step}\""))
                        && l.contains("\"ok\":true")),
                "step {step} in:\n{stdout}"
            );
        }
        for shot in ["trace.png", "replay.png", "viewer.png"] {
            let path = screenshots.join(shot);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(
                size > 1000,
                "screenshot {} missing or empty",
                path.display()
            );
            println!("screenshot: {}", path.display());
        }

        // The replay the browser made delivered the summary to King's once.
        kings.received.wait_for(1, Duration::from_secs(20)).await;
        assert!(kings.received.contains(&withheld_id));
        assert!(kings.received.handed_twice().is_empty());
        kings.stop().await;
        let listed = operator.get_ok("/api/dead-letters?state=all").await;
        let letter = &listed["dead_letters"][0];
        assert_eq!(letter["state"], "replayed");
        assert_eq!(letter["last_replay"]["by"], USERS[0].name);
        drop(hub);
    })
    .await;
}

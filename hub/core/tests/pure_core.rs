//! The pure core is a test: `lhcie-model`, `lhcie-consent` and
//! `lhcie-hub-core` must not reach, through their normal dependencies
//! (direct or transitive; dev- and build-dependencies do not count), any
//! crate that brings I/O, an async runtime, sockets, RPC or storage.
//!
//! The dependency graph is the one Cargo resolves for the workspace
//! (`cargo metadata --format-version 1`, `resolve.nodes`). A failure names
//! the forbidden crate and the path by which it is reached, e.g.
//! `lhcie-hub-core -> lhcie-consent -> tokio`.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;

/// The crates that must stay pure.
const PURE: &[&str] = &["lhcie-model", "lhcie-consent", "lhcie-hub-core"];

/// Crates none of them may reach.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "tonic",
    "lapin",
    "sled",
    "hyper",
    "axum",
    "mio",
    "socket2",
    "tokio-rustls",
    "rustls",
    "h2",
    "reqwest",
    "openraft",
    "rusqlite",
    "redb",
];

/// The rule, and why, printed with every violation.
const RULE: &str = "the routing and policy core is pure (no I/O, no async runtime, no \
    sockets, no storage) so that it is unit-testable and fuzzable — see ARCHITECTURE.md \
    invariants";

/// A forbidden crate reachable from a pure one.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    /// The forbidden crate's package name.
    forbidden: String,
    /// Package names from the pure crate to the forbidden one, both included.
    path: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reaches forbidden crate `{}` via {}",
            self.path[0],
            self.forbidden,
            self.path.join(" -> ")
        )
    }
}

/// Walks the normal (not dev, not build) dependency edges of `resolve.nodes`
/// from the workspace package named `root`, breadth first, and returns one
/// violation (by a shortest path) for each forbidden crate it reaches.
///
/// Errors when the metadata has no resolve graph or no package `root`, so
/// that a renamed crate cannot make the check pass vacuously.
fn forbidden_reachable(
    metadata: &Value,
    root: &str,
    forbidden: &[&str],
) -> Result<Vec<Violation>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages` array")?;
    let names: HashMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no `resolve.nodes` (was it run with --no-deps?)")?;
    let edges: HashMap<&str, Vec<&str>> = nodes
        .iter()
        .filter_map(|node| {
            let id = node["id"].as_str()?;
            let deps = node["deps"]
                .as_array()
                .map(|deps| {
                    deps.iter()
                        .filter(|dep| is_normal(dep))
                        .filter_map(|dep| dep["pkg"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            Some((id, deps))
        })
        .collect();

    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let start = members
        .iter()
        .copied()
        .find(|id| names.get(id) == Some(&root))
        .ok_or_else(|| format!("cargo metadata: no workspace package named `{root}`"))?;

    // Breadth first: the first time a package is seen is by a shortest path.
    let mut parent: HashMap<&str, Option<&str>> = HashMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    let mut violations = Vec::new();
    while let Some(id) = queue.pop_front() {
        let name = names.get(id).copied().unwrap_or(id);
        if id != start && forbidden.contains(&name) {
            let mut path = vec![name.to_string()];
            let mut at = id;
            while let Some(Some(up)) = parent.get(at) {
                path.push(names.get(up).copied().unwrap_or(up).to_string());
                at = up;
            }
            path.reverse();
            violations.push(Violation {
                forbidden: name.to_string(),
                path,
            });
        }
        for &dep in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
            if !parent.contains_key(dep) {
                parent.insert(dep, Some(id));
                queue.push_back(dep);
            }
        }
    }
    Ok(violations)
}

/// Whether a `resolve.nodes[].deps[]` entry is a normal dependency for at
/// least one target (`dep_kinds[].kind` is null; "dev" and "build" are not).
fn is_normal(dep: &Value) -> bool {
    dep["dep_kinds"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
}

fn workspace_metadata() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn pure_crates_reach_no_io_runtime_socket_or_storage_crate() {
    let metadata = workspace_metadata();
    let mut report = Vec::new();
    for root in PURE {
        let violations = forbidden_reachable(&metadata, root, FORBIDDEN).unwrap();
        report.extend(violations.iter().map(ToString::to_string));
    }
    assert!(
        report.is_empty(),
        "forbidden dependencies of the pure core:\n  {}\nrule: {RULE}",
        report.join("\n  ")
    );
}

/// The walker itself, on a fabricated graph: `core -> helper -> (build)
/// cc`, `core -> helper -> rt -> tokio`, `core -> (dev) sled`.
#[test]
fn walker_reports_a_transitive_forbidden_crate_with_its_path() {
    let metadata = serde_json::json!({
        "packages": [
            {"id": "core 0.1.0", "name": "core"},
            {"id": "helper 1.0.0", "name": "helper"},
            {"id": "rt 1.0.0", "name": "rt"},
            {"id": "tokio 1.0.0", "name": "tokio"},
            {"id": "cc 1.0.0", "name": "cc"},
            {"id": "sled 0.34.0", "name": "sled"},
        ],
        "workspace_members": ["core 0.1.0"],
        "resolve": {"nodes": [
            {"id": "core 0.1.0", "deps": [
                {"pkg": "helper 1.0.0", "dep_kinds": [{"kind": null, "target": null}]},
                {"pkg": "sled 0.34.0", "dep_kinds": [{"kind": "dev", "target": null}]},
            ]},
            {"id": "helper 1.0.0", "deps": [
                {"pkg": "rt 1.0.0", "dep_kinds": [{"kind": null, "target": "cfg(unix)"}]},
                {"pkg": "cc 1.0.0", "dep_kinds": [{"kind": "build", "target": null}]},
            ]},
            {"id": "rt 1.0.0", "deps": [
                {"pkg": "tokio 1.0.0", "dep_kinds": [{"kind": null, "target": null}]},
            ]},
            {"id": "tokio 1.0.0", "deps": []},
            {"id": "cc 1.0.0", "deps": []},
            {"id": "sled 0.34.0", "deps": []},
        ]},
    });

    let violations = forbidden_reachable(&metadata, "core", &["tokio", "sled", "cc"]).unwrap();
    assert_eq!(
        violations,
        vec![Violation {
            forbidden: "tokio".into(),
            path: vec!["core".into(), "helper".into(), "rt".into(), "tokio".into()],
        }],
        "the dev-dependency sled and the build-dependency cc do not count"
    );
    assert_eq!(
        violations[0].to_string(),
        "core reaches forbidden crate `tokio` via core -> helper -> rt -> tokio"
    );
    assert!(
        forbidden_reachable(&metadata, "helper", &["tokio"]).is_err(),
        "a package that is not a workspace member is an error, not a pass"
    );
    assert!(
        forbidden_reachable(&metadata, "core", &["sled", "cc"])
            .unwrap()
            .is_empty()
    );
}

//! Decisions from the hub's registry copy: the figures criterion measured
//! (`cargo bench -p lhcie-registry-client --bench decide`, which `make
//! bench` runs first), read from its estimates and printed as `BENCH`
//! lines.

use std::path::PathBuf;

use super::line;

/// `target/criterion`, beside the `release` folder this binary is in.
fn criterion_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    exe.parent()
        .and_then(|release| release.parent())
        .map(|target| target.join("criterion"))
        .expect("target folder")
}

/// Mean nanoseconds per iteration of a criterion benchmark.
pub fn mean_nanos(group: &str, name: &str) -> Option<f64> {
    let file = criterion_dir()
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&file).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// Prints the decision figures, or says how to measure them.
pub fn report() {
    let (Some(decide), Some(lookup)) = (
        mean_nanos("registry", "registry_cache_decide"),
        mean_nanos("registry", "registry_cache_lookup_reference"),
    ) else {
        eprintln!(
            "bench: no criterion results for the registry copy; run `cargo bench -p lhcie-registry-client --bench decide` first (make bench does)"
        );
        return;
    };
    let (decide, lookup) = (1e9 / decide, 1e9 / lookup);
    line(
        "registry_cache_lookup_reference",
        lookup,
        "ops/s",
        None,
        None,
    );
    line(
        "registry_cache_decide",
        decide,
        "decisions/s",
        Some(decide / lookup),
        Some(">=1000000"),
    );
    let (Some(now), Some(as_of)) = (
        mean_nanos("registry", "registry_decide_now"),
        mean_nanos("registry", "registry_decide_as_of"),
    ) else {
        return;
    };
    let (now, as_of) = (1e9 / now, 1e9 / as_of);
    line("registry_decide_now", now, "decisions/s", None, None);
    line(
        "registry_decide_as_of",
        as_of,
        "decisions/s",
        Some(as_of / now),
        Some("ratio>=0.5"),
    );
}

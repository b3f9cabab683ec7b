//! The operations files under `ops/` stay usable: the Prometheus alert
//! rules (`ops/prometheus/alerts.yml`) and the Grafana dashboard
//! (`ops/grafana/lhcie-operations.json`) parse and have the structure
//! Prometheus, Alertmanager and Grafana need (every rule has an alert name,
//! an expression, `for`, a severity, a summary, a description and a
//! runbook; every panel has queries), the alerts and panels the operations
//! team relies on are there, and every metric their PromQL reads is
//! documented in `docs/metrics.md` (so a renamed metric cannot silently
//! turn an alert off).
//!
//! No Prometheus is needed; `promtool check rules` and `promtool test
//! rules ops/prometheus/alerts_test.yml` check more where it is installed
//! (ops/README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

fn repo_file(relative: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

fn alerts() -> Value {
    let (path, text) = repo_file("ops/prometheus/alerts.yml");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    let (path, text) = repo_file("ops/grafana/lhcie-operations.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------- PromQL: which metrics an expression reads ----------

/// Words that are PromQL syntax, not metric names.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
];
/// Keywords followed by a parenthesised label list.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// The functions and aggregations the files may use (a typo is an error).
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "floor",
    "group",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "last_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "stddev",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
];

/// What an expression uses: metric names, functions and Grafana variables.
#[derive(Debug, Default, PartialEq, Eq)]
struct Uses {
    metrics: BTreeSet<String>,
    functions: BTreeSet<String>,
    variables: BTreeSet<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Skips a string literal starting at `chars[i]` (a quote); returns the
/// index after it.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    let quote = chars[i];
    i += 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Skips from an opening bracket to after its closing one, noting Grafana
/// variables inside (`{exchange=~"$exchange"}`, `[$__rate_interval]`).
fn skip_group(chars: &[char], mut i: usize, uses: &mut Uses) -> usize {
    let (open, close) = (chars[i], closing(chars[i]));
    let mut depth = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let end = skip_string(chars, i).min(chars.len());
            note_variables(&chars[i..end], uses);
            i = end;
            continue;
        }
        if c == '$' {
            i = read_variable(chars, i, uses);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    panic!("unbalanced {open} in {}", chars.iter().collect::<String>());
}

fn closing(open: char) -> char {
    match open {
        '{' => '}',
        '[' => ']',
        _ => ')',
    }
}

fn read_variable(chars: &[char], i: usize, uses: &mut Uses) -> usize {
    let mut end = i + 1;
    while end < chars.len() && is_ident(chars[end]) {
        end += 1;
    }
    uses.variables.insert(chars[i + 1..end].iter().collect());
    end
}

fn note_variables(chars: &[char], uses: &mut Uses) {
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            i = read_variable(chars, i, uses);
        } else {
            i += 1;
        }
    }
}

/// The metric names, functions and variables `expr` uses.
fn promql_uses(expr: &str) -> Uses {
    let chars: Vec<char> = expr.chars().collect();
    let mut uses = Uses::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' || c == '[' {
            i = skip_group(&chars, i, &mut uses);
        } else if c == '$' {
            i = read_variable(&chars, i, &mut uses);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or duration: 0.5, 1e3, 10m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            // `sum by (le) (...)`: an aggregation with its clause first.
            let clause_follows = ["by", "without"].iter().any(|clause| {
                let after = next + clause.len();
                chars.len() > after
                    && chars[next..after]
                        .iter()
                        .collect::<String>()
                        .eq_ignore_ascii_case(clause)
                    && !is_ident(chars[after])
            });
            let called = chars.get(next) == Some(&'(') || clause_follows;
            let lower = word.to_ascii_lowercase();
            if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                if called {
                    i = skip_group(&chars, next, &mut uses);
                }
            } else if KEYWORDS.contains(&lower.as_str()) {
            } else if called {
                uses.functions.insert(word);
            } else {
                uses.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    uses
}

#[test]
fn the_promql_reader_finds_metrics_and_nothing_else() {
    let uses = promql_uses(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(lhcie_hub_routing_seconds_bucket{ingress!="x", exchange=~"$exchange"}[$__rate_interval]))) > 0.5
           and on (instance) (max(up offset 5m) == 0 or lhcie_b:x{queue=~".*egress.*"} unless vector(1e3))"#,
    );
    let metrics: Vec<_> = uses.metrics.iter().map(String::as_str).collect();
    assert_eq!(
        metrics,
        ["lhcie_b:x", "lhcie_hub_routing_seconds_bucket", "up"]
    );
    let functions: Vec<_> = uses.functions.iter().map(String::as_str).collect();
    assert_eq!(
        functions,
        ["histogram_quantile", "max", "rate", "sum", "vector"]
    );
    let variables: Vec<_> = uses.variables.iter().map(String::as_str).collect();
    assert_eq!(variables, ["__rate_interval", "exchange"]);
    assert_eq!(
        promql_uses("sum(x) by (le) / ignoring(a) group_left(b) y").metrics,
        ["x", "y"].iter().map(|s| s.to_string()).collect()
    );
}

// ---------- docs/metrics.md ----------

/// Whether `docs` names `metric` as a whole word.
fn documents(docs: &str, metric: &str) -> bool {
    docs.match_indices(metric).any(|(at, _)| {
        let before = docs[..at].chars().next_back();
        let after = docs[at + metric.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The documented name `metric` stands for (a histogram's `_bucket`,
/// `_sum` and `_count` series stand for the histogram), or `None`.
fn documented_as(docs: &str, metric: &str) -> Option<String> {
    if metric == "up" || documents(docs, metric) {
        return Some(metric.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        metric
            .strip_suffix(suffix)
            .filter(|base| documents(docs, base))
            .map(str::to_owned)
    })
}

/// Checks every metric in `exprs` (where → expression) is documented and
/// every function is known; returns the metric names used.
fn check_exprs(
    exprs: &[(String, String)],
    allowed_variables: &BTreeSet<String>,
) -> BTreeSet<String> {
    let (_, docs) = repo_file("docs/metrics.md");
    let mut undocumented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr) in exprs {
        let uses = promql_uses(expr);
        if uses.metrics.is_empty() {
            problems.push(format!("{place}: the expression reads no metric: {expr}"));
        }
        for metric in &uses.metrics {
            match documented_as(&docs, metric) {
                Some(name) => {
                    used.insert(name);
                }
                None => undocumented
                    .entry(metric.clone())
                    .or_default()
                    .push(place.clone()),
            }
        }
        for function in &uses.functions {
            if !FUNCTIONS.contains(&function.as_str()) {
                problems.push(format!("{place}: unknown PromQL function {function}"));
            }
        }
        for variable in &uses.variables {
            if !allowed_variables.contains(variable) {
                problems.push(format!("{place}: undefined variable ${variable}"));
            }
        }
    }
    for (metric, places) in &undocumented {
        problems.push(format!(
            "{metric} is not in docs/metrics.md (used by {})",
            places.join(", ")
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    used
}

// ---------- alerts.yml ----------

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A Prometheus duration: one or more `<number><unit>`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|unit| rest.starts_with(unit));
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// Every rule, as (group name, rule).
fn rules(alerts: &Value) -> Vec<(String, Value)> {
    let groups = alerts["groups"]
        .as_array()
        .expect("alerts.yml: `groups` is a list");
    assert!(!groups.is_empty(), "alerts.yml: no group");
    groups
        .iter()
        .flat_map(|group| {
            let name = text(group, "name")
                .expect("every group has a name")
                .to_owned();
            let rules = group["rules"]
                .as_array()
                .unwrap_or_else(|| panic!("group {name}: `rules` is a list"));
            assert!(!rules.is_empty(), "group {name} has no rule");
            rules.iter().map(move |rule| (name.clone(), rule.clone()))
        })
        .collect()
}

#[test]
fn every_alert_rule_is_complete() {
    let alerts = alerts();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut group_names = BTreeSet::new();
    for group in alerts["groups"].as_array().into_iter().flatten() {
        if !group_names.insert(text(group, "name").unwrap_or("").to_owned()) {
            problems.push(format!("duplicate group {:?}", group["name"]));
        }
    }
    for (group, rule) in rules(&alerts) {
        let Some(name) = text(&rule, "alert") else {
            problems.push(format!("group {group}: a rule without `alert`: {rule}"));
            continue;
        };
        let place = format!("{group}/{name}");
        if !names.insert(name.to_owned()) {
            problems.push(format!("{place}: duplicate alert name"));
        }
        if !name.starts_with("Lhcie") || name.contains(|c: char| !c.is_ascii_alphanumeric()) {
            problems.push(format!("{place}: alert names are LhcieCamelCase"));
        }
        for key in rule.as_object().into_iter().flat_map(|rule| rule.keys()) {
            if ![
                "alert",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            ]
            .contains(&key.as_str())
            {
                problems.push(format!("{place}: unknown key {key}"));
            }
        }
        if text(&rule, "expr").is_none() {
            problems.push(format!("{place}: no expr"));
        }
        match text(&rule, "for") {
            Some(duration) if is_duration(duration) => {}
            other => problems.push(format!("{place}: `for` must be a duration, not {other:?}")),
        }
        match text(&rule["labels"], "severity") {
            Some("page" | "warning") => {}
            other => problems.push(format!(
                "{place}: labels.severity must be page or warning, not {other:?}"
            )),
        }
        for annotation in ["summary", "description", "runbook"] {
            if text(&rule["annotations"], annotation).is_none() {
                problems.push(format!("{place}: no annotations.{annotation}"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_alerts_operations_rely_on_are_there_and_read_the_right_metrics() {
    let alerts = alerts();
    let by_name: BTreeMap<String, String> = rules(&alerts)
        .into_iter()
        .map(|(_, rule)| {
            (
                text(&rule, "alert").unwrap_or("").to_owned(),
                text(&rule, "expr").unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (alert, metric) in [
        ("LhcieAdapterDown", "lhcie_hub_adapter_up"),
        ("LhcieDeadLettersArriving", "lhcie_hub_dead_letters_total"),
        ("LhcieDeadLettersPending", "lhcie_hub_dead_letters_pending"),
        ("LhcieHubHoldingMessages", "lhcie_hub_registry_fresh"),
        ("LhcieRegistryNoLeader", "lhcie_registry_has_leader"),
        ("LhcieRegistryNoLeader", "lhcie_registry_is_leader"),
        ("LhcieEgressQueueRising", "lhcie_broker_queue_messages"),
        ("LhcieOutboxBackingUp", "lhcie_adapter_outbox_depth"),
        (
            "LhcieHubRejectingMany",
            "lhcie_hub_envelopes_rejected_total",
        ),
        (
            "LhcieHubRejectingMany",
            "lhcie_hub_envelopes_received_total",
        ),
        ("LhcieHubRoutingSlow", "lhcie_hub_routing_seconds_bucket"),
        (
            "LhcieEmergencyOverride",
            "lhcie_hub_emergency_overrides_total",
        ),
        (
            "LhcieEmergencyReviewsPending",
            "lhcie_hub_emergency_reviews_pending",
        ),
        ("LhcieTargetDown", "up"),
    ] {
        let expr = by_name
            .get(alert)
            .unwrap_or_else(|| panic!("alerts.yml has no alert {alert}"));
        assert!(
            promql_uses(expr).metrics.contains(metric),
            "{alert} does not read {metric}: {expr}"
        );
    }
}

#[test]
fn every_metric_the_alerts_read_is_documented() {
    let exprs: Vec<(String, String)> = rules(&alerts())
        .into_iter()
        .map(|(_, rule)| {
            (
                format!("alert {}", text(&rule, "alert").unwrap_or("?")),
                text(&rule, "expr").unwrap_or("").to_owned(),
            )
        })
        .collect();
    check_exprs(&exprs, &BTreeSet::new());
}

// ---------- the Grafana dashboard ----------

/// Every panel, rows' collapsed panels included.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("`panels` is a list") {
        all.push(panel.clone());
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner.iter().cloned());
        }
    }
    all
}

fn uses_the_datasource_input(value: &Value) -> bool {
    value["datasource"]["uid"] == "${DS_PROMETHEUS}" || value["datasource"] == "${DS_PROMETHEUS}"
}

/// The dashboard's variables and Grafana's built-in ones.
fn variables(dashboard: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["__rate_interval", "__interval", "__range"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        names.insert(
            text(variable, "name")
                .expect("a variable has a name")
                .to_owned(),
        );
    }
    names
}

/// (panel title and refId, expression) of every query.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .iter()
        .flat_map(|panel| {
            let title = text(panel, "title").unwrap_or("?").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| {
                    (
                        format!("panel {title:?} {}", text(target, "refId").unwrap_or("?")),
                        text(target, "expr").unwrap_or("").to_owned(),
                    )
                })
        })
        .collect()
}

#[test]
fn the_dashboard_is_importable_and_every_panel_has_queries() {
    let dashboard = dashboard();
    let mut problems = Vec::new();
    match dashboard["schemaVersion"].as_u64() {
        Some(version) if version >= 36 => {}
        other => problems.push(format!("schemaVersion must be at least 36, not {other:?}")),
    }
    let inputs = dashboard["__inputs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !inputs
        .iter()
        .any(|input| input["name"] == "DS_PROMETHEUS" && input["pluginId"] == "prometheus")
    {
        problems.push("no DS_PROMETHEUS datasource input (pluginId prometheus)".to_owned());
    }
    for key in ["title", "uid"] {
        if text(&dashboard, key).is_none() {
            problems.push(format!("no {key}"));
        }
    }
    let mut ids = BTreeSet::new();
    let all = panels(&dashboard);
    assert!(all.len() > 5, "too few panels: {}", all.len());
    for panel in &all {
        let title = text(panel, "title").unwrap_or("").to_owned();
        if title.is_empty() {
            problems.push(format!("a panel without a title: id {}", panel["id"]));
        }
        if !ids.insert(panel["id"].to_string()) {
            problems.push(format!("panel {title:?}: duplicate id {}", panel["id"]));
        }
        for key in ["h", "w", "x", "y"] {
            if !panel["gridPos"][key].is_u64() {
                problems.push(format!("panel {title:?}: no gridPos.{key}"));
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        if !uses_the_datasource_input(panel) {
            problems.push(format!(
                "panel {title:?}: datasource is not ${{DS_PROMETHEUS}}"
            ));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel {title:?}: no targets"));
        }
        let mut ref_ids = BTreeSet::new();
        for target in &targets {
            if text(target, "expr").is_none() {
                problems.push(format!("panel {title:?}: a target without expr"));
            }
            match text(target, "refId") {
                Some(ref_id) if ref_ids.insert(ref_id.to_owned()) => {}
                other => problems.push(format!(
                    "panel {title:?}: refId {other:?} missing or repeated"
                )),
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] == "query" && !uses_the_datasource_input(variable) {
            problems.push(format!(
                "variable {}: datasource is not ${{DS_PROMETHEUS}}",
                variable["name"]
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_metric_the_dashboard_reads_is_documented_and_the_topics_are_covered() {
    let dashboard = dashboard();
    let used = check_exprs(&dashboard_exprs(&dashboard), &variables(&dashboard));
    for (topic, metric) in [
        (
            "throughput per exchange",
            "lhcie_hub_envelopes_received_total",
        ),
        ("routing latency", "lhcie_hub_routing_seconds"),
        ("denials by reason", "lhcie_hub_recipients_denied_total"),
        ("rejections by reason", "lhcie_hub_envelopes_rejected_total"),
        ("adapters up", "lhcie_hub_adapter_up"),
        ("queue depths", "lhcie_broker_queue_messages"),
        ("outbox depths", "lhcie_adapter_outbox_depth"),
        ("dead letters", "lhcie_hub_dead_letters_pending"),
        ("registry leader", "lhcie_registry_is_leader"),
        ("registry revision", "lhcie_registry_revision"),
        ("registry freshness", "lhcie_hub_registry_fresh"),
        ("end-to-end latency", "lhcie_adapter_end_to_end_seconds"),
        ("emergency overrides", "lhcie_hub_emergency_overrides_total"),
        (
            "emergency reviews pending",
            "lhcie_hub_emergency_reviews_pending",
        ),
    ] {
        assert!(used.contains(metric), "no panel shows {topic} ({metric})");
    }
}

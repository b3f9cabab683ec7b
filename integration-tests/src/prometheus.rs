//! Reading a Prometheus text exposition in tests: parsed into samples, not
//! grepped.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug)]
pub struct Sample {
    /// The metric name (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: String,
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Parses the Prometheus text format (comments skipped; label values may
/// hold escaped quotes).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let mut end = after.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(if escaped == 'n' { '\n' } else { escaped });
                                }
                            }
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    labels.insert(key.trim_start_matches(',').to_owned(), value);
                    rest = after[end..].trim_start_matches(',');
                }
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The value of the one sample named `name` whose labels include `with`.
pub fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(matching.len(), 1, "{name} {with:?}: {matching:?}");
    matching[0].value
}

/// Fetches `http://<address>/metrics` and parses it.
pub async fn scrape(address: std::net::SocketAddr) -> Vec<Sample> {
    let (status, text) = crate::hub::http_get(address, "/metrics")
        .await
        .expect("metrics endpoint reachable");
    assert_eq!(status, 200, "{text}");
    parse(&text)
}

/// The sum of every sample named `name` whose labels include `with` (0 if none).
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

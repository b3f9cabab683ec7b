//! `[hl7v2.limits]`: the MLLP listener's limits, in the operator's hands.
//!
//! ```toml
//! [hl7v2.limits]                      # optional; defaults shown
//! max_frame_bytes = 4194304           # larger: AR "message too large", then closed
//! max_connections = 256               # open connections at once; more wait
//! # max_connections_per_peer = 8      # from one IP address; one more is closed
//! #                                   # at once (default: only max_connections)
//! first_byte_timeout_ms = 600000      # a new connection must start a frame within this
//! idle_timeout_ms = 600000            # no byte between frames for this long: closed
//! byte_timeout_ms = 30000             # no byte inside a frame for this long: closed
//! frame_timeout_ms = 30000            # a whole frame must arrive within this
//! ```
//!
//! The defaults are the listener's fixed values before they could be set,
//! so a file without the table behaves as before. Values outside the
//! bounds below are configuration errors naming the key (`hl7v2.limits.…`):
//! a zero would shut every sender out, an absurd one would let one sender
//! hold the adapter's memory or slots. A listener exposed to several
//! sending systems should set `max_connections_per_peer` (so one system
//! cannot take every slot) and a `first_byte_timeout_ms` of seconds (so
//! connections that never send do not hold slots for the idle timeout).

use serde::Deserialize;

use crate::error::Problems;

/// The MLLP listener's limits (`[hl7v2.limits]`). See the module docs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MllpLimits {
    /// The largest frame content accepted, in bytes; a larger frame is
    /// answered `AR` (message too large, naming this limit) and the
    /// connection closed. 1024 to 536870912; default 4194304 (4 MiB).
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// The most connections served at once; further clients wait to be
    /// accepted. 1 to 100000; default 256.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The most connections served at once from one peer IP address; one
    /// more is closed as soon as it is accepted (logged, counted in
    /// `lhcie_adapter_mllp_connections_refused_total`). 1 to
    /// `max_connections`; default none (only `max_connections` applies).
    #[serde(default)]
    pub max_connections_per_peer: Option<usize>,
    /// How long a new connection may take to start its first frame, in
    /// milliseconds. 100 to 86400000; default 600000 (the idle timeout).
    #[serde(default = "default_idle_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    /// How long a connection may stay silent between frames, in
    /// milliseconds. 1000 to 86400000; default 600000 (10 minutes).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Inside a frame, the longest wait for the next bytes, in
    /// milliseconds. 100 to 600000 and at most `frame_timeout_ms`;
    /// default 30000.
    #[serde(default = "default_frame_timeout_ms")]
    pub byte_timeout_ms: u64,
    /// How long one frame may take from its first byte to its last, in
    /// milliseconds. 100 to 3600000; default 30000.
    #[serde(default = "default_frame_timeout_ms")]
    pub frame_timeout_ms: u64,
}

impl Default for MllpLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: default_max_frame_bytes(),
            max_connections: default_max_connections(),
            max_connections_per_peer: None,
            first_byte_timeout_ms: default_idle_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            byte_timeout_ms: default_frame_timeout_ms(),
            frame_timeout_ms: default_frame_timeout_ms(),
        }
    }
}

fn default_max_frame_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_max_connections() -> usize {
    256
}

fn default_idle_timeout_ms() -> u64 {
    600_000
}

fn default_frame_timeout_ms() -> u64 {
    30_000
}

impl MllpLimits {
    /// Adds a problem, keyed `<table>.<key>`, for every value out of its
    /// bounds.
    pub(crate) fn check(&self, table: &str, problems: &mut Problems) {
        let mut bound = |key: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                problems.add(
                    format!("{table}.{key}"),
                    format!("must be {min} to {max}, not {value}"),
                );
            }
        };
        bound(
            "max_frame_bytes",
            self.max_frame_bytes as u64,
            1024,
            512 * 1024 * 1024,
        );
        bound("max_connections", self.max_connections as u64, 1, 100_000);
        if let Some(per_peer) = self.max_connections_per_peer {
            let most = self.max_connections.clamp(1, 100_000) as u64;
            bound("max_connections_per_peer", per_peer as u64, 1, most);
        }
        bound(
            "first_byte_timeout_ms",
            self.first_byte_timeout_ms,
            100,
            86_400_000,
        );
        bound("idle_timeout_ms", self.idle_timeout_ms, 1_000, 86_400_000);
        bound("byte_timeout_ms", self.byte_timeout_ms, 100, 600_000);
        bound("frame_timeout_ms", self.frame_timeout_ms, 100, 3_600_000);
        if self.byte_timeout_ms > self.frame_timeout_ms && self.frame_timeout_ms >= 100 {
            problems.add(
                format!("{table}.byte_timeout_ms"),
                format!(
                    "must be at most frame_timeout_ms ({}), not {}",
                    self.frame_timeout_ms, self.byte_timeout_ms
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of `[hl7v2.limits]` written as `text`, as `key:
    /// message` lines.
    fn problems(text: &str) -> Vec<String> {
        let limits: MllpLimits = toml::from_str(text).unwrap();
        let mut problems = Problems::default();
        limits.check("hl7v2.limits", &mut problems);
        let error = problems.into_result(std::path::Path::new("adapter.toml"));
        error
            .err()
            .map(|e| {
                e.problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_defaults_are_the_former_fixed_values_and_valid() {
        let limits: MllpLimits = toml::from_str("").unwrap();
        assert_eq!(limits, MllpLimits::default());
        assert_eq!(limits.max_frame_bytes, 4 * 1024 * 1024);
        assert_eq!(limits.max_connections, 256);
        assert_eq!(limits.max_connections_per_peer, None);
        assert_eq!(limits.idle_timeout_ms, 600_000);
        assert_eq!(limits.first_byte_timeout_ms, 600_000);
        assert_eq!(limits.frame_timeout_ms, 30_000);
        assert_eq!(limits.byte_timeout_ms, 30_000);
        assert!(problems("").is_empty());
        assert!(
            problems("max_connections_per_peer = 8\nfirst_byte_timeout_ms = 5000\n").is_empty()
        );
    }

    #[test]
    fn zero_and_absurd_values_are_refused_naming_the_key() {
        let found = problems(
            "max_frame_bytes = 0\nmax_connections = 0\nmax_connections_per_peer = 0\nfirst_byte_timeout_ms = 0\nidle_timeout_ms = 0\nbyte_timeout_ms = 0\nframe_timeout_ms = 0\n",
        );
        let keys: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "hl7v2.limits.max_frame_bytes",
                "hl7v2.limits.max_connections",
                "hl7v2.limits.max_connections_per_peer",
                "hl7v2.limits.first_byte_timeout_ms",
                "hl7v2.limits.idle_timeout_ms",
                "hl7v2.limits.byte_timeout_ms",
                "hl7v2.limits.frame_timeout_ms",
            ],
            "{found:?}"
        );
        assert!(
            found[0].contains("must be 1024 to 536870912, not 0"),
            "{found:?}"
        );
        let absurd = problems(
            "max_frame_bytes = 10000000000\nmax_connections = 1000000\nidle_timeout_ms = 100000000000\n",
        );
        assert_eq!(absurd.len(), 3, "{absurd:?}");
        assert!(
            absurd[2].starts_with("hl7v2.limits.idle_timeout_ms"),
            "{absurd:?}"
        );
    }

    #[test]
    fn the_per_peer_limit_is_at_most_the_total_and_bytes_wait_less_than_frames() {
        let found = problems(
            "max_connections = 10\nmax_connections_per_peer = 11\nbyte_timeout_ms = 60000\n",
        );
        assert_eq!(
            found,
            [
                "hl7v2.limits.max_connections_per_peer: must be 1 to 10, not 11",
                "hl7v2.limits.byte_timeout_ms: must be at most frame_timeout_ms (30000), not 60000",
            ]
        );
    }

    #[test]
    fn unknown_and_negative_keys_are_errors() {
        assert!(toml::from_str::<MllpLimits>("max_frame = 1\n").is_err());
        assert!(toml::from_str::<MllpLimits>("max_connections = -1\n").is_err());
    }
}

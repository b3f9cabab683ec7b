//! What the dashboard shows that Prometheus would need queries for: per
//! exchange counts, the rate over the last ten seconds and routing-time
//! percentiles over the last minute, flows between exchanges, denials and
//! rejections by reason. Kept in memory since the hub started (Prometheus
//! keeps the history); one short lock per envelope.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Seconds of history kept for rates and percentiles.
const WINDOW_SECONDS: usize = 60;
/// Seconds the rate is averaged over.
const RATE_SECONDS: u64 = 10;
/// Latency buckets: bucket `i` holds times below `BASE_MS * 2^i`.
const BUCKETS: usize = 24;
const BASE_MS: f64 = 0.1;

/// One second of one exchange's traffic.
#[derive(Clone, Copy, Default)]
struct Slot {
    second: u64,
    received: u64,
    latencies: [u32; BUCKETS],
}

#[derive(Default)]
struct ExchangeStats {
    received: u64,
    routed: u64,
    rejected: u64,
    copies_in: u64,
    slots: Vec<Slot>,
}

impl ExchangeStats {
    fn slot(&mut self, second: u64) -> &mut Slot {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); WINDOW_SECONDS];
        }
        let slot = &mut self.slots[(second % WINDOW_SECONDS as u64) as usize];
        if slot.second != second {
            *slot = Slot {
                second,
                ..Slot::default()
            };
        }
        slot
    }

    fn recent(&self, now: u64, seconds: u64) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(move |s| s.second + seconds > now && s.second <= now)
    }
}

#[derive(Default)]
struct Inner {
    exchanges: HashMap<String, ExchangeStats>,
    flows: HashMap<(String, String), u64>,
    denials: BTreeMap<String, u64>,
    rejections: BTreeMap<String, u64>,
}

/// The hub's live statistics.
pub struct OpsStats {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Default for OpsStats {
    fn default() -> Self {
        Self::new()
    }
}

/// One exchange's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExchangeFigures {
    /// The exchange.
    pub exchange: String,
    /// Envelopes received from it.
    pub received: u64,
    /// Of those, routed.
    pub routed: u64,
    /// Of those, rejected.
    pub rejected: u64,
    /// Copies published to it.
    pub copies_in: u64,
    /// Envelopes received per second over the last ten seconds.
    pub rate_per_second: f64,
    /// Median routing time over the last minute (ms), if any.
    pub routing_p50_ms: Option<f64>,
    /// 99th percentile routing time over the last minute (ms), if any.
    pub routing_p99_ms: Option<f64>,
}

/// Everything, at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    /// Per exchange, sorted.
    pub exchanges: Vec<ExchangeFigures>,
    /// (from exchange, to exchange, copies), sorted.
    pub flows: Vec<(String, String, u64)>,
    /// Denied recipients by policy reason.
    pub denials: Vec<(String, u64)>,
    /// Rejected envelopes by reason.
    pub rejections: Vec<(String, u64)>,
}

impl OpsStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn second(&self) -> u64 {
        self.started.elapsed().as_secs() + 1
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// An envelope from `exchange` was routed in `elapsed`: its copies went
    /// to `to` and `denied` lists the policy reasons of its denied
    /// recipients.
    pub fn routed<'a>(
        &self,
        exchange: &str,
        elapsed: Duration,
        to: impl Iterator<Item = &'a str>,
        denied: impl Iterator<Item = &'a str>,
    ) {
        let second = self.second();
        self.with(|inner| {
            let stats = inner.exchanges.entry(exchange.to_owned()).or_default();
            stats.received += 1;
            stats.routed += 1;
            let slot = stats.slot(second);
            slot.received += 1;
            slot.latencies[bucket(elapsed)] += 1;
            for target in to {
                inner
                    .exchanges
                    .entry(target.to_owned())
                    .or_default()
                    .copies_in += 1;
                *inner
                    .flows
                    .entry((exchange.to_owned(), target.to_owned()))
                    .or_default() += 1;
            }
            for reason in denied {
                *inner.denials.entry(reason.to_owned()).or_default() += 1;
            }
        });
    }

    /// An envelope from `exchange` was rejected for `reason`.
    pub fn rejected(&self, exchange: &str, reason: &str, elapsed: Duration) {
        let second = self.second();
        self.with(|inner| {
            let stats = inner.exchanges.entry(exchange.to_owned()).or_default();
            stats.received += 1;
            stats.rejected += 1;
            let slot = stats.slot(second);
            slot.received += 1;
            slot.latencies[bucket(elapsed)] += 1;
            *inner.rejections.entry(reason.to_owned()).or_default() += 1;
        });
    }

    /// The figures now.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.second();
        self.with(|inner| {
            let mut exchanges: Vec<ExchangeFigures> = inner
                .exchanges
                .iter()
                .map(|(exchange, stats)| {
                    let received: u64 = stats.recent(now, RATE_SECONDS).map(|s| s.received).sum();
                    let mut merged = [0u64; BUCKETS];
                    for slot in stats.recent(now, WINDOW_SECONDS as u64) {
                        for (total, count) in merged.iter_mut().zip(slot.latencies) {
                            *total += u64::from(count);
                        }
                    }
                    ExchangeFigures {
                        exchange: exchange.clone(),
                        received: stats.received,
                        routed: stats.routed,
                        rejected: stats.rejected,
                        copies_in: stats.copies_in,
                        rate_per_second: received as f64 / RATE_SECONDS as f64,
                        routing_p50_ms: percentile(&merged, 0.50),
                        routing_p99_ms: percentile(&merged, 0.99),
                    }
                })
                .collect();
            exchanges.sort_by(|a, b| a.exchange.cmp(&b.exchange));
            let mut flows: Vec<(String, String, u64)> = inner
                .flows
                .iter()
                .map(|((from, to), count)| (from.clone(), to.clone(), *count))
                .collect();
            flows.sort();
            Snapshot {
                exchanges,
                flows,
                denials: inner.denials.iter().map(|(r, c)| (r.clone(), *c)).collect(),
                rejections: inner
                    .rejections
                    .iter()
                    .map(|(r, c)| (r.clone(), *c))
                    .collect(),
            }
        })
    }
}

fn bucket(elapsed: Duration) -> usize {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut bound = BASE_MS;
    for i in 0..BUCKETS - 1 {
        if ms < bound {
            return i;
        }
        bound *= 2.0;
    }
    BUCKETS - 1
}

/// The upper bound (ms) of the bucket holding quantile `q`: an estimate no
/// better than a factor of two, which is what a dashboard needs.
fn percentile(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(BASE_MS * 2f64.powi(i as i32));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flows_reasons_rates_and_percentiles() {
        let stats = OpsStats::new();
        for _ in 0..99 {
            stats.routed(
                "nwl-imperial",
                Duration::from_micros(1500),
                ["ncl-royal-free"].into_iter(),
                std::iter::empty(),
            );
        }
        stats.routed(
            "nwl-imperial",
            Duration::from_millis(300),
            std::iter::empty(),
            ["no-agreement"].into_iter(),
        );
        stats.rejected("sel-guys", "invalid-envelope", Duration::from_micros(200));
        let snapshot = stats.snapshot();
        let imperial = &snapshot.exchanges[1];
        assert_eq!(imperial.exchange, "nwl-imperial");
        assert_eq!((imperial.received, imperial.routed), (100, 100));
        assert!((imperial.rate_per_second - 10.0).abs() < f64::EPSILON);
        // 1.5 ms falls below 1.6 ms; 300 ms below 409.6 ms.
        assert_eq!(imperial.routing_p50_ms, Some(1.6));
        assert_eq!(imperial.routing_p99_ms, Some(1.6));
        let royal_free = &snapshot.exchanges[0];
        assert_eq!((royal_free.copies_in, royal_free.received), (99, 0));
        assert_eq!(royal_free.routing_p50_ms, None);
        assert_eq!(
            snapshot.flows,
            [("nwl-imperial".into(), "ncl-royal-free".into(), 99)]
        );
        assert_eq!(snapshot.denials, [("no-agreement".into(), 1)]);
        assert_eq!(snapshot.rejections, [("invalid-envelope".into(), 1)]);
        assert_eq!(snapshot.exchanges[2].rejected, 1);
    }

    #[test]
    fn the_slowest_percent_shows_in_the_99th_percentile() {
        let mut buckets = [0u64; BUCKETS];
        buckets[bucket(Duration::from_millis(1))] = 98;
        buckets[bucket(Duration::from_millis(300))] = 2;
        assert_eq!(percentile(&buckets, 0.99), Some(409.6));
        assert_eq!(percentile(&buckets, 0.5), Some(1.6));
    }
}

//! Acknowledging many deliveries with one AMQP ack.
//!
//! A consumer that handles deliveries concurrently finishes them out of
//! order, and acking each one costs the client and the broker a frame, a
//! round through lapin's I/O loop and a queue operation. An ack with
//! `multiple = true` settles every delivery up to a tag, but only the
//! *contiguous* prefix of finished deliveries may be acked that way: a
//! delivery still in flight must stay unacknowledged, or a crash would lose
//! it. The coalescer tracks finished tags and says how far the contiguous
//! prefix reaches. Pure: the caller sends the ack.

use std::collections::BTreeSet;

/// Tracks which delivery tags of one channel are finished.
#[derive(Debug, Default)]
pub struct AckCoalescer {
    /// Every tag up to and including this one is acknowledged.
    acked_through: u64,
    /// Finished tags beyond `acked_through` that a gap still holds back.
    finished: BTreeSet<u64>,
}

impl AckCoalescer {
    /// A coalescer for a fresh channel (tags start at 1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `tag` is finished. Returns the tag to ack with
    /// `multiple = true` if the contiguous prefix grew.
    pub fn finish(&mut self, tag: u64) -> Option<u64> {
        if tag <= self.acked_through {
            return None;
        }
        self.finished.insert(tag);
        let before = self.acked_through;
        while self.finished.remove(&(self.acked_through + 1)) {
            self.acked_through += 1;
        }
        (self.acked_through > before).then_some(self.acked_through)
    }

    /// Deliveries finished but held back by an earlier one still in flight.
    pub fn held_back(&self) -> usize {
        self.finished.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contiguous_prefix_is_acknowledged() {
        let mut acks = AckCoalescer::new();
        assert_eq!(acks.finish(2), None, "1 is still in flight");
        assert_eq!(acks.finish(3), None);
        assert_eq!(acks.held_back(), 2);
        assert_eq!(acks.finish(1), Some(3), "1..=3 now contiguous");
        assert_eq!(acks.held_back(), 0);
        assert_eq!(acks.finish(5), None);
        assert_eq!(acks.finish(4), Some(5));
        assert_eq!(acks.finish(4), None, "already acknowledged");
    }

    #[test]
    fn every_permutation_acknowledges_everything_and_nothing_early() {
        // All orders of 1..=5: the acked prefix never includes an
        // unfinished tag, and ends at 5.
        fn permutations(items: Vec<u64>) -> Vec<Vec<u64>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut all = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(i);
                for mut tail in permutations(rest) {
                    tail.insert(0, first);
                    all.push(tail);
                }
            }
            all
        }
        for order in permutations((1..=5).collect()) {
            let mut acks = AckCoalescer::new();
            let mut finished = std::collections::HashSet::new();
            let mut through = 0;
            for tag in order {
                finished.insert(tag);
                if let Some(up_to) = acks.finish(tag) {
                    assert!((1..=up_to).all(|t| finished.contains(&t)));
                    through = up_to;
                }
            }
            assert_eq!(through, 5);
        }
    }
}

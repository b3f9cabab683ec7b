//! Arbitrary bytes to `parse_message` and `parse_batch`. Invariants: no
//! panic, and every message parsed renders to bytes that parse back to the
//! same message (and render identically again).
#![no_main]

use lhcie_hl7v2::{Message, parse_batch, parse_message};
use libfuzzer_sys::fuzz_target;

fn round_trip(m: &Message) {
    let bytes = m.render();
    let again = parse_message(&bytes);
    assert!(
        again.as_ref() == Ok(m),
        "parse(render(m)) != m: {again:?}\nrendered: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        again.map(|a| a.render()).ok(),
        Some(bytes),
        "render not stable"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_message(data) {
        round_trip(&m);
    }
    if let Ok(batch) = parse_batch(data) {
        for m in batch.messages() {
            round_trip(m);
        }
    }
});

//! HL7 v2 parse and translate throughput on one core: the figures
//! criterion measured (`cargo bench -p lhcie-hl7v2 --bench parse_translate`,
//! which `make bench` runs first), read from its estimates and printed as
//! `BENCH` lines. One iteration there is one message, so the mean time per
//! iteration is the time per message.

use super::decisions::mean_nanos;
use super::line;

/// Prints the HL7 v2 figures, or says how to measure them.
pub fn report() {
    let (Some(parse), Some(parse_translate)) = (
        mean_nanos("hl7", "hl7_parse"),
        mean_nanos("hl7", "hl7_parse_translate"),
    ) else {
        eprintln!(
            "bench: no criterion results for HL7 v2; run `cargo bench -p lhcie-hl7v2 --bench parse_translate` first (make bench does)"
        );
        return;
    };
    let (parse, parse_translate) = (1e9 / parse, 1e9 / parse_translate);
    line("hl7_parse", parse, "msg/s", None, None);
    // Translation should cost at most as much again as the parse.
    line(
        "hl7_parse_translate",
        parse_translate,
        "msg/s",
        Some(parse_translate / parse),
        Some(">=0.5"),
    );
}

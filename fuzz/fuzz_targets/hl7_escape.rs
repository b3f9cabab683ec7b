//! `unescape(escape(s)) == s` for arbitrary strings and the default
//! delimiters; `unescape` never panics on arbitrary text.
#![no_main]

use lhcie_hl7v2::Delimiters;
use lhcie_hl7v2::escape::{escape, unescape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = Delimiters::default();
    let s = String::from_utf8_lossy(data);
    let _ = unescape(&s, &d);
    let escaped = escape(&s, &d);
    for c in ['|', '^', '~', '&', '\r', '\n'] {
        assert!(!escaped.contains(c), "escaped text contains {c:?}");
    }
    assert_eq!(
        unescape(&escaped, &d),
        s.as_ref(),
        "unescape(escape(s)) != s"
    );
});

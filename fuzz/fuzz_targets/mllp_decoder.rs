//! Arbitrary bytes, fed to `MllpCodec` in chunks whose sizes come from the
//! input, then end of stream. Invariants: no panic, every frame at most the
//! maximum length and free of start/end block bytes, and the decoder drains
//! its buffer.
#![no_main]

use bytes::BytesMut;
use lhcie_mllp::codec::{END_BLOCK, START_BLOCK};
use lhcie_mllp::{CodecError, MllpCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fn check(frame: &[u8], max: usize) {
    assert!(frame.len() <= max, "frame of {} > max {max}", frame.len());
    assert!(!frame.contains(&START_BLOCK), "frame contains 0x0B");
    assert!(!frame.contains(&END_BLOCK), "frame contains 0x1C");
}

fuzz_target!(|data: &[u8]| {
    // Header: byte 0 picks the maximum frame length (small ones exercise
    // the oversize paths), bytes 1..4 seed the chunk sizes.
    let Some((&[m, a, b, c], payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let max = match m % 4 {
        0 => lhcie_mllp::DEFAULT_MAX_FRAME_LEN,
        _ => usize::from(m >> 2),
    };
    let mut codec = MllpCodec::with_max_frame_len(max);
    let sizes = [
        usize::from(a) + 1,
        usize::from(b) % 8 + 1,
        usize::from(c) % 64 + 1,
    ];

    let mut buf = BytesMut::new();
    let mut rest = payload;
    let mut i = 0;
    let mut frames = 0usize;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        // Bounded loop: each call either makes progress or returns None.
        for _ in 0..=payload.len() + 1 {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    check(&frame, max);
                    frames += 1;
                }
                Ok(None) => break,
                Err(CodecError::FrameTooLarge { max: m }) => assert_eq!(m, max),
                Err(e) => panic!("unexpected error from decode: {e}"),
            }
        }
        assert!(frames <= payload.len(), "more frames than bytes");
    }
    for _ in 0..=payload.len() + 1 {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => check(&frame, max),
            Ok(None) => break,
            Err(CodecError::FrameTooLarge { .. }) => {}
            Err(CodecError::TruncatedFrame { received }) => {
                assert!(received <= payload.len());
                break;
            }
            Err(e) => panic!("unexpected error from decode_eof: {e}"),
        }
    }
    assert!(buf.is_empty(), "decode_eof left {} bytes", buf.len());
    assert!(!codec.in_frame(), "still in a frame after end of stream");
});

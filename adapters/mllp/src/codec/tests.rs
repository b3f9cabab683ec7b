//! Tests of the MLLP codec: the tolerance rules, oversize and truncation,
//! and a property test over random frame sequences split at random points.

use super::*;
use proptest::prelude::*;

/// Feeds `chunks` one after another, collecting every decoded frame, then
/// signals end of stream.
fn decode_chunks(codec: &mut MllpCodec, chunks: &[&[u8]]) -> Vec<Result<Bytes, String>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e.to_string()));
                break;
            }
        }
    }
    out
}

fn ok(frames: &[&[u8]]) -> Vec<Result<Bytes, String>> {
    frames
        .iter()
        .map(|f| Ok(Bytes::copy_from_slice(f)))
        .collect()
}

#[test]
fn encodes_start_content_end_cr() {
    let mut codec = MllpCodec::new();
    let mut dst = BytesMut::new();
    codec.encode(&b"MSH|^~\\&|A\rPID|1"[..], &mut dst).unwrap();
    assert_eq!(&dst[..], b"\x0bMSH|^~\\&|A\rPID|1\x1c\x0d");
    codec.encode(Bytes::from_static(b"x"), &mut dst).unwrap();
    assert_eq!(&dst[..], b"\x0bMSH|^~\\&|A\rPID|1\x1c\x0d\x0bx\x1c\x0d");
    assert_eq!(&frame(b"y").unwrap()[..], b"\x0by\x1c\x0d");
}

#[test]
fn encoding_refuses_block_bytes_in_content() {
    let mut dst = BytesMut::new();
    let err = MllpCodec::new()
        .encode(&b"ab\x1ccd"[..], &mut dst)
        .unwrap_err();
    assert!(matches!(
        err,
        CodecError::ForbiddenByte {
            byte: 0x1c,
            offset: 2
        }
    ));
    assert!(matches!(
        frame(b"\x0b").unwrap_err(),
        CodecError::ForbiddenByte {
            byte: 0x0b,
            offset: 0
        }
    ));
    assert!(dst.is_empty());
}

#[test]
fn decodes_one_well_formed_frame() {
    let mut codec = MllpCodec::new();
    let out = decode_chunks(&mut codec, &[b"\x0bMSH|1\rPID|2\x1c\x0d"]);
    assert_eq!(out, ok(&[b"MSH|1\rPID|2"]));
    assert_eq!(codec.skipped_bytes(), 0);
}

#[test]
fn missing_trailing_cr_emits_frame_at_end_block() {
    let mut codec = MllpCodec::new();
    let mut buf = BytesMut::from(&b"\x0bfirst\x1c"[..]);
    // Emitted as soon as 0x1C arrives, without waiting for the CR.
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"first"[..]);
    assert!(!codec.in_frame());
    // The next frame also lacks its CR; a following proper one has it.
    buf.extend_from_slice(b"\x0bsecond\x1c\x0bthird\x1c\x0d");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"second"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"third"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.skipped_bytes(), 0);
}

#[test]
fn trailing_cr_split_from_its_frame_is_not_junk() {
    let mut codec = MllpCodec::new();
    let out = decode_chunks(&mut codec, &[b"\x0ba\x1c", b"\x0d", b"\x0bb\x1c", b"\x0d"]);
    assert_eq!(out, ok(&[b"a", b"b"]));
    assert_eq!(codec.skipped_bytes(), 0);
}

#[test]
fn junk_before_start_block_is_skipped_and_counted() {
    let mut codec = MllpCodec::new();
    let out = decode_chunks(
        &mut codec,
        &[b"\r\n", b"GET / HTTP/1.0\r\n", b"\x0bMSH|x\x1c\x0d\n\n"],
    );
    assert_eq!(out, ok(&[b"MSH|x"]));
    assert_eq!(codec.skipped_bytes(), 2 + 16 + 2);
}

#[test]
fn segment_separators_pass_through_untouched() {
    let mut codec = MllpCodec::new();
    let content: &[u8] = b"MSH|a\r\nPID|b\nPV1|c\r";
    let framed = frame(content).unwrap();
    assert_eq!(decode_chunks(&mut codec, &[&framed]), ok(&[content]));
}

#[test]
fn oversized_frame_errors_then_resyncs_to_next_good_frame() {
    // Whole oversized frame in one buffer (end block found past the limit).
    let mut codec = MllpCodec::with_max_frame_len(8);
    let out = decode_chunks(&mut codec, &[b"\x0b0123456789\x1c\x0d\x0bgood\x1c\x0d"]);
    assert_eq!(
        out,
        vec![
            Err("MLLP frame content exceeds the maximum of 8 bytes".to_owned()),
            Ok(Bytes::from_static(b"good")),
        ]
    );

    // Oversized frame arriving in pieces: the error comes as soon as the
    // limit is passed, the rest of the frame is discarded, nothing leaks
    // into the next frame.
    let mut codec = MllpCodec::with_max_frame_len(8);
    let out = decode_chunks(
        &mut codec,
        &[
            b"\x0b01234",
            b"56789",
            b"abcdef",
            b"ghi\x1c",
            b"\x0d\x0bgood",
            b"\x1c\x0d",
        ],
    );
    assert_eq!(
        out,
        vec![
            Err("MLLP frame content exceeds the maximum of 8 bytes".to_owned()),
            Ok(Bytes::from_static(b"good")),
        ]
    );
    assert_eq!(codec.skipped_bytes(), 0);

    // Exactly at the limit is fine.
    let mut codec = MllpCodec::with_max_frame_len(8);
    assert_eq!(
        decode_chunks(&mut codec, &[b"\x0b01234", b"567\x1c\x0d"]),
        ok(&[b"01234567"])
    );
}

#[test]
fn oversized_frame_without_end_block_resyncs_at_next_start_block() {
    let mut codec = MllpCodec::with_max_frame_len(4);
    let mut buf = BytesMut::from(&b"\x0b0123456789"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::FrameTooLarge { max: 4 })
    ));
    assert!(codec.in_frame());
    buf.extend_from_slice(b"more junk\x0bok\x1c\x0d");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"ok"[..]);
}

#[test]
fn an_oversized_frame_keeps_its_first_segment_only() {
    // Cut while still arriving: the MSH up to its CR, the rest not kept.
    let mut codec = MllpCodec::with_max_frame_len(16);
    let mut buf = BytesMut::from(&b"\x0bMSH|^~\\&|A\rPID|1|secret-patient-data"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::FrameTooLarge { max: 16 })
    ));
    assert!(codec.is_discarding());
    assert_eq!(codec.take_oversized_head().unwrap(), &b"MSH|^~\\&|A"[..]);
    assert_eq!(codec.take_oversized_head(), None, "taken once");
    buf.extend_from_slice(b"more\x1c\x0d");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(!codec.is_discarding() && !codec.in_frame());

    // Complete in the buffer, one segment ended by the end block.
    let mut codec = MllpCodec::with_max_frame_len(4);
    let mut buf = BytesMut::from(&b"\x0bMSH|^~\\&|B\x1c\x0d"[..]);
    assert!(codec.decode(&mut buf).is_err());
    assert_eq!(codec.take_oversized_head().unwrap(), &b"MSH|^~\\&|B"[..]);

    // A first segment longer than MAX_HEAD_LEN is not kept (a cut MSH
    // could misaddress the answer).
    let mut codec = MllpCodec::with_max_frame_len(MAX_HEAD_LEN);
    let mut long = b"\x0bMSH|".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_HEAD_LEN + 10));
    let mut buf = BytesMut::from(&long[..]);
    assert!(codec.decode(&mut buf).is_err());
    assert_eq!(codec.take_oversized_head().unwrap(), &b""[..]);
}

#[test]
fn truncated_frame_at_eof_is_an_error() {
    let mut codec = MllpCodec::new();
    let out = decode_chunks(&mut codec, &[b"\x0bcomplete\x1c\x0d\x0bMSH|partial"]);
    assert_eq!(
        out,
        vec![
            Ok(Bytes::from_static(b"complete")),
            Err("MLLP stream ended inside a frame after 11 bytes of content".to_owned()),
        ]
    );
    let mut codec = MllpCodec::new();
    let mut buf = BytesMut::from(&b"\x0babc"[..]);
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(CodecError::TruncatedFrame { received: 3 })
    ));
    // Junk at EOF outside a frame is not an error.
    let mut buf = BytesMut::from(&b"\r\n"[..]);
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn restarted_frame_abandons_the_partial_one() {
    let mut codec = MllpCodec::new();
    let out = decode_chunks(&mut codec, &[b"\x0bhalf", b"\x0bwhole\x1c\x0d"]);
    assert_eq!(out, ok(&[b"whole"]));
    assert!(codec.skipped_bytes() > 0);
}

#[tokio::test]
async fn works_with_framed_read() {
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;
    let input: &[u8] = b"\n\x0bone\x1c\x0d\x0btwo\x1c\x0bthr";
    let mut reader = FramedRead::new(input, MllpCodec::new());
    assert_eq!(reader.next().await.unwrap().unwrap(), &b"one"[..]);
    assert_eq!(reader.next().await.unwrap().unwrap(), &b"two"[..]);
    assert!(matches!(
        reader.next().await,
        Some(Err(CodecError::TruncatedFrame { received: 3 }))
    ));
}

/// What goes between two frames in the property test.
#[derive(Debug, Clone)]
enum Gap {
    Nothing,
    Junk(Vec<u8>),
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no block bytes", |b| *b != START_BLOCK && *b != END_BLOCK),
        0..300,
    )
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        Just(Gap::Nothing),
        // Stray CR/LF between frames.
        proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n')], 1..4).prop_map(Gap::Junk),
        // Arbitrary junk (never a start block: that would begin a frame).
        proptest::collection::vec(
            any::<u8>().prop_filter("not a start block", |b| *b != START_BLOCK),
            1..20
        )
        .prop_map(Gap::Junk),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_frames_split_at_random_points_decode_to_the_originals(
        frames in proptest::collection::vec((content(), any::<bool>(), gap()), 0..12),
        leading in gap(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut wire = Vec::new();
        if let Gap::Junk(j) = &leading {
            wire.extend_from_slice(j);
        }
        for (content, trailing_cr, gap) in &frames {
            wire.push(START_BLOCK);
            wire.extend_from_slice(content);
            wire.push(END_BLOCK);
            if *trailing_cr {
                wire.push(CARRIAGE_RETURN);
            }
            if let Gap::Junk(j) = gap {
                wire.extend_from_slice(j);
            }
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(&wire[from..p]);
            from = p;
        }
        chunks.push(&wire[from..]);

        let mut codec = MllpCodec::with_max_frame_len(300);
        let decoded = decode_chunks(&mut codec, &chunks);
        let expected: Vec<Result<Bytes, String>> = frames
            .iter()
            .map(|(c, _, _)| Ok(Bytes::copy_from_slice(c)))
            .collect();
        prop_assert_eq!(decoded, expected);
    }
}

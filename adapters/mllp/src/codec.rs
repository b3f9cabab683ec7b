//! MLLP framing: [`MllpCodec`], a `tokio_util` codec for HL7 v2 frames.
//!
//! A frame is `0x0B <content> 0x1C 0x0D`. The decoder yields the content
//! (without the block characters) and is tolerant of what real interface
//! engines send:
//!
//! - a missing trailing `0x0D`: the frame is emitted as soon as `0x1C`
//!   arrives, and one `0x0D` directly after it is taken as its trailer;
//! - bytes outside a frame (stray CR/LF, junk) are skipped, counted
//!   ([`MllpCodec::skipped_bytes`]) and logged at debug level by count only;
//! - a `0x0B` inside a frame abandons the partial frame (counted as skipped)
//!   and starts a new one, so a sender that restarts a frame is understood;
//! - segment separators inside the content (CR, LF, CRLF) are passed through
//!   untouched: normalising them is the HL7 parser's job.
//!
//! Content longer than the maximum ([`DEFAULT_MAX_FRAME_LEN`] unless
//! configured) gives [`CodecError::FrameTooLarge`] once; the decoder then
//! discards the rest of that frame and resynchronises at the next start
//! block, so the caller may keep using the connection. The start of that
//! frame, up to its first segment separator and at most
//! [`MAX_HEAD_LEN`] bytes (an HL7 message's MSH), is kept for
//! [`MllpCodec::take_oversized_head`], so a negative acknowledgement can be
//! addressed to the message. End of stream inside a frame gives
//! [`CodecError::TruncatedFrame`].
//!
//! Nothing here logs message content: it is patient data.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Start block (VT), the first byte of a frame.
pub const START_BLOCK: u8 = 0x0B;
/// End block (FS), the byte after a frame's content.
pub const END_BLOCK: u8 = 0x1C;
/// Carriage return, the last byte of a well-formed frame.
pub const CARRIAGE_RETURN: u8 = 0x0D;

/// Default maximum frame content length: 4 MiB.
///
/// Ordinary HL7 v2 messages are a few kilobytes, but results (ORU) and
/// documents (MDM) can carry base64 PDFs or images in OBX-5 that exceed
/// 1 MiB; 4 MiB accepts those while bounding the memory one connection can
/// hold.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// The most bytes kept of an oversized frame's first segment (its MSH);
/// a longer first segment is not kept at all (a cut MSH could misaddress
/// the answer).
pub const MAX_HEAD_LEN: usize = 4096;

/// What can go wrong while framing or unframing MLLP.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A frame's content is longer than the configured maximum. The decoder
    /// discards the rest of the frame and resynchronises at the next start
    /// block; the stream may be used further.
    #[error("MLLP frame content exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The configured maximum content length in bytes.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("MLLP stream ended inside a frame after {received} bytes of content")]
    TruncatedFrame {
        /// How many content bytes of the unfinished frame had arrived.
        received: usize,
    },
    /// Content to be encoded contains a start or end block byte, which would
    /// break the framing.
    #[error("MLLP content contains the forbidden byte {byte:#04x} at offset {offset}")]
    ForbiddenByte {
        /// The forbidden byte (`0x0B` or `0x1C`).
        byte: u8,
        /// Its offset in the content.
        offset: usize,
    },
    /// The underlying stream failed.
    #[error("MLLP I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames: looking for a start block.
    Outside,
    /// Inside a frame: looking for the end block.
    InFrame,
    /// Inside an oversized frame that was reported: discarding to its end.
    Discarding,
}

/// The MLLP codec: decodes frames to their content, encodes content to
/// frames. See the [module documentation](self) for the tolerance rules.
#[derive(Debug, Clone)]
pub struct MllpCodec {
    max_frame_len: usize,
    state: State,
    /// Offset in the buffer (after the start block) already searched for
    /// the end block, so a large frame arriving in pieces is scanned once.
    scanned: usize,
    /// A frame has just ended at `0x1C`; one `0x0D` next is its trailer.
    expect_trailer: bool,
    skipped: u64,
    /// The first segment of the last oversized frame, until taken.
    oversized_head: Option<Bytes>,
}

impl Default for MllpCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl MllpCodec {
    /// A codec with the default maximum frame length
    /// ([`DEFAULT_MAX_FRAME_LEN`]).
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A codec accepting frame content of at most `max_frame_len` bytes.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            state: State::Outside,
            scanned: 0,
            expect_trailer: false,
            skipped: 0,
            oversized_head: None,
        }
    }

    /// The maximum frame content length in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// How many bytes outside frames (or of abandoned frames) the decoder
    /// has skipped so far. Trailing `0x0D`s of frames are not counted.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Whether the decoder has seen a start block whose frame is not yet
    /// complete (including an oversized frame being discarded).
    pub fn in_frame(&self) -> bool {
        self.state != State::Outside
    }

    /// Whether the decoder is discarding the rest of an oversized frame
    /// (after [`CodecError::FrameTooLarge`], until its end block).
    pub fn is_discarding(&self) -> bool {
        self.state == State::Discarding
    }

    /// The first segment of the last oversized frame (from after the start
    /// block to the first CR or LF, or to the end of the content), if it
    /// was at most [`MAX_HEAD_LEN`] bytes; empty otherwise. Taken once per
    /// [`CodecError::FrameTooLarge`].
    pub fn take_oversized_head(&mut self) -> Option<Bytes> {
        self.oversized_head.take()
    }

    /// Keeps the first segment of an oversized frame whose known content
    /// is `content` (`complete`: the whole content, ended by the end block).
    fn keep_head(&mut self, content: &[u8], complete: bool) {
        let window = &content[..content.len().min(MAX_HEAD_LEN)];
        let head = match window.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(end) => &window[..end],
            None if complete && content.len() <= MAX_HEAD_LEN => content,
            None => &[],
        };
        self.oversized_head = Some(Bytes::copy_from_slice(head));
    }

    fn skip(&mut self, n: usize, what: &'static str) {
        if n > 0 {
            self.skipped += n as u64;
            tracing::debug!(bytes = n, "MLLP decoder skipped {what}");
        }
    }

    /// Writes one frame around `content` into `dst`.
    fn encode_content(&self, content: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        if let Some(offset) = content
            .iter()
            .position(|&b| b == START_BLOCK || b == END_BLOCK)
        {
            return Err(CodecError::ForbiddenByte {
                byte: content[offset],
                offset,
            });
        }
        dst.reserve(content.len() + 3);
        dst.put_u8(START_BLOCK);
        dst.put_slice(content);
        dst.put_slice(&[END_BLOCK, CARRIAGE_RETURN]);
        Ok(())
    }
}

impl Decoder for MllpCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        loop {
            match self.state {
                State::Outside => {
                    if self.expect_trailer && !src.is_empty() {
                        self.expect_trailer = false;
                        if src[0] == CARRIAGE_RETURN {
                            src.advance(1);
                        }
                    }
                    match src.iter().position(|&b| b == START_BLOCK) {
                        Some(start) => {
                            self.skip(start, "bytes outside a frame");
                            src.advance(start + 1);
                            self.state = State::InFrame;
                            self.scanned = 0;
                        }
                        None => {
                            let n = src.len();
                            self.skip(n, "bytes outside a frame");
                            src.clear();
                            return Ok(None);
                        }
                    }
                }
                State::InFrame => {
                    let found = src[self.scanned..]
                        .iter()
                        .position(|&b| b == END_BLOCK || b == START_BLOCK)
                        .map(|i| self.scanned + i);
                    match found {
                        Some(end) if src[end] == END_BLOCK => {
                            self.state = State::Outside;
                            self.expect_trailer = true;
                            self.scanned = 0;
                            if end > self.max_frame_len {
                                self.keep_head(&src[..end], true);
                                src.advance(end + 1);
                                return Err(CodecError::FrameTooLarge {
                                    max: self.max_frame_len,
                                });
                            }
                            let content = src.split_to(end).freeze();
                            src.advance(1);
                            return Ok(Some(content));
                        }
                        Some(restart) => {
                            // A new start block before the end: the partial
                            // frame was abandoned by its sender.
                            self.skip(restart + 1, "an abandoned partial frame");
                            src.advance(restart + 1);
                            self.scanned = 0;
                        }
                        None if src.len() > self.max_frame_len => {
                            self.keep_head(src, false);
                            src.clear();
                            self.state = State::Discarding;
                            self.scanned = 0;
                            return Err(CodecError::FrameTooLarge {
                                max: self.max_frame_len,
                            });
                        }
                        None => {
                            self.scanned = src.len();
                            return Ok(None);
                        }
                    }
                }
                State::Discarding => {
                    match src.iter().position(|&b| b == END_BLOCK || b == START_BLOCK) {
                        Some(i) => {
                            let byte = src[i];
                            src.advance(i + 1);
                            if byte == END_BLOCK {
                                self.state = State::Outside;
                                self.expect_trailer = true;
                            } else {
                                self.state = State::InFrame;
                                self.scanned = 0;
                            }
                        }
                        None => {
                            src.clear();
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let state = self.state;
        self.state = State::Outside;
        self.scanned = 0;
        self.expect_trailer = false;
        match state {
            State::InFrame => {
                let received = src.len();
                src.clear();
                Err(CodecError::TruncatedFrame { received })
            }
            // An oversized frame was already reported; nothing is left of it.
            State::Discarding | State::Outside => {
                src.clear();
                Ok(None)
            }
        }
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_content(item, dst)
    }
}

impl Encoder<Bytes> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_content(&item, dst)
    }
}

/// Frames `content` into a new buffer: `0x0B content 0x1C 0x0D`.
///
/// # Errors
///
/// [`CodecError::ForbiddenByte`] if the content contains `0x0B` or `0x1C`.
pub fn frame(content: &[u8]) -> Result<BytesMut, CodecError> {
    let mut dst = BytesMut::with_capacity(content.len() + 3);
    MllpCodec::new().encode_content(content, &mut dst)?;
    Ok(dst)
}

#[cfg(test)]
mod tests;

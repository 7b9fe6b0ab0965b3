//! The client's bytes on a WebSocket, checked frame by frame before actix-ws decodes them: a frame
//! whose header declares a payload over the limit, or a message in fragments that grows over it
//! or past `MAX_FRAGMENTS` frames, ends the connection at the header that does it.
//!
//! actix-ws checks a frame's size only once the whole frame has arrived, and keeps every byte
//! until then: a client that declared 2^62 bytes and kept sending had the server buffer all it
//! sent (hundreds of MB in a second on loopback) until the idle close, 60 s later. And it keeps
//! an entry for every fragment of a message, an empty one too, without counting it against the
//! message's size: endless empty fragments grew the server by gigabytes. This reads only each
//! frame's header (RFC 6455 5.2: 2 bytes, then 2 or 8 of length, then 4 of mask) and passes the
//! bytes through unchanged, so what one message can make the server keep stays under the limit.
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_ws::{AggregatedMessage, Item, Message, MessageStream, ProtocolError};
use bytestring::ByteString;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// At most this many frames make one message (no client of ours sends more than a few).
const MAX_FRAGMENTS: u32 = 64;

/// Where the reader is in the client's stream of frames.
#[derive(Debug, Default)]
struct Frames {
    /// Header bytes of the frame being read (at most 14).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The message in fragments under way, if one is: its payload bytes and frames so far.
    fragmented: Option<(u64, u32)>,
}

impl Frames {
    /// Reads `chunk`; `Err` with the size the message reached once a frame declares a payload
    /// over `max` bytes, or a message in fragments grows over it or past `MAX_FRAGMENTS` frames.
    fn read(&mut self, mut chunk: &[u8], max: u64) -> Result<(), u64> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(chunk.len() as u64);
                self.payload_left -= skip;
                chunk = &chunk[skip as usize..];
                continue;
            }
            self.header.push(chunk[0]);
            chunk = &chunk[1..];
            if let Some(length) = self.declared() {
                let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
                self.header.clear();
                if length > max {
                    return Err(length);
                }
                self.fragments(fin, opcode, length, max)?;
                self.payload_left = length;
            }
        }
        Ok(())
    }

    /// Follows a message in fragments: a text or binary frame without FIN starts one, each
    /// continuation adds to it, the one with FIN ends it. Control frames may come between.
    fn fragments(&mut self, fin: bool, opcode: u8, length: u64, max: u64) -> Result<(), u64> {
        let (size, frames) = match (opcode, self.fragmented) {
            (0x8..=0xf, _) => return Ok(()),
            (0x0, Some((size, frames))) => (size + length, frames + 1),
            // A first frame, or a continuation of nothing (actix-ws refuses that itself).
            _ => (length, 1),
        };
        if size > max || frames > MAX_FRAGMENTS {
            return Err(size);
        }
        self.fragmented = (!fin).then_some((size, frames));
        Ok(())
    }

    /// The payload length of the frame whose header is complete, if it is.
    fn declared(&self) -> Option<u64> {
        let h = &self.header;
        let second = *h.get(1)?;
        let mask = if second & 0x80 != 0 { 4 } else { 0 };
        let (extra, length) = match second & 0x7f {
            126 => (
                2,
                u64::from(u16::from_be_bytes(h.get(2..4)?.try_into().ok()?)),
            ),
            127 => (8, u64::from_be_bytes(h.get(2..10)?.try_into().ok()?)),
            short => (0, u64::from(short)),
        };
        (h.len() == 2 + extra + mask).then_some(length)
    }
}

/// The client's byte stream, failing with `PayloadError::Overflow` at the header of a frame that
/// declares more than `max` bytes of payload, or that takes a message in fragments over `max`
/// bytes or `MAX_FRAGMENTS` frames.
pub struct Checked<S> {
    inner: S,
    frames: Frames,
    max: u64,
    failed: bool,
}

impl<S> Checked<S> {
    pub fn new(inner: S, max: usize) -> Self {
        Checked {
            inner,
            frames: Frames::default(),
            max: max as u64,
            failed: false,
        }
    }
}

impl<S> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.frames.read(&bytes, this.max).is_err() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
    }
}

/// The client's messages, a message in fragments put together into a buffer of its own: each
/// fragment is copied as it comes. (actix-ws's own aggregation keeps every fragment as a slice
/// of the read buffer it came in, which keeps that whole buffer alive: 64 one-byte fragments,
/// each read with a burst of pongs, kept megabytes per connection.)
pub struct Messages {
    inner: MessageStream,
    /// The message in fragments under way: text or not, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
    max: usize,
}

impl Messages {
    pub fn new(inner: MessageStream, max: usize) -> Self {
        Messages {
            inner,
            partial: None,
            max,
        }
    }

    /// Adds a fragment; the whole message once `last`.
    fn add(
        &mut self,
        bytes: &[u8],
        last: bool,
    ) -> Option<Result<AggregatedMessage, ProtocolError>> {
        let Some((_, buf)) = self.partial.as_mut() else {
            return Some(Err(ProtocolError::ContinuationNotStarted));
        };
        if buf.len() + bytes.len() > self.max {
            self.partial = None;
            return Some(Err(ProtocolError::Overflow));
        }
        buf.extend_from_slice(bytes);
        if !last {
            return None;
        }
        let (text, buf) = self.partial.take()?;
        let bytes = buf.freeze();
        Some(if text {
            ByteString::try_from(bytes)
                .map(AggregatedMessage::Text)
                .map_err(|e| {
                    ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })
        } else {
            Ok(AggregatedMessage::Binary(bytes))
        })
    }
}

impl Stream for Messages {
    type Item = Result<AggregatedMessage, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(msg) = ready!(Pin::new(&mut this.inner).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            let out = match msg {
                Err(e) => Some(Err(e)),
                Ok(Message::Text(t)) => Some(Ok(AggregatedMessage::Text(t))),
                Ok(Message::Binary(b)) => Some(Ok(AggregatedMessage::Binary(b))),
                Ok(Message::Ping(b)) => Some(Ok(AggregatedMessage::Ping(b))),
                Ok(Message::Pong(b)) => Some(Ok(AggregatedMessage::Pong(b))),
                Ok(Message::Close(r)) => Some(Ok(AggregatedMessage::Close(r))),
                Ok(Message::Nop) => None,
                Ok(Message::Continuation(item)) => match item {
                    Item::FirstText(b) => {
                        this.partial = Some((true, BytesMut::new()));
                        this.add(&b, false)
                    }
                    Item::FirstBinary(b) => {
                        this.partial = Some((false, BytesMut::new()));
                        this.add(&b, false)
                    }
                    Item::Continue(b) => this.add(&b, false),
                    Item::Last(b) => this.add(&b, true),
                },
            };
            if let Some(out) = out {
                return Poll::Ready(Some(out));
            }
        }
    }
}

/// Whether actix-ws's error is this check's: a frame declared over the limit.
pub fn is_overflow(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .is_some_and(|p| matches!(p, PayloadError::Overflow))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame (masked, as clients send them) with `len` bytes of payload.
    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0x81];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn frames_up_to_the_limit_pass_in_chunks_of_any_size() {
        let mut all = Vec::new();
        for len in [0, 1, 125, 126, 65535, 65536, 70_000] {
            all.extend(frame(len));
        }
        for size in [1, 2, 3, 7, 14, 1000, all.len()] {
            let mut f = Frames::default();
            for chunk in all.chunks(size) {
                assert_eq!(f.read(chunk, 70_000), Ok(()), "chunks of {size}");
            }
            assert_eq!((f.payload_left, f.header.len()), (0, 0));
        }
    }

    #[test]
    fn a_frame_over_the_limit_fails_at_its_header_whatever_follows() {
        let over = frame(65_537);
        for size in [1, 5, 14] {
            let mut f = Frames::default();
            let mut failed = None;
            for (i, chunk) in over.chunks(size).enumerate() {
                if let Err(len) = f.read(chunk, 65_536) {
                    failed = Some((i, len));
                    break;
                }
            }
            // The 2 + 8 + 4 header bytes are all it needed.
            assert_eq!(failed, Some(((14 - 1) / size, 65_537)), "chunks of {size}");
        }
        // 2^62 declared, nothing of it sent.
        let mut f = Frames::default();
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        huge.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(f.read(&huge, 65_536), Err(1 << 62));
        // A frame after a good one is checked too.
        let mut f = Frames::default();
        let mut two = frame(10);
        two.extend(frame(65_537));
        assert_eq!(f.read(&two, 65_536), Err(65_537));
    }

    /// A masked frame with the given first byte (FIN and opcode) and `len` bytes of payload.
    fn raw(first: u8, len: usize) -> Vec<u8> {
        let mut f = frame(len);
        f[0] = first;
        f
    }

    #[test]
    fn a_message_in_fragments_counts_all_its_frames_and_bytes() {
        let (text, cont, cont_fin, ping) = (0x01, 0x00, 0x80, 0x89);
        // 40 + 20 + 4 KiB with pings between: under 64 KiB, read.
        let mut ok = raw(text, 40_000);
        ok.extend(raw(ping, 4));
        ok.extend(raw(cont, 20_000));
        ok.extend(raw(ping, 0));
        ok.extend(raw(cont_fin, 4_096));
        let mut f = Frames::default();
        assert_eq!(f.read(&ok, 65_536), Ok(()));
        assert_eq!(f.fragmented, None, "the message ended");
        // 40 + 40 KiB: over at the second header.
        let mut over = raw(text, 40_000);
        over.extend(raw(cont_fin, 40_000));
        assert_eq!(Frames::default().read(&over, 65_536), Err(80_000));
        // Empty fragments without end: over at the 65th frame, not after gigabytes.
        let mut empty = raw(text, 1);
        for _ in 0..100 {
            empty.extend(raw(cont, 0));
        }
        let mut f = Frames::default();
        assert_eq!(f.read(&empty, 65_536), Err(1));
        // A message that ends lets the next start afresh.
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend(raw(text, 30_000));
            many.extend(raw(cont_fin, 30_000));
        }
        assert_eq!(Frames::default().read(&many, 65_536), Ok(()));
    }

    #[test]
    fn unmasked_headers_are_read_by_their_own_length() {
        let mut f = Frames::default();
        // Unmasked (a protocol error actix-ws reports itself): 2 + 2 header bytes, 200 payload.
        let mut bytes = vec![0x81, 126, 0, 200];
        bytes.extend(std::iter::repeat_n(b'x', 200));
        bytes.extend(frame(3));
        assert_eq!(f.read(&bytes, 1000), Ok(()));
        assert_eq!((f.payload_left, f.header.len()), (0, 0));
    }
}

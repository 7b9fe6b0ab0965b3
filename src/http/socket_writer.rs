//! The write side of a live socket's response body (`socket::Live`, which actix-http's
//! dispatcher polls). Each poll takes every frame queued for the connection and encodes them
//! into one buffer; a channel's shared frame is copied from its one encoding with the
//! subscription's `sub` appended, with no string built per socket. The hub's offer wakes the
//! dispatcher itself: no task between.
//!
//! The dispatcher appends what the body yields to its write buffer (8 KiB, kept for the life of
//! the connection once grown): a 11 KiB snapshot written at once doubled it to 16 KiB on every
//! connection. So the body hands out at most `CHUNK` bytes per pass and lets the dispatcher write
//! them before the next piece.
use crate::live::hub::{Out, Queue};
use crate::metrics::Metrics;
use crate::wire::frames;
use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use std::task::{Context, Poll};

/// At most this much per pass of the dispatcher: with the response head it stays within the
/// dispatcher's 8 KiB write buffer, which is then never reallocated.
const CHUNK: usize = 2 * 1024;

pub struct Writer {
    queue: Queue,
    /// Encoded frames not handed out yet.
    rest: Bytes,
    /// The last poll handed out a chunk: the dispatcher has not written it yet.
    handed: bool,
}

impl Writer {
    pub fn new(queue: Queue) -> Self {
        Writer {
            queue,
            rest: Bytes::new(),
            handed: false,
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Encodes everything queued; `Ready(None)` once the queue is closed and empty.
    fn take(&mut self, cx: &mut Context<'_>, metrics: &Metrics) -> Poll<Option<Bytes>> {
        let mut buf = BytesMut::new();
        let mut now = None;
        let more = self.queue.poll_take(cx, |items| {
            buf.reserve(items.iter().map(size).sum());
            for out in items.drain(..) {
                if let Out::Shared { at: Some(at), .. } = &out {
                    let now = *now.get_or_insert_with(chrono::Utc::now);
                    let lag = (now - *at).num_microseconds().unwrap_or(0).max(0);
                    metrics.live_latency(lag as f64 / 1e6);
                }
                encode(out, &mut buf);
            }
        });
        more.map(|more| more.then(|| buf.freeze()))
    }

    /// The next piece for the dispatcher: `Ready(None)` once the queue is closed and all of it
    /// went out, `Pending` between pieces (after waking, so that the dispatcher writes first)
    /// and when nothing is queued.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>, metrics: &Metrics) -> Poll<Option<Bytes>> {
        if self.rest.is_empty() {
            match self.take(cx, metrics) {
                Poll::Pending => {
                    self.handed = false;
                    return Poll::Pending;
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(bytes)) => self.rest = bytes,
            }
        }
        if self.handed {
            // Let the dispatcher write the last chunk first; come back at once.
            self.handed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let chunk = if self.rest.len() <= CHUNK {
            std::mem::take(&mut self.rest)
        } else {
            self.rest.split_to(CHUNK)
        };
        self.handed = true;
        Poll::Ready(Some(chunk))
    }
}

/// The header of an unmasked, final frame (RFC 6455 §5.2), as actix-http's `Parser` writes it.
fn header(buf: &mut BytesMut, op: u8, len: usize) {
    let first = 0x80 | op;
    if len < 126 {
        buf.extend_from_slice(&[first, len as u8]);
    } else if len <= 65_535 {
        buf.extend_from_slice(&[first, 126]);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.extend_from_slice(&[first, 127]);
        buf.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

fn shared_len(body: &str, sub: &str) -> usize {
    frames::shared_parts(body, sub)
        .iter()
        .map(|p| p.len())
        .sum()
}

/// An upper bound of the bytes `encode` writes for `out`.
fn size(out: &Out) -> usize {
    10 + match out {
        Out::Shared { body, sub, .. } => shared_len(body, sub),
        Out::Own(s) => s.len(),
        Out::Ping => 0,
        Out::Pong(p) => p.len(),
        Out::Close(r) => 2 + r.as_ref().map_or(0, |(_, why)| why.len()),
    }
}

fn encode(out: Out, buf: &mut BytesMut) {
    match out {
        Out::Shared { body, sub, .. } => {
            header(buf, OpCode::Text.into(), shared_len(&body, &sub));
            for part in frames::shared_parts(&body, &sub) {
                buf.extend_from_slice(part.as_bytes());
            }
        }
        Out::Own(s) => Parser::write_message(buf, s, OpCode::Text, true, false),
        Out::Ping => Parser::write_message(buf, b"", OpCode::Ping, true, false),
        Out::Pong(p) => Parser::write_message(buf, p, OpCode::Pong, true, false),
        Out::Close(reason) => {
            let reason = reason.map(|(code, why)| CloseReason {
                code: CloseCode::from(code),
                description: Some(why),
            });
            Parser::write_close(buf, reason, false)
        }
    }
}

impl Drop for Writer {
    /// The dispatcher let the body go (the client left, the socket failed): the hub's next
    /// offer finds the queue closed and drops the subscription.
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ours(out: Out) -> BytesMut {
        let mut b = BytesMut::new();
        let want = size(&out);
        encode(out, &mut b);
        assert!(b.len() <= want, "size() is an upper bound");
        b
    }

    #[test]
    fn shared_frames_are_the_bytes_actix_writes_for_the_whole_text() {
        let sub = frames::sub_json("a\"b");
        // Around each length boundary of the frame header: 125/126, 65,535/65,536.
        for total in [40, 125, 126, 127, 65_535, 65_536, 70_000] {
            let pad = total - shared_len("{\"x\":\"\"", &sub);
            let body: Arc<str> = format!("{{\"x\":\"{}\"", "y".repeat(pad)).into();
            let text = frames::close_shared(&body, &sub);
            assert_eq!(text.len(), total);
            let mut actix = BytesMut::new();
            Parser::write_message(&mut actix, text, OpCode::Text, true, false);
            let out = Out::Shared {
                body,
                sub: sub.clone(),
                at: None,
            };
            assert_eq!(ours(out), actix, "length {total}");
        }
    }

    #[test]
    fn a_large_frame_goes_out_in_chunks_one_per_pass() {
        let metrics = Metrics::new();
        let queue = Queue::new(4);
        let mut w = Writer::new(queue.clone());
        let text = "x".repeat(5 * CHUNK);
        assert!(queue.try_send(Out::Own(text.clone())).is_ok());
        queue.close();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = BytesMut::new();
        let mut pending = 0;
        loop {
            match w.poll_chunk(&mut cx, &metrics) {
                Poll::Ready(Some(chunk)) => {
                    assert!(chunk.len() <= CHUNK);
                    got.extend_from_slice(&chunk);
                }
                Poll::Ready(None) => break,
                Poll::Pending => pending += 1,
            }
        }
        assert!(pending >= 5, "the dispatcher writes between chunks");
        assert_eq!(got, ours(Out::Own(text)));
    }

    #[test]
    fn a_close_frame_carries_its_code_and_reason() {
        let b = ours(Out::Close(Some((4008, "too slow to keep up".into()))));
        assert_eq!(&b[..4], &[0x88, 21, 0x0f, 0xa8]);
        assert_eq!(&b[4..], b"too slow to keep up");
        assert_eq!(&ours(Out::Close(None))[..], &[0x88, 0]);
        assert_eq!(&ours(Out::Ping)[..], &[0x89, 0]);
    }
}

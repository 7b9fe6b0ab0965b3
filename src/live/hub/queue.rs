//! A connection's bounded outgoing queue. The hub offers frames without ever waiting and skips
//! a full queue; the connection queues its own replies and control frames past the cap (it
//! reads no client frame while the queue is full); the socket's writer takes everything queued
//! at once when the socket can take more. One lock, no task between the hub and the socket,
//! and no memory while nothing is queued.
use super::Out;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc::error::TrySendError;

#[derive(Clone)]
pub struct Queue(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    cap: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Out>,
    /// Nothing more is accepted; the writer ends once it has taken what is queued.
    closed: bool,
    /// The hub gave up on this connection (it stayed behind too long).
    evicted: bool,
    writer: Option<Waker>,
}

impl Queue {
    pub fn new(cap: usize) -> Self {
        Queue(Arc::new(Inner {
            state: Mutex::new(State::default()),
            cap,
        }))
    }

    /// The same for every clone of this queue, and unique among live queues.
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_with(&self, out: Out, last: bool, over_cap: bool) -> Result<(), TrySendError<Out>> {
        let mut s = self.state();
        if s.closed {
            return Err(TrySendError::Closed(out));
        }
        if !over_cap && s.items.len() >= self.0.cap {
            return Err(TrySendError::Full(out));
        }
        s.items.push_back(out);
        s.closed = last;
        let writer = s.writer.take();
        drop(s);
        if let Some(w) = writer {
            w.wake();
        }
        Ok(())
    }

    /// Queues a frame if there is room, never waiting (the hub's way).
    pub fn try_send(&self, out: Out) -> Result<(), TrySendError<Out>> {
        self.push_with(out, false, false)
    }

    /// Queues the connection's own frame (a reply, a pong, a ping) even over the cap: the
    /// connection reads no further client frame while the queue is full, so its own frames
    /// exceed the cap by a few (an answer, a pong, a ping, the close). False once closed.
    pub fn push_own(&self, out: Out) -> bool {
        self.push_with(out, false, true).is_ok()
    }

    /// Queues the last frame even over the cap; nothing more is accepted after it.
    pub fn finish_now(&self, last: Out) -> bool {
        self.push_with(last, true, true).is_ok()
    }

    /// Whether the hub's frames would find room.
    pub fn has_room(&self) -> bool {
        self.state().items.len() < self.0.cap
    }

    /// Changes the state and wakes the writer to act on it.
    fn mark(&self, change: impl FnOnce(&mut State)) {
        let mut s = self.state();
        change(&mut s);
        let writer = s.writer.take();
        drop(s);
        if let Some(w) = writer {
            w.wake();
        }
    }

    /// The hub gives up on the connection: its writer learns it at its next poll.
    pub fn evict(&self) {
        self.mark(|s| s.evicted = true);
    }

    pub fn is_evicted(&self) -> bool {
        self.state().evicted
    }

    /// Accepts nothing more; the writer ends after what is queued.
    pub fn close(&self) {
        self.mark(|s| s.closed = true);
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// The writer's side: hands the queued frames to `take`, which takes them all;
    /// `Ready(false)` once closed and empty, `Pending` (the writer to be woken) when empty.
    pub fn poll_take(
        &self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut VecDeque<Out>),
    ) -> Poll<bool> {
        let mut s = self.state();
        if s.items.is_empty() {
            if s.closed {
                return Poll::Ready(false);
            }
            if !s.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        // The frames leave with their buffer: encoded outside the lock, and an idle
        // connection keeps no buffer.
        let mut items = std::mem::take(&mut s.items);
        drop(s);
        take(&mut items);
        Poll::Ready(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(s: &str) -> Out {
        Out::Own(s.to_owned())
    }

    fn take(q: &Queue) -> Poll<Vec<String>> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = Vec::new();
        q.poll_take(&mut cx, |items| {
            for o in items.drain(..) {
                if let Out::Own(s) = o {
                    got.push(s)
                }
            }
        })
        .map(|more| if more { got } else { Vec::new() })
    }

    #[test]
    fn bounded_then_closed() {
        let q = Queue::new(2);
        assert!(q.try_send(own("a")).is_ok());
        assert!(q.try_send(own("b")).is_ok());
        assert!(matches!(q.try_send(own("c")), Err(TrySendError::Full(_))));
        assert_eq!(take(&q), Poll::Ready(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(take(&q), Poll::Pending);
        q.close();
        assert!(matches!(q.try_send(own("d")), Err(TrySendError::Closed(_))));
        assert_eq!(take(&q), Poll::Ready(Vec::new()));
    }

    #[test]
    fn own_frames_pass_the_cap_and_the_last_one_closes() {
        let q = Queue::new(1);
        assert!(q.try_send(own("hub")).is_ok());
        assert!(!q.has_room());
        assert!(matches!(
            q.try_send(own("hub2")),
            Err(TrySendError::Full(_))
        ));
        assert!(q.push_own(own("reply")));
        assert!(q.finish_now(own("bye")));
        assert!(!q.push_own(own("late")));
        assert!(matches!(
            q.try_send(own("late")),
            Err(TrySendError::Closed(_))
        ));
        assert_eq!(
            take(&q),
            Poll::Ready(vec!["hub".to_owned(), "reply".to_owned(), "bye".to_owned()])
        );
        assert_eq!(take(&q), Poll::Ready(Vec::new()));
    }

    #[test]
    fn an_eviction_wakes_the_writer_and_stays() {
        let q = Queue::new(4);
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let waker = Waker::from(std::sync::Arc::new(Flag(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        assert!(q.poll_take(&mut cx, |_| {}).is_pending());
        assert!(!q.is_evicted());
        q.evict();
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst));
        assert!(q.is_evicted());
        assert!(q.clone().is_evicted());
        assert_eq!(q.key(), q.clone().key());
    }
}

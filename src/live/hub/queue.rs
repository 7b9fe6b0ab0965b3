//! A connection's bounded outgoing queue. The hub offers frames without ever waiting; the
//! connection queues its own replies and control frames, waiting for room; the socket's writer
//! takes everything queued at once when the socket can take more. One lock, no task between
//! the hub and the socket, and no memory until the first frame.
use super::Out;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Queue(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    /// Signalled when the writer takes frames from a full queue, and on close.
    room: Notify,
    cap: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Out>,
    /// Nothing more is accepted; the writer ends once it has taken what is queued.
    closed: bool,
    writer: Option<Waker>,
}

impl Queue {
    pub fn new(cap: usize) -> Self {
        Queue(Arc::new(Inner {
            state: Mutex::new(State::default()),
            room: Notify::new(),
            cap,
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, out: Out, last: bool) -> Result<(), TrySendError<Out>> {
        let mut s = self.state();
        if s.closed {
            return Err(TrySendError::Closed(out));
        }
        if s.items.len() >= self.0.cap {
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
        self.push(out, false)
    }

    async fn wait_push(&self, mut out: Out, last: bool) -> bool {
        loop {
            match self.push(out, last) {
                Ok(()) => return true,
                Err(TrySendError::Closed(_)) => return false,
                Err(TrySendError::Full(o)) => {
                    out = o;
                    // A permit stored by a writer that made room since the push keeps this
                    // from missing it.
                    self.0.room.notified().await;
                }
            }
        }
    }

    /// Queues a frame, waiting for room; false once the queue is closed.
    pub async fn send(&self, out: Out) -> bool {
        self.wait_push(out, false).await
    }

    /// Queues the last frame (waiting for room), after which nothing more is accepted.
    pub async fn finish(&self, last: Out) -> bool {
        self.wait_push(last, true).await
    }

    /// Accepts nothing more; the writer ends after what is queued.
    pub fn close(&self) {
        let mut s = self.state();
        s.closed = true;
        let writer = s.writer.take();
        drop(s);
        self.0.room.notify_one();
        if let Some(w) = writer {
            w.wake();
        }
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
        let was_full = s.items.len() >= self.0.cap;
        take(&mut s.items);
        s.items.clear();
        drop(s);
        if was_full {
            self.0.room.notify_one();
        }
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

    #[tokio::test]
    async fn send_waits_for_room_and_finish_is_last() {
        let q = Queue::new(1);
        assert!(q.send(own("a")).await);
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.finish(own("bye")).await });
        tokio::task::yield_now().await;
        assert_eq!(take(&q), Poll::Ready(vec!["a".to_owned()]));
        assert!(waiting.await.unwrap());
        assert!(matches!(
            q.try_send(own("late")),
            Err(TrySendError::Closed(_))
        ));
        assert_eq!(take(&q), Poll::Ready(vec!["bye".to_owned()]));
        assert_eq!(take(&q), Poll::Ready(Vec::new()));
    }

    #[tokio::test]
    async fn close_releases_a_waiting_sender() {
        let q = Queue::new(1);
        assert!(q.try_send(own("a")).is_ok());
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.send(own("b")).await });
        tokio::task::yield_now().await;
        q.close();
        assert!(!waiting.await.unwrap());
    }
}

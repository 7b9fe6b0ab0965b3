//! A TCP proxy on loopback between an instance and a service (Redis): it can hold back what the
//! client sends by a fixed delay, and can go silent on the connections it has, forwarding
//! nothing and closing nothing, as a partition or a middlebox's idle drop would (connections
//! made after that are forwarded as usual), or hang, forwarding nothing on any connection, new
//! ones too, as a paused server would. It runs on the test's runtime and stops with it.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    /// Connections numbered below this forward nothing any more.
    silent_below: Arc<AtomicU64>,
    next: Arc<AtomicU64>,
    /// Every connection, open or new, forwards nothing.
    hung: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream` that delays every chunk the client sends by `delay`.
    pub async fn start(upstream: u16, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent_below = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let hung = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (silent_below, next, hung) = (silent_below.clone(), next.clone(), hung.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        continue;
                    };
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let gate = Gate {
                        id,
                        silent_below: silent_below.clone(),
                        hung: hung.clone(),
                    };
                    tokio::spawn(pump(cr, sw, delay, gate.clone()));
                    tokio::spawn(pump(sr, cw, Duration::ZERO, gate));
                }
            }
        });
        Proxy {
            port,
            silent_below,
            next,
            hung,
            task,
        }
    }

    /// Every connection open now stops forwarding, both ways, and stays open.
    pub fn silence(&self) {
        self.silent_below
            .store(self.next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Every connection, open now or made later, stops forwarding, both ways, and stays open.
    pub fn hang(&self) {
        self.hung.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether one connection forwards.
#[derive(Clone)]
struct Gate {
    id: u64,
    silent_below: Arc<AtomicU64>,
    hung: Arc<AtomicBool>,
}

impl Gate {
    fn shut(&self) -> bool {
        self.id < self.silent_below.load(Ordering::SeqCst) || self.hung.load(Ordering::SeqCst)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    gate: Gate,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if gate.shut() {
            // Read and dropped: the sender sees no back-pressure and no close.
            continue;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

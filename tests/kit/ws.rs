//! A real WebSocket client and the state a live subscriber keeps.
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a frame read brought.
#[derive(Debug)]
pub enum Got {
    Frame(Value),
    Closed(Option<u16>),
    Timeout,
}

impl Ws {
    pub async fn connect(base: &str) -> Ws {
        let url = format!("{}/v1/live", base.replace("http://", "ws://"));
        let (inner, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connects");
        Ws { inner }
    }

    /// Connects with a tiny kernel receive buffer, so that not reading backs up quickly.
    pub async fn connect_small_buffer(base: &str) -> Ws {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let stream = sock.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/v1/live");
        let (inner, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws connects");
        Ws { inner }
    }

    /// The client side's port of the connection.
    pub fn local_port(&self) -> u16 {
        match self.inner.get_ref() {
            MaybeTlsStream::Plain(s) => s.local_addr().expect("local address").port(),
            _ => panic!("a plain TCP connection"),
        }
    }

    /// Drops the connection with a reset (`SO_LINGER` 0), as a client that crashed or lost its
    /// network does, rather than with an orderly close.
    pub fn abort(self) {
        if let MaybeTlsStream::Plain(s) = self.inner.get_ref() {
            s.set_zero_linger().expect("SO_LINGER");
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner
            .send(Message::Text(v.to_string()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.inner.send(m).await.expect("ws send");
    }

    pub async fn next(&mut self, within: Duration) -> Got {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.inner.next()).await {
                Err(_) => return Got::Timeout,
                Ok(None) => return Got::Closed(None),
                Ok(Some(Err(_))) => return Got::Closed(None),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Got::Frame(serde_json::from_str(&t).expect("frames are JSON"))
                }
                Ok(Some(Ok(Message::Close(c)))) => {
                    return Got::Closed(c.map(|c| u16::from(c.code)))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next JSON frame, failing the test on close or timeout.
    pub async fn frame(&mut self) -> Value {
        match self.next(Duration::from_secs(5)).await {
            Got::Frame(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Subscribes `sub` to the floor of `rid` on `date` with the staff `token`; its snapshot.
    pub async fn subscribe_floor(
        &mut self,
        sub: &str,
        rid: &str,
        date: &str,
        token: &str,
    ) -> Value {
        self.send(
            json!({"op": "subscribe", "sub": sub, "restaurant_id": rid, "date": date,
                         "view": "floor", "token": token}),
        )
        .await;
        let snap = self.frame().await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        snap
    }

    /// The next frame of subscription `sub`, passing over the others' (failing the test on
    /// close, or after 5 s).
    pub async fn frame_of(&mut self, sub: &str) -> Value {
        loop {
            match self.next(Duration::from_secs(5)).await {
                Got::Frame(f) if f["sub"] == sub => return f,
                Got::Frame(_) => {}
                other => panic!("no frame for {sub}: {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, sub: &str, rid: &str, date: &str, party: u32) -> Value {
        self.send(json!({"op": "subscribe", "sub": sub, "restaurant_id": rid, "date": date, "party_size": party})).await;
        let snap = self.frame().await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["sub"], sub);
        snap
    }

    pub async fn expect_close(&mut self, within: Duration) -> Option<u16> {
        let end = Instant::now() + within;
        loop {
            match self
                .next(end.saturating_duration_since(Instant::now()))
                .await
            {
                Got::Closed(code) => return code,
                Got::Frame(_) => continue,
                Got::Timeout => panic!("connection was not closed in time"),
            }
        }
    }
}

pub fn close_code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A subscriber's view of one availability subscription, built only from frames.
#[derive(Debug, Default, Clone)]
pub struct LiveState {
    pub version: u64,
    pub slots: BTreeMap<String, u64>,
    pub versions_seen: Vec<u64>,
    pub snapshots: usize,
}

impl LiveState {
    pub fn apply(&mut self, frame: &Value) {
        let v = frame["version"].as_u64().expect("version");
        match frame["type"].as_str().unwrap() {
            "snapshot" => {
                assert!(
                    v >= self.version,
                    "a snapshot never goes back: {v} < {}",
                    self.version
                );
                self.slots = slots_of(&frame["data"]["slots"]);
                self.snapshots += 1;
            }
            "update" => {
                assert!(
                    v > self.version,
                    "updates strictly increase: {v} <= {}",
                    self.version
                );
                for (t, n) in slots_of(&frame["slots"]) {
                    self.slots.insert(t, n);
                }
            }
            other => panic!("unexpected frame type {other}"),
        }
        self.version = v;
        self.versions_seen.push(v);
    }

    /// Equal to an availability body, ignoring starts that passed since the snapshot.
    pub fn matches(&self, avail: &Value) -> bool {
        let served = slots_of(&avail["slots"]);
        served.iter().all(|(t, n)| self.slots.get(t) == Some(n))
    }
}

pub fn slots_of(v: &Value) -> BTreeMap<String, u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["time"].as_str().unwrap().to_owned(),
                s["available_tables"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A bare WebSocket client that reads frames but never answers pings: a silent peer.
pub struct SilentWs(tokio::net::TcpStream);

impl SilentWs {
    pub async fn connect(base: &str) -> SilentWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /v1/live HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        SilentWs(s)
    }

    /// Writes `bytes` as they are (a frame of one's own making, say).
    pub async fn write(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.0.write_all(bytes).await.unwrap();
    }

    /// Reads frames until a close frame; returns its code.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        use tokio::io::AsyncReadExt;
        let read = async {
            loop {
                let mut h = [0u8; 2];
                self.0.read_exact(&mut h).await.ok()?;
                let mut len = u64::from(h[1] & 0x7f);
                if len == 126 {
                    let mut b = [0u8; 2];
                    self.0.read_exact(&mut b).await.ok()?;
                    len = u64::from(u16::from_be_bytes(b));
                } else if len == 127 {
                    let mut b = [0u8; 8];
                    self.0.read_exact(&mut b).await.ok()?;
                    len = u64::from_be_bytes(b);
                }
                let mut payload = vec![0u8; len as usize];
                self.0.read_exact(&mut payload).await.ok()?;
                if h[0] & 0x0f == 0x8 {
                    return (payload.len() >= 2)
                        .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                }
            }
        };
        tokio::time::timeout(within, read)
            .await
            .expect("closed in time")
    }
}

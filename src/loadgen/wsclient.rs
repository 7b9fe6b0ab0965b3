//! The load generator's WebSocket client: many sockets from a spread of loopback source
//! addresses (so 20,000 fit the ephemeral port range), small kernel buffers.
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Socket = WebSocketStream<TcpStream>;

/// `http://host:port` → the socket address.
pub async fn resolve(base: &str) -> anyhow::Result<SocketAddr> {
    let hp = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut it = tokio::net::lookup_host(hp.as_str()).await?;
    it.next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {base}"))
}

pub async fn connect(server: SocketAddr, i: usize) -> anyhow::Result<Socket> {
    let sock = if server.ip().is_loopback() && server.is_ipv4() {
        let s = TcpSocket::new_v4()?;
        let src = Ipv4Addr::new(127, 0, 1 + (i / 20_000) as u8, 1 + (i % 200) as u8);
        s.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
        s
    } else if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_recv_buffer_size(16 * 1024)?;
    let stream = tokio::time::timeout(Duration::from_secs(10), sock.connect(server)).await??;
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/v1/live"), stream).await?;
    Ok(ws)
}

pub async fn send(ws: &mut Socket, v: &Value) -> anyhow::Result<()> {
    ws.send(Message::Text(v.to_string())).await?;
    Ok(())
}

/// Sends a subscribe frame and reads its snapshot: a baseline measured next then does not
/// share the machine with the snapshots' delivery.
pub async fn subscribe(ws: &mut Socket, frame: &Value) -> anyhow::Result<Value> {
    send(ws, frame).await?;
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    let first = next_json(ws, end).await;
    match first {
        Some(v) if v["type"] == "snapshot" => Ok(v),
        other => anyhow::bail!("no snapshot for {frame}: {other:?}"),
    }
}

/// The next JSON text frame, or `None` on close, error or deadline.
pub async fn next_json(ws: &mut Socket, deadline: tokio::time::Instant) -> Option<Value> {
    let t = next_text(ws, deadline).await?;
    serde_json::from_str(&t).ok()
}

/// The next text frame, unparsed, or `None` on close, error or deadline. The scenarios whose
/// clients only count or time frames read them with this and parse no more than they need: the
/// load generator shares the machine with the server it measures, and building a whole JSON
/// tree for every one of thousands of frames took CPU from that server.
pub async fn next_text(ws: &mut Socket, deadline: tokio::time::Instant) -> Option<String> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t),
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Lets one process hold tens of thousands of sockets: 200,000 descriptors (raising the hard
/// limit too where allowed), else as many as the hard limit allows.
pub fn raise_fd_limit() {
    use rlimit::Resource;
    if let Ok((_, hard)) = Resource::NOFILE.get() {
        if Resource::NOFILE.set(200_000, hard.max(200_000)).is_err() {
            let _ = Resource::NOFILE.set(hard, hard);
        }
    }
}

//! The floor for fan-out: a minimal WebSocket broadcast server. Every text frame any client
//! sends is encoded once and written to every socket. Runs in its own process
//! (`tablecast loadgen raw-server`) so that client and server each have their own fd budget.
use futures_util::{SinkExt, StreamExt};
use std::io::BufRead;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

pub const READY: &str = r#"{"type":"ready"}"#;

pub async fn serve() -> anyhow::Result<()> {
    super::wsclient::raise_fd_limit();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("raw server on {}", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Message>(64);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tx, mut rx) = (tx.clone(), tx.subscribe());
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut read) = ws.split();
            if sink.send(Message::Text(READY.into())).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(m) => if sink.send(m).await.is_err() { return },
                        Err(_) => return,
                    },
                    r = read.next() => match r {
                        Some(Ok(m @ Message::Text(_))) => { let _ = tx.send(m); }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        });
    }
}

/// A server process, ended on drop.
pub struct Child {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts `program args…` and reads the address it prints after `marker`.
pub fn spawn(
    program: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &str,
) -> anyhow::Result<Child> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().ok_or_else(|| {
            anyhow::anyhow!("{} exited before printing its address", program.display())
        })??;
        if let Some(rest) = line.strip_prefix(marker) {
            let a = rest
                .trim_start_matches("http://")
                .split_whitespace()
                .next()
                .unwrap_or_default();
            break a.parse()?;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Child { child, addr })
}

//! Cross-instance delivery: 1,000 subscribers spread over instances B and C while the changes are
//! made on instance A (every delivery crosses Redis), next to the same run's figure when the
//! subscribers and the changes share instance A. Three real instances, real Redis, real nginx.
//!
//! `cargo bench --bench cross_instance -- [--subscribers N] [--changes K]`
mod common;
#[path = "../tests/cluster/harness.rs"]
mod harness;
#[path = "../tests/kit/mod.rs"]
mod kit;

use clap::Parser;
use tablecast::config::{Cli, Command};

/// Cross-instance fan-out: three instances, Redis and nginx, changes made on instance A.
#[derive(Parser)]
#[command(name = "cross_instance")]
struct Args {
    /// WebSocket subscribers [default: 1000 under `cargo bench`, 30 otherwise]
    #[arg(long)]
    subscribers: Option<u32>,
    /// Holds made while they listen [default: 20 under `cargo bench`, 3 otherwise]
    #[arg(long)]
    changes: Option<u32>,
    #[command(flatten)]
    cargo: common::CargoArgs,
}

async fn fanout(urls: &[&str], change: &str, n: &str, k: &str) -> tablecast::loadgen::Report {
    let mut argv = vec![
        "tablecast",
        "loadgen",
        "fanout",
        "--admin-token",
        harness::ADMIN,
        "--quiet",
    ];
    for u in urls {
        argv.extend_from_slice(&["--url", u]);
    }
    argv.extend_from_slice(&[
        "--change-url",
        change,
        "--subscribers",
        n,
        "--changes",
        k,
        "--gap-ms",
        "250",
    ]);
    let Command::Loadgen(a) = Cli::try_parse_from(argv).expect("arguments").command else {
        unreachable!()
    };
    tablecast::loadgen::run(a).await.expect("fanout run")
}

fn main() {
    let args = Args::parse();
    tablecast::loadgen::wsclient::raise_fd_limit();
    // `cargo test --all-targets` runs this without --bench: a small smoke run then.
    let smoke = !args.cargo.bench;
    let n = args
        .subscribers
        .unwrap_or(if smoke { 30 } else { 1000 })
        .to_string();
    let k = args
        .changes
        .unwrap_or(if smoke { 3 } else { 20 })
        .to_string();
    let Some(c) = harness::Cluster::start("cross_instance bench", 3) else {
        return;
    };
    let (a, b, cc) = (
        &c.instances[0].base,
        &c.instances[1].base,
        &c.instances[2].base,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let same = fanout(&[a], a, &n, &k).await;
        let cross = fanout(&[b, cc], a, &n, &k).await;
        let p = |r: &tablecast::loadgen::Report| r.row_named("tablecast /v1/live").unwrap().summary;
        let (s, x) = (p(&same), p(&cross));
        println!("\ncross-instance fan-out: {n} subscribers, {k} changes made on instance A");
        println!(
            "{:<44} p50 {:>8.2} ms  p99 {:>8.2} ms",
            "same instance (subscribers on A)", s.p50_ms, s.p99_ms
        );
        println!(
            "{:<44} p50 {:>8.2} ms  p99 {:>8.2} ms",
            "cross instance (subscribers on B and C)", x.p50_ms, x.p99_ms
        );
        let ratio = x.p99_ms / s.p99_ms.max(0.001);
        println!(
            "p99 ratio cross / same: {ratio:.2} (target ≤ 1.3) — {}",
            if ratio <= 1.3 {
                "meets target"
            } else {
                "MISSES target"
            }
        );
        assert!(
            same.invariants_hold() && cross.invariants_hold(),
            "deliveries were lost"
        );
    });
}

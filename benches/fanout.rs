//! Live fan-out: N WebSocket subscribers on one restaurant/date, K holds; delivery latency from
//! the commit time `at` to receipt and lost deliveries, next to a minimal raw WebSocket broadcast
//! server and a Node `ws` one (benches/node/broadcast.js) driven by the same client in the same
//! run (`tablecast loadgen fanout --baseline --node-baseline benches/node/broadcast.js`). Needs
//! `node` and `npm ci --prefix benches/node` (which `infra/test.sh` runs).
//!
//! `cargo bench --bench fanout -- [--subscribers N] [--changes K] [--gap-ms MS] [--plot-dir DIR]`
//! (`--plot-dir docs/bench` redraws `docs/bench/fanout.svg`: the three servers' delivery
//! latencies from this run in one chart).
mod common;

use clap::Parser;
use tablecast::config::{Cli, Command};
use tablecast::loadgen::raw;

/// Live fan-out against the real binary, next to raw and Node `ws` broadcast servers.
#[derive(Parser)]
#[command(name = "fanout")]
struct Args {
    /// WebSocket subscribers [default: 1000 under `cargo bench`, 50 otherwise]
    #[arg(long)]
    subscribers: Option<u32>,
    /// Holds made while they listen [default: 20 under `cargo bench`, 3 otherwise]
    #[arg(long)]
    changes: Option<u32>,
    /// Milliseconds between two holds [default: 250 under `cargo bench`, 50 otherwise]
    #[arg(long)]
    gap_ms: Option<u64>,
    /// Also write the run's latency plot into DIR (DIR/fanout.svg)
    #[arg(long, value_name = "DIR")]
    plot_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    cargo: common::CargoArgs,
}

fn main() {
    let args = Args::parse();
    tablecast::loadgen::wsclient::raise_fd_limit();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then a small smoke run.
    let smoke = !args.cargo.bench;
    let n = args
        .subscribers
        .unwrap_or(if smoke { 50 } else { 1000 })
        .to_string();
    let k = args
        .changes
        .unwrap_or(if smoke { 3 } else { 20 })
        .to_string();
    let gap = args
        .gap_ms
        .unwrap_or(if smoke { 50 } else { 250 })
        .to_string();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tablecast"));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let admin = "bench-admin";
    let server = raw::spawn(
        bin,
        &["serve", "--listen", "127.0.0.1:0", "--store", &db],
        &[
            ("TABLECAST_ADMIN_TOKEN", admin),
            // Every subscriber and change comes from loopback, one client: no per-client limit.
            ("TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", "0"),
            ("TABLECAST_HOLD_RATE", "off"),
            ("TABLECAST_MAX_CONNECTIONS_PER_CLIENT", "0"),
        ],
        "tablecast listening on ",
    )
    .expect("server starts");
    let url = format!("http://{}", server.addr);
    let pid = server.pid().to_string();
    let plot_dir = args
        .plot_dir
        .as_ref()
        .map(|d| d.to_str().expect("a UTF-8 path"));
    let mut argv = vec![
        "tablecast",
        "loadgen",
        "fanout",
        "--url",
        &url,
        "--admin-token",
        admin,
        "--quiet",
        "--subscribers",
        &n,
        "--changes",
        &k,
        "--gap-ms",
        &gap,
        "--baseline",
        "--raw-server-bin",
        bin.to_str().unwrap(),
        "--node-baseline",
        concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node/broadcast.js"),
        "--server-pid",
        &pid,
    ];
    if let Some(dir) = plot_dir {
        argv.extend(["--plot-dir", dir]);
    }
    let Command::Loadgen(a) = Cli::try_parse_from(argv).expect("arguments").command else {
        unreachable!()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(tablecast::loadgen::run(a)).expect("fanout run");
    assert!(report.invariants_hold(), "deliveries were lost");
}

//! Live fan-out: N WebSocket subscribers on one restaurant/date, K holds; delivery latency from
//! the commit time `at` to receipt and lost deliveries, next to a minimal raw WebSocket broadcast
//! server driven by the same client in the same run (`tablecast loadgen fanout --baseline`).
//!
//! `cargo bench --bench fanout -- [--subscribers N] [--changes K] [--gap-ms MS]`
use clap::Parser;
use tablecast::config::{Cli, Command};
use tablecast::loadgen::raw;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn main() {
    tablecast::loadgen::wsclient::raise_fd_limit();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then a small smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n = arg("--subscribers", if smoke { "50" } else { "1000" });
    let k = arg("--changes", if smoke { "3" } else { "20" });
    let gap = arg("--gap-ms", if smoke { "50" } else { "250" });
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tablecast"));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let admin = "bench-admin";
    let server = raw::spawn(
        bin,
        &["serve", "--listen", "127.0.0.1:0", "--store", &db],
        &[("TABLECAST_ADMIN_TOKEN", admin)],
        "tablecast listening on ",
    )
    .expect("server starts");
    let url = format!("http://{}", server.addr);
    let pid = server.pid().to_string();
    let argv = [
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
        "--server-pid",
        &pid,
    ];
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

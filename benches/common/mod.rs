//! What the benches share.

/// What cargo passes a bench: `--bench` under `cargo bench` (a full run); under `cargo test`
/// (`--all-targets`: a small smoke run) the test harness's options and filters, accepted so that
/// they do not fail the run, and ignored.
#[derive(clap::Args)]
#[allow(dead_code)] // only `bench` is read
pub struct CargoArgs {
    #[arg(long, hide = true)]
    pub bench: bool,
    #[arg(long, hide = true)]
    pub test_threads: Option<usize>,
    #[arg(long, hide = true)]
    pub nocapture: bool,
    #[arg(long, hide = true)]
    pub show_output: bool,
    #[arg(long, hide = true)]
    pub exact: bool,
    #[arg(long, hide = true)]
    pub ignored: bool,
    #[arg(long, hide = true)]
    pub include_ignored: bool,
    #[arg(short, long, hide = true)]
    pub quiet: bool,
    /// Test name filters.
    #[arg(hide = true)]
    pub filters: Vec<String>,
}

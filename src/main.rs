use clap::Parser;
use tablecast::config::{Cli, Command, LogFormat};
use tablecast::startup::Application;

/// jemalloc leaves the untouched pages of large, mostly empty buffers (actix-http's 8 KiB read
/// and write buffers per connection) out of the resident set; see BENCHMARKS.md.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: the 8 KiB size class (two buffers per connection)
/// in slabs of 32 pages instead of 2, so that 10,000 connections need far fewer slab records
/// (jemalloc's own metadata per connection: 0.70 → 0.51 KiB). `_RJEM_MALLOC_CONF` in the
/// environment still overrides.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: Option<&'static u8> = Some(&b"slab_sizes:8192-8192:32\0"[0]);

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,actix_server=warn".into());
    // Colour only for a terminal, and not when `NO_COLOR` is set (https://no-color.org): a log
    // file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A line that cannot be written (standard error is a pipe whose reader went away) is lost,
    // and nothing else: by default the subscriber reported it with `eprintln!`, which panicked
    // in whatever task was logging, the drain's included, so SIGTERM no longer stopped the
    // process.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

/// On error, the error and its causes on one line of standard error (`Error: a: b`) and exit 2
/// for a setting the server cannot use, 1 otherwise: a configuration mistake is no crash, so
/// no backtrace, whatever `RUST_BACKTRACE` says.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    tablecast::store::sqlite::configure_process();
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "Error: {e:#}");
            // A setting it cannot use exits 2, as a flag the parser refuses does.
            if tablecast::setting::is_bad_setting(&e) {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(args) => {
            tablecast::store::open(&args.store).await?;
            tablecast::say!("store {} is up to date", args.store);
        }
        Command::Loadgen(args) => {
            tablecast::loadgen::run(args).await?;
        }
        Command::Serve(args) => {
            let demo = args.demo;
            let app = Application::build(args.clone()).await?;
            let base = format!("http://{}", app.addr());
            tablecast::say!("tablecast listening on {base} (store {})", args.store.store);
            if let Some(t) = &app.generated_admin_token {
                tablecast::say!(
                    "admin token (generated; set TABLECAST_ADMIN_TOKEN to choose one): {t}"
                );
            }
            if demo {
                // The links to open: the public URL when one is set; a listen address on every
                // interface (0.0.0.0) is no address to open, so `localhost` stands for it.
                let public =
                    tablecast::mail::public_url(args.mail.public_url.as_deref(), app.addr());
                tablecast::demo::seed(&app.state().booking, &public).await?;
            }
            app.run_until_stopped().await?;
            tablecast::say!("tablecast stopped");
        }
    }
    Ok(())
}

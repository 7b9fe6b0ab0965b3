//! `tablecast loadgen`: simulated crowds against running instances, with a baseline measured in
//! the same run by the same client, and an invariant check at the end.
mod checks;
mod fanout;
mod history;
mod holds;
mod mixed;
pub mod plot;
pub mod raw;
mod report;
mod stampede;
pub mod stats;
mod waitlist;
pub mod wsclient;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::time::Duration;

pub use checks::{double_bookings, occupying, pacing_overruns, tables_of, Window};
pub use report::Report;

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Target base URL(s): an instance, the nginx front, several instances (repeat the flag).
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,
    /// Admin token, to create the scenario's restaurant.
    #[arg(long, env = "TABLECAST_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Use this restaurant instead of creating one (needs --staff-token).
    #[arg(long)]
    pub restaurant: Option<String>,
    #[arg(long)]
    pub staff_token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow targets outside loopback (127.0.0.0/8, ::1, localhost).
    #[arg(long)]
    pub allow_remote: bool,
    /// Hard limit on the whole run.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// No progress bar (tests, CI logs).
    #[arg(long)]
    pub quiet: bool,
    /// Also draw the run's latency distributions as an SVG percentile plot into DIR (created if
    /// missing): DIR/<scenario>.svg (`stampede-paced.svg`, `stampede-combination.svg` for those
    /// forms), replacing the plot of an earlier run.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// N diners race for the last M tables at one time.
    Stampede(stampede::Opts),
    /// N subscribers on one restaurant/date, K changes.
    Fanout(fanout::Opts),
    /// Successful holds per second on distinct tables while subscribers watch.
    Holds(holds::Opts),
    /// A realistic evening: search, hold, confirm or abandon, cancel; staff seat and complete.
    Mixed(mixed::Opts),
    /// Hold and availability latency on one date before and after N hold+release cycles on it.
    History(history::Opts),
    /// N waitlist entries watch a full time live while K clients free M of its tables: free →
    /// offer latency, one offer per freed capacity, queue order.
    Waitlist(waitlist::Opts),
    /// The baseline raw WebSocket broadcast server (used by `fanout --baseline`).
    #[command(hide = true)]
    RawServer,
}

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Refuses targets outside loopback unless allowed.
pub fn check_targets(urls: &[String], allow_remote: bool) -> anyhow::Result<()> {
    for u in urls {
        let rest = u
            .strip_prefix("http://")
            .context("target URLs must start with http://")?;
        let host_port = rest.split('/').next().unwrap_or_default();
        let host = if let Some(h) = host_port.strip_prefix('[') {
            h.split(']').next().unwrap_or_default()
        } else {
            host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !allow_remote {
            bail!("refusing non-loopback target {u} (pass --allow-remote to load a remote host)");
        }
    }
    Ok(())
}

/// The run's HTTP client and its restaurant.
pub struct Ctx {
    pub common: Common,
    pub http: reqwest::Client,
    pub restaurant: String,
    pub staff: String,
    pub date: String,
}

impl Ctx {
    pub fn url(&self, i: usize) -> &str {
        &self.common.urls[i % self.common.urls.len()]
    }

    /// Creates the scenario's restaurant (open all day, `tables` tables) unless one was given.
    pub async fn setup(common: Common, tables: usize, max_party: u32) -> anyhow::Result<Ctx> {
        Ctx::setup_with(common, tables, max_party, json!({})).await
    }

    /// As `setup`, with `extra` members (e.g. `combinations`, `pacing`) in the created
    /// restaurant's body.
    pub async fn setup_with(
        common: Common,
        tables: usize,
        max_party: u32,
        extra: Value,
    ) -> anyhow::Result<Ctx> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .timeout(Duration::from_secs(30))
            .build()?;
        let date = (chrono::Utc::now() + chrono::Duration::days(2))
            .format("%Y-%m-%d")
            .to_string();
        let (restaurant, staff) = match (&common.restaurant, &common.staff_token) {
            (Some(r), Some(s)) => (r.clone(), s.clone()),
            (Some(_), None) => bail!("--restaurant needs --staff-token"),
            _ => {
                let admin = common.admin_token.clone().context(
                    "--admin-token (or TABLECAST_ADMIN_TOKEN) is needed to create a restaurant",
                )?;
                let t: Vec<Value> = (0..tables)
                    .map(|i| json!({"id": format!("t{i:04}"), "max_party": max_party}))
                    .collect();
                let mut body = json!({
                    "name": "loadgen", "timezone": "UTC", "booking_horizon_days": 30,
                    "hold_seconds": 600, "slot_minutes": 15,
                    "turn_minutes": [{"max_party": null, "minutes": 60}],
                    "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"],
                               "open": "00:00", "close": "24:00"}],
                    "tables": t});
                if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
                    b.extend(x.clone());
                }
                let res = http
                    .post(format!("{}/v1/restaurants", common.urls[0]))
                    .bearer_auth(admin)
                    .json(&body)
                    .send()
                    .await?;
                if res.status() != 201 {
                    bail!(
                        "creating the restaurant answered {}: {}",
                        res.status(),
                        res.text().await?
                    );
                }
                let v: Value = res.json().await?;
                (
                    v["restaurant"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    v["staff_token"].as_str().unwrap_or_default().to_owned(),
                )
            }
        };
        Ok(Ctx {
            common,
            http,
            restaurant,
            staff,
            date,
        })
    }

    /// The restaurant document (its tables, `combinations` and `pacing`).
    pub async fn restaurant_doc(&self) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!(
                "{}/v1/restaurants/{}",
                self.url(0),
                self.restaurant
            ))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("reading the restaurant answered {}", res.status());
        }
        Ok(res.json().await?)
    }

    /// Every reservation of the scenario's date, read back through the staff API.
    pub async fn reservations(&self) -> anyhow::Result<Vec<Value>> {
        let v: Value = self
            .http
            .get(format!(
                "{}/v1/restaurants/{}/reservations?date={}",
                self.url(0),
                self.restaurant,
                self.date
            ))
            .bearer_auth(&self.staff)
            .send()
            .await?
            .json()
            .await?;
        Ok(v["reservations"].as_array().cloned().unwrap_or_default())
    }

    pub fn progress(&self, len: u64, what: &str) -> indicatif::ProgressBar {
        if self.common.quiet || self.common.json {
            return indicatif::ProgressBar::hidden();
        }
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(what.to_owned());
        pb
    }
}

/// Runs a scenario within its time limit and prints the report. Fails when an invariant broke.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<Report> {
    let scenario = args.scenario;
    if let Scenario::RawServer = scenario {
        raw::serve().await?;
        return Ok(Report::default());
    }
    let common = match &scenario {
        Scenario::Stampede(o) => &o.common,
        Scenario::Fanout(o) => &o.common,
        Scenario::Holds(o) => &o.common,
        Scenario::Mixed(o) => &o.common,
        Scenario::History(o) => &o.common,
        Scenario::Waitlist(o) => &o.common,
        Scenario::RawServer => unreachable!(),
    }
    .clone();
    check_targets(&common.urls, common.allow_remote)?;
    if let Scenario::Fanout(o) = &scenario {
        check_targets(o.change_url.as_slice(), common.allow_remote)?;
    }
    let limit = Duration::from_secs(common.timeout_secs);
    let report = tokio::time::timeout(limit, async {
        match scenario {
            Scenario::Stampede(o) => stampede::run(o).await,
            Scenario::Fanout(o) => fanout::run(o).await,
            Scenario::Holds(o) => holds::run(o).await,
            Scenario::Mixed(o) => mixed::run(o).await,
            Scenario::History(o) => history::run(o).await,
            Scenario::Waitlist(o) => waitlist::run(o).await,
            Scenario::RawServer => unreachable!(),
        }
    })
    .await
    .with_context(|| format!("the run did not finish within {} s", limit.as_secs()))??;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if let Some(dir) = &common.plot_dir {
        let path = plot::write(&report, dir, chrono::Utc::now())?;
        // Standard output stays one JSON document under --json.
        if common.json {
            eprintln!("plot: {}", path.display());
        } else {
            println!("plot: {}", path.display());
        }
    }
    if !report.invariants_hold() {
        bail!("an invariant check failed");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_targets_are_loaded_by_default() {
        let ok = |u: &str| super::check_targets(&[u.to_owned()], false).is_ok();
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://127.3.2.1:1"));
        assert!(ok("http://localhost:8080/"));
        assert!(ok("http://[::1]:8080"));
        assert!(!ok("http://10.0.0.1:8080"));
        assert!(!ok("http://example.com"));
        assert!(super::check_targets(&["http://10.0.0.1".into()], true).is_ok());
    }
}

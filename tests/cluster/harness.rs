#![allow(dead_code)]
//! Real processes: Redis, several tablecast instances on one shared store, nginx in front.
//! Mounted next to the kit (`crate::kit`) by the cluster tests and the cross-instance bench.
use crate::kit::app::unique_table;
use crate::kit::process::{free_port, wait_port, Proc, Stop, Tablecast};
use crate::kit::services::{prefer, require, Service};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const ADMIN: &str = "cluster-admin";
/// Short reconcile interval so repair tests run quickly; tests assert against it.
pub const RECONCILE: Duration = Duration::from_secs(2);
/// Short waitlist reconcile interval (`--waitlist-reconcile-secs`): an offer lost to a crash is
/// made by another instance within it; tests assert against it.
pub const WAITLIST_RECONCILE: Duration = Duration::from_secs(2);

/// Where the instances share their state.
#[derive(Clone)]
pub enum SharedStore {
    Dynamo(String),
    Sqlite(String),
}

impl SharedStore {
    /// DynamoDB Local when configured (infra/test.sh starts it); otherwise, run by hand, one
    /// SQLite file that every instance opens (by [`prefer`]: under `TABLECAST_REQUIRE_SERVICES`
    /// a missing DynamoDB Local fails).
    pub fn pick(dir: &Path, test: &str) -> SharedStore {
        match prefer(
            Service::DynamoDbLocal,
            test,
            "the instances share one SQLite file instead",
        ) {
            Some(_) => SharedStore::Dynamo(format!("dynamodb://{}", unique_table("tc-cluster"))),
            None => SharedStore::Sqlite(format!("sqlite://{}", dir.join("cluster.db").display())),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            SharedStore::Dynamo(u) | SharedStore::Sqlite(u) => u,
        }
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub redis: Option<Proc>,
    redis_bin: String,
    pub redis_port: u16,
    pub instances: Vec<Tablecast>,
    pub nginx: Proc,
    pub front: String,
    pub store: SharedStore,
}

pub fn start_redis(bin: &str, port: u16) -> Proc {
    let redis = Proc::spawn(
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        Stop::Kill,
        "redis-server",
    );
    wait_port(port, "redis", None);
    redis
}

/// The per-client limits of a cluster's instances. Every request reaches them through nginx,
/// which is trusted, from loopback: all of a test's traffic is one client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_live_holds: u32,
    pub hold_rate: &'static str,
}

impl Limits {
    /// Tests that race from loopback turn the limits off.
    pub const OFF: Limits = Limits {
        max_live_holds: 0,
        hold_rate: "off",
    };
}

/// An instance of the cluster, with more environment for this instance only (e.g. a test-only
/// flag); its log goes to `log`.
pub fn start_instance_with(
    store: &SharedStore,
    redis_port: u16,
    port: u16,
    limits: Limits,
    extra: &[(&str, &str)],
    log: &Path,
) -> Tablecast {
    let bus = format!("redis://127.0.0.1:{redis_port}");
    start_instance_on(store, &bus, port, limits, extra, log)
}

/// An instance of the cluster on the bus `bus` (a `redis://` or `rediss://` URL), as
/// [`start_instance_with`].
pub fn start_instance_on(
    store: &SharedStore,
    bus: &str,
    port: u16,
    limits: Limits,
    extra: &[(&str, &str)],
    log: &Path,
) -> Tablecast {
    let listen = format!("127.0.0.1:{port}");
    let reconcile = RECONCILE.as_secs_f64().to_string();
    let max_live = limits.max_live_holds.to_string();
    let waitlist_reconcile = WAITLIST_RECONCILE.as_secs_f64().to_string();
    let mut envs = vec![
        ("TABLECAST_ADMIN_TOKEN", ADMIN),
        ("TABLECAST_RECONCILE_SECS", &reconcile),
        ("TABLECAST_WAITLIST_RECONCILE_SECS", &waitlist_reconcile),
        ("TABLECAST_DRAIN_GRACE_SECS", "0.5"),
        ("TABLECAST_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", &max_live),
        ("TABLECAST_HOLD_RATE", limits.hold_rate),
        ("TABLECAST_MAX_CONNECTIONS_PER_CLIENT", "0"),
    ];
    envs.extend_from_slice(extra);
    Tablecast::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--store",
            store.url(),
            "--bus",
            bus,
        ],
        &envs,
        Stdio::from(std::fs::File::create(log).unwrap()),
    )
}

pub fn start_nginx(bin: &str, dir: &Path, port: u16, upstreams: &[u16]) -> Proc {
    let template = include_str!("../../infra/local/nginx.conf.template");
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let conf = template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@SERVERS@", &servers);
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = Proc::spawn(
        Command::new(bin)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("nginx-stderr.log")).unwrap()),
        // nginx's master stops its workers on SIGTERM; a SIGKILL would orphan them.
        Stop::Term,
        "nginx",
    );
    wait_port(port, "nginx", Some(&dir.join("nginx-stderr.log")));
    nginx
}

impl Cluster {
    /// `n` instances on one shared store, Redis, and nginx in front; `None` (by
    /// [`require`]) when `test` skips for want of Redis or nginx.
    pub fn start(test: &str, n: usize) -> Option<Cluster> {
        Self::start_with(test, n, Limits::OFF)
    }

    pub fn start_with(test: &str, n: usize, limits: Limits) -> Option<Cluster> {
        Self::start_custom(test, n, limits, |_| Vec::new())
    }

    /// [`Cluster::start_with`], instance `i` getting the extra environment `extra(i)`.
    pub fn start_custom(
        test: &str,
        n: usize,
        limits: Limits,
        extra: impl Fn(usize) -> Vec<(&'static str, String)>,
    ) -> Option<Cluster> {
        let redis_bin = require(Service::Redis, test)?;
        let nginx_bin = require(Service::Nginx, test)?;
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::pick(dir.path(), test);
        if let SharedStore::Dynamo(_) = store {
            let ok = Command::new(env!("CARGO_BIN_EXE_tablecast"))
                .args(["migrate", "--store", store.url()])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok, "tablecast migrate creates the table");
        }
        let redis_port = free_port();
        let redis = start_redis(&redis_bin, redis_port);
        let instances: Vec<Tablecast> = (0..n)
            .map(|i| {
                let env = extra(i);
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let log = dir.path().join(format!("instance-{i}.log"));
                start_instance_with(&store, redis_port, free_port(), limits, &env, &log)
            })
            .collect();
        let front_port = free_port();
        let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
        let nginx = start_nginx(&nginx_bin, dir.path(), front_port, &ports);
        Some(Cluster {
            dir,
            redis: Some(redis),
            redis_bin,
            redis_port,
            instances,
            nginx,
            front: format!("http://127.0.0.1:{front_port}"),
            store,
        })
    }

    /// Replaces instance `i` by a fresh one on the same store, without per-client limits, whose
    /// bus is Redis at `bus_port` (a proxy in front of it, say), with `extra` environment.
    pub fn replace_instance_on_bus(&mut self, i: usize, bus_port: u16, extra: &[(&str, &str)]) {
        let log = self.dir.path().join(format!("instance-{i}.log"));
        let fresh =
            start_instance_with(&self.store, bus_port, free_port(), Limits::OFF, extra, &log);
        let old = std::mem::replace(&mut self.instances[i], fresh);
        old.proc.signal(crate::kit::process::Sig::KILL);
    }

    pub fn kill_redis(&mut self) {
        if let Some(r) = self.redis.take() {
            r.signal(crate::kit::process::Sig::KILL);
            drop(r);
        }
    }

    pub fn restart_redis(&mut self) {
        self.redis = Some(start_redis(&self.redis_bin, self.redis_port));
    }
}

/// A failing test shows what its instances warned of (a store that stalled, an offer that
/// failed), from the logs kept in the cluster's folder, before the folder goes.
impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for i in 0..self.instances.len() {
            let path = self.dir.path().join(format!("instance-{i}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let warned: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .collect();
            eprintln!(
                "instance {i}: {} warnings or errors in its log{}",
                warned.len(),
                if warned.is_empty() { "" } else { "; the last:" }
            );
            for line in &warned[warned.len().saturating_sub(20)..] {
                eprintln!("  {line}");
            }
        }
    }
}

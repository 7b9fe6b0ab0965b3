#![allow(dead_code)]
//! Real processes: Redis, several tablecast instances on one shared store, nginx in front.
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "cluster-admin";
/// Short reconcile interval so repair tests run quickly; tests assert against it.
pub const RECONCILE: Duration = Duration::from_secs(2);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, log: Option<&std::path::Path>) {
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let said = log
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        assert!(
            Instant::now() < end,
            "{what} did not start listening on {port}: {said}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process ended (by PID) on drop.
pub struct Proc {
    pub child: Child,
    /// Ask it to stop first (nginx's master then stops its workers; a SIGKILL would orphan them).
    pub graceful: bool,
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < end, "process did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.graceful && matches!(self.child.try_wait(), Ok(None)) {
            self.signal("-TERM");
            let end = Instant::now() + Duration::from_secs(3);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the instances share their state.
#[derive(Clone)]
pub enum SharedStore {
    Dynamo(String),
    Sqlite(String),
}

impl SharedStore {
    /// DynamoDB Local when configured (the README test command starts it); otherwise, run by
    /// hand, one SQLite file that every instance opens — unless services are required.
    pub fn pick(dir: &std::path::Path) -> SharedStore {
        if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok() {
            return SharedStore::Dynamo(format!(
                "dynamodb://tc-cluster-{}",
                uuid::Uuid::new_v4().simple()
            ));
        }
        assert!(
            std::env::var("TABLECAST_REQUIRE_SERVICES").is_err(),
            "DynamoDB Local is required (AWS_ENDPOINT_URL_DYNAMODB unset)"
        );
        eprintln!("cluster tests: no DynamoDB Local configured; instances share one SQLite file");
        SharedStore::Sqlite(format!("sqlite://{}", dir.join("cluster.db").display()))
    }

    pub fn url(&self) -> &str {
        match self {
            SharedStore::Dynamo(u) | SharedStore::Sqlite(u) => u,
        }
    }
}

pub struct Instance {
    pub proc: Proc,
    pub base: String,
    pub port: u16,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub redis: Option<Proc>,
    pub redis_port: u16,
    pub instances: Vec<Instance>,
    pub nginx: Proc,
    pub front: String,
    pub store: SharedStore,
}

fn require(bin: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{bin} is not installed (bash infra/test.sh installs it)"
    );
}

pub fn start_redis(port: u16) -> Proc {
    require("redis-server");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    wait_port(port, "redis", None);
    Proc {
        child,
        graceful: false,
    }
}

pub fn start_instance(store: &SharedStore, redis_port: u16, port: u16) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tablecast"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            store.url(),
        ])
        .args(["--bus", &format!("redis://127.0.0.1:{redis_port}")])
        .env("TABLECAST_ADMIN_TOKEN", ADMIN)
        .env(
            "TABLECAST_RECONCILE_SECS",
            RECONCILE.as_secs_f64().to_string(),
        )
        .env("TABLECAST_DRAIN_GRACE_SECS", "0.5")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tablecast starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("instance printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("tablecast listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Instance {
        proc: Proc {
            child,
            graceful: false,
        },
        base,
        port,
    }
}

pub fn start_nginx(dir: &std::path::Path, port: u16, upstreams: &[u16]) -> Proc {
    require("nginx");
    let template = include_str!("../../infra/local/nginx.conf.template");
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let conf = template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@SERVERS@", &servers);
    let path: PathBuf = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let child = Command::new(nginx)
        .args([
            "-c",
            &path.display().to_string(),
            "-p",
            &dir.display().to_string(),
            "-e",
            &dir.join("nginx-error.log").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx-stderr.log")).unwrap())
        .spawn()
        .expect("nginx starts");
    wait_port(port, "nginx", Some(&dir.join("nginx-stderr.log")));
    Proc {
        child,
        graceful: true,
    }
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::pick(dir.path());
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
        let redis = start_redis(redis_port);
        let instances: Vec<Instance> = (0..n)
            .map(|_| start_instance(&store, redis_port, free_port()))
            .collect();
        let front_port = free_port();
        let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
        let nginx = start_nginx(dir.path(), front_port, &ports);
        Cluster {
            dir,
            redis: Some(redis),
            redis_port,
            instances,
            nginx,
            front: format!("http://127.0.0.1:{front_port}"),
            store,
        }
    }

    pub fn kill_redis(&mut self) {
        if let Some(r) = self.redis.take() {
            r.signal("-KILL");
            drop(r);
        }
    }

    pub fn restart_redis(&mut self) {
        self.redis = Some(start_redis(self.redis_port));
    }
}

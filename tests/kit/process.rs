//! Child processes for the tests: free ports, processes ended by PID, the tablecast binary.
use super::wait::until_blocking;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The signals tests send: `Sig::TERM`, `Sig::KILL`.
#[allow(unused_imports)]
pub use rustix::process::Signal as Sig;

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (20 s at most) until something accepts on `port`; on failure shows `log` if given.
pub fn wait_port(port: u16, what: &str, log: Option<&Path>) {
    until_blocking(
        Duration::from_secs(20),
        || {
            let said = log
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            format!("{what} did not start listening on {port}: {said}")
        },
        || TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()),
    );
}

/// How a [`Proc`] is ended when dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL.
    Kill,
    /// SIGTERM first, SIGKILL after 3 s (nginx's master then stops its workers; a SIGKILL
    /// would orphan them).
    Term,
    /// SIGKILL to its whole process group (it was started with `process_group(0)`, so the
    /// group's id is its PID): chromedriver and every Chromium it started.
    KillGroup,
}

/// A child process, ended by its PID on drop.
pub struct Proc {
    pub child: Child,
    stop: Stop,
}

impl Proc {
    pub fn new(child: Child, stop: Stop) -> Proc {
        Proc { child, stop }
    }

    pub fn spawn(cmd: &mut Command, stop: Stop, what: &str) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{what} starts: {e}"));
        Proc::new(child, stop)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` (e.g. `Sig::TERM`, `Sig::KILL`); fails the test when it cannot.
    pub fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig)
            .unwrap_or_else(|e| panic!("signal {sig:?} to {}: {e}", self.pid()));
    }

    /// Its exit status, failing the test when it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid();
        let child = &mut self.child;
        until_blocking(
            within,
            || format!("process {pid} did not exit in time"),
            || child.try_wait().unwrap(),
        )
    }

    /// Ends it at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        match self.stop {
            Stop::Kill => {}
            Stop::Term => {
                if self.running() {
                    let _ = kill_process(Pid::from_child(&self.child), Signal::TERM);
                    let end = std::time::Instant::now() + Duration::from_secs(3);
                    while self.running() && std::time::Instant::now() < end {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            Stop::KillGroup => {
                if self.running() {
                    let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
                }
            }
        }
        self.kill();
    }
}

/// The tablecast binary serving on a real port; killed (SIGKILL, by PID) on drop.
pub struct Tablecast {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`, as it printed it.
    pub base: String,
    pub port: u16,
}

impl Tablecast {
    /// Runs `tablecast <args>` with `envs`, its stderr to `stderr`, and waits for its
    /// `tablecast listening on <address>` line; the rest of its stdout is drained.
    pub fn start(args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Tablecast {
        Self::start_reading(args, envs, stderr, 0).0
    }

    /// [`Tablecast::start`] without `TABLECAST_ADMIN_TOKEN` in its environment: it and the
    /// admin token it generated and printed.
    pub fn start_with_generated_token(args: &[&str], stderr: Stdio) -> (Tablecast, String) {
        let (server, lines) = Self::start_reading(args, &[], stderr, 1);
        let token = lines[0]
            .strip_prefix("admin token (generated; set TABLECAST_ADMIN_TOKEN to choose one): ")
            .unwrap_or_else(|| panic!("no generated admin token after the address: {lines:?}"))
            .to_owned();
        (server, token)
    }

    /// Starts it and returns the `more` lines it printed after its address line.
    fn start_reading(
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: Stdio,
        more: usize,
    ) -> (Tablecast, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args(args)
            .env_remove("TABLECAST_ADMIN_TOKEN")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("tablecast starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = || {
            lines
                .next()
                .expect("tablecast printed a line")
                .expect("stdout")
        };
        let base = loop {
            if let Some(rest) = next().strip_prefix("tablecast listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let after = (0..more).map(|_| next()).collect();
        std::thread::spawn(move || for _ in lines {});
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        let server = Tablecast {
            proc: Proc::new(child, Stop::Kill),
            base,
            port,
        };
        (server, after)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

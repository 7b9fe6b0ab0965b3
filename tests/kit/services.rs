//! One policy for a test whose service is missing.
//!
//! Under `TABLECAST_REQUIRE_SERVICES=1` (set by `infra/test.sh`) a missing service fails the
//! test. Run by hand without it, the test prints one line to stderr,
//! `SKIPPED <test>: <service> not available (<how to get it>)`, and returns.
use std::io::Write;
use std::path::Path;

/// What some tests need besides the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AWS's emulator, found through `AWS_ENDPOINT_URL_DYNAMODB`.
    DynamoDbLocal,
    /// `redis-server`.
    Redis,
    /// `nginx`.
    Nginx,
    /// Debian's headless Chromium and its chromedriver.
    Chromium,
    /// A Python with `aiosmtpd` (a real SMTP server for the mail tests).
    SmtpSink,
}

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::DynamoDbLocal => "DynamoDB Local",
            Service::Redis => "Redis",
            Service::Nginx => "nginx",
            Service::Chromium => "Chromium",
            Service::SmtpSink => "aiosmtpd",
        }
    }

    /// Why it is missing, and how to get it.
    pub fn how(self) -> &'static str {
        match self {
            Service::DynamoDbLocal => {
                "AWS_ENDPOINT_URL_DYNAMODB is unset; `source infra/dynamodb-local.sh` starts it"
            }
            Service::Redis => "no redis-server; `apt-get install redis-server`",
            Service::Nginx => "no nginx; `apt-get install nginx`",
            Service::Chromium => {
                "no /usr/bin/chromium and /usr/bin/chromedriver; \
                 `apt-get install chromium chromium-driver`"
            }
            Service::SmtpSink => {
                "no Python with aiosmtpd at TABLECAST_SMTP_SINK_PYTHON or \
                 ~/.cache/tablecast/venv-smtp; `infra/test.sh` installs it"
            }
        }
    }

    /// Where it is (the endpoint, or the program), when it is there.
    pub fn locate(self) -> Option<String> {
        match self {
            Service::DynamoDbLocal => std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
                .ok()
                .filter(|v| !v.is_empty()),
            Service::Redis => program("redis-server"),
            Service::Nginx => program("nginx"),
            Service::Chromium => [CHROMIUM, CHROMEDRIVER]
                .iter()
                .all(|p| Path::new(p).exists())
                .then(|| CHROMIUM.to_owned()),
            Service::SmtpSink => smtp_python(),
        }
    }
}

/// A Python that can import `aiosmtpd`: `TABLECAST_SMTP_SINK_PYTHON`, else the venv
/// `infra/test.sh` makes.
fn smtp_python() -> Option<String> {
    let given = std::env::var("TABLECAST_SMTP_SINK_PYTHON")
        .ok()
        .filter(|v| !v.is_empty());
    let default = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/tablecast/venv-smtp/bin/python"))
        .map(|p| p.display().to_string());
    let python = given.or(default)?;
    std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then_some(python)
}

/// A program on `PATH` (or in /usr/sbin, where Debian puts nginx).
fn program(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([Path::new("/usr/sbin").to_path_buf()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// Whether a missing service must fail the test: `TABLECAST_REQUIRE_SERVICES` set, non-empty
/// and not `0`.
pub fn required() -> bool {
    std::env::var("TABLECAST_REQUIRE_SERVICES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `service` for `test`: where it is; or, when it is missing, a failed test under
/// `TABLECAST_REQUIRE_SERVICES`, else `None` after one `SKIPPED` line on stderr (the caller
/// returns).
pub fn require(service: Service, test: &str) -> Option<String> {
    if let Some(at) = service.locate() {
        return Some(at);
    }
    missing(service, test, "SKIPPED", "");
    None
}

/// Like [`require`] for a service a test can do without: when it is missing and not required,
/// the test carries on `instead` (said on one `INSTEAD` line) and this gives `None`.
pub fn prefer(service: Service, test: &str, instead: &str) -> Option<String> {
    if let Some(at) = service.locate() {
        return Some(at);
    }
    missing(service, test, "INSTEAD", &format!("; {instead}"));
    None
}

fn missing(service: Service, test: &str, word: &str, then: &str) {
    let (name, how) = (service.name(), service.how());
    assert!(
        !required(),
        "{test}: {name} not available ({how}), and TABLECAST_REQUIRE_SERVICES is set: \
         nothing may skip (infra/test.sh sets up every service)"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "{word} {test}: {name} not available ({how}){then}"
    );
}

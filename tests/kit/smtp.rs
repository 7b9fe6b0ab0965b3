//! A real SMTP server for the mail tests: Python's `aiosmtpd` (from PyPI, in the venv that
//! `infra/test.sh` installs), started per test on a loopback port, writing every message it
//! accepts, parsed, as one JSON file that the test reads back.
use super::process::{free_port, wait_port, Proc, Stop};
use super::services::{require, Service};
use super::wait::until;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kit/smtp_sink.py");

/// One accepted message.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub date: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    pub filename: Option<String>,
    pub content_type: String,
    /// The `method` parameter of its content type (a calendar file's iTIP method).
    pub method: Option<String>,
    pub content: Option<String>,
}

impl Mail {
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    /// The `method` parameter of the `.ics` attachment's content type.
    pub fn ics_method(&self) -> Option<&str> {
        self.attachments
            .iter()
            .find(|a| a.content_type == "text/calendar")
            .and_then(|a| a.method.as_deref())
    }

    /// The `.ics` attachment's text.
    pub fn ics(&self) -> Option<&str> {
        self.attachments
            .iter()
            .find(|a| a.content_type == "text/calendar")
            .and_then(|a| a.content.as_deref())
    }
}

/// The SMTP server: a port, and the folder its messages land in. Killed (by PID) on drop.
pub struct SmtpSink {
    python: String,
    pub port: u16,
    dir: TempDir,
    proc: Option<Proc>,
}

impl SmtpSink {
    /// A running sink on a free port; `None` when `test` skips (no aiosmtpd).
    pub fn start(test: &str) -> Option<SmtpSink> {
        let mut sink = Self::unstarted(test, free_port())?;
        sink.run();
        Some(sink)
    }

    /// A sink for `port` that does not listen yet (a relay that is down): [`SmtpSink::run`] it.
    pub fn unstarted(test: &str, port: u16) -> Option<SmtpSink> {
        let python = require(Service::SmtpSink, test)?;
        Some(SmtpSink {
            python,
            port,
            dir: tempfile::tempdir().unwrap(),
            proc: None,
        })
    }

    /// Starts listening (again) on its port.
    pub fn run(&mut self) {
        assert!(self.proc.is_none(), "the sink is running already");
        let proc = Proc::spawn(
            Command::new(&self.python)
                .arg(SCRIPT)
                .arg(self.port.to_string())
                .arg(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            Stop::Kill,
            "aiosmtpd sink",
        );
        self.proc = Some(proc);
        wait_port(self.port, "the aiosmtpd sink", None);
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP on loopback.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        v
    }

    /// Every message accepted so far, in order of arrival.
    pub fn mails(&self) -> Vec<Mail> {
        self.files()
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits until at least `n` messages arrived, then gives them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        until(within, &format!("{n} mails at the SMTP sink"), || async {
            let m = self.mails();
            (m.len() >= n).then_some(m)
        })
        .await
    }
}

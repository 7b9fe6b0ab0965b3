//! The report: rows of latencies, invariant checks (a failure fails the run) and targets
//! (ratios to a baseline from the same run; a miss is reported, not hidden).
use super::stats::{histogram, summary_of, Summary};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
    pub per_second: Option<f64>,
    /// The measured latencies (µs), when the row was built from samples: what the plot draws.
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub value: f64,
    pub limit: f64,
    /// `true` when the value must stay at or below the limit, `false` for at or above.
    pub at_most: bool,
    pub met: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    /// Which form of the scenario ran (e.g. `paced` for `stampede --paced`), if not the plain one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub description: String,
    pub rows: Vec<Row>,
    pub facts: BTreeMap<String, Value>,
    pub checks: Vec<Check>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn new(scenario: &str, description: String) -> Report {
        Report {
            scenario: scenario.into(),
            description,
            ..Report::default()
        }
    }

    pub fn row(&mut self, name: &str, summary: Summary, per_second: Option<f64>) {
        self.rows.push(Row {
            name: name.into(),
            summary,
            per_second,
            histogram: None,
        });
    }

    /// A row of measured latencies (kept for the plot); their summary.
    pub fn latencies(
        &mut self,
        name: &str,
        samples: &[std::time::Duration],
        per_second: Option<f64>,
    ) -> Summary {
        let h = histogram(samples);
        let summary = summary_of(&h);
        self.rows.push(Row {
            name: name.into(),
            summary,
            per_second,
            histogram: Some(h),
        });
        summary
    }

    /// The scenario and its variant: `stampede`, `stampede-paced`, … (the plot's file name).
    pub fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}-{v}", self.scenario),
            None => self.scenario.clone(),
        }
    }

    pub fn fact(&mut self, name: &str, v: impl Into<Value>) {
        self.facts.insert(name.into(), v.into());
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }

    pub fn target(&mut self, name: &str, value: f64, limit: f64, at_most: bool) {
        let met = if at_most {
            value <= limit
        } else {
            value >= limit
        };
        self.targets.push(Target {
            name: name.into(),
            value,
            limit,
            at_most,
            met,
        });
    }

    pub fn row_named(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    pub fn invariants_hold(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n{} — {}", self.scenario, self.description);
        let _ = writeln!(
            s,
            "{:<34} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "measure", "count", "p50 ms", "p99 ms", "max ms", "per s"
        );
        for r in &self.rows {
            let rate = r
                .per_second
                .map_or(String::from("-"), |v| format!("{v:.0}"));
            let _ = writeln!(
                s,
                "{:<34} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>10}",
                r.name, r.summary.count, r.summary.p50_ms, r.summary.p99_ms, r.summary.max_ms, rate
            );
        }
        for (k, v) in &self.facts {
            let _ = writeln!(s, "{k:<34} {v}");
        }
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(s, "check  {mark} {:<28} {}", c.name, c.detail);
        }
        for t in &self.targets {
            let op = if t.at_most { "≤" } else { "≥" };
            let verdict = if t.met {
                "meets target"
            } else {
                "MISSES target"
            };
            let _ = writeln!(
                s,
                "target {:<34} {:.2} ({op} {:.2}) {verdict}",
                t.name, t.value, t.limit
            );
        }
        s
    }
}

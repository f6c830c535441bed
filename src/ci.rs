//! What CI needs around a run: metric gates, the lock file of expected results, JUnit and Markdown
//! reports. Pure functions of run results; the commands decide where the text goes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::executor::StageResult;
use crate::spec::{Gate, GateRule, Pipeline};

/// Metrics to compare against, and where they came from.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// "lock pipelines/x.lock" or "run 1a2b3c…".
    pub source: String,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// e.g. "rmse ≤ 30000" or "rmse at most 2 % worse than lock pipelines/x.lock".
    pub gate: String,
    pub metric: String,
    pub value: f64,
    pub passed: bool,
    /// Why it failed, or what it compared against.
    pub detail: String,
}

/// Checks every gate against the run's test metrics.
/// `no_baseline` says why there is none (which lock was looked for), for a relative gate's detail.
pub fn evaluate_gates(
    gates: &[Gate],
    metrics: &BTreeMap<String, f64>,
    baseline: Option<&Baseline>,
    no_baseline: &str,
) -> Vec<GateResult> {
    gates
        .iter()
        .map(|g| {
            let name = g.metric.name();
            let value = metrics.get(name).copied().unwrap_or(f64::NAN);
            let (gate, passed, detail) = match g.rule {
                GateRule::Max(limit) => (format!("{name} ≤ {limit}"), value <= limit, format!("{name} = {value}")),
                GateRule::Min(limit) => (format!("{name} ≥ {limit}"), value >= limit, format!("{name} = {value}")),
                GateRule::MaxRegression(fraction) => {
                    let gate = format!("{name} at most {}% worse than the baseline", fraction * 100.0);
                    match baseline.map(|b| (b, b.metrics.get(name).copied())) {
                        None => (gate, false, format!("no baseline to compare with: {no_baseline}")),
                        Some((b, None)) => (
                            gate,
                            false,
                            format!(
                                "{} records no {name} (it records {}): compare with a run or lock of this pipeline",
                                b.source,
                                if b.metrics.is_empty() {
                                    "no metric".to_string()
                                } else {
                                    b.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                                }
                            ),
                        ),
                        Some((b, Some(base))) => {
                            let worse = if g.metric.higher_is_better() {
                                base - value
                            } else {
                                value - base
                            };
                            let allowed = fraction * base.abs();
                            let change = if base == 0.0 { 0.0 } else { worse / base.abs() * 100.0 };
                            (
                                gate,
                                worse <= allowed,
                                if change == 0.0 {
                                    format!("{name} = {value}, {} = {base} (no change)", b.source)
                                } else if change < 0.0 {
                                    format!("{name} = {value}, {} = {base} ({:.3}% better)", b.source, -change)
                                } else {
                                    format!("{name} = {value}, {} = {base} ({change:+.3}% worse)", b.source)
                                },
                            )
                        }
                    }
                }
            };
            GateResult {
                gate,
                metric: name.to_string(),
                value,
                passed,
                detail,
            }
        })
        .collect()
}

/// The expected result of a pipeline: content only (snapshot, stage outputs, metrics, and digests of
/// each stage's config so that `check` can say why something changed) — never the run id, which also
/// covers the commit. One `key = value` line per entry, sorted, so it merges cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lock {
    pub entries: BTreeMap<String, String>,
}

pub const LOCK_HEADER: &str =
    "# mlpipe lock: the expected result of this pipeline. Written by `mlpipe lock`; checked by `mlpipe check`.\n";

impl Lock {
    pub fn from_run(
        pipeline: &Pipeline,
        snapshot: &Id,
        stages: &[StageResult],
        metrics: &BTreeMap<String, f64>,
        mlpipe_version: &str,
    ) -> Lock {
        let mut entries = BTreeMap::new();
        entries.insert("snapshot".to_string(), snapshot.hex());
        entries.insert("mlpipe".to_string(), mlpipe_version.to_string());
        let plan = crate::plan::Plan::new(pipeline);
        for (s, planned) in stages.iter().zip(&plan.stages) {
            entries.insert(format!("stage.{}.output", s.name), s.output.hex());
            entries.insert(
                format!("stage.{}.config", s.name),
                Id::of_bytes(&planned.params).short(),
            );
        }
        for (k, v) in metrics {
            // `{}` prints the shortest text that parses back to the same bits.
            entries.insert(format!("metric.{k}"), v.to_string());
        }
        Lock { entries }
    }

    pub fn render(&self) -> String {
        let mut s = String::from(LOCK_HEADER);
        for (k, v) in &self.entries {
            let _ = writeln!(s, "{k} = {v}");
        }
        s
    }

    pub fn parse(path: &Path, text: &str) -> Result<Lock> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(" = ") else {
                return Err(Error::data(format!(
                    "{}:{}: expected `key = value`, found \"{line}\"",
                    path.display(),
                    i + 1
                ))
                .with_hint("regenerate the lock with `mlpipe lock` (resolve merge conflicts by re-locking)"));
            };
            entries.insert(k.to_string(), v.to_string());
        }
        if !entries.contains_key("snapshot") {
            return Err(Error::data(format!(
                "{} has no `snapshot` entry; it is not an mlpipe lock",
                path.display()
            )));
        }
        Ok(Lock { entries })
    }

    /// Metrics recorded in the lock, as a baseline.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        self.entries
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("metric.")?.to_string(), v.parse().ok()?)))
            .collect()
    }

    pub fn stage_output(&self, stage: &str) -> Option<&str> {
        self.entries.get(&format!("stage.{stage}.output")).map(String::as_str)
    }

    pub fn stage_config(&self, stage: &str) -> Option<&str> {
        self.entries.get(&format!("stage.{stage}.config")).map(String::as_str)
    }
}

/// The lock file of a pipeline: `pipelines/x.toml` → `pipelines/x.lock`.
pub fn lock_path(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("lock")
}

pub fn read_lock(pipeline: &Path) -> Result<Option<Lock>> {
    let path = lock_path(pipeline);
    match std::fs::read_to_string(&path) {
        Ok(text) => Lock::parse(&path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read lock file", path, e)),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per stage and per gate.
pub fn junit(pipeline: &str, run: &Id, stages: &[StageResult], gates: &[GateResult]) -> String {
    let failures = gates.iter().filter(|g| !g.passed).count();
    let total: f64 = stages.iter().map(|s| s.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"mlpipe\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">",
        stages.len() + gates.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">",
        xml_escape(pipeline),
        stages.len() + gates.len()
    );
    let _ = writeln!(
        x,
        "    <properties><property name=\"run\" value=\"{run}\"/></properties>"
    );
    for s in stages {
        let status = if s.cached { "cached" } else { "ran" };
        let _ = writeln!(
            x,
            "    <testcase classname=\"{}.stage\" name=\"{} ({status}, output {})\" time=\"{:.3}\"/>",
            xml_escape(pipeline),
            xml_escape(&s.name),
            s.output.short(),
            s.seconds
        );
    }
    for g in gates {
        let _ = write!(
            x,
            "    <testcase classname=\"{}.gate\" name=\"{}\" time=\"0\"",
            xml_escape(pipeline),
            xml_escape(&g.gate)
        );
        if g.passed {
            x.push_str("/>\n");
        } else {
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&format!("gate failed: {}", g.gate)),
                xml_escape(&g.detail)
            );
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// A Markdown summary for a pull-request comment: metrics with deltas against the baseline, gates.
pub fn summary(
    pipeline: &str,
    run: &Id,
    metrics: &BTreeMap<String, f64>,
    baseline: Option<&Baseline>,
    gates: &[GateResult],
    stages: &[StageResult],
) -> String {
    let mut s = format!("### mlpipe: {pipeline}\n\nrun `{run}`");
    let ran = stages.iter().filter(|s| !s.cached).count();
    let _ = writeln!(
        s,
        " · {} stages ({ran} ran, {} cached)\n",
        stages.len(),
        stages.len() - ran
    );
    if let Some(b) = baseline {
        let _ = writeln!(s, "| metric | this run | {} | change |\n|---|---:|---:|---:|", b.source);
        for (k, v) in metrics {
            let (base, change) = b.metrics.get(k).map_or_else(
                || ("—".to_string(), "—".to_string()),
                |base| {
                    let pct = if *base == 0.0 {
                        String::new()
                    } else {
                        format!(" ({:+.2}%)", (v - base) / base.abs() * 100.0)
                    };
                    (format!("{base:.6}"), format!("{:+.6}{pct}", v - base))
                },
            );
            let _ = writeln!(s, "| {k} | {v:.6} | {base} | {change} |");
        }
    } else {
        s.push_str("| metric | this run |\n|---|---:|\n");
        for (k, v) in metrics {
            let _ = writeln!(s, "| {k} | {v:.6} |");
        }
    }
    if !gates.is_empty() {
        s.push_str("\n| gate | result | detail |\n|---|---|---|\n");
        for g in gates {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                g.gate,
                if g.passed { "✅ passed" } else { "❌ failed" },
                g.detail
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Metric;

    fn metrics(rmse: f64, r2: f64) -> BTreeMap<String, f64> {
        BTreeMap::from([("rmse".to_string(), rmse), ("r2".to_string(), r2)])
    }

    #[test]
    fn regression_gates_know_which_direction_is_worse() {
        let base = Baseline {
            source: "lock".into(),
            metrics: metrics(100.0, 0.9),
        };
        let gates = [
            Gate {
                metric: Metric::Rmse,
                rule: GateRule::MaxRegression(0.02),
            },
            Gate {
                metric: Metric::R2,
                rule: GateRule::MaxRegression(0.02),
            },
        ];
        let ok = evaluate_gates(&gates, &metrics(101.9, 0.89), Some(&base), "");
        assert!(ok.iter().all(|g| g.passed), "{ok:?}");
        let bad = evaluate_gates(&gates, &metrics(102.1, 0.88), Some(&base), "");
        assert!(bad.iter().all(|g| !g.passed), "{bad:?}");
        let better = evaluate_gates(&gates, &metrics(50.0, 0.99), Some(&base), "");
        assert!(better.iter().all(|g| g.passed));
        assert_eq!(better[0].detail, "rmse = 50, lock = 100 (50.000% better)");
        let same = evaluate_gates(&gates, &metrics(100.0, 0.9), Some(&base), "");
        assert_eq!(same[0].detail, "rmse = 100, lock = 100 (no change)");
    }

    #[test]
    fn a_relative_gate_without_baseline_fails_and_says_why() {
        let gates = [Gate {
            metric: Metric::Rmse,
            rule: GateRule::MaxRegression(0.02),
        }];
        let r = evaluate_gates(&gates, &metrics(1.0, 1.0), None, "no lock at p.lock");
        assert!(!r[0].passed);
        assert_eq!(r[0].detail, "no baseline to compare with: no lock at p.lock");
        // A baseline that records other metrics (another pipeline's run, an old lock) says which.
        let other = Baseline {
            source: "run 1234".into(),
            metrics: BTreeMap::from([("accuracy".to_string(), 0.9)]),
        };
        let r = evaluate_gates(&gates, &metrics(1.0, 1.0), Some(&other), "");
        assert!(!r[0].passed);
        assert!(
            r[0].detail
                .starts_with("run 1234 records no rmse (it records accuracy)"),
            "{}",
            r[0].detail
        );
    }

    #[test]
    fn lock_round_trips_and_rejects_conflict_markers() {
        let mut lock = Lock::default();
        lock.entries.insert("snapshot".into(), "ab".into());
        lock.entries.insert("metric.rmse".into(), 0.1f64.to_string());
        let text = lock.render();
        assert_eq!(Lock::parse(Path::new("x.lock"), &text).unwrap(), lock);
        assert_eq!(
            lock.metrics()["rmse"].to_bits(),
            0.1f64.to_bits(),
            "metrics round-trip bit for bit"
        );
        let err = Lock::parse(Path::new("x.lock"), &format!("{text}<<<<<<< HEAD\n")).unwrap_err();
        assert!(err.to_string().starts_with("x.lock:4: expected `key = value`"), "{err}");
    }
}

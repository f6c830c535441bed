//! All output goes through here: text for people, or one JSON object with `--json`. A closed pipe on
//! standard output is not an error.

use std::fmt::Write as _;
use std::io::Write;

use mlpipe::Error;
use mlpipe::commands::check::CheckReport;
use mlpipe::commands::diff::{DataDiff, DiffReport};
use mlpipe::commands::gc::GcReport;
use mlpipe::commands::ledger::{Comparison, PruneReport};
use mlpipe::commands::log::LogReport;
use mlpipe::commands::predict::{PredictReport, StreamReport};
use mlpipe::commands::reproduce::ReproduceReport;
use mlpipe::commands::run::{PartialRun, RunReport};
use mlpipe::commands::serve::{Ready, ServeReport};
use mlpipe::commands::show::ShowReport;
use mlpipe::commands::snapshot::SnapshotReport;
use mlpipe::commands::verify::VerifyReport;
use mlpipe::ledger::{Entry, Head};
use serde::Serialize;

/// A readable rendering of runs and stage outputs; other objects are shown as JSON.
fn describe(r: &ShowReport) -> Option<String> {
    match r.kind.as_str() {
        "run" => serde_json::from_value(r.content.clone())
            .ok()
            .map(|rec| super::describe::run(&rec)),
        "stage-output" => serde_json::from_value(r.content.clone())
            .ok()
            .map(|o| super::describe::stage_output(&o)),
        _ => None,
    }
}

/// `  key: old → new`, with "(absent)" for a side that has no value.
fn change_line(s: &mut String, key: &str, old: Option<&str>, new: Option<&str>) {
    let _ = writeln!(
        s,
        "  {key}: {} → {}",
        old.unwrap_or("(absent)"),
        new.unwrap_or("(absent)")
    );
}

fn gates(s: &mut String, r: &RunReport) {
    for g in &r.gates {
        let _ = writeln!(
            s,
            "  gate     {} {}: {}",
            if g.passed { "passed" } else { "FAILED" },
            g.gate,
            g.detail
        );
    }
}

fn data_lines(s: &mut String, d: &DataDiff) {
    let _ = writeln!(
        s,
        "data     {} → {} (rows matched by {})",
        d.old.short(),
        d.new.short(),
        d.rows_matched_by
    );
    let _ = writeln!(
        s,
        "  rows +{} -{} ~{} changed, columns +{:?} -{:?}, {} cells changed",
        d.rows_added, d.rows_removed, d.rows_changed, d.columns_added, d.columns_removed, d.cells_changed
    );
    for e in &d.examples {
        let _ = writeln!(s, "  row {} column {}: {} → {}", e.row, e.column, e.old, e.new);
    }
}

pub struct Printer {
    json: bool,
}

fn metrics_line(m: &std::collections::BTreeMap<String, f64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {}", fmt_num(*v)))
        .collect::<Vec<_>>()
        .join("  ")
}

fn fmt_num(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    #[allow(clippy::unused_self)] // all output goes through the printer, even when it needs no state
    fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A reader that went away (`| head`) is not an error.
        let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    }

    fn json_out<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => self.out(&format!("{s}\n")),
            Err(e) => self.error(&Error::internal(format!("cannot print JSON: {e}"))),
        }
    }

    #[allow(clippy::unused_self)]
    pub fn error(&self, e: &Error) {
        // Messages quote data (column names, values, keys): a terminal escape in them is shown escaped.
        let mut s = format!("error: {}\n", lines_safe(&e.to_string()));
        if let Some(loc) = e.location() {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            let _ = writeln!(s, "{pad}--> {loc}");
            let _ = writeln!(s, "{pad} |");
            let _ = writeln!(s, "{num} | {}", lines_safe(&loc.line_text));
            let _ = writeln!(
                s,
                "{pad} | {}{}",
                " ".repeat(loc.col.saturating_sub(1)),
                "^".repeat(loc.width)
            );
        }
        if let Some(h) = e.hint() {
            let _ = writeln!(s, "hint: {}", lines_safe(&h));
        }
        let _ = std::io::stderr().write_all(s.as_bytes());
    }

    pub fn run(&self, r: &RunReport) {
        if self.json {
            return self.json_out(r);
        }
        let ran = r.stages.iter().filter(|s| !s.cached).count();
        let mut s = format!("run {}  {}\n", r.run, r.pipeline);
        let _ = writeln!(
            s,
            "  stages   {} ({ran} ran, {} cached)",
            r.stages.len(),
            r.stages.len() - ran
        );
        let _ = writeln!(s, "  test     {}", metrics_line(&r.metrics));
        let _ = writeln!(s, "  train    {}", metrics_line(&r.train_metrics));
        let _ = writeln!(s, "  code     {}", r.code.describe());
        let _ = writeln!(s, "  snapshot {}", r.snapshot);
        gates(&mut s, r);
        if let Some(lock) = &r.lock {
            let _ = writeln!(s, "  lock     wrote {}", lock.display());
        }
        self.out(&s);
    }

    pub fn partial_run(&self, r: &PartialRun) {
        if self.json {
            return self.json_out(r);
        }
        let ran = r.stages.iter().filter(|s| !s.cached).count();
        let mut s = format!("ran {} through {} (no run recorded)\n", r.pipeline, r.until);
        let _ = writeln!(
            s,
            "  stages   {} ({ran} ran, {} cached)",
            r.stages.len(),
            r.stages.len() - ran
        );
        let _ = writeln!(s, "  snapshot {}", r.snapshot);
        self.out(&s);
    }

    pub fn check(&self, r: &CheckReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = String::new();
        if r.matches {
            let ran = r.run.stages.iter().filter(|s| !s.cached).count();
            let _ = writeln!(
                s,
                "matches {} ({} stages, {ran} recomputed)",
                r.lock.display(),
                r.run.stages.len()
            );
        } else {
            let _ = writeln!(s, "DIFFERS from {}", r.lock.display());
            if let (Some(first), Some(reason)) = (&r.first_change, &r.reason) {
                let _ = writeln!(s, "  first change: {first}\n  why: {reason}");
            }
            for d in &r.differences {
                change_line(&mut s, &d.key, d.locked.as_deref(), d.now.as_deref());
            }
            s.push_str("  if the change is intended, update the lock with `mlpipe lock` and commit it\n");
        }
        gates(&mut s, &r.run);
        self.out(&s);
    }

    pub fn reproduce(&self, r: &ReproduceReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = String::new();
        if r.recorded_version != r.current_version {
            let _ = writeln!(
                s,
                "note: recorded with mlpipe {}, reproducing with {}",
                r.recorded_version, r.current_version
            );
        }
        match &r.diverged {
            None if !r.ledger_mismatches.is_empty() => {
                let differing = r
                    .ledger_mismatches
                    .iter()
                    .map(|m| m.seq)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let _ = writeln!(
                    s,
                    "NOT reproduced: {} {} replays to its stored artifacts ({} checked), but {differing} of its {} {} \
                     something else",
                    r.what,
                    r.id,
                    r.checked.len(),
                    count(r.ledger_entries, "ledger entry", "ledger entries"),
                    if differing == 1 { "records" } else { "record" }
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "reproduced bit-for-bit: {} ({} {})",
                    count(r.checked.len(), "artifact", "artifacts"),
                    r.what,
                    r.id
                );
                for o in &r.restored {
                    let _ = writeln!(
                        s,
                        "restored {} (output of {}): it was {} in the store",
                        o.id, o.stage, o.was
                    );
                }
            }
            Some(d) => {
                let _ = writeln!(
                    s,
                    "NOT reproduced: {} {} first diverges at stage {}\n  recorded   {}\n  reproduced {}",
                    r.what,
                    r.id,
                    d.stage,
                    d.recorded.map_or_else(|| "(no such stage)".into(), |i| i.hex()),
                    d.reproduced.map_or_else(|| "(no such stage)".into(), |i| i.hex())
                );
                let same = r.checked.iter().take_while(|c| c.recorded == c.reproduced).count();
                let _ = writeln!(
                    s,
                    "  {same} earlier artifacts matched; recorded code: {}",
                    r.recorded_code.describe()
                );
            }
        }
        for m in &r.ledger_mismatches {
            let _ = writeln!(
                s,
                "  ledger entry at row {} ({} prediction {}, made {}): {} recorded {}, replayed {}",
                m.seq, m.channel, m.prediction, m.time, m.field, m.recorded, m.reproduced
            );
        }
        if !r.ledger_mismatches.is_empty() {
            s.push_str(
                "  the ledger was changed after the prediction was recorded: `mlpipe verify` checks its chain\n",
            );
        }
        if let Some(f) = &r.refetch {
            if f.same() {
                let _ = writeln!(
                    s,
                    "refetched {} as of {}: same snapshot {} ({} rows)",
                    f.source,
                    f.as_of.as_deref().unwrap_or("now"),
                    f.refetched.short(),
                    f.refetched_rows
                );
            } else {
                let _ = writeln!(
                    s,
                    "refetched {} as of {}: DIFFERENT snapshot {} ({} rows; recorded {} with {} rows)",
                    f.source,
                    f.as_of.as_deref().unwrap_or("now"),
                    f.refetched.short(),
                    f.refetched_rows,
                    f.recorded.short(),
                    f.recorded_rows
                );
            }
        }
        self.out(&s);
    }

    pub fn export(&self, r: &mlpipe::commands::export::ExportReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = format!(
            "wrote {} ({} bytes, {} nodes): run {}\n  inputs   {}\n  outputs  {}\n  precision {}\n",
            r.file.display(),
            r.bytes,
            r.nodes,
            &r.run[..12],
            r.inputs.len(),
            r.outputs.join(", "),
            r.precision
        );
        if let Some(v) = &r.verification {
            let _ = writeln!(
                s,
                "  verify   {} on {} test rows in onnxruntime {}: largest deviation {:.3e} absolute, {:.3e} relative (bound {:.0e}); {} labels and {} missing values differ",
                if v.passed() { "passed" } else { "FAILED" },
                v.rows,
                v.onnxruntime,
                v.max_abs,
                v.max_rel,
                mlpipe::commands::export::VERIFY_TOLERANCE,
                v.label_mismatches,
                v.nan_mismatches
            );
        }
        self.out(&s);
    }

    pub fn report(&self, r: &mlpipe::commands::report::ReportOut) {
        if self.json {
            return self.json_out(r);
        }
        self.out(&format!(
            "wrote the report of run {} to {} ({} bytes)\n",
            r.run.short(),
            r.path.display(),
            r.bytes
        ));
    }

    pub fn diff(&self, r: &DiffReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = format!("diff {} → {}\n", r.a.short(), r.b.short());
        if r.config.is_empty() {
            s.push_str("config   same\n");
        } else {
            s.push_str("config\n");
            for c in &r.config {
                change_line(&mut s, &c.path, c.old.as_deref(), c.new.as_deref());
            }
        }
        match &r.data {
            None => s.push_str("data     same snapshot\n"),
            Some(d) => data_lines(&mut s, d),
        }
        match &r.code {
            None => s.push_str("code     same\n"),
            Some(c) => {
                let _ = writeln!(s, "code     {} → {}", c.old, c.new);
            }
        }
        match &r.seed {
            None => s.push_str("seed     same\n"),
            Some(c) => {
                let _ = writeln!(s, "seed     {} → {}", c.old, c.new);
            }
        }
        if let Some(v) = &r.version {
            let _ = writeln!(s, "version  {} → {}", v.old, v.new);
        }
        s.push_str("stages\n");
        for st in &r.stages {
            let _ = writeln!(s, "  {:<28} {}", st.name, st.status);
        }
        if let Some(c) = &r.chosen {
            let _ = writeln!(s, "chosen   {} → {}", c.old, c.new);
        }
        s.push_str("metrics (test)\n");
        for m in &r.metrics {
            let f = |v: Option<f64>| v.map_or_else(|| "-".into(), fmt_num);
            let delta = m.delta.map_or_else(String::new, |d| format!("  ({d:+.6})"));
            let _ = writeln!(s, "  {:<6} {} → {}{delta}", m.name, f(m.a), f(m.b));
        }
        self.out(&s);
    }

    pub fn log(&self, r: &LogReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = String::new();
        for run in &r.runs {
            let _ = writeln!(
                s,
                "{}  {}  {:<20} {}",
                run.run.short(),
                run.created,
                run.pipeline_name,
                metrics_line(&run.metrics)
            );
        }
        for u in &r.unreadable {
            let _ = writeln!(s, "unreadable run record: {u}");
        }
        if r.runs.is_empty() && r.unreadable.is_empty() {
            s.push_str("no runs in this store\n");
        }
        self.out(&s);
    }

    pub fn show(&self, r: &ShowReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = format!("{} {}\n", r.kind, r.id);
        if r.kind == "data" {
            let _ = writeln!(s, "{} bytes; first lines:", r.size);
            for l in r.content.as_array().into_iter().flatten() {
                let _ = writeln!(s, "  {}", l.as_str().unwrap_or_default());
            }
        } else if let Some(text) = describe(r) {
            s.push_str(&text);
        } else {
            s.push_str(&serde_json::to_string_pretty(&r.content).unwrap_or_default());
            s.push('\n');
        }
        self.out(&s);
    }

    pub fn predict(&self, r: &PredictReport) {
        // When the predictions went to standard output, the report goes to standard error.
        let text = if self.json {
            serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
        } else {
            let added = if r.written == r.rows {
                String::new()
            } else {
                format!(" ({} new; the rest were already there)", r.written)
            };
            format!(
                "wrote {} predictions to {}{added}\nprediction {}\nmodel      {}\n",
                r.rows, r.target, r.prediction, r.model
            )
        };
        if r.to_stdout {
            let _ = std::io::stderr().write_all(text.as_bytes());
        } else {
            self.out(&text);
        }
    }

    /// The stream's own output is the predictions; its summary goes to standard error.
    #[allow(clippy::unused_self)]
    pub fn stream(&self, r: &StreamReport) {
        let _ = writeln!(
            std::io::stderr(),
            "stream ended: {} lines, {} predictions, {} errors",
            r.lines,
            r.predictions,
            r.errors
        );
    }

    pub fn serving(&self, r: &Ready) {
        if self.json {
            // One line, so a supervisor can read the address as soon as the server listens.
            let line = serde_json::to_string(r).unwrap_or_default();
            return self.out(&format!("{line}\n"));
        }
        let mut s = format!(
            "serving run {} (model {}) on http://{}\n",
            r.run,
            r.model.short(),
            r.addr
        );
        if let Some(sh) = &r.shadow {
            let _ = writeln!(s, "shadow run {sh}");
        }
        let _ = writeln!(s, "ledger {}", r.ledger);
        if r.token {
            let _ = writeln!(
                s,
                "token required: every request except /healthz and /openapi.json must carry it \
                 (Authorization: Bearer …)"
            );
        } else {
            let _ = writeln!(
                s,
                "no token: every request is answered (MLPIPE_TOKEN or --token-file asks for one)"
            );
        }
        self.out(&s);
    }

    pub fn served(&self, r: &ServeReport) {
        if self.json {
            let line = serde_json::to_string(r).unwrap_or_default();
            return self.out(&format!("{line}\n"));
        }
        self.out(&format!("stopped after {} predictions\n", r.predictions));
    }

    pub fn ledger(&self, entries: &[Entry]) {
        if self.json {
            return self.json_out(&entries);
        }
        let mut s = String::new();
        for e in entries {
            let value = e.value.map_or_else(|| format!("{} rows", e.rows), |v| format!("{v}"));
            let _ = writeln!(
                s,
                "{}  {:<6} {:<8} {}  run {}  {value}  {}",
                terminal_safe(&e.time),
                e.channel.name(),
                terminal_safe(&e.role),
                e.prediction,
                e.run.short(),
                terminal_safe(&e.source)
            );
        }
        if entries.is_empty() {
            s.push_str("no ledger entries match\n");
        }
        self.out(&s);
    }

    pub fn ledger_compare(&self, rows: &[Comparison]) {
        if self.json {
            return self.json_out(&rows);
        }
        let mut s = String::new();
        for c in rows {
            let _ = writeln!(s, "champion {}  shadow {}", c.champion.short(), c.shadow.short());
            let _ = writeln!(s, "  pairs {}  identical {}", c.pairs, c.identical);
            let _ = writeln!(
                s,
                "  |shadow - champion|: mean {:.6}  max {:.6}{}",
                c.mean_abs_difference,
                c.max_abs_difference,
                c.max_at
                    .map(|p| format!(" (prediction {})", p.short()))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "  mean relative difference {:.4}%  beyond {}%: {:.2}% of pairs  mean signed difference {:.6}",
                c.mean_relative_difference * 100.0,
                c.tolerance * 100.0,
                c.beyond_tolerance * 100.0,
                c.mean_signed_difference
            );
        }
        if rows.is_empty() {
            s.push_str("no shadow predictions in the ledger (serve with --shadow RUN)\n");
        }
        self.out(&s);
    }

    pub fn ledger_prune(&self, r: &PruneReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = format!(
            "removed {} made before {} and {} no entry uses\n",
            count(r.entries, "entry", "entries"),
            r.before,
            count(r.inputs, "input", "inputs")
        );
        if let Some(a) = &r.anchor {
            let _ = writeln!(
                s,
                "the chain now starts after position {}, from the removed entries' head {}",
                a.position, a.digest
            );
        }
        if r.kept_older > 0 {
            let _ = writeln!(
                s,
                "kept {} made before {} that follow a newer entry in the chain (only its oldest part can be removed)",
                count(r.kept_older, "entry", "entries"),
                r.before
            );
        }
        self.out(&s);
    }

    pub fn ledger_head(&self, h: &Head) {
        if self.json {
            return self.json_out(h);
        }
        let mut s = format!("head     {}\nentries  {}\n", h.digest, h.entries);
        match &h.anchor {
            Some(a) => {
                let _ = writeln!(
                    s,
                    "kept     {} (the first {} were pruned before {}; the chain starts from their head {})",
                    h.kept,
                    a.position,
                    terminal_safe(&a.pruned_before),
                    a.digest
                );
            }
            None => {
                let _ = writeln!(s, "kept     {}", h.kept);
            }
        }
        let _ = writeln!(s, "ledger   {}", h.ledger);
        self.out(&s);
    }

    pub fn data_diff(&self, d: &DataDiff) {
        if self.json {
            return self.json_out(d);
        }
        let mut s = String::new();
        if d.differs() {
            data_lines(&mut s, d);
        } else {
            let _ = writeln!(
                s,
                "data     same ({} and {} hold the same rows)",
                d.old.short(),
                d.new.short()
            );
        }
        self.out(&s);
    }

    pub fn snapshot(&self, r: &SnapshotReport) {
        if self.json {
            return self.json_out(r);
        }
        let what = if r.stored { "stored" } else { "hashed" };
        let mut s = format!("{}  ({what} {} bytes)\n", r.snapshot, r.bytes);
        if let Some(src) = &r.source {
            let _ = writeln!(s, "  source  {}", src.source);
            if let Some(t) = &src.as_of {
                let _ = writeln!(s, "  as of   {t}");
            }
            let _ = writeln!(s, "  rows    {}  columns {}", src.rows, src.columns.len());
            let _ = writeln!(s, "  sorted  by {}", src.order);
        }
        if let Some(p) = &r.exported {
            let _ = writeln!(s, "  exported to {}", p.display());
        }
        self.out(&s);
    }

    pub fn verify(&self, r: &VerifyReport) {
        if self.json {
            return self.json_out(r);
        }
        let mut s = format!(
            "checked {} objects ({} bytes) and {} refs\n",
            r.objects, r.bytes, r.refs
        );
        if r.ledger_entries > 0 {
            let _ = writeln!(
                s,
                "checked {} and {}",
                count(r.ledger_entries, "ledger entry", "ledger entries"),
                count(r.ledger_inputs, "record input", "record inputs")
            );
        }
        if let Some(c) = r.ledger_chain.as_ref().filter(|c| c.checked > 0) {
            let head = c.head.map_or_else(
                || "unreadable".into(),
                |h| format!("{} (entry {})", h.digest, h.position),
            );
            let _ = writeln!(
                s,
                "checked the ledger's chain: {} up to head {head}; {} compared with their replay",
                count(c.checked, "entry", "entries"),
                c.replayed
            );
        }
        for p in &r.repaired {
            let _ = writeln!(s, "  repaired {}: {}", p.id, p.what);
        }
        if !r.repaired.is_empty() {
            let _ = writeln!(s, "repaired {}; checked again", r.repaired.len());
        }
        for p in &r.problems {
            let _ = writeln!(s, "  {}: {}", p.id, p.what);
        }
        let ledger = r.problems.iter().filter(|p| p.ledger).count();
        if r.problems.is_empty() {
            s.push_str("store is consistent\n");
        } else if ledger < r.problems.len() {
            let _ = writeln!(
                s,
                "{}; `mlpipe run` recomputes stage outputs, `mlpipe reproduce <run>` restores a run's objects, \
                 `mlpipe verify --repair` moves damaged refs aside and writes refs again from their records",
                count(r.problems.len(), "problem", "problems")
            );
        }
        if ledger > 0 {
            let _ = writeln!(
                s,
                "{} in the ledger: `mlpipe verify --repair` cannot mend a ledger edited outside mlpipe; restore it \
                 from a backup (a head anchored earlier, compared with `mlpipe ledger head --at N`, tells which backup \
                 is intact)",
                count(ledger, "problem", "problems")
            );
        }
        self.out(&s);
    }

    pub fn gc(&self, r: &GcReport) {
        if self.json {
            return self.json_out(r);
        }
        let (verb, clear) = if r.dry_run {
            ("would remove", "would clear")
        } else {
            ("removed", "cleared")
        };
        let mut s = format!(
            "{verb} {} objects ({} bytes) and {} stage keys; kept {}; {clear} {} temp files\n",
            r.removed, r.bytes_removed, r.stage_keys_removed, r.kept, r.temp_files_removed
        );
        if r.damaged_left > 0 {
            let _ = writeln!(
                s,
                "left {} damaged refs or misplaced entries in place: `mlpipe verify` lists them, `mlpipe verify --repair` moves them aside",
                r.damaged_left
            );
        }
        self.out(&s);
    }
}

/// `n` and its noun, singular for one.
fn count<N: Copy + std::fmt::Display + TryInto<u64>>(n: N, one: &str, many: &str) -> String {
    let noun = mlpipe::ledger::plural(n.try_into().unwrap_or(u64::MAX), one, many);
    format!("{n} {noun}")
}

/// Ledger cells are text anyone with the database could have written: shown as they are unless they
/// hold control characters (a terminal escape, a NUL), which are shown escaped.
/// Line breaks stay, every other control character is escaped (the rest of the text as it is).
fn lines_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        std::borrow::Cow::Owned(text.escape_debug().to_string())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

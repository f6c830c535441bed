//! Stage progress on standard error: a spinner line per stage on a terminal, plain lines otherwise
//! (and whenever `CI` is set), nothing with `--json`.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use mlpipe::executor::{Progress, StageResult};

pub struct StageProgress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl StageProgress {
    pub fn new(json: bool) -> StageProgress {
        let interactive = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && !super::CI_FLAG.load(std::sync::atomic::Ordering::Relaxed);
        let bar = (interactive && !json).then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}") {
                bar.set_style(style);
            }
            // Keep the spinner turning while one long stage runs.
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        StageProgress {
            bar,
            plain: !interactive && !json,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn line(result: &StageResult) -> String {
    let status = if result.cached { "cached" } else { "ran" };
    format!(
        "{:<28} {:<7} {:>8.3}s  {}",
        result.name,
        status,
        result.seconds,
        result.output.short()
    )
}

impl Progress for StageProgress {
    fn stage_started(&self, name: &str, index: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(index as u64);
            bar.set_message(name.to_string());
        }
    }

    fn stage_finished(&self, result: &StageResult) {
        if let Some(bar) = &self.bar {
            bar.println(line(result));
        } else if self.plain {
            let _ = writeln!(std::io::stderr(), "{}", line(result));
        }
    }

    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => {
                let _ = writeln!(std::io::stderr(), "warning: {message}");
            }
        }
    }
}

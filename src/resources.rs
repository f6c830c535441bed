//! How much memory this process may still take, and the check that a data file fits before it is read.
//! mlpipe holds a data set in memory (parsed columns, the split, each step's output); a file that cannot
//! fit is refused with its size and the limit it meets, instead of dying mid-run on a failed allocation.

use std::path::Path;

use crate::error::{Error, Result};

/// The bytes read and the columns parsed from them: a data file takes at least this many times its size
/// in memory while it is read.
pub const MIN_BYTES_PER_FILE_BYTE: u64 = 2;

/// What the house-price pipeline peaks at, per byte of its data file (2.4× on a million generated rows
/// on two cores, bench/RESULTS.md), with [`TYPICAL_BYTES_PER_CORE`]: a run whose file needs more than the budget at this rate gets a warning,
/// not a refusal (leaner pipelines take less).
pub const TYPICAL_BYTES_PER_FILE_BYTE: u64 = 4;

/// What each core adds to a run's peak whatever the file's size, while gather parses (a piece's records
/// and columns, the allocator's per-thread heaps): on a small file and many cores this, not the file,
/// sets the peak.
pub const TYPICAL_BYTES_PER_CORE: u64 = 32 << 20;

/// The tightest memory bound on this process and what sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub set_by: &'static str,
}

/// The most bytes decoded rows of a compressed file (Parquet, Arrow IPC) may take: what a CSV file that
/// passes the memory check could take, so a small file that expands enormously is refused.
pub fn decoded_limit() -> usize {
    let limit = memory_budget().map_or(u64::MAX, |b| b.bytes / MIN_BYTES_PER_FILE_BYTE);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The least of: available system memory, the cgroup's limit less its use, the address-space limit less
/// what is mapped. `None` where none of them can be read (not Linux).
pub fn memory_budget() -> Option<Budget> {
    let mut budgets = Vec::new();
    if let Some(kb) = field_kb(&read("/proc/meminfo"), "MemAvailable:") {
        budgets.push(Budget {
            bytes: kb * 1024,
            set_by: "available system memory",
        });
    }
    let max = read("/sys/fs/cgroup/memory.max");
    let current = read("/sys/fs/cgroup/memory.current");
    if let (Ok(max), Ok(current)) = (max.trim().parse::<u64>(), current.trim().parse::<u64>()) {
        budgets.push(Budget {
            bytes: max.saturating_sub(current),
            set_by: "the cgroup's memory limit, memory.max",
        });
    }
    if let Some(limit) = address_space_limit(&read("/proc/self/limits")) {
        let mapped = field_kb(&read("/proc/self/status"), "VmSize:").unwrap_or(0) * 1024;
        budgets.push(Budget {
            bytes: limit.saturating_sub(mapped),
            set_by: "the address-space limit, ulimit -v",
        });
    }
    budgets.into_iter().min_by_key(|b| b.bytes)
}

/// Refuses a data file that cannot fit in the memory budget, before anything is read or stored.
pub fn check_fits(path: &Path, what: &str) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // the read that follows names the problem
    };
    let Some(budget) = memory_budget() else {
        return Ok(());
    };
    let needed = meta.len().saturating_mul(MIN_BYTES_PER_FILE_BYTE);
    if needed <= budget.bytes {
        return Ok(());
    }
    Err(Error::data(format!(
        "{what} {} is {}; holding it in memory takes at least {} ({MIN_BYTES_PER_FILE_BYTE}× its size), \
         but only {} is available (bound by {})",
        path.display(),
        human(meta.len()),
        human(needed),
        human(budget.bytes),
        budget.set_by
    ))
    .with_hint(
        "mlpipe holds a data set in memory: run on a machine with more memory, raise the limit, \
         or split the file (e.g. fewer rows) and run on a part",
    ))
}

/// A warning when a data file passes [`check_fits`] but may not fit at a typical pipeline's peak.
pub fn memory_warning(path: &Path) -> Option<String> {
    let size = std::fs::metadata(path).ok()?.len();
    let budget = memory_budget()?;
    let cores = rayon::current_num_threads() as u64;
    let typical = size
        .saturating_mul(TYPICAL_BYTES_PER_FILE_BYTE)
        .saturating_add(cores.saturating_mul(TYPICAL_BYTES_PER_CORE));
    // Below the least a run takes, `check_fits` refuses the file: no warning before that error.
    let least = size.saturating_mul(MIN_BYTES_PER_FILE_BYTE);
    (typical > budget.bytes && least <= budget.bytes).then(|| {
        format!(
            "{} is {}: a pipeline like the house-price one peaks near {} ({TYPICAL_BYTES_PER_FILE_BYTE}× its size and {} a core on {cores} cores), \
             and only {} is available (bound by {}); the run may run out of memory and be stopped (the store stays consistent)",
            path.display(),
            human(size),
            human(typical),
            human(TYPICAL_BYTES_PER_CORE),
            human(budget.bytes),
            budget.set_by
        )
    })
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A `Name:   1234 kB` line of /proc/meminfo or /proc/self/status, in kB.
fn field_kb(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The soft "Max address space" of /proc/self/limits, in bytes; `None` when unlimited.
fn address_space_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut x = bytes as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_formats() {
        let status = "Name:\tmlpipe\nVmPeak:\t  20000 kB\nVmSize:\t   12345 kB\n";
        assert_eq!(field_kb(status, "VmSize:"), Some(12345));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max address space         536870912            unlimited            bytes     \n";
        assert_eq!(address_space_limit(limits), Some(536_870_912));
        let unlimited = "Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(address_space_limit(unlimited), None);
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(17 << 30), "17.0 GiB");
    }
}

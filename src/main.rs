//! The `mlpipe` binary: parse arguments, run one command, turn the outcome into an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    return_freed_memory();
    cli::main()
}

/// glibc raises its mmap threshold each time a large block is freed (up to 32 MiB); blocks below it
/// then come from its heaps, which keep what is freed. A run frees column-sized blocks all the time (the
/// parsed pieces of a CSV file, the table cut into train and test), so a million-row run held 0.5 GB
/// it no longer used and peaked 55 % higher (bench/RESULTS.md). A fixed threshold keeps every block
/// above 64 KiB a mapping of its own, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_freed_memory() {
    // SAFETY: `mallopt` takes two integers and changes only the allocator's settings; it runs first
    // thing in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory() {}

//! The tests that measure this process's own memory, in a binary of their
//! own: beside the tests of `tests/all`, whatever those hold at the moment
//! would count in the figures. Each test here holds [`MEASURING`] while it
//! runs, so that they do not disturb one another's figures either.

mod hostile_guest;
mod soak;

/// Held by each test for as long as it measures (`lock().await` in an
/// async test, `blocking_lock()` in the others). Not a `std` mutex: the
/// async soak holds it across its awaits.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A figure of this process's `/proc/self/status`, such as `VmRSS`, in KiB.
fn status_kib(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in kB in /proc/self/status"))
}

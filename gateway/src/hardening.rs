//! Process hardening at start. The gateway holds the store's master key for
//! its whole life and a no-JS report's plaintext for a moment: a core dump
//! would write them to disk, and another process of the same user could
//! read them through ptrace or /proc/PID/mem. A non-dumpable process allows
//! neither (only root, with CAP_SYS_PTRACE, can still read it). The systemd
//! unit also sets `LimitCORE=0`; `setrlimit` itself is outside its syscall
//! filter, so it is not called here.

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the process non-dumpable: {0}")]
pub struct HardeningError(#[from] std::io::Error);

/// Marks the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): no core
/// file, no ptrace or /proc/PID/mem for processes of the same user. Call it
/// before reading any key. A no-op off Linux.
pub fn forbid_core_dumps() -> Result<(), HardeningError> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError(e.into()))?;
    Ok(())
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_no_longer_dumpable() {
        forbid_core_dumps().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rustix::process::dumpable_behavior().ok(),
            Some(rustix::process::DumpableBehavior::NotDumpable)
        );
    }
}

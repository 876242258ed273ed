//! Giving freed memory back to the system. When a flood of connections
//! leaves, the gateway frees what they held, but glibc's allocator keeps the
//! freed pages inside its heaps for reuse, so the process stays at the
//! flood's size (measured: 52 MiB after the HTTP/2 stall attack of
//! `tests/tests/edge.rs`, against 13 MiB idle) on a server whose whole
//! budget may be 512 MB. `malloc_trim` returns those pages.
//!
//! This is the crate's one `unsafe` block: a call into glibc that takes no
//! pointer from us. Nothing else in the gateway may use `unsafe`.
#![allow(unsafe_code)]

/// How often free pages are given back: soon after a flood ends, and rarely
/// enough to cost nothing (a trim of a small heap takes well under a
/// millisecond).
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Returns the allocator's free pages to the system.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(0) walks glibc's own arenas under their locks and
    // releases free pages; it reads no memory of ours and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

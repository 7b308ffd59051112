//! SIGINT/SIGTERM → a flag the shard loops poll.
//!
//! Owns the process-wide "shutdown requested" flag and the two signal handlers that set it.
//! Promises: the handler only stores to an atomic (async-signal-safe); installing twice is
//! harmless. Must not: do anything else inside the handler — the shards notice the flag at their
//! next loop iteration (at most one idle sleep later) and run the phased shutdown themselves.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the handler; never cleared by it. Process-wide because signal handlers are.
static SHUTDOWN_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    SHUTDOWN_REQUESTED.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM (with `SA_RESTART`, so blocking calls elsewhere
/// in the process are not interrupted with `EINTR`).
pub fn install_shutdown_handlers() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we then set the
        // handler to a function that only touches an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, core::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM has arrived (after [`install_shutdown_handlers`]).
#[inline]
pub fn shutdown_requested() -> bool {
    SHUTDOWN_REQUESTED.load(Ordering::Relaxed)
}

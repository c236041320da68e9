//! Ctrl-C and SIGTERM as a flag: the handler only stores to an atomic (async-signal-safe); the main
//! loop polls [`stop_requested`].

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // SYNC: Relaxed is enough: the main loop only needs to see the flag eventually, and reads no
    // other data written here.
    SIGNAL.store(sig, Ordering::Relaxed);
    STOP.store(true, Ordering::Relaxed);
}

/// Installs handlers for SIGINT and SIGTERM that set the stop flag.
///
/// # Errors
/// When `sigaction` fails.
pub fn install() -> nix::Result<&'static AtomicBool> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: `on_signal` is async-signal-safe: it only stores to two atomics.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(&STOP)
}

/// The stop flag (set by a signal or by [`request_stop`]).
pub fn flag() -> &'static AtomicBool {
    &STOP
}

/// True once SIGINT or SIGTERM arrived or [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The signal that asked to stop, 0 when none did.
pub fn received_signal() -> i32 {
    SIGNAL.load(Ordering::Relaxed)
}

/// Sets the stop flag from code (e.g. when `--duration` runs out).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

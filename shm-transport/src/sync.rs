//! The one place atomics come from: std's in normal builds, loom's under `--cfg loom`, so the
//! ring protocol can be model-checked exhaustively (the pattern tokio's `loom/` module uses).

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
const _: () = {
    // Shared-memory atomics must be lock-free on the target, or two processes would not see each
    // other's updates.
    assert!(cfg!(target_has_atomic = "64"));
    assert!(cfg!(target_has_atomic = "32"));
};

/// A busy-wait hint: a scheduling point under loom (so models of retry loops terminate), the CPU's
/// pause instruction otherwise.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

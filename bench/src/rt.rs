//! Real-time set-up of a peer process: CPU pinning, SCHED_FIFO, locked memory.

use anyhow::{Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::mman::{mlockall, MlockAllFlags};
use nix::unistd::Pid;

/// SCHED_FIFO priority of both peers: above every normal task and the default threaded-IRQ
/// priority (50), below the kernel's migration and watchdog threads (99).
pub const FIFO_PRIORITY: i32 = 80;

/// The first two CPUs this process may run on (the peers' cores), or an error naming the
/// allowed set when there are fewer than two.
pub fn pick_cores() -> Result<[usize; 2]> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    let allowed: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    match allowed[..] {
        [a, b, ..] => Ok([a, b]),
        _ => anyhow::bail!("the two peers need two CPUs, this process may only use {allowed:?}"),
    }
}

/// What the real-time set-up achieved.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct RtState {
    /// The core this process is pinned to.
    pub core: usize,
    /// Whether SCHED_FIFO was applied.
    pub fifo: bool,
    /// Whether `mlockall(MCL_CURRENT)` at start-up succeeded.
    pub mlocked: bool,
}

/// Pins the calling process to `core` (an error if that fails: the measurement would be
/// meaningless), then, if `fifo`, tries SCHED_FIFO, and `mlockall(MCL_CURRENT)` (best effort,
/// both reported back).
pub fn setup(core: usize, fifo: bool) -> Result<RtState> {
    let mut set = CpuSet::new();
    set.set(core)
        .with_context(|| format!("core {core} is out of range"))?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("sched_setaffinity to core {core}"))?;
    let param = libc::sched_param {
        sched_priority: FIFO_PRIORITY,
    };
    // SAFETY: plain system call on the calling process (pid 0) with a valid, initialised
    // sched_param that outlives the call.
    let fifo = fifo && unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
    let mlocked = lock_current();
    Ok(RtState {
        core,
        fifo,
        mlocked,
    })
}

/// Locks (and so faults in) everything mapped now: `mlockall(MCL_CURRENT)`, best effort.
///
/// Called after a peer has built its end of the channel, so shared-memory segments and buffers
/// are resident before the first measured message. (`MCL_FUTURE` is avoided on purpose: under a
/// low `RLIMIT_MEMLOCK` it makes later allocations fail.)
pub fn lock_current() -> bool {
    mlockall(MlockAllFlags::MCL_CURRENT).is_ok()
}

//! Real-time set-up of the calling thread, and the clock and resource probes the real-time path uses.
//!
//! [`setup_current_thread`] asks for `SCHED_FIFO` at a priority, pins the thread to a CPU, locks the
//! process's memory (`mlockall(MCL_CURRENT | MCL_FUTURE)`) and prefaults a stretch of stack, so the
//! steady-state loop that follows takes no page fault. Where the host refuses a step, the thread keeps
//! running (under `SCHED_OTHER` if the scheduler refused), the refusal is logged ONCE per process with
//! `tracing::warn!`, and the returned [`RtStatus`] says what actually holds; the node puts it into its
//! stats and trace header.
//!
//! [`now_ns`] reads `CLOCK_MONOTONIC` (the clock of every stage stamp; vDSO, no system call),
//! [`sleep_until_ns`] sleeps to an absolute time with `clock_nanosleep(TIMER_ABSTIME)` (drivers use it
//! for drift-free rates), and [`thread_usage`] reads `getrusage(RUSAGE_THREAD)` for the fault counters
//! the steady-state tests assert on.
//!
//! # Example
//! ```
//! use fusion::rt::{setup_current_thread, thread_usage, RtConfig};
//! let status = setup_current_thread(&RtConfig { fifo_priority: None, ..RtConfig::default() });
//! assert_eq!(status.policy.as_str(), "SCHED_OTHER");
//! let before = thread_usage();
//! let after = thread_usage();
//! assert!(after.minor_faults >= before.minor_faults);
//! ```

use std::fmt;
use std::sync::Once;

/// Scheduling policy a thread runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum SchedPolicy {
    /// `SCHED_FIFO`: fixed-priority real-time.
    Fifo,
    /// `SCHED_OTHER`: the ordinary time-sharing scheduler.
    Other,
}

impl SchedPolicy {
    /// The kernel's name for the policy, as the trace header spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedPolicy::Fifo => "SCHED_FIFO",
            SchedPolicy::Other => "SCHED_OTHER",
        }
    }
}

impl fmt::Display for SchedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a thread asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RtConfig {
    /// `SCHED_FIFO` priority (1..=99); `None` runs `SCHED_OTHER` on purpose (not a refusal).
    pub fifo_priority: Option<i32>,
    /// CPU to pin the thread to; `None` leaves the affinity alone.
    pub cpu: Option<usize>,
    /// Call `mlockall(MCL_CURRENT | MCL_FUTURE)` (process-wide).
    pub lock_memory: bool,
    /// KiB of stack to touch now so later calls do not fault stack pages in.
    pub prefault_stack_kib: usize,
}

impl Default for RtConfig {
    fn default() -> Self {
        RtConfig {
            fifo_priority: Some(80),
            cpu: None,
            lock_memory: true,
            prefault_stack_kib: 256,
        }
    }
}

/// What the thread actually got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RtStatus {
    /// Policy in force after set-up (read back from the kernel).
    pub policy: SchedPolicy,
    /// `SCHED_FIFO` priority in force, 0 under `SCHED_OTHER`.
    pub priority: i32,
    /// CPU the thread is pinned to, if pinning succeeded.
    pub cpu: Option<usize>,
    /// Whether `mlockall` succeeded.
    pub mlocked: bool,
    /// Every refusal of the host, joined with "; " (`None` when everything asked for was granted).
    pub refused_reason: Option<String>,
}

impl RtStatus {
    /// True when the thread runs under `SCHED_FIFO`.
    pub fn is_fifo(&self) -> bool {
        self.policy == SchedPolicy::Fifo
    }
}

impl fmt::Display for RtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.policy)?;
        if self.is_fifo() {
            write!(f, " prio {}", self.priority)?;
        }
        match self.cpu {
            Some(c) => write!(f, ", cpu {c}")?,
            None => write!(f, ", any cpu")?,
        }
        write!(
            f,
            ", {}",
            if self.mlocked {
                "mlocked"
            } else {
                "not mlocked"
            }
        )?;
        if let Some(r) = &self.refused_reason {
            write!(f, " (refused: {r})")?;
        }
        Ok(())
    }
}

static REFUSAL_WARNED: Once = Once::new();

/// Applies `cfg` to the calling thread and reports what holds.
///
/// Never fails: each refused step is recorded in [`RtStatus::refused_reason`] and logged once per
/// process. Call it at the start of the thread, before the buffers of the steady-state loop are
/// allocated (so `MCL_FUTURE` locks them as they appear).
///
/// # Examples
/// ```
/// let s = fusion::rt::setup_current_thread(&fusion::rt::RtConfig {
///     fifo_priority: None, cpu: None, lock_memory: false, prefault_stack_kib: 64 });
/// assert!(!s.is_fifo());
/// ```
pub fn setup_current_thread(cfg: &RtConfig) -> RtStatus {
    let mut refusals: Vec<String> = Vec::new();

    let cpu = cfg.cpu.and_then(|c| match pin_to_cpu(c) {
        Ok(()) => Some(c),
        Err(e) => {
            refusals.push(format!("CPU affinity {c}: {e}"));
            None
        }
    });

    let mlocked = cfg.lock_memory
        && match lock_all_memory() {
            Ok(()) => true,
            Err(e) => {
                refusals.push(format!(
                    "mlockall: {e} (raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK)"
                ));
                false
            }
        };

    if let Some(prio) = cfg.fifo_priority {
        if let Err(e) = set_fifo(prio) {
            refusals.push(format!(
                "SCHED_FIFO priority {prio}: {e} (needs CAP_SYS_NICE or RLIMIT_RTPRIO >= {prio})"
            ));
        }
    } else {
        // Deliberately SCHED_OTHER: make sure a priority inherited from the spawning thread is dropped.
        let _ = set_other();
    }

    prefault_stack(cfg.prefault_stack_kib);

    let (policy, priority) = current_policy();
    let refused_reason = (!refusals.is_empty()).then(|| refusals.join("; "));
    if let Some(reason) = &refused_reason {
        REFUSAL_WARNED.call_once(|| {
            tracing::warn!(
                "real-time set-up refused by the host: {reason}; running under {policy} — latency is \
                 not bounded (recorded in stats and traces)"
            );
        });
    }
    RtStatus {
        policy,
        priority,
        cpu,
        mlocked,
        refused_reason,
    }
}

fn errno_err(what: &str, rc: i32) -> String {
    format!("{what} failed: {}", std::io::Error::from_raw_os_error(rc))
}

fn set_fifo(prio: i32) -> Result<(), String> {
    // SAFETY: sched_get_priority_{min,max} only read their integer argument.
    let (lo, hi) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_FIFO),
            libc::sched_get_priority_max(libc::SCHED_FIFO),
        )
    };
    if prio < lo || prio > hi {
        return Err(format!("priority out of range {lo}..={hi}"));
    }
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: pthread_self() is the calling, live thread; `param` is a valid sched_param on our stack.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(errno_err("pthread_setschedparam", rc));
    }
    Ok(())
}

fn set_other() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pthread_self() is the calling, live thread; `param` is a valid sched_param on our stack.
    let rc =
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_OTHER, &param) };
    if rc != 0 {
        return Err(errno_err("pthread_setschedparam", rc));
    }
    Ok(())
}

fn current_policy() -> (SchedPolicy, i32) {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both out-pointers point to live locals of the right types.
    let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    if rc == 0 && policy == libc::SCHED_FIFO {
        (SchedPolicy::Fifo, param.sched_priority)
    } else {
        (SchedPolicy::Other, 0)
    }
}

fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|e| format!("CPU {cpu} out of range: {e}"))?;
    // Pid 0 = the calling thread for sched_setaffinity.
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("sched_setaffinity: {e}"))
}

fn lock_all_memory() -> Result<(), String> {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE).map_err(|e| e.to_string())
}

/// Touches `kib` KiB of the calling thread's stack, one 4 KiB frame at a time, so the pages are
/// resident before the real-time loop runs.
pub fn prefault_stack(kib: usize) {
    #[inline(never)]
    fn touch(pages: usize) {
        let mut page = [0u8; 4096];
        // Volatile-ish: black_box keeps the writes and the frame.
        std::hint::black_box(&mut page);
        if pages > 1 {
            touch(pages - 1);
        }
        std::hint::black_box(&page);
    }
    if kib >= 4 {
        touch(kib / 4);
    }
}

/// `clock` now, in nanoseconds.
#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; the callers pass clocks that always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (the clock of every stage stamp; no system call via vDSO).
#[inline]
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `deadline_ns` (`clock_nanosleep` with `TIMER_ABSTIME`, so
/// periodic loops do not drift). Returns at once for a deadline in the past; resumes after signals.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// Resource counters of the calling thread (`getrusage(RUSAGE_THREAD)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ThreadUsage {
    /// Page faults served without I/O.
    pub minor_faults: u64,
    /// Page faults that needed I/O.
    pub major_faults: u64,
    /// Voluntary context switches (blocking).
    pub voluntary_switches: u64,
    /// Involuntary context switches (preemption).
    pub involuntary_switches: u64,
}

impl ThreadUsage {
    /// Counter growth from `earlier` to `self`.
    pub fn since(&self, earlier: &ThreadUsage) -> ThreadUsage {
        ThreadUsage {
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }
}

/// CPU time the calling thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): its work
/// alone, without the time it was preempted, stalled or waiting. A system call (not in the vDSO),
/// no allocation.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Reads the calling thread's fault and context-switch counters. One system call, no allocation.
pub fn thread_usage() -> ThreadUsage {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live, writable rusage; RUSAGE_THREAD is supported on Linux >= 2.6.26.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    if rc != 0 {
        return ThreadUsage::default();
    }
    ThreadUsage {
        minor_faults: ru.ru_minflt as u64,
        major_faults: ru.ru_majflt as u64,
        voluntary_switches: ru.ru_nvcsw as u64,
        involuntary_switches: ru.ru_nivcsw as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_is_absolute_and_monotonic() {
        let t0 = now_ns();
        sleep_until_ns(t0 + 2_000_000);
        assert!(now_ns() >= t0 + 2_000_000);
        sleep_until_ns(t0); // past deadline returns at once
    }

    #[test]
    fn refusals_are_reported_and_the_thread_keeps_running_under_sched_other() {
        // A priority the kernel cannot grant and a CPU that does not exist: refused even as root.
        let s = std::thread::spawn(|| {
            setup_current_thread(&RtConfig {
                fifo_priority: Some(150),
                cpu: Some(100_000),
                lock_memory: false,
                prefault_stack_kib: 16,
            })
        })
        .join()
        .unwrap();
        assert_eq!((s.policy, s.priority, s.cpu), (SchedPolicy::Other, 0, None));
        let why = s.refused_reason.unwrap();
        assert!(
            why.contains("SCHED_FIFO priority 150") && why.contains("CPU"),
            "{why}"
        );
    }

    #[test]
    fn display_names_refusals() {
        let s = RtStatus {
            policy: SchedPolicy::Other,
            priority: 0,
            cpu: None,
            mlocked: false,
            refused_reason: Some("SCHED_FIFO priority 80: EPERM".into()),
        };
        let text = s.to_string();
        assert!(
            text.contains("SCHED_OTHER") && text.contains("refused: SCHED_FIFO"),
            "{text}"
        );
    }
}

//! Calibration on this host: the measured figures the bound needs.
//!
//! * **t_cc** — cross-core cache-line transfer: two threads pinned to different CPUs ping-pong an
//!   atomic in one cache line; a round trip moves the line twice, so one sample is half the
//!   round-trip time (averaged over a batch of [`PINGPONG_BATCH`] round trips to keep clock
//!   overhead out).
//! * **t_enq** — driver enqueue: writing a 64-byte descriptor into a ring slot and publishing the
//!   tail with a Release store, timed one at a time (clock overhead subtracted).
//! * **T_sched (timer)** — wake-up latency of a SCHED_FIFO thread at the given priority, measured the
//!   way cyclictest does: sleep to an absolute `CLOCK_MONOTONIC` deadline with `clock_nanosleep`
//!   and record how late the thread runs. If SCHED_FIFO is refused the thread stays SCHED_OTHER
//!   and a note says so.
//! * **T_sched (futex)** — a thread sleeping in `FUTEX_WAIT` on one CPU, woken by `FUTEX_WAKE` from
//!   another; the latency is from just before the wake call to the sleeper running.
//!
//! Each figure is a [`Stat`] (count, min, median, p99, p99.99, max). The bound uses the maxima of
//! the wake-up latencies (their outliers are exactly what T_sched must cover) and the p99.99 of the
//! per-operation costs t_cc and t_enq: a sample of a ~100 ns operation that takes milliseconds is an
//! interruption of the measuring thread (interrupt, hypervisor exit), not the operation's cost —
//! and whether such interruptions break the bound is what the trace verdict checks. The t_cc and
//! t_enq threads run SCHED_FIFO where permitted, to keep such interruptions rare.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Round trips averaged into one t_cc sample.
pub const PINGPONG_BATCH: u32 = 16;

/// Summary of a set of samples (ns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Number of samples; 0 means the figure could not be measured (see the notes).
    pub samples: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Median.
    pub median_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.99th percentile.
    #[serde(default)]
    pub p9999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

impl Stat {
    /// Summarises samples (sorts them in place).
    pub fn from_samples(v: &mut [u64]) -> Stat {
        if v.is_empty() {
            return Stat::default();
        }
        v.sort_unstable();
        let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        Stat {
            samples: v.len() as u64,
            min_ns: v[0],
            median_ns: at(0.5),
            p99_ns: at(0.99),
            p9999_ns: at(0.9999),
            max_ns: v[v.len() - 1],
        }
    }
}

/// What the calibration knows about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Kernel version string (`uname -v`).
    pub kernel_version: String,
    /// PREEMPT_RT kernel (`/sys/kernel/realtime` is 1, or `uname -v` says PREEMPT_RT).
    pub preempt_rt: bool,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Isolated CPUs (`/sys/devices/system/cpu/isolated`), empty when none.
    pub isolated_cpus: String,
    /// RT throttling: SCHED_FIFO threads get `rt_runtime_us` of every `rt_period_us`
    /// (`/proc/sys/kernel/sched_rt_*`); −1 means throttling is off, 0/0 that it is unknown.
    #[serde(default)]
    pub rt_runtime_us: i64,
    /// See `rt_runtime_us`.
    #[serde(default)]
    pub rt_period_us: i64,
    /// Whether the kernel accounts interrupt time apart from the interrupted thread's CPU time
    /// (see [`irq_time_accounted`]); `None`: unknown (older calibration files, unreadable config).
    /// Without it the fusion thread's CPU time per step includes interrupts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irq_time_accounting: Option<bool>,
}

/// The running kernel's build configuration: `/proc/config.gz`, else `/boot/config-<release>`.
pub fn kernel_config() -> Option<String> {
    use std::io::Read;
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

/// Whether the running kernel accounts interrupt time apart from threads (see
/// [`irq_time_accounted`]): its configuration and `/proc/cmdline`.
pub fn irq_time_accounted_here() -> Option<bool> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    irq_time_accounted(kernel_config().as_deref(), &cmdline)
}

/// Whether a kernel with build configuration `config` and command line `cmdline` accounts
/// interrupt time apart from threads (`CONFIG_IRQ_TIME_ACCOUNTING=y` and no `noirqtime`);
/// `None` without a configuration.
pub fn irq_time_accounted(config: Option<&str>, cmdline: &str) -> Option<bool> {
    let config = config?;
    let built = config
        .lines()
        .any(|l| l.trim() == "CONFIG_IRQ_TIME_ACCOUNTING=y");
    Some(built && !cmdline.split_whitespace().any(|w| w == "noirqtime"))
}

impl HostInfo {
    /// Reads the description of this host.
    pub fn probe() -> HostInfo {
        // SAFETY: `utsname` is plain old data; all-zero is a valid value.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable utsname.
        let ok = unsafe { libc::uname(&mut u) } == 0;
        let field = |f: &[libc::c_char]| {
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let (hostname, kernel, kernel_version) = if ok {
            (field(&u.nodename), field(&u.release), field(&u.version))
        } else {
            Default::default()
        };
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let preempt_rt =
            read("/sys/kernel/realtime") == "1" || kernel_version.contains("PREEMPT_RT");
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_default();
        HostInfo {
            hostname,
            kernel,
            kernel_version,
            preempt_rt,
            cpu_model,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isolated_cpus: read("/sys/devices/system/cpu/isolated"),
            rt_runtime_us: read("/proc/sys/kernel/sched_rt_runtime_us")
                .parse()
                .unwrap_or(0),
            rt_period_us: read("/proc/sys/kernel/sched_rt_period_us")
                .parse()
                .unwrap_or(0),
            irq_time_accounting: irq_time_accounted_here(),
        }
    }
}

/// The calibration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The host measured.
    pub host: HostInfo,
    /// Cross-core cache-line transfer time per line (t_cc).
    pub cache_line_transfer: Stat,
    /// Enqueue cost: 64-byte descriptor write + Release store (t_enq).
    pub enqueue: Stat,
    /// Timer wake-up latency of the measuring thread (cyclictest method).
    pub fifo_wakeup: Stat,
    /// Futex wake-up latency across CPUs.
    pub futex_wakeup: Stat,
    /// Scheduling policy the wake-up measurements ran under ("SCHED_FIFO" or "SCHED_OTHER").
    pub policy: String,
    /// SCHED_FIFO priority requested.
    pub priority: i32,
    /// CPUs used (producer/waker, consumer/sleeper).
    pub cpus: (usize, usize),
    /// Total time spent measuring, seconds.
    pub duration_s: f64,
    /// What went differently from the plan (RT refused, one CPU only, …).
    pub notes: Vec<String>,
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// Total measuring time, split over the four measurements.
    pub duration: Duration,
    /// SCHED_FIFO priority for the wake-up measurements (the fusion thread's priority).
    pub priority: i32,
    /// CPUs to use (first: producer/waker, second: consumer/sleeper); default the first two.
    pub cpus: Option<(usize, usize)>,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            duration: Duration::from_secs(4),
            priority: 80,
            cpus: None,
        }
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (the clock of traces and shm-transport stamps).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until the absolute `CLOCK_MONOTONIC` time `deadline_ns` (`clock_nanosleep`,
/// `TIMER_ABSTIME`), the way cyclictest does.
pub fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null for TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Pins the calling thread to `cpu`.
///
/// # Errors
/// The `sched_setaffinity` error, in words.
pub fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes inside `set`; cpu is checked against the set's capacity by libc.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "sched_setaffinity(cpu {cpu}): {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// The CPUs the calling thread may run on, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; 0 means the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, inside `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Makes the calling thread SCHED_FIFO at `priority`.
///
/// # Errors
/// The `sched_setscheduler` error, in words (EPERM without CAP_SYS_NICE or RLIMIT_RTPRIO).
pub fn set_fifo(priority: i32) -> Result<(), String> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param; 0 means the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "SCHED_FIFO priority {priority} refused: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the whole call; `ts` outlives the call. A spurious
    // return is harmless: callers re-check the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

#[repr(align(64))]
struct Line(AtomicU64);

/// Ping-pong of one cache line between two CPUs for `budget`.
fn cache_line_transfer(
    cpus: (usize, usize),
    priority: i32,
    budget: Duration,
    notes: &mut Vec<String>,
) -> Stat {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let (l2, s2) = (line.clone(), stop.clone());
    let echo = std::thread::spawn(move || {
        let _ = pin(cpus.1);
        let _ = set_fifo(priority);
        let mut expect = 1u64;
        while !s2.load(Ordering::Relaxed) {
            // SYNC: Acquire pairs with the Release of the initiator: seeing `expect` means its turn.
            if l2.0.load(Ordering::Acquire) == expect {
                // SYNC: Release hands the line back; the initiator's Acquire sees it.
                l2.0.store(expect + 1, Ordering::Release);
                expect += 2;
            }
            std::hint::spin_loop();
        }
    });
    if let Err(e) = pin(cpus.0) {
        notes.push(e);
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    let mut v = 1u64;
    'outer: while Instant::now() < end {
        let t0 = now_ns();
        for _ in 0..PINGPONG_BATCH {
            // SYNC: Release publishes the turn to the echo thread.
            line.0.store(v, Ordering::Release);
            let spin_start = Instant::now();
            let mut spins = 0u32;
            // SYNC: Acquire pairs with the echo thread's Release.
            while line.0.load(Ordering::Acquire) != v + 1 {
                spins = spins.wrapping_add(1);
                if spins % 4096 == 0 && spin_start.elapsed() > Duration::from_millis(200) {
                    notes.push("cache-line ping-pong: the echo thread stopped answering".into());
                    break 'outer;
                }
                std::hint::spin_loop();
            }
            v += 2;
        }
        samples.push((now_ns() - t0) / (2 * u64::from(PINGPONG_BATCH)));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = echo.join();
    Stat::from_samples(&mut samples)
}

/// Descriptor write + Release store, one at a time.
fn enqueue_cost(budget: Duration) -> Stat {
    #[repr(C, align(64))]
    #[derive(Clone, Copy)]
    struct Desc([u64; 8]);
    let mut ring = vec![Desc([0; 8]); 256];
    let tail = Line(AtomicU64::new(0));
    let mut overhead = u64::MAX;
    for _ in 0..1000 {
        let t0 = now_ns();
        overhead = overhead.min(now_ns() - t0);
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    let mut seq = 0u64;
    while Instant::now() < end {
        for _ in 0..256 {
            let t0 = now_ns();
            let slot = &mut ring[(seq % 256) as usize];
            *slot = Desc([seq, seq ^ 0x5a, 4096, seq << 3, t0, 0, 0, 0]);
            std::hint::black_box(&*slot);
            // SYNC: Release makes the descriptor visible before the new tail.
            tail.0.store(seq + 1, Ordering::Release);
            samples.push((now_ns() - t0).saturating_sub(overhead));
            seq += 1;
        }
    }
    std::hint::black_box(&ring);
    Stat::from_samples(&mut samples)
}

/// cyclictest: lateness of absolute `clock_nanosleep` wake-ups, under SCHED_FIFO where allowed.
fn timer_wakeup(
    cpu: usize,
    priority: i32,
    budget: Duration,
    interval: Duration,
) -> (Stat, String, Vec<String>) {
    std::thread::spawn(move || {
        let mut notes = Vec::new();
        if let Err(e) = pin(cpu) {
            notes.push(e);
        }
        let policy = match set_fifo(priority) {
            Ok(()) => "SCHED_FIFO".to_string(),
            Err(e) => {
                notes.push(format!("{e}; wake-up latency measured under SCHED_OTHER"));
                "SCHED_OTHER".to_string()
            }
        };
        let step = interval.as_nanos() as u64;
        let n = (budget.as_nanos() as u64 / step).max(1);
        let mut next = now_ns() + step;
        let mut samples = Vec::with_capacity(n as usize);
        for _ in 0..n {
            sleep_until(next);
            let now = now_ns();
            samples.push(now.saturating_sub(next));
            next += step;
            if next < now {
                next = now + step;
            }
        }
        (Stat::from_samples(&mut samples), policy, notes)
    })
    .join()
    .unwrap_or_else(|_| {
        (
            Stat::default(),
            "unknown".into(),
            vec!["timer wake-up thread panicked".into()],
        )
    })
}

/// Futex wake-up across CPUs: a sleeper on `cpus.1` (SCHED_FIFO where allowed), a waker on `cpus.0`.
fn futex_wakeup(
    cpus: (usize, usize),
    priority: i32,
    budget: Duration,
    notes: &mut Vec<String>,
) -> Stat {
    struct Shared {
        word: AtomicU32,
        armed: AtomicBool,
        t_wake: AtomicU64,
        latency: AtomicU64,
        stop: AtomicBool,
    }
    let sh = Arc::new(Shared {
        word: AtomicU32::new(0),
        armed: AtomicBool::new(false),
        t_wake: AtomicU64::new(0),
        latency: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
    });
    let s2 = sh.clone();
    let sleeper = std::thread::spawn(move || {
        let _ = pin(cpus.1);
        let _ = set_fifo(priority);
        while !s2.stop.load(Ordering::Acquire) {
            s2.word.store(0, Ordering::Relaxed);
            // SYNC: Release orders the reset word before `armed`; the waker Acquires `armed`.
            s2.armed.store(true, Ordering::Release);
            while s2.word.load(Ordering::Acquire) == 0 && !s2.stop.load(Ordering::Acquire) {
                futex_wait(&s2.word, 0, Duration::from_millis(50));
            }
            let now = now_ns();
            // SYNC: Acquire pairs with the waker's Release of `t_wake` before the word.
            let t = s2.t_wake.load(Ordering::Acquire);
            if t != 0 {
                s2.latency.store(now.saturating_sub(t), Ordering::Release);
            }
        }
    });
    if let Err(e) = pin(cpus.0) {
        notes.push(e);
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    while Instant::now() < end {
        let wait_start = Instant::now();
        // SYNC: Acquire pairs with the sleeper's Release of `armed`.
        while !sh.armed.load(Ordering::Acquire) && wait_start.elapsed() < Duration::from_millis(200)
        {
            std::thread::yield_now();
        }
        sh.armed.store(false, Ordering::Relaxed);
        // Give the sleeper time to reach FUTEX_WAIT so the wake-up is a real one.
        std::thread::sleep(Duration::from_micros(300));
        sh.latency.store(u64::MAX, Ordering::Relaxed);
        // SYNC: Release publishes t_wake before the word the sleeper Acquires.
        sh.t_wake.store(now_ns(), Ordering::Release);
        sh.word.store(1, Ordering::Release);
        futex_wake(&sh.word);
        let w = Instant::now();
        loop {
            let l = sh.latency.load(Ordering::Acquire);
            if l != u64::MAX {
                samples.push(l);
                break;
            }
            if w.elapsed() > Duration::from_millis(200) {
                notes.push("futex wake-up: the sleeper did not run within 200 ms".into());
                break;
            }
            std::hint::spin_loop();
        }
    }
    sh.stop.store(true, Ordering::Release);
    sh.word.store(1, Ordering::Release);
    futex_wake(&sh.word);
    let _ = sleeper.join();
    Stat::from_samples(&mut samples)
}

/// Runs the four measurements (about `opts.duration` in total) and describes the host.
/// Measurements that cannot run (one CPU only) have `samples == 0` and a note; the bound
/// refuses to use such a figure.
///
/// # Examples
/// ```no_run
/// let cal = wcet::calibrate::run(&wcet::calibrate::CalibrateOptions::default());
/// println!("t_cc max {} ns", cal.cache_line_transfer.max_ns);
/// ```
pub fn run(opts: &CalibrateOptions) -> Calibration {
    let started = Instant::now();
    let host = HostInfo::probe();
    let mut notes = Vec::new();
    let cpus = opts.cpus.unwrap_or_else(|| {
        let allowed = allowed_cpus();
        match allowed.as_slice() {
            [] => (0, 0),
            [only] => (*only, *only),
            [a, b, ..] => (*a, *b),
        }
    });
    let d = opts.duration.max(Duration::from_millis(40));
    let (mut cc, mut futex) = (Stat::default(), Stat::default());
    let cross_core = cpus.0 != cpus.1;
    let threads = std::thread::scope(|s| {
        // Measure from a scratch thread so the caller's affinity is left alone.
        s.spawn(|| {
            let mut n = Vec::new();
            if let Err(e) = set_fifo(opts.priority) {
                n.push(format!("{e}; t_cc and t_enq measured under SCHED_OTHER"));
            }
            if cross_core {
                cc = cache_line_transfer(cpus, opts.priority, d / 8, &mut n);
            }
            let enq = enqueue_cost(d / 16);
            if cross_core {
                futex = futex_wakeup(cpus, opts.priority, d / 4, &mut n);
            }
            (enq, n)
        })
        .join()
    });
    let enqueue = match threads {
        Ok((enq, n)) => {
            notes.extend(n);
            enq
        }
        Err(_) => {
            notes.push("calibration thread panicked".into());
            Stat::default()
        }
    };
    if !cross_core {
        notes.push(format!(
            "only CPU {} usable: no cross-core figures (t_cc, futex wake-up)",
            cpus.0
        ));
    }
    let (fifo, policy, n) = timer_wakeup(cpus.1, opts.priority, d / 2, Duration::from_micros(500));
    notes.extend(n);
    Calibration {
        host,
        cache_line_transfer: cc,
        enqueue,
        fifo_wakeup: fifo,
        futex_wakeup: futex,
        policy,
        priority: opts.priority,
        cpus,
        duration_s: started.elapsed().as_secs_f64(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_time_accounting_from_config_and_command_line() {
        let on = "# comment\nCONFIG_IRQ_TIME_ACCOUNTING=y\nCONFIG_X=m\n";
        let off = "# CONFIG_IRQ_TIME_ACCOUNTING is not set\n";
        assert_eq!(irq_time_accounted(Some(on), "quiet"), Some(true));
        assert_eq!(
            irq_time_accounted(Some(on), "ro noirqtime quiet"),
            Some(false)
        );
        assert_eq!(irq_time_accounted(Some(off), ""), Some(false));
        assert_eq!(irq_time_accounted(None, ""), None);
    }

    #[test]
    fn stat_summarises() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Stat::from_samples(&mut v);
        assert_eq!(
            (
                s.samples,
                s.min_ns,
                s.median_ns,
                s.p99_ns,
                s.p9999_ns,
                s.max_ns
            ),
            (100, 1, 51, 99, 100, 100)
        );
        assert_eq!(Stat::from_samples(&mut []), Stat::default());
    }
}

//! Host preflight: is this machine ready to run a deployment in real time?
//!
//! Each check reads the real host (rlimits, `/proc`, `/sys`, `statvfs`, a real SCHED_FIFO attempt on
//! a scratch thread) and says pass, warn or fail, with a line on how to fix it.

use crate::config::{pinned_memory, Config, MemoryLock, SchedPolicy, Wakeup};
use serde::Serialize;
use std::fmt;

/// Verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Ready.
    Pass,
    /// Works, but not as well as it could (or without a guarantee).
    Warn,
    /// The deployment cannot run as configured.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Short name of the check.
    pub name: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it (empty on pass).
    pub fix: String,
}

fn result(name: &'static str, verdict: Verdict, detail: String, fix: &str) -> CheckResult {
    CheckResult {
        name,
        verdict,
        detail,
        fix: if verdict == Verdict::Pass {
            String::new()
        } else {
            fix.to_string()
        },
    }
}

/// Formats a byte count as MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// RLIMIT_MEMLOCK against the pinned memory the config needs.
pub fn check_memlock(cfg: &Config) -> CheckResult {
    let (_, need) = pinned_memory(&cfg.deployment);
    let required = cfg
        .deployment
        .channels
        .iter()
        .any(|c| c.memory_lock == MemoryLock::Required);
    let fix = "raise it: `ulimit -l unlimited` in this shell, `* - memlock unlimited` in \
               /etc/security/limits.conf, or LimitMEMLOCK=infinity in a systemd unit";
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK) {
        Err(e) => result(
            "memlock",
            Verdict::Warn,
            format!("getrlimit(RLIMIT_MEMLOCK) failed: {e}"),
            fix,
        ),
        Ok((soft, _)) if soft == libc::RLIM_INFINITY => result(
            "memlock",
            Verdict::Pass,
            format!(
                "RLIMIT_MEMLOCK unlimited; the config needs {} pinned",
                mib(need)
            ),
            fix,
        ),
        Ok((soft, _)) if soft >= need => result(
            "memlock",
            Verdict::Pass,
            format!(
                "RLIMIT_MEMLOCK {} >= {} the config needs",
                mib(soft),
                mib(need)
            ),
            fix,
        ),
        Ok((soft, _)) => result(
            "memlock",
            if required {
                Verdict::Fail
            } else {
                Verdict::Warn
            },
            format!(
                "RLIMIT_MEMLOCK {} < {} the config needs{}",
                mib(soft),
                mib(need),
                if required {
                    " (a channel has memory_lock = \"required\")"
                } else {
                    "; pages may be swapped out"
                }
            ),
            fix,
        ),
    }
}

/// Tries SCHED_FIFO at the configured priority on a scratch thread.
pub fn check_sched_fifo(cfg: &Config) -> CheckResult {
    let t = &cfg.deployment.node.thread;
    let prio = *t.priority.get_ref();
    let fix = "run as root, grant CAP_SYS_NICE (`setcap cap_sys_nice+ep $(which rtfuse)`), or set \
               `@rt - rtprio 99` in /etc/security/limits.conf; in a container add --cap-add=sys_nice";
    if t.policy == SchedPolicy::Other {
        return result(
            "sched_fifo",
            Verdict::Warn,
            "node.thread.policy = \"other\": no real-time scheduling".into(),
            "set node.thread.policy = \"fifo\"",
        );
    }
    let outcome = std::thread::spawn(move || {
        let param = libc::sched_param {
            sched_priority: prio.clamp(1, 99),
        };
        // SAFETY: pthread_self() is this live thread; `param` is a valid sched_param on the stack.
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) }
    })
    .join();
    match outcome {
        Ok(0) => result("sched_fifo", Verdict::Pass, format!("a thread switched to SCHED_FIFO priority {prio}"), fix),
        Ok(err) => result(
            "sched_fifo",
            Verdict::Warn,
            format!(
                "SCHED_FIFO priority {prio} refused ({}); the fusion thread will run under SCHED_OTHER",
                std::io::Error::from_raw_os_error(err)
            ),
            fix,
        ),
        Err(_) => result("sched_fifo", Verdict::Warn, "the probe thread panicked".into(), fix),
    }
}

/// RT throttling (`/proc/sys/kernel/sched_rt_runtime_us`).
pub fn check_rt_throttling(cfg: &Config) -> CheckResult {
    let spin = cfg.deployment.node.thread.wakeup == Wakeup::Spin;
    let fix =
        "`sysctl -w kernel.sched_rt_runtime_us=-1` (persist in /etc/sysctl.d/) — only with the \
               fusion thread on an isolated CPU";
    let runtime = read_trimmed("/proc/sys/kernel/sched_rt_runtime_us");
    let period =
        read_trimmed("/proc/sys/kernel/sched_rt_period_us").unwrap_or_else(|| "1000000".into());
    match runtime.as_deref() {
        None => result(
            "rt_throttling",
            Verdict::Warn,
            "cannot read /proc/sys/kernel/sched_rt_runtime_us".into(),
            fix,
        ),
        Some("-1") => result(
            "rt_throttling",
            Verdict::Pass,
            "RT throttling off (sched_rt_runtime_us = -1)".into(),
            fix,
        ),
        Some(r) => result(
            "rt_throttling",
            Verdict::Warn,
            format!(
                "RT threads get {r} of every {period} µs{}",
                if spin {
                    "; a spinning SCHED_FIFO thread will be stalled once per period"
                } else {
                    ""
                }
            ),
            fix,
        ),
    }
}

/// Number of CPUs the kernel reports online.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Parses a kernel CPU list such as `2-3,6`.
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// Isolated CPUs and the fusion thread's CPU.
pub fn check_isolated_cpus(cfg: &Config) -> CheckResult {
    let isolated =
        parse_cpu_list(&read_trimmed("/sys/devices/system/cpu/isolated").unwrap_or_default());
    let n = online_cpus();
    let fix = "boot with `isolcpus=N nohz_full=N rcu_nocbs=N` and set node.thread.cpu = N";
    match cfg
        .deployment
        .node
        .thread
        .cpu
        .as_ref()
        .map(|c| *c.get_ref())
    {
        Some(cpu) if cpu >= n => result(
            "isolated_cpus",
            Verdict::Fail,
            format!(
                "node.thread.cpu = {cpu}, but this host has CPUs 0..{}",
                n - 1
            ),
            "set node.thread.cpu to an existing CPU",
        ),
        Some(cpu) if isolated.contains(&cpu) => result(
            "isolated_cpus",
            Verdict::Pass,
            format!("fusion thread on isolated CPU {cpu}"),
            fix,
        ),
        Some(cpu) => result(
            "isolated_cpus",
            Verdict::Warn,
            format!(
                "fusion thread pinned to CPU {cpu}, which is not isolated (isolated: {isolated:?})"
            ),
            fix,
        ),
        None if isolated.is_empty() => result(
            "isolated_cpus",
            Verdict::Warn,
            format!(
                "no isolated CPUs ({n} online); the fusion thread shares CPUs with everything else"
            ),
            fix,
        ),
        None => result(
            "isolated_cpus",
            Verdict::Warn,
            format!("CPUs {isolated:?} are isolated but node.thread.cpu is not set"),
            "set node.thread.cpu to one of the isolated CPUs",
        ),
    }
}

/// Huge pages reserved (optional: fewer TLB misses for large slabs).
pub fn check_huge_pages() -> CheckResult {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let thp = read_trimmed("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_else(|| "unknown".into());
    let fix = "optional: `sysctl -w vm.nr_hugepages=N` to reserve huge pages";
    match (field("HugePages_Total:"), field("Hugepagesize:")) {
        (Some(total), Some(size_kb)) if total > 0 => result(
            "huge_pages",
            Verdict::Pass,
            format!("{total} huge pages of {size_kb} kB reserved; shmem THP: {thp}"),
            fix,
        ),
        _ => result(
            "huge_pages",
            Verdict::Warn,
            format!("no huge pages reserved; shmem THP: {thp}"),
            fix,
        ),
    }
}

/// Free space in `/dev/shm` against the config's segments.
pub fn check_dev_shm(cfg: &Config) -> CheckResult {
    let (_, need) = pinned_memory(&cfg.deployment);
    let fix = "`mount -o remount,size=2G /dev/shm` (or --shm-size in a container)";
    match nix::sys::statvfs::statvfs("/dev/shm") {
        Err(e) => result(
            "dev_shm",
            Verdict::Fail,
            format!("cannot stat /dev/shm: {e}"),
            "mount a tmpfs on /dev/shm",
        ),
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let total = s.blocks() * s.fragment_size();
            let verdict = if free >= need {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            result(
                "dev_shm",
                verdict,
                format!(
                    "/dev/shm has {} free of {}; the config needs {}",
                    mib(free),
                    mib(total),
                    mib(need)
                ),
                fix,
            )
        }
    }
}

/// PREEMPT_RT kernel or not.
pub fn check_preempt_rt() -> CheckResult {
    let rt = read_trimmed("/sys/kernel/realtime").as_deref() == Some("1")
        || read_trimmed("/proc/sys/kernel/version").is_some_and(|v| v.contains("PREEMPT_RT"));
    let version = read_trimmed("/proc/sys/kernel/version").unwrap_or_default();
    result(
        "preempt_rt",
        if rt { Verdict::Pass } else { Verdict::Warn },
        if rt {
            format!("PREEMPT_RT kernel ({version})")
        } else {
            format!("not a PREEMPT_RT kernel ({version}); worst-case wake-up latency is higher")
        },
        "install a PREEMPT_RT kernel (e.g. Debian's linux-image-rt-amd64)",
    )
}

/// Interrupt time accounting: without it the fusion thread's CPU time per step (in its traces)
/// includes the interrupts taken on its CPU, so the WCET report cannot tell them from work.
pub fn check_irq_time() -> CheckResult {
    let fix = "a kernel built with CONFIG_IRQ_TIME_ACCOUNTING=y and booted without `noirqtime`, \
               or keep device interrupts off the fusion CPU (irqaffinity= with node.thread.cpu)";
    match wcet::calibrate::irq_time_accounted_here() {
        Some(true) => result(
            "irq_time",
            Verdict::Pass,
            "interrupt time is accounted apart from threads: the CPU time per fusion step is \
             the thread's own work"
                .into(),
            "",
        ),
        Some(false) => result(
            "irq_time",
            Verdict::Warn,
            "interrupt time is charged to the interrupted thread: the WCET report cannot tell \
             the fusion thread's work per step from interrupts"
                .into(),
            fix,
        ),
        None => result(
            "irq_time",
            Verdict::Warn,
            "kernel configuration not readable (/proc/config.gz, /boot/config-*): whether \
             interrupt time is charged to threads is unknown"
                .into(),
            fix,
        ),
    }
}

/// Every check, in a fixed order.
pub fn run_all(cfg: &Config) -> Vec<CheckResult> {
    vec![
        check_memlock(cfg),
        check_sched_fifo(cfg),
        check_rt_throttling(cfg),
        check_isolated_cpus(cfg),
        check_huge_pages(),
        check_dev_shm(cfg),
        check_preempt_rt(),
        check_irq_time(),
    ]
}

/// The worst verdict, `Pass` for no checks.
pub fn worst(results: &[CheckResult]) -> Verdict {
    results
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
}

/// Prints results one per line, with the fix indented below.
pub fn print(results: &[CheckResult], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for r in results {
        writeln!(out, "{:<4}  {:<14} {}", r.verdict, r.name, r.detail)?;
        if !r.fix.is_empty() {
            writeln!(out, "      {:<14} fix: {}", "", r.fix)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("2-3,6"), vec![2, 3, 6]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert_eq!(parse_cpu_list("x,4"), vec![4]);
    }
}

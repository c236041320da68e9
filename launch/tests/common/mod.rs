//! Helpers for tests that run the real `rtfuse` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rtfuse");

/// A segment-name prefix unique to this test process and call.
pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{tag}_",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Segments in /dev/shm whose name starts with `rtfuse.<prefix>`.
pub fn segments(prefix: &str) -> Vec<String> {
    let want = format!("rtfuse.{prefix}");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&want))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that no segment with `prefix` is left in /dev/shm, naming those that are.
pub fn assert_no_segments(prefix: &str) {
    let left = segments(prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A command for the binary with the prefix set, in `dir`.
pub fn rtfuse(prefix: &str, dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("RTFUSE_PREFIX", prefix)
        .env_remove("RUST_LOG");
    c
}

/// Starts `rtfuse args…` with piped output.
pub fn spawn(prefix: &str, dir: &Path, args: &[&str]) -> Child {
    rtfuse(prefix, dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Pids of the direct children of `parent` whose command line contains `needle`.
pub fn children(parent: u32, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z")
            || fields.get(1).and_then(|p| p.parse::<u32>().ok()) != Some(parent)
        {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.get(s.rfind(')')? + 2..)?.chars().next()? != 'Z'))
        .unwrap_or(false)
}

/// Polls `cond` every 50 ms; panics with `what` after `watchdog` (a hang guard, not a timing claim).
pub fn wait_for(what: &str, watchdog: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < watchdog,
            "watchdog: gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` with a watchdog; kills it and panics if it hangs.
pub fn wait_output(mut child: Child, watchdog: Duration) -> (i32, String, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if start.elapsed() > watchdog {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "watchdog: rtfuse did not exit\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small deployment: IMU and odometry driver processes, a node with the EKF. Light enough to run
/// several in parallel on two cores.
pub const SMALL: &str = r#"
name = "small"
[[channel]]
name = "imu"
chunk_size = "4 KiB"
chunk_count = 64
ring_depth = 32
[[channel]]
name = "odometry"
chunk_size = "4 KiB"
chunk_count = 32
ring_depth = 16
[[driver]]
name = "imu"
kind = "synthetic-imu"
channel = "imu"
params = { rate_hz = 200.0 }
restart = { policy = "on-failure", max_restarts = 3, backoff_initial_ms = 100, backoff_max_ms = 1000 }
[[driver]]
name = "odometry"
kind = "synthetic-odometry"
channel = "odometry"
params = { rate_hz = 50.0 }
[node]
streams = ["imu", "odometry"]
[node.ekf]
imu = "imu"
odometry = "odometry"
[node.thread]
wakeup = "futex"
mlockall = false
"#;

/// The line of `stream` in the final stats table of `rtfuse run`'s output.
pub fn stream_line<'a>(stdout: &'a str, stream: &str) -> Option<&'a str> {
    let final_part = stdout.rsplit("final stats").next()?;
    final_part
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stream))
}

/// RECEIVED column of a stream line of the status table.
pub fn received(line: &str) -> u64 {
    line.split_whitespace()
        .nth(5)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

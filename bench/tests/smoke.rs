//! End-to-end smoke test of `rtfuse-bench transport --json`: real peer processes, real shared
//! memory, real sockets; checks the shape of the JSON only (no timing assertions).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Hang guard only: the run takes seconds; a deadlocked peer pair must not stall CI.
const WATCHDOG: Duration = Duration::from_secs(240);

fn run_bench(args: &[&str]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtfuse-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rtfuse-bench");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rtfuse-bench") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rtfuse-bench hung for {WATCHDOG:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().expect("reader thread").expect("read stdout");
    assert!(
        status.success(),
        "rtfuse-bench failed: {status}; stdout: {text}"
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "--json prints exactly one line: {text}");
    serde_json::from_str(lines[0]).expect("stdout is one JSON object")
}

fn number(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn transport_json_has_the_documented_shape() {
    let v = run_bench(&["transport", "--iters", "200", "--payloads", "64", "--json"]);
    assert_eq!(v["bench"], "transport");

    let results = v["results"].as_array().expect("results is an array");
    let mut systems: Vec<&str> = results
        .iter()
        .map(|r| r["system"].as_str().expect("system is a string"))
        .collect();
    systems.sort_unstable();
    assert_eq!(
        systems,
        ["floor", "floor-touch", "iceoryx2", "rtfuse", "uds-copy"]
    );
    for r in results {
        let obj = r.as_object().expect("a result is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["iters", "max_ns", "p50_ns", "p999_ns", "p99_ns", "payload", "system"]
        );
        assert_eq!(number(r, "payload"), 64.0);
        assert_eq!(number(r, "iters"), 200.0);
        let (p50, p99, p999, max) = (
            number(r, "p50_ns"),
            number(r, "p99_ns"),
            number(r, "p999_ns"),
            number(r, "max_ns"),
        );
        assert!(
            p50 <= p99 && p99 <= p999 && p999 <= max,
            "percentiles out of order: {r}"
        );
    }

    let ratios = &v["ratios"];
    for key in [
        "rtfuse_over_floor_p50",
        "iceoryx2_over_rtfuse_p50",
        "rtfuse_over_floor_touch_p50",
        "iceoryx2_over_floor_p50",
        "uds_copy_over_rtfuse_p50",
    ] {
        let list = ratios[key].as_array().unwrap_or_else(|| panic!("{key}"));
        assert_eq!(list.len(), 1, "{key}: one payload");
        assert_eq!(number(&list[0], "payload"), 64.0);
        assert!(number(&list[0], "ratio") > 0.0);
    }
    assert!(ratios["rtfuse_over_floor_p50"][0]["met"].is_boolean());
    // One payload size: no largest-over-smallest ratio.
    assert!(ratios["rtfuse_size_p50"].is_null());
    assert!(number(ratios, "rtfuse_over_iceoryx2_throughput") > 0.0);

    let throughput = v["throughput"].as_array().expect("throughput is an array");
    let names: Vec<&str> = throughput
        .iter()
        .map(|t| t["system"].as_str().expect("system"))
        .collect();
    assert_eq!(names, ["rtfuse", "iceoryx2"]);
    for t in throughput {
        assert_eq!(number(t, "messages"), 2000.0);
        assert!(number(t, "per_sec") > 0.0);
    }

    let env = &v["env"];
    assert!(env["sched_fifo"].is_boolean());
    if env["sched_fifo"] == false {
        eprintln!(
            "note: SCHED_FIFO was not permitted here; the peers ran under the normal scheduler"
        );
    }
}

#[test]
fn a_pair_past_its_timeout_is_killed_and_leaves_no_segments() {
    let child = Command::new(env!("CARGO_BIN_EXE_rtfuse-bench"))
        .args(["transport", "--systems", "rtfuse", "--payloads", "64"])
        .args(["--iters", "100000000", "--pair-timeout-s", "1"])
        // Peers that never finish must not spin at SCHED_FIFO: on a host without RT throttling
        // they would starve the parent that is to kill them.
        .arg("--no-fifo")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtfuse-bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for rtfuse-bench");
    assert!(
        !out.status.success(),
        "10^8 round trips cannot finish in 1 s"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still running after"), "stderr: {err}");
    // The parent's pid is in every name it hands out: /dev/shm/rtfuse.bench.<pid>.<n>.<dir> for
    // the channels, /dev/shm/rtfuse-bench.<pid>.<n> for the control page.
    let leftovers: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("list /dev/shm")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(&format!("rtfuse.bench.{pid}."))
                || n.starts_with(&format!("rtfuse-bench.{pid}."))
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_rtfuse-bench"))
        .args(["transport", "--payloads", "12 parsecs"])
        .output()
        .expect("run rtfuse-bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown unit"), "stderr: {err}");
}

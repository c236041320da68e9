//! `rtfuse run` end to end with real processes: the demo, a driver killed and restarted, the
//! supervisor killed (no orphans, the next run cleans up), `check`, `ls` and `clean`.

mod common;
use common::*;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(120);

#[test]
fn the_demo_runs_with_real_processes_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("demo");
    let child = spawn(
        &prefix,
        dir.path(),
        &[
            "run",
            "--duration",
            "4",
            "--status",
            "plain",
            "--no-preflight",
        ],
    );
    let (code, stdout, stderr) = wait_output(child, WATCHDOG);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("pinned memory needed"), "{stdout}");
    assert!(stdout.contains("final stats"), "{stdout}");
    for s in ["camera", "lidar", "imu", "odometry"] {
        let line =
            stream_line(&stdout, s).unwrap_or_else(|| panic!("no final line for {s}:\n{stdout}"));
        assert!(
            received(line) > 0,
            "{s} received nothing: {line}\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains("driver camera") && stdout.contains("node"),
        "{stdout}"
    );
    assert_no_segments(&prefix);
    assert!(
        dir.path().join("rtfuse-trace.bin").exists(),
        "the demo writes a trace"
    );
    // The trace feeds the WCET report (wcet crate): bound per stream against the measured latencies.
    let report = rtfuse(&prefix, dir.path())
        .args([
            "report",
            "--trace",
            "rtfuse-trace.bin",
            "--seconds",
            "0.5",
            "--out",
            "rep",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    // 0: every bound held; 1: the report flags a violation. Both are results, not failures.
    assert!(
        matches!(report.status.code(), Some(0 | 1)),
        "{text}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    for f in ["report.html", "report.md", "report.json"] {
        assert!(
            dir.path().join("rep").join(f).exists(),
            "{f} missing: {text}"
        );
    }
    assert!(text.contains(&format!("stream {prefix}imu")), "{text}");
}

#[test]
fn a_killed_driver_is_restarted_and_the_node_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.toml"), SMALL).unwrap();
    let prefix = unique_prefix("kill");
    let child = spawn(
        &prefix,
        dir.path(),
        &[
            "run",
            "small.toml",
            "--duration",
            "6",
            "--status",
            "plain",
            "--no-preflight",
        ],
    );
    let sup = child.id();
    let mut victim = Vec::new();
    wait_for("the imu driver process", WATCHDOG, || {
        victim = children(sup, "driver imu");
        !victim.is_empty() && !segments(&prefix).is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let node = children(sup, " node");
    assert_eq!(node.len(), 1, "one node process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("a new imu driver process", WATCHDOG, || {
        let now = children(sup, "driver imu");
        !now.is_empty() && now[0] != victim[0]
    });
    assert!(alive(node[0]), "the node died when the driver was killed");
    assert_eq!(
        children(sup, " node"),
        node,
        "the node was not restarted: it kept running"
    );
    let (code, stdout, stderr) = wait_output(child, WATCHDOG);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("driver imu was killed by signal 9"),
        "{stderr}"
    );
    let restarts = stdout
        .rsplit("final stats")
        .next()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("driver imu"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    assert!(
        restarts.split_whitespace().nth(4) == Some("1"),
        "restart count: {restarts}\n{stdout}"
    );
    let imu = stream_line(&stdout, "imu").unwrap_or_else(|| panic!("{stdout}"));
    assert!(received(imu) > 200, "imu: {imu}");
    assert_no_segments(&prefix);
}

#[test]
fn a_killed_supervisor_leaves_no_orphans_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.toml"), SMALL).unwrap();
    let prefix = unique_prefix("orphan");
    let child = spawn(
        &prefix,
        dir.path(),
        &["run", "small.toml", "--status", "off", "--no-preflight"],
    );
    let sup = child.id();
    let mut kids = Vec::new();
    wait_for("three child processes", WATCHDOG, || {
        kids = children(sup, &prefix);
        kids.len() == 3 && segments(&prefix).len() == 2
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = wait_output(child, WATCHDOG);
    wait_for(
        "every child to exit after the supervisor died (PDEATHSIG)",
        WATCHDOG,
        || kids.iter().all(|p| !alive(*p)),
    );
    // Whatever segments the children could not remove, the next run (or `rtfuse clean`) does.
    let again = spawn(
        &prefix,
        dir.path(),
        &[
            "run",
            "small.toml",
            "--duration",
            "1",
            "--status",
            "off",
            "--no-preflight",
        ],
    );
    let (code, stdout, stderr) = wait_output(again, WATCHDOG);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_no_segments(&prefix);
}

#[test]
fn check_reports_every_host_check_with_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = rtfuse("", dir.path()).args(["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 3, "exit {code}: {stdout}");
    let names = [
        "memlock",
        "sched_fifo",
        "rt_throttling",
        "isolated_cpus",
        "huge_pages",
        "dev_shm",
        "preempt_rt",
        "irq_time",
    ];
    for name in names {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert!(
            ["PASS", "WARN", "FAIL"].iter().any(|v| line.starts_with(v)),
            "{line}"
        );
    }
    assert_eq!(
        code == 3,
        stdout.lines().any(|l| l.starts_with("FAIL")),
        "{stdout}"
    );
    let json = rtfuse("", dir.path())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), names.len());
}

#[test]
fn ls_shows_a_stale_segment_and_clean_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.toml"), SMALL).unwrap();
    let prefix = unique_prefix("stale");
    let driver = spawn(&prefix, dir.path(), &["driver", "imu", "small.toml"]);
    let pid = driver.id() as i32;
    wait_for("the imu segment", WATCHDOG, || segments(&prefix).len() == 1);
    let ls = rtfuse(&prefix, dir.path()).args(["ls"]).output().unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    let line = ls
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}imu")))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(
        line.contains("live") && line.contains(&pid.to_string()),
        "{line}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = wait_output(driver, WATCHDOG);
    let ls = rtfuse(&prefix, dir.path()).args(["ls"]).output().unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    let line = ls
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}imu")))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains("stale"), "{line}");
    let clean = rtfuse(&prefix, dir.path())
        .args(["clean"])
        .output()
        .unwrap();
    assert!(clean.status.success());
    assert!(String::from_utf8_lossy(&clean.stdout).contains(&format!("removed {prefix}imu")));
    assert!(segments(&prefix).is_empty());
}

#[test]
fn an_unknown_driver_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = rtfuse("", dir.path())
        .args(["driver", "sonar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "no driver `sonar` in <built-in demo>; expected one of: camera, lidar, imu, odometry"
    ));
}

#[test]
fn the_ros2_gateway_runs_the_configs_bridges_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ros2-bridge.toml");
    let prefix = unique_prefix("gw");
    let child = spawn(
        &prefix,
        dir.path(),
        &[
            "ros2-gateway",
            examples.to_str().unwrap(),
            "--duration",
            "1",
        ],
    );
    let (code, stdout, stderr) = wait_output(child, WATCHDOG);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Nothing publishes the egress channels here: the bridges say they waited for them, each
    // with the codec of what its channel carries.
    for line in [
        format!("/rtfuse/odom <-> {prefix}fused_odometry (odometry-record): 0 forwarded"),
        format!("/rtfuse/imu <-> {prefix}imu (layout): 0 forwarded"),
    ] {
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
    assert!(stdout.contains("waiting for channel"), "{stdout}");
}

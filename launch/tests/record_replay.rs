//! `rtfuse record` and the `mcap-replay` driver kind end to end with real processes: the demo runs
//! while `rtfuse record` writes its channels into MCAP; then `examples/mcap-replay.toml` plays the
//! recording through a deployment (one driver process per topic) into the fusion node.

mod common;
use common::*;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(180);

/// `written` of a `channel -> /topic: N written, …` line of `rtfuse record`.
fn written(stdout: &str, channel: &str) -> u64 {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{channel} -> ")))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line for {channel}:\n{stdout}"))
}

#[test]
fn the_demo_is_recorded_and_the_recording_runs_through_mcap_replay_drivers() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("rec");
    let demo = spawn(
        &prefix,
        dir.path(),
        &[
            "run",
            "--duration",
            "5",
            "--status",
            "plain",
            "--no-preflight",
        ],
    );
    let rec = spawn(
        &prefix,
        dir.path(),
        &["record", "--out", "recording.mcap", "--duration", "4"],
    );
    let (code, rec_out, rec_err) = wait_output(rec, WATCHDOG);
    assert_eq!(code, 0, "record:\n{rec_out}\n{rec_err}");
    let (code, demo_out, demo_err) = wait_output(demo, WATCHDOG);
    assert_eq!(code, 0, "demo:\n{demo_out}\n{demo_err}");
    // Every channel of the demo: the four inputs and the node's three outputs.
    for ch in [
        "camera",
        "lidar",
        "imu",
        "odometry",
        "depth",
        "cloud",
        "fused_odometry",
    ] {
        assert!(
            written(&rec_out, ch) > 0,
            "{ch} recorded nothing:\n{rec_out}"
        );
    }
    assert!(!rec_out.contains("first problem"), "{rec_out}");

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/mcap-replay.toml"
    ))
    .unwrap();
    // The fused output goes to the scratch directory like the rest.
    std::fs::write(dir.path().join("replay.toml"), example).unwrap();
    let replay = spawn(
        &prefix,
        dir.path(),
        &[
            "run",
            "replay.toml",
            "--duration",
            "6",
            "--status",
            "plain",
            "--no-preflight",
        ],
    );
    let (code, out, err) = wait_output(replay, WATCHDOG);
    assert_eq!(code, 0, "replay run:\n{out}\n{err}");
    println!("{out}");
    for s in ["camera", "lidar", "imu", "odometry"] {
        let line =
            stream_line(&out, s).unwrap_or_else(|| panic!("no final line for {s}:\n{out}\n{err}"));
        assert!(
            received(line) > 0,
            "{s} received nothing: {line}\n{out}\n{err}"
        );
    }
    assert!(
        dir.path().join("fused.mcap").exists(),
        "node.outputs.mcap is written:\n{out}"
    );
    assert_no_segments(&prefix);
}

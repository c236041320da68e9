//! `rtfuse config check` on bad configs (each with the expected message and line:column) and on
//! every shipped example, through the real binary.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rtfuse");

/// A small valid deployment; cases below edit it.
const GOOD: &str = r#"[[channel]]
name = "cam"
chunk_size = "6 MiB"
chunk_count = 4
ring_depth = 4

[[channel]]
name = "imu"
chunk_size = 4096
chunk_count = 16
ring_depth = 16

[[driver]]
name = "cam"
kind = "synthetic-camera"
channel = "cam"
params = { rate_hz = 30.0, width = 1920, height = 1080, encoding = "rgb8" }

[[driver]]
name = "imu"
kind = "synthetic-imu"
channel = "imu"
params = { rate_hz = 400.0 }

[node]
streams = ["cam", "imu"]
"#;

/// Replaces GOOD's `streams` line: an EKF over `imu` and `odo`, which a ROS 2 bridge feeds
/// (line 41), its estimates on `fused` (typed); a bridge appended to it starts at line 46.
const EKF_BRIDGED: &str = r#"streams = ["cam", "imu", "odo"]
[node.ekf]
imu = "imu"
odometry = "odo"
output = "fused"
[[channel]]
name = "odo"
chunk_size = 4096
chunk_count = 16
ring_depth = 16
[[channel]]
name = "fused"
chunk_size = 4096
chunk_count = 16
ring_depth = 8
[[ros2.bridge]]
direction = "ingest"
topic = "/odom"
channel = "odo"
type = "nav_msgs/msg/Odometry"
"#;

/// Replaces GOOD's `streams` line: a projection whose camera stream `view` a ROS 2 bridge feeds
/// with the wrong type (line 44).
const CAMERA_FROM_IMU: &str = r#"streams = ["cam", "imu", "view", "pts"]
[node.projection]
camera = "view"
lidar = "pts"
[[channel]]
name = "view"
chunk_size = "6 MiB"
chunk_count = 4
ring_depth = 4
[[channel]]
name = "pts"
chunk_size = "2 MiB"
chunk_count = 4
ring_depth = 4
[[ros2.bridge]]
direction = "ingest"
topic = "/camera/image_raw"
channel = "view"
type = "sensor_msgs/msg/Imu"
[[ros2.bridge]]
direction = "ingest"
topic = "/points"
channel = "pts"
type = "sensor_msgs/msg/PointCloud2"
"#;

/// A `[[ros2.bridge]]` table.
fn bridge(direction: &str, topic: &str, channel: &str, ty: &str) -> String {
    format!(
        "[[ros2.bridge]]\ndirection = \"{direction}\"\ntopic = \"{topic}\"\nchannel = \"{channel}\"\ntype = \"{ty}\"\n"
    )
}

fn check(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deploy.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn the_base_config_is_valid_and_reports_pinned_memory() {
    let (code, stdout, stderr) = check(GOOD);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("pinned memory needed"), "{stdout}");
    assert!(stdout.contains("channel cam"), "{stdout}");
}

#[test]
fn bad_configs_name_file_line_column_and_what_was_expected() {
    // (what the case breaks, the replacement: (old, new) in GOOD, expected "FILE:line:col: message")
    let cases: &[(&str, (&str, &str), &str)] = &[
        (
            "unknown key",
            ("ring_depth = 4\n", "ring_depth = 4\nring_size = 4\n"),
            "FILE:6:1: unknown field `ring_size`, expected one of `name`, `chunk_size`",
        ),
        (
            "ring depth not a power of two",
            ("ring_depth = 16", "ring_depth = 12"),
            "FILE:11:14: expected ring_depth to be a power of two from 2 to 65536, found 12",
        ),
        (
            "chunk too small for the frame",
            ("chunk_size = \"6 MiB\"", "chunk_size = \"1 MiB\""),
            "FILE:3:14: chunk_size 1.0 MiB (1048576 bytes) of channel `cam` is too small for a 1920x1080 rgb8 frame from driver `cam`: expected at least 6220800 bytes",
        ),
        (
            "unknown channel referenced by a driver",
            ("channel = \"imu\"", "channel = \"imu0\""),
            "FILE:22:11: driver `imu` refers to unknown channel `imu0`; expected one of: cam, imu",
        ),
        (
            "duplicate channel name",
            ("name = \"imu\"\nchunk_size", "name = \"cam\"\nchunk_size"),
            "FILE:8:8: duplicate channel name `cam`",
        ),
        (
            "wrong type",
            ("chunk_count = 16", "chunk_count = \"sixteen\""),
            "FILE:10:15: invalid type: string \"sixteen\", expected u32",
        ),
        (
            "bad size unit",
            ("chunk_size = 4096", "chunk_size = \"4 parsecs\""),
            "FILE:9:14: expected a size such as `4 MiB`, `64 KiB` or `4096`, found unit `parsecs`",
        ),
        (
            "unknown enum variant",
            ("kind = \"synthetic-imu\"", "kind = \"synthetic-gyro\""),
            "FILE:21:8: unknown variant `synthetic-gyro`, expected one of `synthetic-camera`",
        ),
        (
            "parameter of another kind",
            ("params = { rate_hz = 400.0 }", "params = { rate_hz = 400.0, width = 3 }"),
            "FILE:23:37: parameter `width` does not apply to a synthetic-imu driver; expected one of: rate_hz, noise, bias, seed",
        ),
        (
            "required parameter missing",
            ("params = { rate_hz = 400.0 }", "params = { noise = 0.1 }"),
            "FILE:21:8: a synthetic-imu driver needs params.rate_hz",
        ),
        (
            "node stream unknown",
            ("streams = [\"cam\", \"imu\"]", "streams = [\"cam\", \"lidar\"]"),
            "FILE:26:19: node.streams refers to unknown channel `lidar`; expected one of: cam, imu",
        ),
        (
            "two drivers on one channel",
            ("channel = \"imu\"", "channel = \"cam\""),
            "FILE:22:11: channel `cam` is already published by driver `cam`; a channel has exactly one publisher",
        ),
        (
            "bad encoding",
            ("encoding = \"rgb8\"", "encoding = \"yuv422\""),
            "FILE:17:68: expected encoding rgb8, bgr8 or mono8, found `yuv422`",
        ),
        (
            "missing node table",
            ("[node]\nstreams = [\"cam\", \"imu\"]\n", ""),
            "FILE: missing field `node`",
        ),
        (
            "TOML syntax error",
            ("chunk_count = 4\n", "chunk_count = = 4\n"),
            "FILE:4:15: ",
        ),
        (
            "priority out of range",
            ("streams = [\"cam\", \"imu\"]\n", "streams = [\"cam\", \"imu\"]\n[node.thread]\npriority = 120\n"),
            "FILE:28:12: expected a SCHED_FIFO priority from 1 to 99, found 120",
        ),
        (
            "report.rt_throttling neither charge nor ignore",
            ("streams = [\"cam\", \"imu\"]\n", "streams = [\"cam\", \"imu\"]\n[report]\nrt_throttling = \"sometimes\"\n"),
            "FILE:28:17: unknown variant `sometimes`, expected `ignore` or `charge`",
        ),
        (
            "sync option that the policy does not have",
            (
                "streams = [\"cam\", \"imu\"]\n",
                "streams = [\"cam\", \"imu\"]\n[node.sync]\npolicy = \"exact\"\nstreams = [\"cam\", \"imu\"]\nmax_interval_ms = 5.0\n",
            ),
            "FILE:30:19: max_interval_ms applies to policy \"approximate\" only; found it with policy \"exact\"",
        ),
    ];
    let sync = "streams = [\"cam\", \"imu\"]\n[node.sync]\npolicy = \"approximate\"\nstreams = [\"cam\", \"imu\"]\nqueue_size = 40\n";
    let bound = "streams = [\"cam\", \"imu\"]\n[node.sync]\npolicy = \"approximate\"\nstreams = [\"cam\", \"imu\"]\ninter_message_lower_bound_ms = { cam = 30.0, lidar = 5.0 }\n";
    let ekf = |bridge: &str| format!("{EKF_BRIDGED}{bridge}");
    let egress_fused_as_imu = ekf(&bridge("egress", "/fused", "fused", "sensor_msgs/msg/Imu"));
    let ingest_into_output = ekf(&bridge(
        "ingest",
        "/fused",
        "fused",
        "nav_msgs/msg/Odometry",
    ));
    let egress_driver_as_image = ekf(&bridge("egress", "/imu", "imu", "sensor_msgs/msg/Image"));
    let bridged_twice = ekf(&bridge("egress", "/odo2", "odo", "nav_msgs/msg/Odometry"));
    let odometry_as_imu = EKF_BRIDGED.replacen("nav_msgs/msg/Odometry", "sensor_msgs/msg/Imu", 1);
    let info_into_stream =
        EKF_BRIDGED.replacen("nav_msgs/msg/Odometry", "sensor_msgs/msg/CameraInfo", 1);
    let tiny_odometry_chunk = EKF_BRIDGED.replacen("chunk_size = 4096", "chunk_size = 64", 1);
    let node = "streams = [\"cam\", \"imu\"]\n";
    let cases: Vec<_> = cases
        .iter()
        .copied()
        .chain([
            (
                "sync queue larger than the node holds",
                (node, sync),
                "FILE:30:14: expected queue_size from 1 to 15, found 40",
            ),
            (
                "inter-message lower bound of a stream that is not synchronised",
                (node, bound),
                "FILE:30:54: inter_message_lower_bound_ms.lidar: `lidar` is not one of node.sync.streams",
            ),
            (
                "ROS 2 Imu ingested into the projection's camera stream",
                (node, CAMERA_FROM_IMU),
                "FILE:44:8: node stream `view` is node.projection.camera (camera samples): expected type sensor_msgs/msg/Image, found `sensor_msgs/msg/Imu`",
            ),
            (
                "ROS 2 Imu ingested into the EKF's odometry stream",
                (node, &odometry_as_imu),
                "FILE:45:8: node stream `odo` is node.ekf.odometry (odometry samples): expected type nav_msgs/msg/Odometry, found `sensor_msgs/msg/Imu`",
            ),
            (
                "CameraInfo ingested into a node stream",
                (node, &info_into_stream),
                "FILE:45:8: ingest into node stream `odo` needs a sensor type (sensor_msgs/msg/Image, sensor_msgs/msg/PointCloud2, sensor_msgs/msg/Imu or nav_msgs/msg/Odometry), found `sensor_msgs/msg/CameraInfo`",
            ),
            (
                "ingested stream channel too small for one sample",
                (node, &tiny_odometry_chunk),
                "FILE:33:14: chunk_size 64 bytes of channel `odo` is too small for an odometry sample from ros2 bridge /odom: expected at least 120 bytes",
            ),
            (
                "the EKF estimates bridged out as Imu",
                (node, &egress_fused_as_imu),
                "FILE:50:8: channel `fused` carries the EKF estimates of node.ekf.output: expected type nav_msgs/msg/Odometry, found `sensor_msgs/msg/Imu`",
            ),
            (
                "ingest into a node output",
                (node, &ingest_into_output),
                "FILE:49:11: ingest channel `fused` is a node output, published by the node; a channel has one publisher",
            ),
            (
                "a driver's IMU bridged out as Image",
                (node, &egress_driver_as_image),
                "FILE:50:8: channel `imu` carries imu samples of driver `imu`: expected type sensor_msgs/msg/Imu, found `sensor_msgs/msg/Image`",
            ),
            (
                "one channel, two bridges",
                (node, &bridged_twice),
                "FILE:49:11: channel `odo` is already bridged (to /odom); a channel has one bridge",
            ),
        ])
        .collect();
    let mut failures = Vec::new();
    for (what, (old, new), expected) in &cases {
        assert!(GOOD.contains(old), "case `{what}`: GOOD has no `{old}`");
        let text = GOOD.replacen(old, new, 1);
        let (code, _, stderr) = check(&text);
        if code != 2 || !stderr.contains(expected) {
            failures.push(format!(
                "case `{what}`: exit {code}, expected 2 and\n  {expected}\ngot:\n{stderr}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_projection_slice_of_zero_points_is_refused() {
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap();
    let old = "slice_points = 8192";
    assert!(demo.contains(old), "the demo sets slice_points");
    let (code, _, stderr) = check(&demo.replacen(old, "slice_points = 0", 1));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(":16: expected slice_points of at least 1, found 0"),
        "{stderr}"
    );
}

#[test]
fn bridges_that_match_their_channels_pass_the_check() {
    let good = [
        bridge("egress", "/fused", "fused", "nav_msgs/msg/Odometry"),
        bridge("egress", "/imu", "imu", "sensor_msgs/msg/Imu"),
        bridge("egress", "/image", "cam", "sensor_msgs/msg/Image"),
        // Not a channel of the node or a driver: complete CDR of any type.
        "[[channel]]\nname = \"info\"\nchunk_size = 4096\nchunk_count = 4\nring_depth = 4\n".into(),
        bridge(
            "ingest",
            "/camera_info",
            "info",
            "sensor_msgs/msg/CameraInfo",
        ),
    ]
    .concat();
    let text = GOOD.replacen(
        "streams = [\"cam\", \"imu\"]\n",
        &format!("{EKF_BRIDGED}{good}"),
        1,
    );
    let (code, stdout, stderr) = check(&text);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("pinned memory needed"), "{stdout}");
    let (code, _, stderr) = check(
        &GOOD.replacen(
            "streams = [\"cam\", \"imu\"]\n",
            CAMERA_FROM_IMU
                .replacen("sensor_msgs/msg/Imu", "sensor_msgs/msg/Image", 1)
                .as_str(),
            1,
        ),
    );
    assert_eq!(
        code, 0,
        "the camera stream fed with Image is fine: {stderr}"
    );
}

#[test]
fn a_node_output_channel_must_hold_one_output_sample() {
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap();
    let old = "chunk_size = \"8 MiB\"          # ≥ 1920 × 1080 × 4 bytes (checked)";
    assert!(demo.contains(old), "the demo declares its depth channel");
    let (code, _, stderr) = check(&demo.replacen(old, "chunk_size = \"1 MiB\"", 1));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "expected chunk_size of at least 8294400 bytes for node output `depth`, found 1048576"
        ),
        "{stderr}"
    );
}

#[test]
fn an_error_quotes_the_line_and_underlines_the_value() {
    let (code, _, stderr) = check(&GOOD.replacen("ring_depth = 16", "ring_depth = 12", 1));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("11 | ring_depth = 12\n   |              ^^"),
        "{stderr}"
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = GOOD
        .replacen("ring_depth = 16", "ring_depth = 12", 1)
        .replacen(
            "streams = [\"cam\", \"imu\"]",
            "streams = [\"cam\", \"x\"]",
            1,
        );
    let (code, _, stderr) = check(&text);
    assert_eq!(code, 2);
    assert!(stderr.contains("FILE:11:14:"), "{stderr}");
    assert!(stderr.contains("FILE:26:19:"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["config", "check", "/nonexistent/deploy.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read config /nonexistent/deploy.toml"),
        "{stderr}"
    );
}

#[test]
fn every_example_and_the_built_in_demo_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected demo, vlp16-udp and mcap-replay in {}",
        dir.display()
    );
    for f in &files {
        let out = Command::new(BIN)
            .args(["config", "check"])
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("pinned memory needed"));
    }
    let demo = Command::new(BIN)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(demo.status.success());
    assert!(String::from_utf8_lossy(&demo.stdout).contains("<built-in demo>: ok"));
}

#[test]
fn config_show_round_trips_through_config_check() {
    let out = Command::new(BIN).args(["config", "show"]).output().unwrap();
    assert!(out.status.success());
    let (code, _, stderr) = check(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(code, 0, "{stderr}");
}

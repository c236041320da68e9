//! MCAP output read back by an independent reader: PyPI `mcap` + `mcap-ros2-support`
//! (tests/oracles/mcap_read.py), which decodes every message from the schema text in the file.

mod mcap_common;

use std::sync::atomic::AtomicBool;

use fusion::mcap_out::{ColoredPoint, McapOutput};
use fusion::mcap_replay::{replay_file, CollectSink, Pace};
use mcap_common::{python_read, scratch};
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::std_msgs::Header;

fn odom(k: u32) -> Odometry {
    let mut o = Odometry {
        header: Header {
            stamp: Time {
                sec: 100 + k as i32,
                nanosec: 5,
            },
            frame_id: "odom".into(),
        },
        child_frame_id: "base_link".into(),
        ..Odometry::default()
    };
    o.pose.pose.position.x = 1.5 * f64::from(k);
    o.pose.pose.position.y = -2.0;
    o.pose.pose.orientation.z = 0.6;
    o.pose.pose.orientation.w = 0.8;
    o.pose.covariance[7] = 0.25;
    o.twist.twist.linear.x = 0.75;
    o.twist.twist.angular.z = -0.125;
    o
}

#[test]
fn python_reader_decodes_depth_cloud_and_odometry_field_by_field() {
    let path = scratch("out");
    let mut out = McapOutput::create(&path).expect("create");
    let depth = [1.25f32, f32::NAN, 3.5, 0.0, 70.0, 0.001];
    let t0 = 1_700_000_000_123_456_789u64;
    out.write_depth_32f("/fused/depth", t0, "camera_optical", 3, 2, &depth)
        .unwrap();
    out.write_depth_16u("/fused/depth_mm", t0, "camera_optical", 3, 2, &depth)
        .unwrap();
    let pts = [
        ColoredPoint {
            xyz: [1.0, 2.0, 3.0],
            rgb: [255, 0, 10],
        },
        ColoredPoint {
            xyz: [-0.5, 0.25, 8.0],
            rgb: [1, 2, 3],
        },
    ];
    out.write_colored_cloud("/fused/cloud", t0 + 1, "lidar", &pts)
        .unwrap();
    for k in 0..3 {
        out.write_odometry("/fused/odom", &odom(k)).unwrap();
    }
    // Wrong sizes and a topic reused with another type are errors, not panics.
    let err = out
        .write_depth_32f("/fused/depth", t0, "c", 4, 2, &depth)
        .unwrap_err();
    assert!(
        err.to_string().contains("6 pixels, width 4 × height 2 = 8"),
        "{err}"
    );
    let err = out.write_odometry("/fused/depth", &odom(0)).unwrap_err();
    assert!(
        err.to_string().contains("carries sensor_msgs/msg/Image"),
        "{err}"
    );
    assert_eq!(out.written(), 6);
    out.finish().unwrap();

    let read = python_read(&path);
    assert_eq!(read["profile"], "ros2");
    let msgs = read["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    for m in msgs {
        assert_eq!(m["schema_encoding"], "ros2msg");
        assert_eq!(m["message_encoding"], "cdr");
    }
    let by_topic = |t: &str| msgs.iter().filter(|m| m["topic"] == t).collect::<Vec<_>>();

    let d = by_topic("/fused/depth")[0];
    assert_eq!(d["schema"], "sensor_msgs/msg/Image");
    assert_eq!(
        (
            d["encoding"].as_str(),
            d["width"].as_u64(),
            d["height"].as_u64()
        ),
        (Some("32FC1"), Some(3), Some(2))
    );
    assert_eq!(d["step"], 12);
    assert_eq!(d["stamp_ns"].as_u64(), Some(t0));
    assert_eq!(d["log_time"].as_u64(), Some(t0));
    assert_eq!(d["frame_id"], "camera_optical");
    let px = d["pixels"].as_array().unwrap();
    for (p, want) in px.iter().zip(depth) {
        if want.is_nan() {
            assert!(p.is_null(), "NaN pixel");
        } else {
            assert_eq!(p.as_f64().unwrap() as f32, want);
        }
    }

    let mm = by_topic("/fused/depth_mm")[0];
    assert_eq!(mm["encoding"], "16UC1");
    assert_eq!(mm["step"], 6);
    let want_mm = [1250u64, 0, 3500, 0, 0, 1];
    let got_mm: Vec<u64> = mm["pixels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got_mm, want_mm, "70 m is beyond 16UC1's 65.535 m: 0");

    let c = by_topic("/fused/cloud")[0];
    assert_eq!(c["schema"], "sensor_msgs/msg/PointCloud2");
    assert_eq!(
        c["fields"],
        serde_json::json!([
            ["x", 0, 7, 1],
            ["y", 4, 7, 1],
            ["z", 8, 7, 1],
            ["rgb", 12, 7, 1]
        ])
    );
    assert_eq!(
        (
            c["width"].as_u64(),
            c["height"].as_u64(),
            c["point_step"].as_u64(),
            c["row_step"].as_u64()
        ),
        (Some(2), Some(1), Some(16), Some(32))
    );
    assert_eq!(c["is_dense"], true);
    assert_eq!(
        c["points"],
        serde_json::json!([[1.0, 2.0, 3.0, 255, 0, 10], [-0.5, 0.25, 8.0, 1, 2, 3]])
    );

    let o = by_topic("/fused/odom");
    assert_eq!(o.len(), 3);
    for (k, m) in o.iter().enumerate() {
        assert_eq!(m["schema"], "nav_msgs/msg/Odometry");
        assert_eq!(
            m["stamp_ns"].as_u64(),
            Some((100 + k as u64) * 1_000_000_000 + 5)
        );
        assert_eq!(m["sequence"].as_u64(), Some(k as u64 + 1));
        assert_eq!(m["child_frame_id"], "base_link");
        assert_eq!(
            m["position"],
            serde_json::json!([1.5 * k as f64, -2.0, 0.0])
        );
        assert_eq!(m["orientation"], serde_json::json!([0.0, 0.0, 0.6, 0.8]));
        assert_eq!(m["pose_covariance"][7], 0.25);
        assert_eq!(m["linear"][0], 0.75);
        assert_eq!(m["angular"][2], -0.125);
    }

    // Our own replay reads it back too (round trip through the file).
    let mut sink = CollectSink::default();
    let report = replay_file(
        &path,
        Pace::AsFastAsPossible,
        &mut sink,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.stats.delivered, 6);
    let _ = std::fs::remove_file(&path);
}

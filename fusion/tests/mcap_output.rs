//! MCAP output read back by an independent reader: PyPI `mcap` + `mcap-ros2-support`
//! (tests/oracles/mcap_read.py), which decodes every message from the schema text in the file: the
//! writer itself, and the fusion node's coloured clouds against the projection.

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

/// The PointCloud2 fields of a coloured cloud as the reader lists them (name, offset, datatype,
/// count): x, y, z float32 (7) and `rgb` as a float32 holding the packed colour (PCL, Foxglove).
fn xyzrgb_fields() -> serde_json::Value {
    serde_json::json!([
        ["x", 0, 7, 1],
        ["y", 4, 7, 1],
        ["z", 8, 7, 1],
        ["rgb", 12, 7, 1]
    ])
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
    assert_eq!(c["fields"], xyzrgb_fields());
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

mod node_common;

/// Occlusion tolerance of the node's coloured cloud (`fusion_loop::OCCLUSION_TOLERANCE_M`): points
/// this far behind the nearest depth at their pixel are left out.
const OCCLUSION_TOLERANCE_M: f32 = 0.2;

/// The node's `/fusion/cloud`, read back by the Python reader, against the projection recomputed
/// here: the synthetic camera and LiDAR are deterministic functions of the stamp, and ExactTime pairs
/// a scan with the camera frame of the same stamp, so every cloud can be rebuilt from its stamp.
#[test]
fn node_writes_coloured_clouds_that_match_the_projection() {
    use fusion::driver::synthetic::{CameraConfig, LidarConfig, SyntheticCamera, SyntheticLidar};
    use fusion::driver::{spawn_driver_thread, truth_time, SensorDriver, StreamKind};
    use fusion::node::{FusionNode, NodeConfig, ProjectionSpec, SyncPolicy, Wakeup};
    use fusion::projection::{CloudView, ImageView, Projector, COLOURED_POINT_STEP};
    use fusion::synth::{self, LidarModel, LIDAR_POINT_STEP};
    use node_common::{rt, spec, unique, watchdog};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    watchdog(90, "node MCAP cloud test");
    let stop = Arc::new(AtomicBool::new(false));
    let cam_cfg = CameraConfig {
        width: 160,
        height: 120,
        rate_hz: 30.0,
        ..CameraConfig::default()
    };
    let points = 3200;
    let (cam, lidar) = (unique("mcam"), unique("mlidar"));
    let drivers: Vec<(Box<dyn SensorDriver>, &str)> = vec![
        (Box::new(SyntheticCamera::new(cam_cfg).unwrap()), &cam),
        (
            Box::new(
                SyntheticLidar::new(LidarConfig {
                    points_per_scan: points,
                    ..LidarConfig::default()
                })
                .unwrap(),
            ),
            &lidar,
        ),
    ];
    let threads: Vec<_> = drivers
        .into_iter()
        .map(|(d, n)| spawn_driver_thread(d, n, rt(40), stop.clone()).unwrap())
        .collect();
    let path = scratch("node");
    let projection = ProjectionSpec::synthetic(&cam_cfg);
    let cfg = NodeConfig {
        name: "mcap-cloud".into(),
        streams: vec![
            spec(&cam, StreamKind::Camera, 30.0),
            spec(&lidar, StreamKind::Lidar, 10.0),
        ],
        sync: SyncPolicy::ExactTime { queue_size: 6 },
        rt: rt(60),
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(10),
        },
        projection: Some(projection.clone()),
        ekf: None,
        // No shm cloud output: the fusion thread writes the cloud straight into an MCAP buffer.
        cloud_output_points: points,
        mcap_path: Some(path.clone()),
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    let t_end = std::time::Instant::now() + Duration::from_secs(30);
    while handle.counters().sets_fused.get() < 10 {
        assert!(
            std::time::Instant::now() < t_end,
            "no 10 sets fused in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = handle.stop().unwrap();
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    let s = &report.stats;
    assert_eq!(s.fuse_errors, 0);
    let written = report.mcap_written.expect("MCAP configured");

    let read = python_read(&path);
    let msgs = read["messages"].as_array().unwrap();
    assert_eq!(msgs.len() as u64, written);
    let clouds: Vec<_> = msgs
        .iter()
        .filter(|m| m["topic"] == "/fusion/cloud")
        .collect();
    let depths = msgs
        .iter()
        .filter(|m| m["topic"] == "/fusion/depth")
        .count();
    eprintln!(
        "{} sets fused, {} clouds and {depths} depth images in the file",
        s.sets_fused,
        clouds.len()
    );
    // A writer that falls behind drops clouds (the fusion thread never waits): most, not all.
    assert!(
        clouds.len() >= 5 && clouds.len() as u64 <= s.sets_fused,
        "{} clouds for {} sets",
        clouds.len(),
        s.sets_fused
    );

    let projector =
        Projector::new(&projection.camera, &projection.extrinsic, projection.model).unwrap();
    let cam_model = cam_cfg.model();
    let lidar_model = LidarModel::new(points);
    let mut scan = vec![0u8; lidar_model.max_scan_bytes()];
    let mut img = vec![0u8; cam_model.frame_len(cam_cfg.encoding)];
    let mut depth = vec![f32::NAN; 160 * 120];
    let mut expected = vec![0u8; points * COLOURED_POINT_STEP];
    let (mut compared, mut colours) = (0usize, std::collections::HashSet::new());
    for c in &clouds {
        assert_eq!(c["schema"], "sensor_msgs/msg/PointCloud2");
        assert_eq!(c["frame_id"], "lidar");
        assert_eq!(c["fields"], xyzrgb_fields());
        let width = c["width"].as_u64().unwrap() as usize;
        assert_eq!(c["height"], 1);
        assert_eq!(c["point_step"], 16);
        assert_eq!(c["row_step"].as_u64(), Some(16 * width as u64));
        assert_eq!(c["is_dense"], true);
        assert_eq!(c["log_time"], c["stamp_ns"]);

        // The projection of the same stamp's scan into the same stamp's image.
        let t = truth_time(c["stamp_ns"].as_u64().unwrap());
        let n = synth::lidar_scan(t, &lidar_model, &mut scan).unwrap();
        let cloud = CloudView::new(&scan, LIDAR_POINT_STEP, [0, 4, 8], n).unwrap();
        synth::camera_frame(t, &cam_model, cam_cfg.encoding, &mut img).unwrap();
        let image = ImageView::new(&img, 160, 120, 160 * 3, cam_cfg.encoding).unwrap();
        projector.depth_image(&cloud, &mut depth).unwrap();
        let m = projector
            .coloured_cloud(
                &cloud,
                &image,
                Some((&depth, OCCLUSION_TOLERANCE_M)),
                &mut expected,
            )
            .unwrap();
        assert_eq!(width, m, "point count against the projection");
        let got = c["points"].as_array().unwrap();
        assert_eq!(got.len(), m);
        for (p, want) in got.iter().zip(expected.chunks_exact(COLOURED_POINT_STEP)) {
            let f = |i: usize| f32::from_le_bytes([want[i], want[i + 1], want[i + 2], want[i + 3]]);
            let xyz: Vec<f32> = (0..3).map(|k| p[k].as_f64().unwrap() as f32).collect();
            assert_eq!(xyz, [f(0), f(4), f(8)], "point position");
            let rgb: Vec<u8> = (3..6).map(|k| p[k].as_u64().unwrap() as u8).collect();
            assert_eq!(rgb, [want[14], want[13], want[12]], "point colour");
            // The colour is the camera's pixel under the point.
            let q = projector
                .project([f(0), f(4), f(8)].map(f64::from))
                .unwrap();
            let px = projector.pixel_of(&q).unwrap();
            assert_eq!(
                Some([rgb[0], rgb[1], rgb[2]]),
                image.rgb(px % 160, px / 160)
            );
            colours.insert(rgb);
            compared += 1;
        }
    }
    eprintln!(
        "{compared} points compared, {} distinct colours",
        colours.len()
    );
    assert!(
        compared > clouds.len() * 100,
        "{compared} points in the clouds"
    );
    assert!(colours.len() > 3, "only {} colours", colours.len());
    let _ = std::fs::remove_file(&path);
}

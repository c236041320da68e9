//! End-to-end test of the node's coloured cloud and odometry output channels: synthetic drivers in
//! threads, the node on SCHED_FIFO, and real `shm_transport::Subscriber`s on both outputs. The
//! fusion thread's own steady-state check (allocations, page faults) must stay at zero with both
//! outputs written in place.

use fusion::alloc_check::CountingAllocator;
use fusion::driver::meta::{FrameMeta, StreamKind};
use fusion::driver::synthetic::CameraConfig;
use fusion::driver::truth_time;
use fusion::node::{
    FusionNode, NodeConfig, OdometryRecord, ProjectionSpec, SyncPolicy, Wakeup, CLOUD_XYZRGB,
};
use fusion::projection::COLOURED_POINT_STEP;
use nalgebra::Point3;
use shm_transport::Subscriber;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod node_common;
use node_common::{rt, spawn_four_drivers, spec, unique, watchdog};
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Slack (m) on the room's walls: LiDAR range noise, and the cloud is stamped with the camera frame
/// (ApproximateTime pairs it with a scan at most 20 ms away).
const ROOM_SLACK_M: f64 = 0.3;
/// Bound on the RMS position error of the published odometry (odometry noise is 5 cm).
const POSITION_RMSE_M: f64 = 0.1;

#[test]
fn node_publishes_coloured_clouds_and_odometry_on_shm_outputs() {
    watchdog(90, "node outputs test");
    let stop = Arc::new(AtomicBool::new(false));
    let cam_cfg = CameraConfig {
        width: 320,
        height: 240,
        rate_hz: 30.0,
        ..CameraConfig::default()
    };
    let (cam, lidar, imu, odom) = (
        unique("cam"),
        unique("lidar"),
        unique("imu"),
        unique("odom"),
    );
    let (cloud_ch, odom_ch) = (unique("cloud"), unique("odo"));
    let points_per_scan = 8000;
    let threads = spawn_four_drivers(cam_cfg, points_per_scan, [&cam, &lidar, &imu, &odom], &stop);
    let cfg = NodeConfig {
        name: "outputs".into(),
        streams: vec![
            spec(&cam, StreamKind::Camera, 30.0),
            spec(&lidar, StreamKind::Lidar, 10.0),
            spec(&imu, StreamKind::Imu, 200.0),
            spec(&odom, StreamKind::Odometry, 50.0),
        ],
        sync: SyncPolicy::ApproximateTime {
            queue_size: 4,
            age_penalty: 0.1,
            max_interval_ns: Some(20_000_000),
        },
        rt: rt(60),
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(10),
        },
        projection: Some(ProjectionSpec::synthetic(&cam_cfg)),
        cloud_output: Some(cloud_ch.clone()),
        cloud_output_points: points_per_scan,
        odometry_output: Some(odom_ch.clone()),
        stats_period: Duration::from_millis(200),
        warmup: Duration::from_millis(500),
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    let mut cloud_sub = Subscriber::open(&cloud_ch).unwrap();
    let mut odom_sub = Subscriber::open_typed::<OdometryRecord>(&odom_ch).unwrap();

    let lidar_in_body = fusion::truth::lidar_in_body();
    let (mut clouds, mut points, mut outside, mut non_finite) = (0, 0usize, 0usize, 0usize);
    let mut colours = std::collections::HashSet::new();
    let (mut records, mut pos2, mut yaw2, mut bad_records) = (0usize, 0.0, 0.0, 0usize);
    let room = fusion::truth::ROOM;
    let end = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < end {
        if let Some(s) = cloud_sub.receive_timeout(Duration::from_millis(2)).unwrap() {
            assert_eq!(s.user(), StreamKind::Lidar.user_word());
            let meta = FrameMeta::decode(s.user_header(), StreamKind::Lidar).unwrap();
            assert_eq!(meta.encoding, CLOUD_XYZRGB);
            assert_eq!(meta.step as usize, COLOURED_POINT_STEP);
            assert_eq!(meta.frame, clouds as u64, "cloud frames count up");
            assert_eq!(s.payload().len(), meta.width as usize * COLOURED_POINT_STEP);
            assert!(meta.width as usize <= points_per_scan);
            // Points are in the LiDAR frame at the (camera) stamp: into the world with the truth pose.
            let lidar_pose =
                fusion::truth::state(truth_time(s.sensor_time())).pose() * lidar_in_body;
            for rec in s.payload().chunks_exact(COLOURED_POINT_STEP) {
                let p = [f32_at(rec, 0), f32_at(rec, 4), f32_at(rec, 8)];
                if !p.iter().all(|c| c.is_finite()) {
                    non_finite += 1;
                    continue;
                }
                let w = lidar_pose * Point3::new(p[0] as f64, p[1] as f64, p[2] as f64);
                if (0..3)
                    .any(|a| w[a] < room.min[a] - ROOM_SLACK_M || w[a] > room.max[a] + ROOM_SLACK_M)
                {
                    outside += 1;
                }
                colours.insert(u32::from_le_bytes([rec[12], rec[13], rec[14], rec[15]]));
                points += 1;
            }
            clouds += 1;
        }
        while let Some(s) = odom_sub.receive().unwrap() {
            let r: OdometryRecord = s.read().unwrap();
            assert_eq!(r.stamp_ns, s.sensor_time());
            let finite = [r.position.as_slice(), &r.orientation, &r.pose_variance]
                .iter()
                .all(|v| v.iter().all(|x| x.is_finite()));
            let unit = (r.orientation.iter().map(|q| q * q).sum::<f64>() - 1.0).abs() < 1e-9;
            if !finite || !unit || r.pose_variance.iter().any(|v| *v < 0.0) {
                bad_records += 1;
                continue;
            }
            let truth = fusion::truth::state(truth_time(r.stamp_ns));
            let (dx, dy) = (
                r.position[0] - truth.position.x,
                r.position[1] - truth.position.y,
            );
            pos2 += dx * dx + dy * dy;
            yaw2 += fusion::synth::wrap_angle(r.yaw() - truth.yaw).powi(2);
            records += 1;
        }
    }
    assert_eq!(
        handle.counters().steady.get(),
        1,
        "the self-check window started"
    );
    let report = handle.stop().unwrap();
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    let s = &report.stats;
    eprintln!("{s}");
    eprintln!(
        "clouds {clouds}, points {points} ({outside} outside the room, {non_finite} non-finite), \
         {} colours",
        colours.len()
    );
    assert_eq!(s.fuse_errors, 0);
    assert_eq!(
        (s.steady_allocations, s.steady_minor_faults),
        (0, 0),
        "the fusion thread allocated or faulted pages in after warm-up"
    );
    assert!(clouds >= 8, "{clouds} coloured clouds received");
    assert!(
        points > clouds * 500,
        "{points} points in {clouds} clouds: most of the camera's view should be covered"
    );
    assert_eq!(non_finite, 0, "non-finite points in the coloured cloud");
    assert_eq!(outside, 0, "coloured points outside the room");
    // The scene's surfaces are flat-coloured and shaded per face: a handful of colours, never one.
    assert!(colours.len() > 3, "only {} distinct colours", colours.len());

    assert_eq!(bad_records, 0, "malformed odometry records");
    assert!(records > 100, "{records} odometry records received");
    let n = records as f64;
    let (pos_rmse, yaw_rmse) = ((pos2 / n).sqrt(), (yaw2 / n).sqrt());
    eprintln!(
        "odometry: {records} records, position RMSE {pos_rmse:.3} m, yaw RMSE {yaw_rmse:.4} rad"
    );
    assert!(
        pos_rmse < POSITION_RMSE_M && yaw_rmse < 0.03,
        "position RMSE {pos_rmse} m (bound {POSITION_RMSE_M}), yaw RMSE {yaw_rmse} rad"
    );
}

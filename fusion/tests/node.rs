//! End-to-end tests of the fusion node with synthetic drivers: in threads, and as real child processes
//! that are killed and restarted while the node runs.

use fusion::driver::meta::encode_odometry;
use fusion::driver::meta::{FrameMeta, StreamKind};
use fusion::driver::synthetic::{
    CameraConfig, ImuConfig, OdometryConfig, SyntheticImu, SyntheticOdometry,
};
use fusion::driver::{spawn_driver_thread, truth_time, SensorDriver};
use fusion::node::{
    Estimate, FusionNode, NodeConfig, NodeError, ProjectionSpec, SyncPolicy, Wakeup,
    DEFAULT_FUSE_SLICE_POINTS,
};
use fusion::rt::RtConfig;
use fusion::synth::odometry_sample;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rtfuse_trace::{TraceReader, FLAG_SCHED_FIFO};
use shm_transport::{Publisher, Subscriber};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod node_common;
use node_common::{rt, spawn_four_drivers, spec, unique, watchdog};
#[test]
fn node_pairs_projects_and_traces_synthetic_drivers_in_threads() {
    watchdog(90, "node end-to-end test");
    let stop = Arc::new(AtomicBool::new(false));
    let cam_cfg = CameraConfig {
        width: 320,
        height: 240,
        rate_hz: 30.0,
        ..CameraConfig::default()
    };
    let (cam, lidar, imu, depth) = (
        unique("cam"),
        unique("lidar"),
        unique("imu"),
        unique("depth"),
    );
    let odom = unique("odom");
    let threads = spawn_four_drivers(cam_cfg, 8000, [&cam, &lidar, &imu, &odom], &stop);
    let trace = std::env::temp_dir().join(format!("{}.rtft", unique("trace")));
    let mcap = std::env::temp_dir().join(format!("{}.mcap", unique("fused")));
    let cfg = NodeConfig {
        name: "e2e".into(),
        streams: vec![
            spec(&cam, StreamKind::Camera, 30.0),
            spec(&lidar, StreamKind::Lidar, 10.0),
            spec(&imu, StreamKind::Imu, 200.0),
            spec(&odom, StreamKind::Odometry, 50.0),
        ],
        // Commensurate driver rates share stamps, so exact pairing works.
        sync: SyncPolicy::ExactTime { queue_size: 6 },
        rt: rt(60),
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(10),
        },
        projection: Some(ProjectionSpec::synthetic(&cam_cfg)),
        depth_output: Some(depth.clone()),
        trace_path: Some(trace.clone()),
        mcap_path: Some(mcap.clone()),
        stats_period: Duration::from_millis(200),
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    let mut depth_sub = Subscriber::open(&depth).unwrap();
    let (mut images, mut finite_px, mut bad_depth) = (0, 0usize, 0usize);
    let end = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < end {
        if let Some(s) = depth_sub
            .receive_timeout(Duration::from_millis(50))
            .unwrap()
        {
            let meta = FrameMeta::decode(s.user_header(), StreamKind::Depth).unwrap();
            meta.check_payload(s.payload().len()).unwrap();
            assert_eq!((meta.width, meta.height), (320, 240));
            for px in s.payload().chunks_exact(4) {
                let d = f32::from_le_bytes([px[0], px[1], px[2], px[3]]);
                if d.is_finite() {
                    finite_px += 1;
                    // Inside the 28 × 18 × 4 m room, in front of the camera.
                    if !(0.01..35.0).contains(&d) {
                        bad_depth += 1;
                    }
                }
            }
            images += 1;
        }
    }
    let live = handle.snapshot();
    assert!(
        live.rt.is_some() && !live.streams.is_empty(),
        "live snapshot: {live:?}"
    );
    let mut estimates = Vec::new();
    handle.drain_estimates(&mut estimates);
    let report = handle.stop().unwrap();
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    let s = &report.stats;
    // The EKF follows the true trajectory (odometry noise is 5 cm, 1°).
    assert!(estimates.len() > 100, "{} estimates", estimates.len());
    let (pos_rmse, yaw_rmse) = rmse_against_truth(&estimates);
    eprintln!(
        "EKF: {} estimates, position RMSE {pos_rmse:.3} m, yaw RMSE {yaw_rmse:.4} rad",
        estimates.len()
    );
    assert!(
        pos_rmse < 0.1 && yaw_rmse < 0.03,
        "position RMSE {pos_rmse} m, yaw RMSE {yaw_rmse} rad"
    );
    // No outliers are injected, so the gate must reject nothing. Under parallel load on 2 cores
    // drivers run late and odometry reaches the filter after newer IMU samples: the EKF fuses it at
    // its stamp by rewinding (counted as late), instead of gating the old pose against the present.
    // A sample older than the filter's half-second history would be dropped (too late), not gated.
    let lost: u64 = s.streams.iter().map(|x| x.dropped).sum();
    eprintln!(
        "EKF: {} accepted, {} rejected, {} late (fused by rewinding), {} too late (dropped); \
         samples lost upstream: {lost}",
        s.ekf_accepted, s.ekf_rejected, s.ekf_late, s.ekf_too_late
    );
    assert_eq!(s.ekf_rejected, 0, "clean measurements rejected by the gate");
    eprintln!("{s}\ndepth images {images}, finite pixels {finite_px}");
    assert!(s.sets_fused >= 8, "sets fused {}", s.sets_fused);
    assert_eq!(s.fuse_errors, 0);
    assert!(
        images >= 8 && finite_px > images * 1000,
        "images {images}, finite pixels {finite_px}"
    );
    assert_eq!(bad_depth, 0, "depths outside the room");
    for st in &s.streams {
        assert_eq!((st.errors, st.invalid), (0, 0), "{st:?}");
        assert!(st.received > 0 && st.dma_to_fuse_start.count > 0, "{st:?}");
        assert!(st.dma_to_fuse_start.p50_ns <= st.dma_to_fuse_start.max_ns);
    }
    assert!(
        s.streams[2].received >= 150,
        "imu received {}",
        s.streams[2].received
    );

    let t = TraceReader::open(&trace).unwrap();
    assert!(t.complete, "trace has its trailer");
    assert_eq!(t.lost, 0);
    let received: u64 = s.streams.iter().map(|x| x.received).sum();
    assert_eq!(
        t.records.len() as u64,
        received,
        "one record per received sample"
    );
    assert_eq!(t.header.streams.len(), 4);
    assert_eq!(t.header.fusion_policy, report.rt.policy.as_str());
    assert_eq!(
        t.header.fuse_slice_points,
        Some(DEFAULT_FUSE_SLICE_POINTS as u64),
        "the header notes the slicing"
    );
    assert!(
        s.fuse_slices > s.sets_fused && s.fuse_slice_max_ns > 0,
        "{s}"
    );
    let fifo = report.rt.is_fifo();
    assert!(t
        .records
        .iter()
        .all(|r| (r.flags & FLAG_SCHED_FIFO != 0) == fifo));
    let fused = t.records.iter().filter(|r| r.t_fuse_start_ns != 0).count() as u64;
    assert_eq!(
        fused,
        2 * s.sets_fused + s.streams[2].received + s.streams[3].received,
        "pairs plus every IMU and odometry sample were fused"
    );
    for r in &t.records {
        assert!(
            r.t_sensor_ns <= r.t_dma_ns
                && r.t_dma_ns <= r.t_enqueue_ns
                && r.t_enqueue_ns <= r.t_dequeue_ns,
            "{r:?}"
        );
        if r.t_fuse_start_ns != 0 {
            assert!(
                r.t_dequeue_ns <= r.t_fuse_start_ns && r.t_fuse_start_ns <= r.t_fuse_end_ns,
                "{r:?}"
            );
        }
    }
    std::fs::remove_file(&trace).ok();

    // The MCAP file, read by an independent reader (Python `mcap` + `mcap-ros2-support`).
    let written = report.mcap_written.expect("MCAP configured");
    let out = Command::new("python3")
        .args(["-c", PY_MCAP_CHECK, mcap.to_str().unwrap()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "Python MCAP reader failed (needs `pip install mcap mcap-ros2-support`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("python reader: {text}");
    let counts: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (depth_msgs, odom_msgs, cloud_msgs) = (counts[0], counts[1], counts[2]);
    assert_eq!(depth_msgs + odom_msgs + cloud_msgs, written);
    assert!(
        depth_msgs >= 8 && depth_msgs <= s.sets_fused,
        "{depth_msgs} depth images"
    );
    assert!(
        cloud_msgs >= 8 && cloud_msgs <= s.sets_fused,
        "{cloud_msgs} coloured clouds"
    );
    assert!(
        odom_msgs >= 100 && odom_msgs <= s.ekf_accepted,
        "{odom_msgs} odometry messages"
    );
    assert!(text.contains("32FC1 320 240"), "{text}");
    std::fs::remove_file(&mcap).ok();
}

/// Prints "<depth count> <odometry count> <cloud count> <encoding> <width> <height>"; fails on any
/// decoding error, a non-finite odometry position or a malformed cloud.
const PY_MCAP_CHECK: &str = r#"
import sys, math
try:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
except ImportError as e:
    sys.exit(f"missing Python package: {e} (pip install mcap mcap-ros2-support)")
n = {"/fusion/depth": 0, "/fusion/odometry": 0, "/fusion/cloud": 0}
enc = "none"
with open(sys.argv[1], "rb") as f:
    r = make_reader(f, decoder_factories=[DecoderFactory()])
    for schema, channel, message, msg in r.iter_decoded_messages():
        n[channel.topic] += 1
        if channel.topic == "/fusion/depth":
            assert len(msg.data) == msg.step * msg.height
            enc = f"{msg.encoding} {msg.width} {msg.height}"
        elif channel.topic == "/fusion/cloud":
            assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"], msg.fields
            assert msg.point_step == 16 and len(msg.data) == 16 * msg.width * msg.height
        else:
            p = msg.pose.pose.position
            assert math.isfinite(p.x) and math.isfinite(p.y), p
print(n["/fusion/depth"], n["/fusion/odometry"], n["/fusion/cloud"], enc)
"#;

/// Publishes synthetic odometry at `rate_hz` on `channel`, each sample measured `lag` before it is
/// sent (a sensor behind a slow link): its sensor stamp is `lag` older than its "DMA complete".
fn lagging_odometry(
    channel: &str,
    rate_hz: f64,
    lag: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let proto = SyntheticOdometry::new(OdometryConfig::default()).unwrap();
    let mut publisher = Publisher::create(channel, &proto.channel_config()).unwrap();
    std::thread::spawn(move || {
        let noise = OdometryConfig::default().noise;
        let mut rng = StdRng::seed_from_u64(21);
        let mut sent = 0;
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_secs_f64(1.0 / rate_hz));
            let now = fusion::rt::now_ns();
            let stamp = now - lag.as_nanos() as u64;
            let s = odometry_sample(truth_time(stamp), &noise, &mut rng);
            let Ok(mut chunk) = publisher.loan() else {
                continue;
            };
            let len = encode_odometry(&s, chunk.payload_mut()).unwrap();
            FrameMeta::fixed(StreamKind::Odometry, sent)
                .encode(chunk.user_header_mut())
                .unwrap();
            chunk.set_len(len);
            chunk.set_sensor_time(stamp);
            chunk.set_dma_time(now);
            chunk.set_user(StreamKind::Odometry.user_word());
            if chunk.publish().is_ok() {
                sent += 1;
            }
        }
        sent
    })
}

#[test]
fn late_odometry_is_fused_at_its_stamp_not_gated() {
    watchdog(60, "late odometry test");
    let stop = Arc::new(AtomicBool::new(false));
    let (imu, odom) = (unique("limu"), unique("lodom"));
    let imu_drv = SyntheticImu::new(ImuConfig {
        rate_hz: 200.0,
        ..ImuConfig::default()
    })
    .unwrap();
    let imu_thread = spawn_driver_thread(Box::new(imu_drv), &imu, rt(40), stop.clone()).unwrap();
    // 150 ms behind: the IMU samples of the last 150 ms are always fused before each odometry
    // sample arrives, so every one of them is out of sequence.
    let odom_thread = lagging_odometry(&odom, 50.0, Duration::from_millis(150), stop.clone());
    let cfg = NodeConfig {
        name: "late".into(),
        streams: vec![
            spec(&imu, StreamKind::Imu, 200.0),
            spec(&odom, StreamKind::Odometry, 50.0),
        ],
        rt: rt(60),
        projection: None,
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    let c = handle.counters();
    wait_until("late odometry fused", Duration::from_secs(30), || {
        c.ekf_late.get() >= 40
    });
    let mut estimates = Vec::new();
    handle.drain_estimates(&mut estimates);
    let report = handle.stop().unwrap();
    stop.store(true, Ordering::Release);
    imu_thread.join().unwrap();
    let sent = odom_thread.join().unwrap();
    let s = &report.stats;
    eprintln!("{s}\nodometry sent {sent}");
    assert_eq!(s.ekf_rejected, 0, "late odometry rejected by the gate");
    assert_eq!(
        s.ekf_too_late, 0,
        "150 ms is inside the half-second history"
    );
    // All but the first (which starts the filter) are behind the IMU.
    assert!(
        s.ekf_late + 1 >= s.streams[1].received,
        "{} of {} odometry samples fused late",
        s.ekf_late,
        s.streams[1].received
    );
    // Estimates are stamped with the filter time (the newest IMU stamp), and are accurate there.
    let (pos_rmse, yaw_rmse) = rmse_against_truth(&estimates);
    let n = estimates.len();
    eprintln!("{n} estimates, position RMSE {pos_rmse:.3} m, yaw RMSE {yaw_rmse:.4} rad");
    assert!(n > 100 && pos_rmse < 0.1 && yaw_rmse < 0.03);
}

/// Position (x, y) and yaw RMSE of EKF estimates against the ground truth at their stamps.
fn rmse_against_truth(estimates: &[Estimate]) -> (f64, f64) {
    let (mut pos2, mut yaw2) = (0.0, 0.0);
    for e in estimates {
        let truth = fusion::truth::state(truth_time(e.t_sensor_ns));
        pos2 += (e.state[0] - truth.position.x).powi(2) + (e.state[1] - truth.position.y).powi(2);
        yaw2 += fusion::synth::wrap_angle(e.state[5] - truth.yaw).powi(2);
    }
    let n = estimates.len() as f64;
    ((pos2 / n).sqrt(), (yaw2 / n).sqrt())
}

/// Kills the child on drop so a failing test leaves no process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn driver_process(kind: &str, channel: &str, rate: &str) -> ChildGuard {
    ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_synth-driver"))
            .args([kind, channel, "--rate", rate])
            .spawn()
            .expect("spawn synth-driver"),
    )
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn node_survives_sigkilled_driver_processes_and_reconnects() {
    watchdog(90, "driver-process test");
    let (imu, lidar) = (unique("pimu"), unique("plidar"));
    let cfg = NodeConfig {
        name: "proc".into(),
        streams: vec![
            spec(&imu, StreamKind::Imu, 400.0),
            spec(&lidar, StreamKind::Lidar, 10.0),
        ],
        rt: rt(60),
        projection: None,
        ..NodeConfig::demo()
    };
    // The node starts first: channels are opened when the drivers create them.
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    let mut d_imu = driver_process("imu", &imu, "400");
    let _d_lidar = driver_process("lidar", &lidar, "10");
    let c = |i| handle.stream_counters(i).unwrap();
    wait_until("first IMU samples", Duration::from_secs(20), || {
        c(0).received.get() >= 100
    });
    wait_until("first LiDAR scans", Duration::from_secs(20), || {
        c(1).received.get() >= 2
    });

    // SIGKILL the IMU driver: its chunks, descriptors and segment are left behind as they were.
    d_imu.0.kill().unwrap();
    d_imu.0.wait().unwrap();
    let before = c(0).received.get();
    std::thread::sleep(Duration::from_millis(200));
    let d_imu2 = driver_process("imu", &imu, "400");
    wait_until(
        "reconnect to the restarted IMU driver",
        Duration::from_secs(20),
        || c(0).reconnects.get() >= 1,
    );
    wait_until(
        "IMU samples from the new driver",
        Duration::from_secs(20),
        || c(0).received.get() >= before + 100,
    );
    let lidar_mid = c(1).received.get();
    wait_until("LiDAR kept flowing", Duration::from_secs(20), || {
        c(1).received.get() > lidar_mid
    });

    drop(d_imu2);
    let report = handle.stop().unwrap();
    eprintln!("{}", report.stats);
    let s = &report.stats.streams;
    assert_eq!(s[0].reconnects, 1);
    assert_eq!((s[0].invalid, s[1].invalid), (0, 0));
}

#[test]
fn spin_wakeup_under_sched_other_serves_an_imu_only_node() {
    watchdog(60, "spin test");
    let stop = Arc::new(AtomicBool::new(false));
    let imu = unique("spin_imu");
    let drv = SyntheticImu::new(ImuConfig {
        rate_hz: 500.0,
        ..ImuConfig::default()
    })
    .unwrap();
    let t = spawn_driver_thread(Box::new(drv), &imu, rt(40), stop.clone()).unwrap();
    let cfg = NodeConfig {
        name: "spin".into(),
        streams: vec![spec(&imu, StreamKind::Imu, 500.0)],
        // Busy-polling at SCHED_OTHER so the test never monopolises a core.
        rt: RtConfig {
            fifo_priority: None,
            ..rt(0)
        },
        wakeup: Wakeup::Spin,
        projection: None,
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg).unwrap().start().unwrap();
    assert!(!handle.rt_status().is_fifo());
    wait_until("IMU samples", Duration::from_secs(20), || {
        handle.stream_counters(0).unwrap().received.get() >= 200
    });
    let mut est = Vec::new();
    handle.drain_estimates(&mut est);
    let report = handle.stop().unwrap();
    stop.store(true, Ordering::Release);
    t.join().unwrap();
    assert!(report.stats.streams[0].received >= 200);
    assert!(
        report.stats.ekf_accepted > 0 && !est.is_empty(),
        "IMU-only EKF ran"
    );
    assert!(report.stats.sets_fused == 0 && report.trace.is_none());
}

#[test]
fn bad_configurations_are_refused_with_a_clear_message() {
    let base = NodeConfig::demo();
    let cases: Vec<(NodeConfig, &str)> = vec![
        (
            NodeConfig {
                streams: vec![],
                ..base.clone()
            },
            "streams",
        ),
        (
            NodeConfig {
                streams: vec![
                    spec("a", StreamKind::Camera, 30.0),
                    spec("b", StreamKind::Camera, 30.0),
                ],
                ..base.clone()
            },
            "more than one camera",
        ),
        (
            NodeConfig {
                streams: vec![spec("a/b", StreamKind::Imu, 30.0)],
                ..base.clone()
            },
            "not a valid channel name",
        ),
        (
            NodeConfig {
                streams: vec![
                    spec("a", StreamKind::Imu, 1.0),
                    spec("a", StreamKind::Lidar, 1.0),
                ],
                ..base.clone()
            },
            "listed twice",
        ),
        (
            NodeConfig {
                streams: vec![spec("a", StreamKind::Imu, 0.0)],
                ..base.clone()
            },
            "must be positive",
        ),
        (
            NodeConfig {
                sync: SyncPolicy::ExactTime { queue_size: 0 },
                ..base.clone()
            },
            "queue size",
        ),
        (
            NodeConfig {
                sync: SyncPolicy::ApproximateTime {
                    queue_size: 3,
                    age_penalty: -1.0,
                    max_interval_ns: None,
                },
                ..base.clone()
            },
            "age penalty",
        ),
        (
            NodeConfig {
                fuse_slice_points: 0,
                ..base.clone()
            },
            "fuse_slice_points",
        ),
    ];
    for (cfg, expect) in cases {
        match FusionNode::new(cfg) {
            Err(NodeError::Config(m)) => {
                assert!(m.contains(expect), "{m:?} should mention {expect:?}")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted a configuration that should mention {expect:?}"),
        }
    }
}

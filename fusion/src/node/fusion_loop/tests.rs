//! The order of events around a pair fused in slices (what is served before what; no timing), and
//! the loop's wait with a received sample in hand.

use super::*;
use crate::driver::synthetic::{
    CameraConfig, ChannelParams, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera,
    SyntheticImu, SyntheticLidar, SyntheticOdometry,
};
use crate::driver::{fill_sample, FrameSource, SensorDriver};
use crate::node::{ProjectionSpec, StreamSpec};
use shm_transport::Publisher;
use std::sync::atomic::AtomicU32;
use std::sync::mpsc::{self, RecvTimeoutError};

/// A channel name unique to this process and call, so tests run in parallel.
fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fl{}_{tag}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Publishes one sample of `source` stamped `t_sensor_ns`, as its driver does at a tick.
fn publish(source: &mut dyn FrameSource, kind: StreamKind, p: &mut Publisher, t_sensor_ns: u64) {
    let mut sample = p.loan().expect("a free chunk");
    fill_sample(source, kind, &mut sample, t_sensor_ns, 0).expect("the source fills");
    assert!(sample.publish().is_ok(), "published");
}

/// Channels for `drivers` (named after `tags`, made unique), their publishers, and the node's
/// streams that read them.
fn channels(drivers: &[&dyn SensorDriver], tags: &[&str]) -> (Vec<Publisher>, Vec<StreamSpec>) {
    drivers
        .iter()
        .zip(tags)
        .map(|(d, tag)| {
            let channel = unique(tag);
            let publisher = Publisher::create(&channel, &d.channel_config()).unwrap();
            let spec = StreamSpec {
                channel,
                kind: d.kind(),
                rate_hz: d.rate_hz(),
            };
            (publisher, spec)
        })
        .unzip()
}

/// The loop of `cfg` with every input open, and what it shares (queues of `records` each).
fn open_loop(cfg: &NodeConfig, records: usize) -> (FusionLoop, Shared) {
    let sh = Shared {
        stop: Arc::new(AtomicBool::new(false)),
        node: Arc::new(NodeCounters::default()),
        streams: cfg
            .streams
            .iter()
            .map(|_| Arc::new(StreamCounters::default()))
            .collect(),
        stats: RecordSink::with_capacity(records),
        trace: None,
        estimates: Arc::new(ArrayQueue::new(records)),
        mcap: None,
    };
    let mut lp = FusionLoop::new(cfg, &sh, Outputs::default(), 0);
    lp.open_missing(now_ns(), 0);
    assert!(lp.service.inputs.iter().all(|i| i.sub.is_some()));
    (lp, sh)
}

#[test]
fn an_imu_sample_arriving_during_a_pair_is_served_before_the_pair_ends() {
    let cam_cfg = CameraConfig {
        width: 160,
        height: 120,
        ..CameraConfig::default()
    };
    let mut cam = SyntheticCamera::new(cam_cfg).unwrap();
    let mut lidar = SyntheticLidar::new(LidarConfig {
        points_per_scan: 3200,
        ..LidarConfig::default()
    })
    .unwrap();
    let mut imu = SyntheticImu::new(ImuConfig::default()).unwrap();
    let (mut pubs, streams) = channels(&[&cam, &lidar, &imu], &["cam", "lidar", "imu"]);
    let cfg = NodeConfig {
        name: "slices".into(),
        streams,
        sync: SyncPolicy::ExactTime { queue_size: 4 },
        projection: Some(ProjectionSpec::synthetic(&cam_cfg)),
        // 19 200 pixels and 3 200 points: 3 slices of clearing, 13 of projection.
        fuse_slice_points: 256,
        ..NodeConfig::demo()
    };
    let (mut lp, sh) = open_loop(&cfg, 64);

    // Camera and LiDAR of one tick: ExactTime pairs them as soon as both are handed on.
    let t = now_ns();
    publish(&mut cam, StreamKind::Camera, &mut pubs[0], t);
    publish(&mut lidar, StreamKind::Lidar, &mut pubs[1], t);
    let (mut boundaries, mut imu_served_at) = (0u64, None);
    let stats = sh.stats.clone();
    lp.serve(&mut |svc: &mut Service| {
        boundaries += 1;
        if boundaries == 1 {
            // Arrives while the pair is being fused: after its first slice.
            publish(&mut imu, StreamKind::Imu, &mut pubs[2], t + 1_000_000);
        }
        svc.serve_unpaired();
        // The pair's own records come when it ends; until then a record is the IMU's.
        if imu_served_at.is_none() && !stats.is_empty() {
            imu_served_at = Some(boundaries);
        }
    });

    let node = &sh.node;
    assert_eq!((node.sets_fused.get(), node.fuse_errors.get()), (1, 0));
    assert_eq!(imu_served_at, Some(1), "served at the first slice boundary");
    assert!(
        boundaries >= 16,
        "the projection resumed after serving: {boundaries} slice boundaries"
    );
    assert_eq!(node.fuse_slices.get(), boundaries + 1);
    assert!(node.fuse_slice_max_ns.get() > 0);
    let records: Vec<Record> = std::iter::from_fn(|| stats.pop()).collect();
    let streams: Vec<u16> = records.iter().map(|r| r.stream).collect();
    assert_eq!(streams, [2, 0, 1], "the IMU's record before the pair's");
    let (imu_r, cam_r, lidar_r) = (records[0], records[1], records[2]);
    assert!(
        imu_r.t_fuse_start_ns > 0,
        "the IMU sample was fused: {imu_r:?}"
    );
    assert_eq!(
        (cam_r.t_fuse_start_ns, cam_r.t_fuse_end_ns),
        (lidar_r.t_fuse_start_ns, lidar_r.t_fuse_end_ns)
    );
    assert!(
        cam_r.t_fuse_start_ns <= imu_r.t_fuse_start_ns
            && imu_r.t_fuse_end_ns <= cam_r.t_fuse_end_ns,
        "the IMU sample was served inside the pair's fusion: {imu_r:?} {cam_r:?}"
    );
    // CPU time: both members carry the pair's; it leaves out what was served between slices, so
    // the pair's and the IMU step's together fit in the pair's span (CLOCK_THREAD_CPUTIME_ID and
    // CLOCK_MONOTONIC may differ by a clock slew: 1 % and 50 µs of slack).
    assert_eq!(cam_r.fuse_cpu_ns, lidar_r.fuse_cpu_ns);
    let (pair_cpu, imu_cpu) = (u64::from(cam_r.fuse_cpu_ns), u64::from(imu_r.fuse_cpu_ns));
    assert!(pair_cpu > 0 && imu_cpu > 0, "{cam_r:?} {imu_r:?}");
    let span = cam_r.t_fuse_end_ns - cam_r.t_fuse_start_ns;
    assert!(
        pair_cpu + imu_cpu <= span + span / 100 + 50_000,
        "pair {pair_cpu} ns + IMU {imu_cpu} ns of CPU in a {span} ns span"
    );
    lp.release_all();
}

#[test]
fn a_turn_that_ends_at_its_limit_with_a_sample_in_hand_does_not_sleep() {
    // IMU and odometry: one turn takes BURST samples per input, 64 in all.
    let turn = BURST * 2;
    let deep = ChannelParams {
        chunk_count: turn as u32 + 8,
        ring_depth: (turn as u32).next_power_of_two(),
        ..ChannelParams::small()
    };
    let mut imu = SyntheticImu::new(ImuConfig {
        channel: deep,
        ..ImuConfig::default()
    })
    .unwrap();
    let mut odom = SyntheticOdometry::new(OdometryConfig::default()).unwrap();
    let (mut pubs, streams) = channels(&[&imu, &odom], &["imu", "odom"]);
    let cfg = NodeConfig {
        name: "pending".into(),
        streams,
        projection: None,
        ..NodeConfig::demo()
    };
    let (mut lp, sh) = open_loop(&cfg, 2 * turn);

    // A backlog of exactly one turn of IMU samples, and one odometry sample measured after all of
    // them: the turn takes the odometry sample with the first IMU sample and keeps it for last.
    let t = now_ns();
    for k in 0..turn as u64 {
        publish(&mut imu, StreamKind::Imu, &mut pubs[0], t + k * 1_000);
    }
    let mut odom_pub = pubs.pop().unwrap();
    publish(
        &mut odom,
        StreamKind::Odometry,
        &mut odom_pub,
        t + turn as u64 * 1_000,
    );
    lp.serve(&mut Service::serve_unpaired);
    let stats = sh.stats.clone();
    assert_eq!(stats.len(), turn, "the turn ended at its limit");
    assert!(lp.service.pending[1].is_some(), "the odometry sample waits");
    assert!(
        lp.service
            .inputs
            .iter()
            .all(|i| !i.sub.as_ref().unwrap().has_data()),
        "every channel is empty"
    );

    // The wait must return at once. Should it sleep, the watchdog wakes it with another odometry
    // sample and the assertion below fails (it never fires on a wait that returns).
    let (cancel, cancelled) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(Duration::from_secs(30)) {
            publish(
                &mut odom,
                StreamKind::Odometry,
                &mut odom_pub,
                t + 1_000_000_000,
            );
            return true;
        }
        false
    });
    let hour = Duration::from_secs(3600);
    lp.wait(now_ns(), hour, hour);
    let _ = cancel.send(());
    let woken_by_watchdog = watchdog.join().unwrap();
    assert!(
        !woken_by_watchdog,
        "the loop slept with a received odometry sample in hand"
    );

    // The next turn hands it on.
    lp.serve(&mut Service::serve_unpaired);
    let streams: Vec<u16> = std::iter::from_fn(|| stats.pop())
        .map(|r| r.stream)
        .collect();
    assert_eq!(streams.len(), turn + 1);
    assert!(streams[..turn].iter().all(|&s| s == 0));
    assert_eq!(streams[turn], 1, "the odometry sample's record comes last");
    lp.release_all();
}

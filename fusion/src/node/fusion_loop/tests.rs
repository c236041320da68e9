//! The order of events around a pair fused in slices (what is served before what; no timing).

use super::*;
use crate::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, SyntheticCamera, SyntheticImu, SyntheticLidar,
};
use crate::driver::{fill_sample, FrameSource, SensorDriver};
use crate::node::{ProjectionSpec, StreamSpec};
use shm_transport::Publisher;
use std::sync::atomic::AtomicU32;

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
    let drivers: [&dyn SensorDriver; 3] = [&cam, &lidar, &imu];
    let names: Vec<String> = ["cam", "lidar", "imu"].iter().map(|t| unique(t)).collect();
    let mut pubs: Vec<Publisher> = drivers
        .iter()
        .zip(&names)
        .map(|(d, n)| Publisher::create(n, &d.channel_config()).unwrap())
        .collect();
    let cfg = NodeConfig {
        name: "slices".into(),
        streams: drivers
            .iter()
            .zip(&names)
            .map(|(d, n)| StreamSpec {
                channel: n.clone(),
                kind: d.kind(),
                rate_hz: d.rate_hz(),
            })
            .collect(),
        sync: SyncPolicy::ExactTime { queue_size: 4 },
        projection: Some(ProjectionSpec::synthetic(&cam_cfg)),
        // 19 200 pixels and 3 200 points: 3 slices of clearing, 13 of projection.
        fuse_slice_points: 256,
        ..NodeConfig::demo()
    };
    let sh = Shared {
        stop: Arc::new(AtomicBool::new(false)),
        node: Arc::new(NodeCounters::default()),
        streams: (0..3)
            .map(|_| Arc::new(StreamCounters::default()))
            .collect(),
        stats: RecordSink::with_capacity(64),
        trace: None,
        estimates: Arc::new(ArrayQueue::new(16)),
        mcap: None,
    };
    let mut lp = FusionLoop::new(&cfg, &sh, Outputs::default(), 0);
    lp.open_missing(now_ns(), 0);
    assert!(lp.service.inputs.iter().all(|i| i.sub.is_some()));

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
    lp.release_all();
}

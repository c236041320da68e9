//! Helpers shared by the node tests (`node.rs`, `node_outputs.rs`, `steady_state.rs`).
#![allow(dead_code)] // each test binary uses a subset

use fusion::driver::meta::StreamKind;
use fusion::node::StreamSpec;
use fusion::rt::RtConfig;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A channel name unique to this process and call, so tests run in parallel.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "nd{}_{}_{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Ends the process if the test is still running after `secs` (a hang fails instead of blocking CI).
pub fn watchdog(secs: u64, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("WATCHDOG: {what} still running after {secs} s; aborting");
        std::process::exit(2);
    });
}

/// SCHED_FIFO at `prio`, memory locked, stack prefaulted.
pub fn rt(prio: i32) -> RtConfig {
    RtConfig {
        fifo_priority: Some(prio),
        cpu: None,
        lock_memory: true,
        prefault_stack_kib: 256,
    }
}

/// One input stream of the node.
pub fn spec(channel: &str, kind: StreamKind, rate_hz: f64) -> StreamSpec {
    StreamSpec {
        channel: channel.into(),
        kind,
        rate_hz,
    }
}

/// Starts the four synthetic drivers on threads at SCHED_FIFO 40: the camera of `cam_cfg` on
/// `channels[0]`, a LiDAR of `points_per_scan` points, an IMU at 200 Hz and the default odometry
/// on the others.
pub fn spawn_four_drivers(
    cam_cfg: fusion::driver::synthetic::CameraConfig,
    points_per_scan: usize,
    channels: [&str; 4],
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<fusion::driver::DriverThread> {
    use fusion::driver::synthetic::{
        ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu, SyntheticLidar,
        SyntheticOdometry,
    };
    use fusion::driver::{spawn_driver_thread, SensorDriver};
    let drivers: [Box<dyn SensorDriver>; 4] = [
        Box::new(SyntheticCamera::new(cam_cfg).unwrap()),
        Box::new(
            SyntheticLidar::new(LidarConfig {
                points_per_scan,
                ..LidarConfig::default()
            })
            .unwrap(),
        ),
        Box::new(
            SyntheticImu::new(ImuConfig {
                rate_hz: 200.0,
                ..ImuConfig::default()
            })
            .unwrap(),
        ),
        Box::new(SyntheticOdometry::new(OdometryConfig::default()).unwrap()),
    ];
    drivers
        .into_iter()
        .zip(channels)
        .map(|(d, n)| spawn_driver_thread(d, n, rt(40), stop.clone()).unwrap())
        .collect()
}

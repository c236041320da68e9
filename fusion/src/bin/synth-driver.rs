//! Runs one synthetic sensor driver as its own process, publishing on a shared-memory channel until
//! SIGINT or SIGTERM (what `rtfuse driver NAME` does for synthetic drivers).
//!
//! ```text
//! synth-driver camera CHANNEL [--rate HZ] [--width W] [--height H] [--fifo PRIO]
//! synth-driver lidar  CHANNEL [--rate HZ] [--points N] [--fifo PRIO]
//! synth-driver imu    CHANNEL [--rate HZ] [--fifo PRIO]
//! synth-driver odom   CHANNEL [--rate HZ] [--fifo PRIO]
//! ```

use fusion::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu,
    SyntheticLidar, SyntheticOdometry,
};
use fusion::driver::{run_standalone, SensorDriver};
use fusion::rt::RtConfig;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn usage() -> ! {
    eprintln!(
        "usage: synth-driver camera|lidar|imu|odom CHANNEL [--rate HZ] [--width W] [--height H] [--points N] \
         [--fifo PRIO]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() % 2 != 0 {
        usage();
    }
    let (kind, channel) = (args[0].as_str(), args[1].as_str());
    let mut opt = std::collections::HashMap::new();
    for kv in args[2..].chunks(2) {
        let v: f64 = kv[1].parse().unwrap_or_else(|_| {
            eprintln!("synth-driver: {} needs a number, got {:?}", kv[0], kv[1]);
            usage()
        });
        opt.insert(kv[0].trim_start_matches("--").to_string(), v);
    }
    let get = |k: &str, d: f64| opt.get(k).copied().unwrap_or(d);
    let driver: Result<Box<dyn SensorDriver>, _> = match kind {
        "camera" => SyntheticCamera::new(CameraConfig {
            width: get("width", 1920.0) as u32,
            height: get("height", 1080.0) as u32,
            rate_hz: get("rate", 30.0),
            ..CameraConfig::default()
        })
        .map(|d| Box::new(d) as Box<dyn SensorDriver>),
        "lidar" => SyntheticLidar::new(LidarConfig {
            points_per_scan: get("points", 120_000.0) as usize,
            rate_hz: get("rate", 10.0),
            ..LidarConfig::default()
        })
        .map(|d| Box::new(d) as Box<dyn SensorDriver>),
        "imu" => SyntheticImu::new(ImuConfig {
            rate_hz: get("rate", 400.0),
            ..ImuConfig::default()
        })
        .map(|d| Box::new(d) as Box<dyn SensorDriver>),
        "odom" => SyntheticOdometry::new(OdometryConfig {
            rate_hz: get("rate", 50.0),
            ..OdometryConfig::default()
        })
        .map(|d| Box::new(d) as Box<dyn SensorDriver>),
        _ => usage(),
    };
    let mut driver = driver.unwrap_or_else(|e| {
        eprintln!("synth-driver: {e}");
        std::process::exit(2)
    });
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let prio = opt.get("fifo").map(|p| *p as i32);
    let rt = RtConfig {
        fifo_priority: prio,
        ..RtConfig::default()
    };
    match run_standalone(driver.as_mut(), channel, &rt, &STOP) {
        Ok(st) => println!("synth-driver {kind} {channel}: {st:?}"),
        Err(e) => {
            eprintln!("synth-driver {kind} {channel}: {e}");
            std::process::exit(1)
        }
    }
}

//! End-to-end latency benchmark of the fusion node: "DMA complete → fusion start" per stream
//! (p50 / p99 / p99.9 / max) under the demo load (camera 1920×1080 rgb8 at 30 Hz, LiDAR 120 000
//! points at 10 Hz, IMU at 400 Hz, odometry at 50 Hz), each driver its own process, with a CPU
//! stress load beside it (`stress-ng --cpu N`, or in-process burner threads when stress-ng is
//! missing), SCHED_OTHER and SCHED_FIFO measured in the same run, then the ratio of the maxima. See
//! [`fusion::node::latency`].
//!
//! ```text
//! cargo run --release -p fusion --bin fusion-latency -- [--seconds 10] [--stress 2] [--cpu 1]
//!     [--width 1920] [--height 1080] [--points 120000] [--imu-rate 400] [--slice 8192]
//! ```
//! Target: SCHED_FIFO max ≤ 1/5 of SCHED_OTHER max.
//!
//! The benchmark starts its drivers by running this binary again as
//! `fusion-latency --driver KIND CHANNEL [options]` (see [`fusion::node::driver_process`]).

use fusion::node::driver_process::driver_main;
use fusion::node::latency::{run_latency_bench, LatencyBenchConfig};

fn main() {
    let v: Vec<String> = std::env::args().skip(1).collect();
    if v.first().is_some_and(|a| a == "--driver") {
        std::process::exit(driver_main("fusion-latency --driver", &v[1..]));
    }
    let mut a = LatencyBenchConfig::default();
    for kv in v.chunks(2) {
        let x: f64 = kv.get(1).and_then(|x| x.parse().ok()).unwrap_or_else(|| {
            eprintln!("fusion-latency: {} needs a number", kv[0]);
            std::process::exit(2)
        });
        match kv[0].as_str() {
            "--seconds" => a.seconds = x,
            "--stress" => a.stress = x as usize,
            "--cpu" => a.cpu = Some(x as usize),
            "--width" => a.width = x as u32,
            "--height" => a.height = x as u32,
            "--points" => a.points = x as usize,
            "--imu-rate" => a.imu_rate = x,
            // Points per slice of a pair's fusion; a number above the scan size fuses in one piece.
            "--slice" => a.fuse_slice_points = x as usize,
            other => {
                eprintln!("fusion-latency: unknown option {other}");
                std::process::exit(2)
            }
        }
    }
    match run_latency_bench(&a) {
        Ok(r) => println!("{r}"),
        Err(e) => {
            eprintln!("fusion-latency: {e}");
            std::process::exit(1)
        }
    }
}

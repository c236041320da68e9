//! End-to-end latency benchmark of the fusion node: "DMA complete → fusion start" per stream
//! (p50 / p99 / p99.9 / max) under the demo load (camera 1920×1080 rgb8 at 30 Hz, LiDAR 120 000
//! points at 10 Hz, IMU at 400 Hz, odometry at 50 Hz) with a CPU stress load beside it
//! (`stress-ng --cpu N`, or in-process burner threads when stress-ng is missing), SCHED_OTHER and
//! SCHED_FIFO measured in the same run, then the ratio of the maxima.
//!
//! ```text
//! cargo run --release -p fusion --bin fusion-latency -- [--seconds 10] [--stress 2] [--cpu 1]
//!     [--width 1920] [--height 1080] [--points 120000] [--imu-rate 400]
//! ```
//! Target: SCHED_FIFO max ≤ 1/5 of SCHED_OTHER max.

use fusion::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu,
    SyntheticLidar, SyntheticOdometry,
};
use fusion::driver::{spawn_driver_thread, SensorDriver, StreamKind};
use fusion::node::{FusionNode, NodeConfig, ProjectionSpec, StreamSpec, SyncPolicy, Wakeup};
use fusion::rt::RtConfig;
use fusion::stats::StatsSnapshot;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Args {
    seconds: f64,
    stress: usize,
    cpu: Option<usize>,
    width: u32,
    height: u32,
    points: usize,
    imu_rate: f64,
}

fn parse() -> Args {
    let mut a = Args {
        seconds: 10.0,
        stress: 0,
        cpu: None,
        width: 1920,
        height: 1080,
        points: 120_000,
        imu_rate: 400.0,
    };
    a.stress = std::thread::available_parallelism().map_or(2, |n| n.get());
    let v: Vec<String> = std::env::args().skip(1).collect();
    for kv in v.chunks(2) {
        let num = |s: Option<&String>| -> f64 {
            s.and_then(|x| x.parse().ok()).unwrap_or_else(|| {
                eprintln!("fusion-latency: {} needs a number", kv[0]);
                std::process::exit(2)
            })
        };
        let x = num(kv.get(1));
        match kv[0].as_str() {
            "--seconds" => a.seconds = x,
            "--stress" => a.stress = x as usize,
            "--cpu" => a.cpu = Some(x as usize),
            "--width" => a.width = x as u32,
            "--height" => a.height = x as u32,
            "--points" => a.points = x as usize,
            "--imu-rate" => a.imu_rate = x,
            other => {
                eprintln!("fusion-latency: unknown option {other}");
                std::process::exit(2)
            }
        }
    }
    a
}

/// The CPU load beside the measurement.
enum Stress {
    Process(Child),
    Threads(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>),
    None,
}

impl Stress {
    fn start(n: usize) -> Stress {
        if n == 0 {
            return Stress::None;
        }
        match Command::new("stress-ng")
            .args([
                "--cpu",
                &n.to_string(),
                "--cpu-method",
                "matrixprod",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => {
                println!(
                    "load: stress-ng --cpu {n} --cpu-method matrixprod (pid {})",
                    c.id()
                );
                Stress::Process(c)
            }
            Err(e) => {
                eprintln!(
                    "WARNING: stress-ng not available ({e}); install it with `apt-get install stress-ng`. \
                     Using {n} in-process CPU burner threads instead."
                );
                let stop = Arc::new(AtomicBool::new(false));
                let threads = (0..n)
                    .map(|_| {
                        let s = stop.clone();
                        std::thread::spawn(move || {
                            let mut x = 1u64;
                            while !s.load(Ordering::Relaxed) {
                                x = std::hint::black_box(
                                    x.wrapping_mul(6364136223846793005).wrapping_add(1),
                                );
                            }
                        })
                    })
                    .collect();
                Stress::Threads(stop, threads)
            }
        }
    }

    fn stop(self) {
        match self {
            Stress::Process(mut c) => {
                // SAFETY: plain kill(2) of our own child; SIGTERM lets stress-ng reap its workers.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
                let _ = c.wait();
            }
            Stress::Threads(s, t) => {
                s.store(true, Ordering::Relaxed);
                t.into_iter().for_each(|t| {
                    let _ = t.join();
                });
            }
            Stress::None => {}
        }
    }
}

fn phase(a: &Args, fifo: bool, run: usize) -> StatsSnapshot {
    let stop = Arc::new(AtomicBool::new(false));
    let rt = |prio: i32, cpu: Option<usize>| RtConfig {
        fifo_priority: fifo.then_some(prio),
        cpu,
        lock_memory: true,
        prefault_stack_kib: 512,
    };
    let cam = CameraConfig {
        width: a.width,
        height: a.height,
        ..CameraConfig::default()
    };
    let tag = format!("lat{}_{run}", std::process::id());
    let drivers: Vec<(Box<dyn SensorDriver>, &str)> = vec![
        (
            Box::new(SyntheticCamera::new(cam).expect("camera")),
            "camera",
        ),
        (
            Box::new(
                SyntheticLidar::new(LidarConfig {
                    points_per_scan: a.points,
                    ..LidarConfig::default()
                })
                .expect("lidar"),
            ),
            "lidar",
        ),
        (
            Box::new(
                SyntheticImu::new(ImuConfig {
                    rate_hz: a.imu_rate,
                    ..ImuConfig::default()
                })
                .expect("imu"),
            ),
            "imu",
        ),
        (
            Box::new(SyntheticOdometry::new(OdometryConfig::default()).expect("odom")),
            "odom",
        ),
    ];
    let mut streams = Vec::new();
    let mut threads = Vec::new();
    for (d, n) in drivers {
        let ch = format!("{tag}_{n}");
        streams.push(StreamSpec {
            channel: ch.clone(),
            kind: d.kind(),
            rate_hz: d.rate_hz(),
        });
        // Drivers below the fusion thread; the IMU highest of them (small, frequent).
        let prio = if d.kind() == StreamKind::Imu { 70 } else { 60 };
        threads.push(spawn_driver_thread(d, &ch, rt(prio, None), stop.clone()).expect("driver"));
    }
    let cfg = NodeConfig {
        name: format!("bench-{}", if fifo { "fifo" } else { "other" }),
        streams,
        sync: SyncPolicy::ApproximateTime {
            queue_size: 4,
            age_penalty: 0.1,
            max_interval_ns: Some(20_000_000),
        },
        rt: rt(80, a.cpu),
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(20),
        },
        projection: Some(ProjectionSpec::synthetic(&cam)),
        warmup: Duration::from_secs(1),
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg)
        .expect("node config")
        .start()
        .expect("node start");
    println!(
        "phase {}: fusion thread {}",
        if fifo { "FIFO" } else { "OTHER" },
        handle.rt_status()
    );
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    let report = handle.stop().expect("node stop");
    stop.store(true, Ordering::Release);
    for t in threads {
        match t.join() {
            Ok((st, _)) => {
                if st.overruns > 0 || st.loan_failures > 0 {
                    println!(
                        "  driver: {} overruns, {} loan failures",
                        st.overruns, st.loan_failures
                    )
                }
            }
            Err(e) => eprintln!("  driver error: {e}"),
        }
    }
    report.stats
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn print(s: &StatsSnapshot, label: &str) {
    println!("{label}: DMA complete → fusion start (ms)");
    println!(
        "  {:<10} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "stream", "samples", "p50", "p99", "p99.9", "max"
    );
    for st in &s.streams {
        let l = &st.dma_to_fuse_start;
        let name = st.name.rsplit('_').next().unwrap_or(&st.name);
        println!(
            "  {:<10} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            l.count,
            ms(l.p50_ns),
            ms(l.p99_ns),
            ms(l.p999_ns),
            ms(l.max_ns)
        );
    }
    println!("  sets fused {}, stats lost {}", s.sets_fused, s.stats_lost);
}

fn main() {
    let a = parse();
    println!(
        "fusion-latency: camera {}x{} rgb8 @30 Hz, LiDAR {} points @10 Hz, IMU @{} Hz, odometry @50 Hz; {} s per phase",
        a.width, a.height, a.points, a.imu_rate, a.seconds
    );
    let stress = Stress::start(a.stress);
    std::thread::sleep(Duration::from_millis(500));
    let other = phase(&a, false, 0);
    let fifo = phase(&a, true, 1);
    stress.stop();
    print(&other, "SCHED_OTHER");
    print(&fifo, "SCHED_FIFO");
    if fifo.rt.as_ref().is_some_and(|r| !r.is_fifo()) {
        println!("NOTE: the host refused SCHED_FIFO; both phases ran under SCHED_OTHER");
    }
    println!("ratio FIFO max / OTHER max (target ≤ 0.20):");
    let mut worst: (u64, u64) = (0, 0);
    for (o, f) in other.streams.iter().zip(&fifo.streams) {
        let (om, fm) = (o.dma_to_fuse_start.max_ns, f.dma_to_fuse_start.max_ns);
        worst = (worst.0.max(om), worst.1.max(fm));
        let name = o.name.rsplit('_').next().unwrap_or(&o.name);
        let p99 = f.dma_to_fuse_start.p99_ns as f64 / o.dma_to_fuse_start.p99_ns.max(1) as f64;
        println!(
            "  {:<10} max {:.3}  (p99 ratio {:.3})",
            name,
            fm as f64 / om.max(1) as f64,
            p99
        );
    }
    println!(
        "  all streams max {:.3}",
        worst.1 as f64 / worst.0.max(1) as f64
    );
}

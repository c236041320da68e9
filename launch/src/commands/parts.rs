//! `rtfuse node` and `rtfuse driver NAME`: one part of a deployment, as the supervisor starts it.
//! Both map the config onto the fusion crate's drivers and node and run until SIGINT/SIGTERM or
//! `--duration`.

use super::{failure, load};
use crate::cli::{Cli, DriverArgs, NodeArgs, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE};
use crate::config::{channel_config, Config, Driver, DriverKind, SchedPolicy, SyncPolicy, Wakeup};
use crate::signals;
use crate::status::{NodeSnapshot, StreamStatus};
use fusion::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu,
    SyntheticLidar, SyntheticOdometry,
};
use fusion::driver::{SensorDriver, StreamKind};
use fusion::mcap_driver::{McapReplayConfig, McapReplayDriver, TopicInfo};
use fusion::node::{EkfSpec, FusionNode, NodeConfig, ProjectionSpec, StreamSpec};
use fusion::rt::RtConfig;
use fusion::synth::PixelEncoding;
use serde_spanned::Spanned;
use shm_transport::Publisher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scale<const N: usize>(v: [f64; N], k: f64) -> [f64; N] {
    v.map(|x| x * k)
}

/// The fusion driver for a `[[driver]]`.
///
/// # Errors
/// A kind this build cannot run, or parameters the driver refuses.
pub fn build_driver(d: &Driver) -> anyhow::Result<Box<dyn SensorDriver>> {
    let p = &d.params;
    let rate = p.rate_hz.as_ref().map(|r| *r.get_ref());
    let noise = p.noise.as_ref().map_or(1.0, |n| *n.get_ref());
    let name = d.name.get_ref().as_str();
    let drv: Box<dyn SensorDriver> = match *d.kind.get_ref() {
        DriverKind::SyntheticCamera => {
            let mut c = CameraConfig::default();
            c.width = p.width.as_ref().map_or(c.width, |v| *v.get_ref());
            c.height = p.height.as_ref().map_or(c.height, |v| *v.get_ref());
            c.rate_hz = rate.unwrap_or(c.rate_hz);
            c.encoding = match p.encoding.as_ref().map(|e| e.get_ref().as_str()) {
                Some("bgr8") => PixelEncoding::Bgr8,
                Some("mono8") => PixelEncoding::Mono8,
                _ => PixelEncoding::Rgb8,
            };
            Box::new(SyntheticCamera::new(c)?.named(name))
        }
        DriverKind::SyntheticLidar => {
            let mut c = LidarConfig::default();
            c.points_per_scan = p
                .points_per_scan
                .as_ref()
                .map_or(c.points_per_scan, |v| *v.get_ref() as usize);
            c.rate_hz = rate.unwrap_or(c.rate_hz);
            Box::new(SyntheticLidar::new(c)?.named(name))
        }
        DriverKind::SyntheticImu => {
            let mut c = ImuConfig::default();
            c.rate_hz = rate.unwrap_or(c.rate_hz);
            c.noise.rate_hz = c.rate_hz;
            c.noise.gyro_noise_density *= noise;
            c.noise.accel_noise_density *= noise;
            let bias = p.bias.as_ref().map_or(1.0, |b| *b.get_ref());
            c.noise.gyro_bias = scale(c.noise.gyro_bias, bias);
            c.noise.accel_bias = scale(c.noise.accel_bias, bias);
            c.seed = p.seed.as_ref().map_or(c.seed, |s| *s.get_ref());
            Box::new(SyntheticImu::new(c)?.named(name))
        }
        DriverKind::SyntheticOdometry => {
            let mut c = OdometryConfig::default();
            c.rate_hz = rate.unwrap_or(c.rate_hz);
            c.noise.position_std *= noise;
            c.noise.yaw_std *= noise;
            c.noise.velocity_std *= noise;
            c.noise.yaw_rate_std *= noise;
            c.seed = p.seed.as_ref().map_or(c.seed, |s| *s.get_ref());
            Box::new(SyntheticOdometry::new(c)?.named(name))
        }
        DriverKind::Vlp16Udp => {
            let mut c = fusion::vlp16_driver::Vlp16DriverConfig {
                name: name.to_string(),
                ..Default::default()
            };
            if let Some(b) = &p.bind {
                c.udp.bind = b.get_ref().parse().map_err(|_| {
                    failure(
                        EXIT_USAGE,
                        format!("driver {name}: bad bind address {}", b.get_ref()),
                    )
                })?;
            }
            if let Some(b) = &p.batch {
                c.udp.batch = *b.get_ref() as usize;
            }
            Box::new(fusion::vlp16_driver::Vlp16Driver::new(c)?)
        }
        DriverKind::McapReplay => Box::new(mcap_driver(d)?),
    };
    Ok(drv)
}

/// The MCAP replay driver of a `kind = "mcap-replay"` driver (reads and plans its topic).
fn mcap_driver(d: &Driver) -> anyhow::Result<McapReplayDriver> {
    let p = &d.params;
    let name = d.name.get_ref();
    // The check guarantees both; say so plainly if a caller skipped it.
    let (Some(file), Some(topic)) = (&p.file, &p.topic) else {
        return Err(failure(
            EXIT_USAGE,
            format!("driver {name}: mcap-replay needs params.file and params.topic"),
        ));
    };
    let mut c = McapReplayConfig::new(name, file.get_ref(), topic.get_ref());
    c.speed = p.speed.as_ref().map_or(1.0, |s| *s.get_ref());
    c.looped = p.looped.as_ref().is_some_and(|l| *l.get_ref());
    McapReplayDriver::new(c).map_err(|e| failure(EXIT_USAGE, format!("driver {name}: {e}")))
}

/// What the MCAP replay driver feeding `channel` will publish (kind, rate, image size), if an
/// MCAP replay feeds it; read from the file's summary and first message.
fn replay_feeding(cfg: &Config, channel: &str) -> Option<anyhow::Result<TopicInfo>> {
    let d = cfg
        .deployment
        .drivers
        .iter()
        .find(|d| d.channel.get_ref() == channel)?;
    if *d.kind.get_ref() != DriverKind::McapReplay {
        return None;
    }
    let (file, topic) = (d.params.file.as_ref()?, d.params.topic.as_ref()?);
    Some(
        fusion::mcap_driver::topic_info(std::path::Path::new(file.get_ref()), topic.get_ref())
            .map_err(|e| failure(EXIT_USAGE, format!("driver {}: {e}", d.name.get_ref()))),
    )
}

fn driver_rt(d: &Driver) -> RtConfig {
    RtConfig {
        fifo_priority: d.priority.as_ref().map(|p| *p.get_ref()),
        cpu: None,
        lock_memory: d.priority.is_some(),
        prefault_stack_kib: 256,
    }
}

/// Creates the driver's channel with the config's geometry (checked against what the driver needs).
fn create_publisher(
    cfg: &Config,
    d: &Driver,
    drv: &dyn SensorDriver,
    prefix: &str,
) -> anyhow::Result<Publisher> {
    let ch = cfg.channel(d.channel.get_ref()).ok_or_else(|| {
        failure(
            EXIT_USAGE,
            format!(
                "driver `{}`: no channel `{}`",
                d.name.get_ref(),
                d.channel.get_ref()
            ),
        )
    })?;
    let ours = channel_config(ch);
    let need = drv.channel_config();
    if ours.chunk_size < need.chunk_size {
        return Err(failure(
            EXIT_USAGE,
            format!(
                "channel `{}`: chunk_size {} is smaller than the {} bytes driver `{}` writes per sample",
                ch.name.get_ref(),
                ours.chunk_size,
                need.chunk_size,
                d.name.get_ref()
            ),
        ));
    }
    let name = format!("{prefix}{}", ch.name.get_ref());
    Publisher::create(&name, &ours)
        .map_err(|e| failure(EXIT_RUNTIME, format!("cannot create channel `{name}`: {e}")))
}

/// Sets the stop flag after `secs`, if given.
fn stop_after(secs: Option<f64>) -> anyhow::Result<()> {
    if let Some(d) = super::run::duration_arg(secs)? {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            signals::request_stop();
        });
    }
    Ok(())
}

/// `rtfuse driver NAME`.
pub fn driver(cli: &Cli, a: &DriverArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let Some(d) = cfg.driver(&a.name) else {
        let names: Vec<&str> = cfg
            .deployment
            .drivers
            .iter()
            .map(|d| d.name.get_ref().as_str())
            .collect();
        return Err(failure(
            EXIT_USAGE,
            format!(
                "no driver `{}` in {}; expected one of: {}",
                a.name,
                cfg.display_name(),
                names.join(", ")
            ),
        ));
    };
    let stop = signals::install()?;
    stop_after(a.duration)?;
    let mut drv = build_driver(d)?;
    let status = fusion::rt::setup_current_thread(&driver_rt(d));
    let mut publisher = create_publisher(&cfg, d, drv.as_ref(), &cli.prefix)?;
    tracing::info!(
        "driver {} ({}) publishing on {}{}: {status}",
        a.name,
        d.kind.get_ref().as_str(),
        cli.prefix,
        d.channel.get_ref()
    );
    let stats = drv
        .run(&mut publisher, stop)
        .map_err(|e| failure(EXIT_RUNTIME, format!("driver {}: {e}", a.name)))?;
    tracing::info!(
        "driver {} stopped: {} published, {} loan failures, {} rejected, {} overruns",
        a.name,
        stats.published,
        stats.loan_failures,
        stats.rejected,
        stats.overruns
    );
    Ok(EXIT_OK)
}

fn stream_kind(cfg: &Config, channel: &str) -> Option<StreamKind> {
    let from_driver = cfg
        .deployment
        .drivers
        .iter()
        .find(|d| d.channel.get_ref() == channel)
        .and_then(|d| match *d.kind.get_ref() {
            DriverKind::SyntheticCamera => Some(StreamKind::Camera),
            DriverKind::SyntheticLidar | DriverKind::Vlp16Udp => Some(StreamKind::Lidar),
            DriverKind::SyntheticImu => Some(StreamKind::Imu),
            DriverKind::SyntheticOdometry => Some(StreamKind::Odometry),
            DriverKind::McapReplay => None,
        });
    from_driver.or_else(|| {
        let b = cfg
            .deployment
            .ros2
            .bridges
            .iter()
            .find(|b| b.channel.get_ref() == channel)?;
        match b.msg_type.get_ref().as_str() {
            "sensor_msgs/msg/Image" => Some(StreamKind::Camera),
            "sensor_msgs/msg/PointCloud2" => Some(StreamKind::Lidar),
            "sensor_msgs/msg/Imu" => Some(StreamKind::Imu),
            "nav_msgs/msg/Odometry" => Some(StreamKind::Odometry),
            _ => None,
        }
    })
}

/// The projection of the config; `probed` holds the replay probes already made for node streams
/// (so a replayed camera's file is read once).
fn projection(
    cfg: &Config,
    probed: &[(String, TopicInfo)],
) -> anyhow::Result<Option<ProjectionSpec>> {
    let Some(p) = &cfg.deployment.node.projection else {
        return Ok(None);
    };
    let cam_driver = cfg
        .deployment
        .drivers
        .iter()
        .find(|d| d.channel.get_ref() == p.camera.get_ref());
    let mut cam = CameraConfig::default();
    if let Some(d) = cam_driver {
        cam.width = d.params.width.as_ref().map_or(cam.width, |v| *v.get_ref());
        cam.height = d
            .params
            .height
            .as_ref()
            .map_or(cam.height, |v| *v.get_ref());
    }
    let camera = p.camera.get_ref();
    let probe;
    let replay = match probed.iter().find(|(c, _)| c == camera) {
        Some((_, info)) => Some(info),
        None => {
            probe = replay_feeding(cfg, camera).transpose()?;
            probe.as_ref()
        }
    };
    // A recording's images have the size they were recorded with.
    if let Some((w, h)) = replay.and_then(|r| r.image_size) {
        (cam.width, cam.height) = (w, h);
    }
    let mut spec = ProjectionSpec::synthetic(&cam);
    if let Some([fx, fy, cx, cy]) = p.intrinsics {
        spec.camera.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0];
        spec.camera.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0];
        spec.camera.d = p.distortion;
    }
    if p.translation.is_some() || p.rotation_rpy.is_some() {
        let [x, y, z] = p.translation.unwrap_or_default();
        let [r, pi, ya] = p.rotation_rpy.unwrap_or_default();
        spec.extrinsic = nalgebra::Isometry3::from_parts(
            nalgebra::Translation3::new(x, y, z),
            nalgebra::UnitQuaternion::from_euler_angles(r, pi, ya),
        );
    }
    Ok(Some(spec))
}

/// The fusion node's configuration for a deployment.
///
/// # Errors
/// A stream whose kind or rate cannot be told from the config.
pub fn node_config(cfg: &Config, prefix: &str) -> anyhow::Result<NodeConfig> {
    let d = &cfg.deployment;
    let n = &d.node;
    let mut streams = Vec::new();
    let mut probed = Vec::new();
    for s in &n.streams {
        let name = s.get_ref();
        let replay = replay_feeding(cfg, name).transpose()?;
        let kind = stream_kind(cfg, name)
            .or(replay.as_ref().map(|r| r.kind))
            .ok_or_else(|| {
                failure(EXIT_USAGE, format!("node stream `{name}`: cannot tell what it carries (no driver or ROS 2 bridge feeds it)"))
            })?;
        let rate_hz = crate::analysis::rate_hz(cfg, name)
            .or(replay.as_ref().and_then(|r| r.rate_hz))
            .ok_or_else(|| {
                failure(
                    EXIT_USAGE,
                    format!("node stream `{name}`: no rate known; set node.timing.{name}.rate_hz"),
                )
            })?;
        streams.push(StreamSpec {
            channel: format!("{prefix}{name}"),
            kind,
            rate_hz,
        });
        if let Some(r) = replay {
            probed.push((name.clone(), r));
        }
    }
    let mut nc = NodeConfig::demo();
    nc.name = d.name.clone();
    nc.streams = streams;
    if let Some(sy) = &n.sync {
        let queue_size = *sy.queue_size.get_ref() as usize;
        nc.sync = match sy.policy {
            SyncPolicy::Exact => fusion::node::SyncPolicy::ExactTime { queue_size },
            SyncPolicy::Approximate => fusion::node::SyncPolicy::ApproximateTime {
                queue_size,
                age_penalty: sy.age_penalty.as_ref().map_or(0.1, |a| *a.get_ref()),
                max_interval_ns: sy
                    .max_interval_ms
                    .as_ref()
                    .map(|m| (m.get_ref() * 1e6) as i64),
            },
        };
    }
    let t = &n.thread;
    nc.rt = RtConfig {
        fifo_priority: (t.policy == SchedPolicy::Fifo).then(|| *t.priority.get_ref()),
        cpu: t.cpu.as_ref().map(|c| *c.get_ref()),
        lock_memory: t.mlockall,
        prefault_stack_kib: 256,
    };
    nc.wakeup = match t.wakeup {
        Wakeup::Spin => fusion::node::Wakeup::Spin,
        Wakeup::Futex | Wakeup::SpinThenFutex => fusion::node::Wakeup::Sleep {
            max_wait: Duration::from_millis(20),
        },
    };
    nc.projection = projection(cfg, &probed)?;
    nc.ekf = n.ekf.as_ref().map(|e| EkfSpec {
        mahalanobis_threshold: e.mahalanobis_threshold,
        ..EkfSpec::default()
    });
    let full = |o: &Spanned<String>| format!("{prefix}{}", o.get_ref());
    if let Some(p) = &n.projection {
        nc.depth_output = p.output.as_ref().map(full);
        nc.cloud_output = p.cloud_output.as_ref().map(full);
        nc.cloud_output_points = crate::config::cloud_output_points(d, p);
        if let Some(sp) = &p.slice_points {
            nc.fuse_slice_points = *sp.get_ref() as usize;
        }
    }
    nc.odometry_output = n.ekf.as_ref().and_then(|e| e.output.as_ref()).map(full);
    // Output channels the config declares get its geometry (what `config check` counted).
    nc.output_geometry = [&nc.depth_output, &nc.cloud_output, &nc.odometry_output]
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let ch = cfg.channel(o.strip_prefix(prefix).unwrap_or(o))?;
            Some((o.clone(), channel_config(ch)))
        })
        .collect();
    if let Some(sy) = &n.sync {
        nc.sync_lower_bound_ns = sy
            .inter_message_lower_bound_ms
            .iter()
            .map(|(s, ms)| (format!("{prefix}{s}"), (ms.get_ref() * 1e6) as i64))
            .collect();
    }
    nc.trace_path = n.outputs.trace.as_ref().map(Into::into);
    nc.mcap_path = n.outputs.mcap.as_ref().map(Into::into);
    nc.trace_capacity = *d.trace.queue_capacity.get_ref() as usize;
    Ok(nc)
}

/// The supervisor's view of a fusion stats snapshot.
pub fn to_status(s: &fusion::stats::StatsSnapshot, prefix: &str) -> NodeSnapshot {
    let us = |ns: u64| ns as f64 / 1e3;
    NodeSnapshot {
        uptime_s: s.elapsed_s,
        fusion_policy: s
            .rt
            .as_ref()
            .map_or_else(|| "starting".into(), |r| r.policy.as_str().to_string()),
        fusion_priority: s.rt.as_ref().map_or(0, |r| r.priority),
        streams: s
            .streams
            .iter()
            .map(|x| StreamStatus {
                name: x.name.strip_prefix(prefix).unwrap_or(&x.name).to_string(),
                received: x.received,
                rate_hz: x.rate_hz,
                p50_us: us(x.dma_to_fuse_start.p50_ns),
                p99_us: us(x.dma_to_fuse_start.p99_ns),
                max_us: us(x.dma_to_fuse_start.max_ns),
                drops: x.dropped,
                errors: x.errors + x.invalid,
                reconnects: x.reconnects,
            })
            .collect(),
        outputs: vec![
            ("sets_fused".into(), s.sets_fused),
            ("sync_discarded".into(), s.sync_discarded),
            ("fuse_errors".into(), s.fuse_errors),
            ("ekf_accepted".into(), s.ekf_accepted),
            ("ekf_rejected".into(), s.ekf_rejected),
            ("ekf_late".into(), s.ekf_late),
            ("ekf_too_late".into(), s.ekf_too_late),
        ],
    }
}

/// Starts the drivers with `process = false` on threads, publishing into their channels.
fn thread_drivers(
    cfg: &Config,
    prefix: &str,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let mut out = Vec::new();
    for d in cfg.deployment.drivers.iter().filter(|d| !d.process) {
        let mut drv = build_driver(d)?;
        let mut publisher = create_publisher(cfg, d, drv.as_ref(), prefix)?;
        let rt = driver_rt(d);
        let stop = Arc::clone(stop);
        let name = d.name.get_ref().clone();
        out.push(
            std::thread::Builder::new()
                .name(format!("drv-{name}"))
                .spawn(move || {
                    let status = fusion::rt::setup_current_thread(&rt);
                    tracing::info!("driver thread {name}: {status}");
                    match drv.run(&mut publisher, &stop) {
                        Ok(s) => tracing::info!(
                            "driver thread {name} stopped: {} published",
                            s.published
                        ),
                        Err(e) => tracing::error!("driver thread {name}: {e}"),
                    }
                })?,
        );
    }
    Ok(out)
}

/// `rtfuse node`.
pub fn node(cli: &Cli, a: &NodeArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let nc = node_config(&cfg, &cli.prefix)?;
    let nc_mcap = nc.mcap_path.clone();
    let stop = signals::install()?;
    stop_after(a.duration)?;
    let thread_stop = Arc::new(AtomicBool::new(false));
    let threads = thread_drivers(&cfg, &cli.prefix, &thread_stop)?;
    let node = FusionNode::new(nc).map_err(|e| failure(EXIT_USAGE, e.to_string()))?;
    let handle = node
        .start()
        .map_err(|e| failure(EXIT_RUNTIME, e.to_string()))?;
    tracing::info!(
        "fusion node `{}` running: {}",
        cfg.deployment.name,
        handle.rt_status()
    );
    let mut next = Instant::now();
    let mut died = false;
    while !stop.load(Ordering::Relaxed) {
        if !handle.is_running() {
            died = true;
            break;
        }
        if Instant::now() >= next {
            if let Some(f) = &a.stats_file {
                if let Err(e) = to_status(&handle.snapshot(), &cli.prefix).write(f) {
                    tracing::warn!("cannot write {}: {e}", f.display());
                }
            }
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SYNC: Release pairs with the drivers' Acquire load of the flag.
    thread_stop.store(true, Ordering::Release);
    for t in threads {
        let _ = t.join();
    }
    let report = handle
        .stop()
        .map_err(|e| failure(EXIT_RUNTIME, format!("fusion node: {e}")))?;
    let snap = to_status(&report.stats, &cli.prefix);
    if let Some(f) = &a.stats_file {
        snap.write(f)?;
    }
    if let Some(f) = &cfg.deployment.node.outputs.stats {
        let json = serde_json::to_string_pretty(&report.stats)?;
        std::fs::write(f, json)
            .map_err(|e| failure(EXIT_RUNTIME, format!("cannot write {f}: {e}")))?;
        println!("stats: {f}");
    }
    if let Some(m) = &nc_mcap {
        println!("mcap: {}", m.display());
    }
    println!("{}", report.stats);
    if let Some(t) = &report.trace {
        println!("trace: {t:?}");
    }
    if died {
        return Err(failure(
            EXIT_RUNTIME,
            "the fusion thread stopped unexpectedly",
        ));
    }
    Ok(EXIT_OK)
}

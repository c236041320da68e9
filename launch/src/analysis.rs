//! From a deployment to the `wcet` analyzer's input: one stream per node stream with its rate,
//! payload, ring depth and timing, and the fusion thread's wake-up and priority.
//!
//! A stream's worst-case service time comes from `[node.timing.<stream>] service_us` where the
//! config gives it, else from the traces: the most CPU time the fusion thread used on one step of
//! the stream where the traces measured it (its work alone), else the largest `fusion end − fusion
//! start` (which includes interruptions). Either is an observed figure, which the report names as
//! such. With neither, no bound is claimed. A declared figure below the measured CPU time is kept,
//! and the report says that the bound does not cover the deployment and is not certified.
//!
//! The streams of `[node.sync]` share one fusion step per set (the projection): their service
//! is the set's work, charged once per set where the streams are phase-locked (synthetic drivers
//! tick on `CLOCK_MONOTONIC`; see `wcet::phase`) and to every member's sample otherwise. A
//! phase-locked stream's least tick → "DMA complete" time is the smallest the traces observed
//! (its render or fill time; 0 without traces) and its release window `jitter_us` wide; its
//! arrival curve uses `jitter_us` or two periods, whichever is less, and two periods where
//! `jitter_us` is not given (`wcet::phase::pacer_jitter_ns`).
//!
//! Every driver with a `priority` is a SCHED_FIFO thread the fusion thread may share its CPUs with
//! (`other_rt_load`, which the report counts). Below the fusion thread's priority it cannot delay
//! it and adds nothing to a bound; at or above it, it would, and as the config does not say how
//! long its work per sample takes, no bound is claimed. `[report] rt_throttling` is passed on.

use crate::config::{Config, DriverKind, SchedPolicy, Wakeup};
use anyhow::{bail, Context, Result};
use rtfuse_trace::TraceReader;
use std::path::Path;
use wcet::bound::{AnalysisInput, FusionThreadSpec, StreamSpec, SyncSet};
use wcet::calibrate::{CalibrateOptions, Calibration};
use wcet::phase::Phase;
use wcet::rta::Task;

/// Nominal rate of a node stream: `node.timing.<s>.rate_hz`, else the driver's `rate_hz`, else 10 Hz
/// for a VLP-16 at 600 rpm.
pub fn rate_hz(cfg: &Config, stream: &str) -> Option<f64> {
    let timing = cfg
        .deployment
        .node
        .timing
        .get(stream)
        .and_then(|t| t.get_ref().rate_hz);
    timing.or_else(|| {
        let d = cfg
            .deployment
            .drivers
            .iter()
            .find(|d| d.channel.get_ref() == stream)?;
        match *d.kind.get_ref() {
            DriverKind::Vlp16Udp => Some(10.0),
            _ => d.params.rate_hz.as_ref().map(|r| *r.get_ref()),
        }
    })
}

/// Every record of the stream named `stream`, over all traces.
fn records_of<'a>(
    traces: &'a [TraceReader],
    stream: &'a str,
) -> impl Iterator<Item = &'a rtfuse_trace::Record> + 'a {
    traces.iter().flat_map(move |t| {
        let id = t
            .header
            .streams
            .iter()
            .find(|s| s.name == stream)
            .map(|s| s.id);
        t.records.iter().filter(move |r| Some(r.stream) == id)
    })
}

/// Largest observed fusion-thread work per step of a stream, in ns, over all traces: its CPU time
/// where the traces measured it, else the step's wall-clock span.
fn observed_service_ns(traces: &[TraceReader], stream: &str) -> Option<u64> {
    let cpu = records_of(traces, stream)
        .filter_map(|r| r.fuse_cpu())
        .max();
    cpu.or_else(|| {
        records_of(traces, stream)
            .filter_map(|r| {
                r.t_fuse_end_ns
                    .checked_sub(r.t_fuse_start_ns)
                    .filter(|_| r.t_fuse_start_ns > 0)
            })
            .max()
    })
}

/// Least tick → "DMA complete" time the traces observed for a stream, in ns.
fn observed_offset_ns(traces: &[TraceReader], stream: &str) -> Option<u64> {
    records_of(traces, stream)
        .filter(|r| r.t_sensor_ns > 0)
        .filter_map(|r| r.t_dma_ns.checked_sub(r.t_sensor_ns))
        .min()
}

/// Whether a driver stamps its samples on the ticks of fusion's `Pacer` (all synthetic drivers).
fn tick_aligned(cfg: &Config, stream: &str) -> bool {
    cfg.deployment.drivers.iter().any(|d| {
        d.channel.get_ref() == stream
            && matches!(
                *d.kind.get_ref(),
                DriverKind::SyntheticCamera
                    | DriverKind::SyntheticLidar
                    | DriverKind::SyntheticImu
                    | DriverKind::SyntheticOdometry
            )
    })
}

/// The node's synchronised set, with its members' service moved into the set's work.
fn sync_set(cfg: &Config, streams: &mut [StreamSpec], prefix: &str) -> Option<SyncSet> {
    let sync = cfg.deployment.node.sync.as_ref()?;
    let members: Vec<String> = sync
        .streams
        .iter()
        .map(|m| format!("{prefix}{}", m.get_ref()))
        .collect();
    if members.len() < 2 || !members.iter().all(|m| streams.iter().any(|s| &s.name == m)) {
        return None;
    }
    let mut service_ns = 0;
    for s in streams.iter_mut().filter(|s| members.contains(&s.name)) {
        // The traces stamp the set's fusion on every member: it is the set's work, not theirs.
        service_ns = service_ns.max(s.service_ns);
        s.service_ns = 0;
    }
    // Tick-aligned stamps of integer rates meet exactly at common ticks: ExactTime pairs only
    // those, and so does ApproximateTime (a set of spread 0 is the smallest). The report checks
    // every fused set against this.
    let equal_stamps = sync.policy == crate::config::SyncPolicy::Exact
        || streams
            .iter()
            .filter(|s| members.contains(&s.name))
            .all(|s| s.phase.is_some());
    Some(SyncSet {
        name: members.join("+"),
        members,
        service_ns,
        equal_stamps,
    })
}

fn us_to_ns(us: f64) -> u64 {
    (us * 1_000.0).ceil() as u64
}

/// The GPU bridge's predicted ΔL for a stream whose frames continue to the GPU (`[gpu] streams`),
/// from the default PCIe 4.0 x16 profile (modeled) — or `None`. The policy's explanation is logged.
fn gpu_delta_l_ns(
    cfg: &Config,
    name: &str,
    payload: u64,
    ch: &crate::config::Channel,
) -> Result<Option<u64>> {
    use crate::config::GpuPolicy;
    use gpu_bridge::model::Path as GpuPath;
    let gpu = &cfg.deployment.gpu;
    if gpu.policy == GpuPolicy::Off || !gpu.streams.iter().any(|s| s.get_ref() == name) {
        return Ok(None);
    }
    let forced = match gpu.policy {
        GpuPolicy::P2p => Some(GpuPath::PeerDma),
        GpuPolicy::Bounce => Some(GpuPath::Bounce),
        _ => None,
    };
    let stream = gpu_bridge::policy::StreamConfig {
        name: name.to_string(),
        frame_bytes: payload,
        slab_bytes: ch.chunk_size.get_ref().bytes() * u64::from(*ch.chunk_count.get_ref()),
        slab_registered: true,
        source: Default::default(),
        forced,
    };
    let policy = gpu_bridge::policy::Policy::new(gpu_bridge::model::Profile::pcie4_x16_default());
    let choice = policy
        .choose(&stream)
        .map_err(|e| anyhow::anyhow!("GPU path for stream `{name}`: {e}"))?;
    tracing::info!("{}", choice.explain());
    Ok(Some(choice.delta_l_ns()))
}

/// The drivers that run at SCHED_FIFO, as tasks of their kind and rate below the fusion thread's
/// priority `fusion` (0: SCHED_OTHER). Their work per sample is not known, and need not be: a
/// lower-priority thread never delays the fusion thread (its cost is left at 0).
///
/// # Errors
/// A driver at or above the fusion thread's priority: it would delay it by an unknown amount.
fn rt_drivers(cfg: &Config, fusion: i32) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    for d in &cfg.deployment.drivers {
        let Some(p) = d.priority.as_ref().map(|p| *p.get_ref()) else {
            continue;
        };
        let (name, kind) = (d.name.get_ref(), d.kind.get_ref().as_str());
        if p >= fusion {
            bail!(
                "driver `{name}` runs at SCHED_FIFO {p}, not below the fusion thread ({}): its work \
                 per sample would delay the fusion thread and the config does not say how long it \
                 is, so no bound is claimed; give the driver a priority below {fusion}",
                if fusion == 0 {
                    "SCHED_OTHER".to_string()
                } else {
                    format!("SCHED_FIFO {fusion}")
                }
            );
        }
        let rate = rate_hz(cfg, d.channel.get_ref()).filter(|r| r.is_finite() && *r > 0.0);
        out.push(Task {
            name: match rate {
                Some(r) => format!("driver {name} ({kind}, {r} Hz)"),
                None => format!("driver {name} ({kind})"),
            },
            c: 0,
            // The period does not enter a bound (the thread is below the fusion thread); 1 s
            // where the rate is not known.
            t: rate.map_or(1_000_000_000, |r| ((1e9 / r).floor() as u64).max(1)),
            j: 0,
            priority: p,
            b: 0,
            d: None,
        });
    }
    Ok(out)
}

/// The analyzer input for `cfg` (without the host calibration). Stream names carry `prefix`, as the
/// node that wrote the traces saw them.
///
/// # Errors
/// A stream without a known rate or service time; a driver at or above the fusion thread's
/// priority.
pub fn input(cfg: &Config, traces: &[TraceReader], prefix: &str) -> Result<AnalysisInput> {
    let d = &cfg.deployment;
    let mut streams = Vec::new();
    for s in &d.node.streams {
        let name = s.get_ref();
        let ch = cfg
            .channel(name)
            .with_context(|| format!("stream `{name}` has no channel"))?;
        let timing = d
            .node
            .timing
            .get(name.as_str())
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        let Some(rate) = rate_hz(cfg, name) else {
            bail!("stream `{name}`: no rate known; set node.timing.{name}.rate_hz");
        };
        let service_ns = match timing.service_us {
            Some(us) => us_to_ns(us),
            None => match observed_service_ns(traces, &format!("{prefix}{name}")) {
                Some(ns) => ns.max(1),
                None => bail!(
                    "stream `{name}`: no service time; set node.timing.{name}.service_us or give a trace \
                     (--trace FILE) in which the stream was fused"
                ),
            },
        };
        let payload = d
            .drivers
            .iter()
            .find(|x| x.channel.get_ref() == name)
            .and_then(crate::config::payload_bytes)
            .map_or(ch.chunk_size.get_ref().bytes(), |(b, _)| b);
        let jitter_ns = us_to_ns(timing.jitter_us);
        let tick_aligned = tick_aligned(cfg, name);
        streams.push(StreamSpec {
            name: format!("{prefix}{name}"),
            rate_hz: rate,
            // A `Pacer`-driven stream never bunches more than a jitter of two periods allows,
            // however late its driver runs: that, unless a smaller jitter is declared (0 is the
            // key's default, never a real jitter of a driver that fills its samples).
            jitter_ns: match (tick_aligned, jitter_ns) {
                (false, j) => j,
                (true, 0) => wcet::phase::pacer_jitter_ns((1e9 / rate).floor() as u64),
                (true, j) => j.min(wcet::phase::pacer_jitter_ns((1e9 / rate).floor() as u64)),
            },
            payload_bytes: payload,
            service_ns,
            delta_irq_ns: us_to_ns(timing.delta_irq_us),
            t_enq_ns: None,
            gpu_delta_l_ns: gpu_delta_l_ns(cfg, name, payload, ch)?,
            ring_depth: u64::from(*ch.ring_depth.get_ref()),
            cache_lines: 2,
            phase: tick_aligned.then(|| Phase {
                offset_ns: observed_offset_ns(traces, &format!("{prefix}{name}")).unwrap_or(0),
                jitter_ns,
            }),
        });
    }
    let sync_sets: Vec<SyncSet> = sync_set(cfg, &mut streams, prefix).into_iter().collect();
    let t = &d.node.thread;
    let priority = if t.policy == SchedPolicy::Fifo {
        *t.priority.get_ref()
    } else {
        0
    };
    let isolated = crate::preflight::parse_cpu_list(
        std::fs::read_to_string("/sys/devices/system/cpu/isolated")
            .unwrap_or_default()
            .trim(),
    );
    Ok(AnalysisInput {
        host: Calibration::default(),
        streams,
        fusion: FusionThreadSpec {
            wakeup: match t.wakeup {
                Wakeup::Spin => wcet::bound::Wakeup::Spin {
                    poll_period_ns: us_to_ns(t.poll_period_us),
                },
                Wakeup::Futex => wcet::bound::Wakeup::Futex,
                Wakeup::SpinThenFutex => wcet::bound::Wakeup::SpinThenFutex,
            },
            priority,
            dedicated_core: t
                .cpu
                .as_ref()
                .is_some_and(|c| isolated.contains(c.get_ref())),
            blocking_ns: 0,
        },
        other_rt_load: rt_drivers(cfg, priority)?,
        sync_sets,
        rt_throttling: d.report.rt_throttling,
    })
}

/// Loads a calibration file, or measures this host for `seconds` (with a spinner on a terminal).
///
/// # Errors
/// The file cannot be read or parsed.
pub fn calibration(cfg: &Config, file: Option<&Path>, seconds: f64) -> Result<Calibration> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read calibration {}", f.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a calibration file", f.display()));
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!(
        "calibrating this host for {seconds:.0} s (t_cc, t_enq, wake-ups)…"
    ));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let t = &cfg.deployment.node.thread;
    let cal = wcet::calibrate::run(&CalibrateOptions {
        duration: std::time::Duration::from_secs_f64(seconds.max(0.1)),
        priority: *t.priority.get_ref(),
        cpus: None,
    });
    bar.finish_and_clear();
    Ok(cal)
}

/// Reads every trace file, with a progress bar for large ones.
///
/// # Errors
/// A file that cannot be read or is not a trace.
pub fn read_traces(paths: &[std::path::PathBuf]) -> Result<Vec<TraceReader>> {
    let bar = indicatif::ProgressBar::new(paths.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("reading traces {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out = Vec::new();
    for p in paths {
        bar.set_message(p.display().to_string());
        out.push(
            TraceReader::open(p).with_context(|| format!("cannot read trace {}", p.display()))?,
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

#[cfg(test)]
mod gpu_chain_tests {
    use super::*;

    fn demo_with_gpu(gpu: &str) -> Config {
        let text = include_str!("../../examples/demo.toml").replace("[gpu]\npolicy = \"off\"", gpu);
        Config {
            deployment: Config::parse(&text, "demo-gpu.toml").expect("valid config"),
            path: None,
            text,
        }
    }

    #[test]
    fn a_stream_that_continues_to_the_gpu_carries_the_chosen_paths_delta_l() {
        let cfg = demo_with_gpu("[gpu]\npolicy = \"auto\"\nstreams = [\"camera\"]");
        let cam = cfg.channel("camera").expect("camera channel");
        // 1920×1080 rgb8 over the default PCIe 4.0 x16 profile: tens of µs at least (6.2 MB / 25 GB/s).
        let dl = gpu_delta_l_ns(&cfg, "camera", 1920 * 1080 * 3, cam)
            .unwrap()
            .expect("camera goes to the GPU");
        assert!(dl > 200_000, "ΔL {dl} ns");
        // Streams not listed, or policy off, add nothing.
        let lidar = cfg.channel("lidar").expect("lidar channel");
        assert_eq!(
            gpu_delta_l_ns(&cfg, "lidar", 1_920_000, lidar).unwrap(),
            None
        );
        let off = demo_with_gpu("[gpu]\npolicy = \"off\"\nstreams = [\"camera\"]");
        assert_eq!(
            gpu_delta_l_ns(&off, "camera", 1920 * 1080 * 3, cam).unwrap(),
            None
        );
        // Forcing bounce costs at least as much as the model's own choice.
        let bounce = demo_with_gpu("[gpu]\npolicy = \"bounce\"\nstreams = [\"camera\"]");
        let forced = gpu_delta_l_ns(&bounce, "camera", 1920 * 1080 * 3, cam)
            .unwrap()
            .unwrap();
        assert!(forced >= dl, "forced bounce {forced} < chosen {dl}");
    }
}

#[cfg(test)]
mod sync_set_tests {
    use super::*;
    use wcet::bound::Method;
    use wcet::calibrate::Stat;

    pub(super) fn config(text: &str, name: &str) -> Config {
        Config {
            deployment: Config::parse(text, name).expect("valid config"),
            path: None,
            text: text.to_string(),
        }
    }

    pub(super) fn stat(max_ns: u64) -> Stat {
        Stat {
            samples: 1000,
            min_ns: max_ns / 4,
            median_ns: max_ns / 2,
            p99_ns: max_ns,
            p9999_ns: max_ns,
            max_ns,
        }
    }

    #[test]
    fn the_projection_pair_is_one_set_of_phase_locked_streams() {
        let cfg = config(include_str!("../../examples/wcet-1m.toml"), "wcet-1m.toml");
        let mut input = input(&cfg, &[], "p.").expect("every stream has a service time");
        let names: Vec<&str> = input.streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["p.camera", "p.lidar", "p.imu", "p.odometry"]);
        let set = &input.sync_sets[0];
        assert_eq!(set.members, ["p.camera", "p.lidar"]);
        // The projection is the set's work, not each member's.
        assert_eq!(set.service_ns, 9_000_000);
        assert!(set.equal_stamps);
        assert_eq!(
            (input.streams[0].service_ns, input.streams[1].service_ns),
            (0, 0)
        );
        // Synthetic drivers are phase-locked; with no trace the offset is 0.
        let cam = input.streams[0].phase.expect("camera is tick-aligned");
        assert_eq!((cam.offset_ns, cam.jitter_ns), (0, 40_000_000));
        // At 2.5 kHz a Pacer-driven stream counts with two periods of jitter, not the 5 ms given.
        assert_eq!(input.streams[2].jitter_ns, 2 * 400_000 + 3);
        assert_eq!(input.streams[2].phase.map(|p| p.jitter_ns), Some(5_000_000));
        // Without a declared jitter: two periods for counting, no release window for the phase.
        let text = include_str!("../../examples/wcet-1m.toml").replace(
            "[node.timing.camera]\nservice_us = 9000.0\njitter_us = 40000.0",
            "[node.timing.camera]\nservice_us = 9000.0",
        );
        let undeclared = super::input(&config(&text, "no-jitter.toml"), &[], "").unwrap();
        assert_eq!(undeclared.streams[0].jitter_ns, 2 * 33_333_333 + 3);
        assert_eq!(undeclared.streams[0].phase.map(|p| p.jitter_ns), Some(0));

        input.host.cache_line_transfer = stat(100);
        input.host.enqueue = stat(100);
        input.host.fifo_wakeup = stat(300_000);
        input.host.futex_wakeup = stat(1_200_000);
        let r = wcet::bound::analyze(&input).expect("a bound");
        assert!(r.sets[0].phase_locked, "{:?}", r.sets[0]);
        assert_eq!(r.sets[0].period_ns, Some(100_000_000));
        // The IMU is charged the projection once per set, not once per camera and LiDAR sample.
        let imu = &r.streams[2];
        assert!(
            matches!(&imu.method, Method::SetCharged { sets } if sets == &["p.camera+p.lidar"]),
            "{:?}",
            imu.method
        );
        let fallback = imu
            .fallback
            .as_ref()
            .expect("the sporadic bound to fall back to");
        assert!(fallback.bound_ns > imu.bound_ns);
    }

    #[test]
    fn a_member_without_a_tick_aligned_driver_leaves_the_set_sporadic() {
        // The camera fed from outside (no driver of ours): its stamps need not be ticks.
        let text = include_str!("../../examples/wcet-1m.toml");
        let start = text
            .find("[[driver]]\nname = \"camera\"")
            .expect("camera driver");
        let end = start + text[start..].find("\n\n").expect("end of the block");
        let text = format!("{}{}", &text[..start], &text[end + 2..]).replace(
            "[node.timing.camera]\n",
            "[node.timing.camera]\nrate_hz = 30.0\n",
        );
        let cfg = config(&text, "external-camera.toml");
        let mut input = input(&cfg, &[], "").expect("every stream has a rate and a service time");
        assert!(input.streams[0].phase.is_none());
        assert!(!input.sync_sets[0].equal_stamps);
        input.host.cache_line_transfer = stat(100);
        input.host.enqueue = stat(100);
        input.host.fifo_wakeup = stat(300_000);
        input.host.futex_wakeup = stat(1_200_000);
        let r = wcet::bound::analyze(&input).expect("a bound");
        assert!(!r.sets[0].phase_locked);
        assert!(r.streams.iter().all(|s| s.method == Method::Sporadic));
    }
}

#[cfg(test)]
mod rt_load_tests {
    use super::sync_set_tests::stat;
    use super::*;
    use rtfuse_trace::{Record, StreamInfo, TraceHeader, TraceWriter};
    use wcet::bound::RtThrottling;

    fn config(text: &str) -> Config {
        super::sync_set_tests::config(text, "rt-load.toml")
    }

    /// examples/wcet-1m.toml on a host that throttles RT threads and isolates no CPU.
    fn calibrated(mut input: AnalysisInput) -> AnalysisInput {
        input.host.cache_line_transfer = stat(1_000);
        input.host.enqueue = stat(100);
        input.host.fifo_wakeup = stat(3_000_000);
        input.host.futex_wakeup = stat(600_000);
        input.host.host.rt_runtime_us = 950_000;
        input.host.host.rt_period_us = 1_000_000;
        input.fusion.dedicated_core = false;
        input
    }

    /// One second of the IMU at 2.5 kHz, served 5 µs after each enqueue, except that the fusion
    /// thread does not run for 200 ms from 0.5 s (longer than any bound of the file, the sporadic
    /// fallback included).
    fn stalled_imu_trace() -> TraceReader {
        let header = TraceHeader {
            fusion_policy: "SCHED_FIFO".into(),
            streams: vec![StreamInfo {
                id: 0,
                name: "imu".into(),
                kind: "imu".into(),
                rate_hz: 2500.0,
                payload_bytes: 64,
            }],
            ..TraceHeader::default()
        };
        let (base, stall_at, stall_len) = (1_000_000_000u64, 1_500_000_000u64, 200_000_000u64);
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &header).unwrap();
        let mut free = 0;
        for k in 0..2500u64 {
            let dma = base + k * 400_000;
            let enq = dma + 100;
            if (stall_at..stall_at + stall_len).contains(&enq) {
                free = free.max(stall_at + stall_len);
            }
            let deq = (enq + 5_000).max(free);
            free = deq + 12_000;
            w.write(&Record {
                stream: 0,
                seq: k,
                t_sensor_ns: dma,
                t_dma_ns: dma,
                t_enqueue_ns: enq,
                t_dequeue_ns: deq,
                t_fuse_start_ns: deq + 1_000,
                t_fuse_end_ns: deq + 12_000,
                ..Record::default()
            })
            .unwrap();
        }
        w.finish(0).unwrap();
        TraceReader::from_bytes(&buf).unwrap()
    }

    #[test]
    fn drivers_with_a_priority_are_the_other_rt_threads_and_leave_the_bound_alone() {
        let cfg = config(include_str!("../../examples/wcet-1m.toml"));
        let input = calibrated(input(&cfg, &[], "").unwrap());
        let load: Vec<(&str, i32)> = input
            .other_rt_load
            .iter()
            .map(|t| (t.name.as_str(), t.priority))
            .collect();
        assert_eq!(
            load,
            [
                ("driver camera (synthetic-camera, 30 Hz)", 70),
                ("driver lidar (synthetic-lidar, 10 Hz)", 70),
                ("driver imu (synthetic-imu, 2500 Hz)", 75),
                ("driver odometry (synthetic-odometry, 2500 Hz)", 75),
            ]
        );
        assert_eq!(input.other_rt_load[2].t, 400_000);
        // Below the fusion thread (80): every bound as without them.
        let with = wcet::bound::analyze(&input).unwrap();
        let mut without = input.clone();
        without.other_rt_load.clear();
        assert_eq!(with, wcet::bound::analyze(&without).unwrap());

        // The report counts them where it explains a stall.
        let report = wcet::report::build(&input, &with, &[stalled_imu_trace()]);
        assert_eq!(report.summary.other_rt_threads, 4);
        let cause = report.stall_cause.as_deref().unwrap_or_else(|| {
            panic!(
                "the stall explains a violation: {:?}",
                report.streams[2].stall_finding
            )
        });
        assert!(
            cause.contains("shares CPUs with 4 other SCHED_FIFO threads"),
            "{cause}"
        );
        assert!(report.to_markdown().contains("| other RT threads | 4 |"));
    }

    #[test]
    fn a_driver_at_or_above_the_fusion_priority_gets_no_bound() {
        let text = include_str!("../../examples/wcet-1m.toml").replacen(
            "priority = 75 ",
            "priority = 80 ",
            1,
        );
        let err = input(&config(&text), &[], "").unwrap_err().to_string();
        assert!(
            err.contains(
                "driver `imu` runs at SCHED_FIFO 80, not below the fusion thread (SCHED_FIFO 80)"
            ) && err.contains("no bound is claimed"),
            "{err}"
        );
        let other = text.replace("policy = \"fifo\"", "policy = \"other\"");
        let err = input(&config(&other), &[], "").unwrap_err().to_string();
        assert!(err.contains("(SCHED_OTHER)"), "{err}");
    }

    #[test]
    fn report_rt_throttling_is_passed_on_and_charged() {
        let text = include_str!("../../examples/wcet-1m.toml");
        let ignore = calibrated(input(&config(text), &[], "").unwrap());
        assert_eq!(ignore.rt_throttling, RtThrottling::Ignore);
        let charge_text = text.replace("[report]\n", "[report]\nrt_throttling = \"charge\"\n");
        let charge = calibrated(input(&config(&charge_text), &[], "").unwrap());
        assert_eq!(charge.rt_throttling, RtThrottling::Charge);
        let (a, b) = (
            wcet::bound::analyze(&ignore).unwrap(),
            wcet::bound::analyze(&charge).unwrap(),
        );
        for (sa, sb) in a.streams.iter().zip(&b.streams) {
            assert_eq!(sa.terms.rt_throttle_ns, 0);
            assert_eq!(sb.terms.rt_throttle_ns, 50_000_000, "{}", sb.name);
            assert!(sb.bound_ns >= sa.bound_ns + 50_000_000, "{}", sb.name);
        }
    }
}

#[cfg(test)]
mod observed_service_tests {
    use super::*;
    use rtfuse_trace::{Record, StreamInfo, TraceHeader, TraceWriter};

    fn trace(records: &[Record]) -> TraceReader {
        let header = TraceHeader {
            streams: vec![StreamInfo {
                id: 0,
                name: "imu".into(),
                kind: "imu".into(),
                rate_hz: 400.0,
                payload_bytes: 64,
            }],
            ..TraceHeader::default()
        };
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &header).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish(0).unwrap();
        TraceReader::from_bytes(&buf).unwrap()
    }

    fn step(span_ns: u64, cpu_ns: u32) -> Record {
        Record {
            seq: 1,
            t_fuse_start_ns: 1_000,
            t_fuse_end_ns: 1_000 + span_ns,
            fuse_cpu_ns: cpu_ns,
            ..Record::default()
        }
    }

    #[test]
    fn cpu_time_is_the_work_where_measured_else_the_span() {
        // A step preempted for 5 ms did 40 µs of work: the work is the service time.
        let measured = trace(&[step(5_000_000, 40_000), step(30_000, 25_000)]);
        assert_eq!(observed_service_ns(&[measured], "imu"), Some(40_000));
        // An older trace without CPU times: the longest span, interruptions included.
        let old = trace(&[step(5_000_000, 0), step(30_000, 0)]);
        assert_eq!(observed_service_ns(&[old], "imu"), Some(5_000_000));
        assert_eq!(observed_service_ns(&[], "imu"), None);
    }
}

//! Deterministic inputs shared by the integration tests: an analysis input with a fixed
//! calibration (no live-host data) and a synthetic trace.
#![allow(dead_code)]

use response_time_analysis::arrival::Sporadic;
use response_time_analysis::time::{Duration, Service};
use response_time_analysis::{demand, fixed_priority, wcet as rwcet};
use rtfuse_trace::{Record, StreamInfo, TraceHeader, TraceWriter};
use wcet::bound::{AnalysisInput, FusionThreadSpec, StreamSpec, Wakeup};
use wcet::calibrate::{Calibration, HostInfo, Stat};

pub fn stat(median: u64, max: u64) -> Stat {
    Stat {
        samples: 1000,
        min_ns: median / 2,
        median_ns: median,
        p99_ns: (median + max) / 2,
        p9999_ns: max,
        max_ns: max,
    }
}

pub fn calibration() -> Calibration {
    Calibration {
        host: HostInfo {
            hostname: "golden".into(),
            kernel: "6.1.0-golden".into(),
            kernel_version: "#1 SMP PREEMPT_DYNAMIC".into(),
            preempt_rt: false,
            cpu_model: "Synthetic CPU".into(),
            cpus: 2,
            isolated_cpus: String::new(),
            rt_runtime_us: -1,
            rt_period_us: 1_000_000,
            irq_time_accounting: None,
        },
        cache_line_transfer: stat(80, 150),
        enqueue: stat(40, 80),
        fifo_wakeup: stat(8_000, 20_000),
        futex_wakeup: stat(12_000, 25_000),
        policy: "SCHED_FIFO".into(),
        priority: 80,
        cpus: (0, 1),
        duration_s: 4.0,
        notes: vec![],
    }
}

pub fn stream(name: &str, rate_hz: f64, service_ns: u64, ring_depth: u64) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        rate_hz,
        jitter_ns: 10_000,
        payload_bytes: 1024,
        service_ns,
        delta_irq_ns: 0,
        t_enq_ns: None,
        gpu_delta_l_ns: None,
        ring_depth,
        cache_lines: 2,
        phase: None,
    }
}

pub fn input() -> AnalysisInput {
    let mut lidar = stream("lidar", 10.0, 500_000, 4);
    lidar.gpu_delta_l_ns = Some(300_000);
    AnalysisInput {
        host: calibration(),
        streams: vec![
            stream("imu", 1000.0, 2_000, 16),
            stream("camera", 30.0, 200_000, 4),
            lidar,
        ],
        fusion: FusionThreadSpec {
            wakeup: Wakeup::Futex,
            priority: 80,
            dedicated_core: false,
            blocking_ns: 0,
        },
        other_rt_load: vec![],
        sync_sets: vec![],
        rt_throttling: Default::default(),
    }
}

/// A trace header of a SCHED_FIFO fusion thread with the streams `(name, rate)`, ids in order.
pub fn header(streams: &[(&str, f64)], payload_bytes: u64) -> TraceHeader {
    TraceHeader {
        fusion_policy: "SCHED_FIFO".into(),
        streams: streams
            .iter()
            .enumerate()
            .map(|(i, &(n, rate_hz))| StreamInfo {
                id: i as u16,
                name: n.into(),
                kind: n.into(),
                rate_hz,
                payload_bytes,
            })
            .collect(),
        ..TraceHeader::default()
    }
}

/// xorshift64*.
pub struct Rng(pub u64);
impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (v as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A trace with `counts[i]` samples of stream i (imu, camera, lidar): latency 2 µs plus an
/// exponential tail (mean 1.5 µs); `extra(seq)` may add to a sample's latency. `skip` seqs are left
/// out (gaps). Returns the file bytes.
pub fn trace(
    counts: [u64; 3],
    extra: &dyn Fn(u16, u64) -> u64,
    skip: &[u64],
    finish: bool,
) -> Vec<u8> {
    let header = TraceHeader {
        hostname: "golden".into(),
        config: "golden.toml".into(),
        fusion_priority: 80,
        ..header(&[("imu", 0.0), ("camera", 0.0), ("lidar", 0.0)], 1024)
    };
    let mut buf = Vec::new();
    let mut w = TraceWriter::new(&mut buf, &header).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut t = 1_000_000_000u64;
    for (id, &n) in counts.iter().enumerate() {
        for seq in 1..=n {
            if skip.contains(&seq) {
                continue;
            }
            let lat = 2_000 + (-rng.uniform().ln() * 1_500.0) as u64 + extra(id as u16, seq);
            t += 1_000_000;
            w.write(&Record {
                stream: id as u16,
                seq,
                t_dma_ns: t,
                t_enqueue_ns: t + 100,
                t_dequeue_ns: t + lat,
                t_fuse_start_ns: t + lat + 500,
                t_fuse_end_ns: t + lat + 1_500,
                ..Record::default()
            })
            .unwrap();
        }
    }
    if finish {
        w.finish(0).unwrap();
    }
    buf
}

/// The `response-time-analysis` crate's response time, from the release, of a task `(C, T, J)`
/// with blocking `b` below the tasks `hp` (each `(C, T, J)`; floating non-preemptive FP, which is
/// preemptive FP plus the blocking term); `None` when it finds none below `horizon`.
pub fn crate_response(
    hp: &[(u64, u64, u64)],
    tua: (u64, u64, u64),
    b: u64,
    horizon: u64,
) -> Option<u64> {
    let all: Vec<(u64, u64, u64)> = hp.iter().copied().chain(std::iter::once(tua)).collect();
    let arrivals: Vec<Sporadic> = all
        .iter()
        .map(|&(_, t, j)| Sporadic::new(Duration::from(t), Duration::from(j)))
        .collect();
    let costs: Vec<rwcet::Scalar> = all
        .iter()
        .map(|&(c, ..)| rwcet::Scalar::new(Service::from(c)))
        .collect();
    let rbfs: Vec<demand::RBF<_, _>> = costs
        .iter()
        .zip(arrivals.iter())
        .map(|(c, a)| demand::RBF::new(a, c))
        .collect();
    let under = fixed_priority::floating_nonpreemptive::TaskUnderAnalysis {
        rbf: &rbfs[hp.len()],
        blocking_bound: Service::from(b),
    };
    fixed_priority::floating_nonpreemptive::dedicated_uniproc_rta(
        &under,
        &rbfs[..hp.len()],
        Duration::from(horizon),
    )
    .ok()
    .map(u64::from)
}

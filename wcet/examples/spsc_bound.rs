//! End to end on this host, without the full demo: a producer thread publishes samples through a
//! real shm-transport channel at a fixed rate (stamping "DMA complete" when the payload is
//! written); a SCHED_FIFO consumer pinned to another CPU spins on the channel, stamps the dequeue
//! and does a little work per sample. The run is written as an rtfuse trace, the bound is computed
//! from a fresh calibration of this host, and the report says whether it held.
//!
//! ```sh
//! cargo run -p wcet --release --example spsc_bound -- --samples 1000000 --rate-hz 20000 --out spsc-report
//! ```
//! The producer's release jitter (its largest lateness) and the consumer's per-sample work (the
//! p99.9 of what it took) are *observed* in the run; everything else comes from the calibration.

use clap::Parser;
use rtfuse_trace::{Record, StreamInfo, TraceHeader, TraceReader, TraceWriter, FLAG_SCHED_FIFO};
use shm_transport::{ChannelConfig, Publisher, Subscriber, WakeupPolicy};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wcet::bound::{AnalysisInput, FusionThreadSpec, StreamSpec, Wakeup};
use wcet::calibrate::{now_ns, pin, set_fifo, sleep_until, CalibrateOptions};

#[derive(Parser)]
struct Args {
    /// Samples to send.
    #[arg(long, default_value_t = 200_000)]
    samples: u64,
    /// Producer rate.
    #[arg(long, default_value_t = 20_000.0)]
    rate_hz: f64,
    /// Calibration seconds.
    #[arg(long, default_value_t = 3.0)]
    calibrate_s: f64,
    /// Budget for one empty poll of the spinning consumer (T_sched in spin mode), ns.
    #[arg(long, default_value_t = 1_000)]
    poll_ns: u64,
    /// Output directory (trace.bin, input.json, report.*).
    #[arg(long, default_value = "spsc-report")]
    out: std::path::PathBuf,
}

const RING_DEPTH: u32 = 256;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    eprintln!("calibrating this host for {} s …", args.calibrate_s);
    let cal = wcet::calibrate::run(&CalibrateOptions {
        duration: Duration::from_secs_f64(args.calibrate_s),
        priority: 80,
        cpus: Some((0, 1)),
    });
    let name = format!("wcet-spsc-{}", std::process::id());
    let cfg = ChannelConfig {
        chunk_size: 4096,
        chunk_count: RING_DEPTH + 8,
        ring_depth: RING_DEPTH,
        wakeup: WakeupPolicy::Spin,
        ..ChannelConfig::default()
    };
    let mut publisher = Publisher::create(&name, &cfg)?;
    let mut subscriber = Subscriber::open(&name)?;
    let period = (1e9 / args.rate_hz) as u64;
    let n = args.samples;
    let done = Arc::new(AtomicBool::new(false));
    let done_c = done.clone();

    let consumer = std::thread::spawn(move || {
        let _ = pin(1);
        let fifo = set_fifo(80).is_ok();
        let mut records = Vec::with_capacity(n as usize);
        let mut sum = 0u64;
        while (records.len() as u64) < n {
            match subscriber.receive() {
                Ok(Some(s)) => {
                    let t_dequeue = now_ns();
                    let t_fuse_start = now_ns();
                    sum = s
                        .payload()
                        .iter()
                        .fold(sum, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
                    let t_fuse_end = now_ns();
                    records.push(Record {
                        stream: 0,
                        flags: if fifo { FLAG_SCHED_FIFO } else { 0 },
                        seq: s.seq(),
                        t_sensor_ns: 0,
                        t_dma_ns: s.dma_time(),
                        t_enqueue_ns: s.enqueue_time(),
                        t_dequeue_ns: t_dequeue,
                        t_fuse_start_ns: t_fuse_start,
                        t_fuse_end_ns: t_fuse_end,
                        // The consumer's checksum is not timed per step: the span stands for it.
                        fuse_cpu_ns: 0,
                    });
                }
                Ok(None) if done_c.load(Ordering::Acquire) => break,
                Ok(None) => std::hint::spin_loop(),
                Err(_) => break,
            }
        }
        std::hint::black_box(sum);
        (records, fifo)
    });

    let _ = pin(0);
    let _ = set_fifo(70);
    let start = now_ns() + 10_000_000;
    let mut lateness = 0u64;
    for i in 0..n {
        let due = start + i * period;
        sleep_until(due);
        let mut s = publisher.loan().map_err(|e| anyhow::anyhow!("loan: {e}"))?;
        s.payload_mut()[..64].fill(i as u8);
        s.set_len(64);
        let t_dma = now_ns();
        s.set_dma_time(t_dma);
        lateness = lateness.max(t_dma.saturating_sub(due));
        s.publish().map_err(|e| anyhow::anyhow!("publish: {e}"))?;
    }
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Release);
    let (records, fifo) = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))?;

    let header = TraceHeader {
        config: "spsc_bound example".into(),
        fusion_policy: if fifo { "SCHED_FIFO" } else { "SCHED_OTHER" }.into(),
        fusion_priority: if fifo { 80 } else { 0 },
        fusion_cpu: Some(1),
        streams: vec![StreamInfo {
            id: 0,
            name: "spsc".into(),
            kind: "synthetic".into(),
            rate_hz: args.rate_hz,
            payload_bytes: 64,
        }],
        ..TraceHeader::default()
    };
    let trace_path = args.out.join("trace.bin");
    let mut w = TraceWriter::new(
        std::io::BufWriter::new(std::fs::File::create(&trace_path)?),
        &header,
    )?;
    for r in &records {
        w.write(r)?;
    }
    w.finish(0)?;
    let trace = TraceReader::open(&trace_path)?;

    // The consumer's work per sample: the p99.9 of what it took (its rare outliers are
    // interruptions of the thread, not work; whether they break the bound is the verdict's job).
    let mut work: Vec<u64> = records
        .iter()
        .map(|r| r.t_fuse_end_ns.saturating_sub(r.t_dequeue_ns))
        .collect();
    work.sort_unstable();
    let service = work.get(work.len() * 999 / 1000).copied().unwrap_or(1);
    let input = AnalysisInput {
        host: cal,
        streams: vec![StreamSpec {
            name: "spsc".into(),
            rate_hz: args.rate_hz,
            jitter_ns: lateness,
            payload_bytes: 64,
            service_ns: service.max(1),
            delta_irq_ns: 0,
            t_enq_ns: None,
            gpu_delta_l_ns: None,
            ring_depth: u64::from(RING_DEPTH),
            cache_lines: 2,
            phase: None,
        }],
        fusion: FusionThreadSpec {
            wakeup: Wakeup::Spin {
                poll_period_ns: args.poll_ns,
            },
            priority: 80,
            dedicated_core: false,
            blocking_ns: 0,
        },
        other_rt_load: vec![],
        sync_sets: vec![],
        rt_throttling: Default::default(),
    };
    eprintln!(
        "observed: producer release jitter {lateness} ns, consumer work per sample ≤ {service} ns"
    );
    // Two analyses of the same run: as `wcet::bound` does it (a spinning thread on a shared core
    // is charged the kernel's RT throttling, read from the calibration's host description), and
    // the fusion core alone, as if throttling were off.
    let mut alone = input.clone();
    alone.host.host.rt_runtime_us = -1;
    for (label, input) in [("with-rt-throttling", &input), ("alone", &alone)] {
        std::fs::write(
            args.out.join(format!("input-{label}.json")),
            serde_json::to_string_pretty(input)?,
        )?;
        let bounds = match wcet::bound::analyze(input) {
            Ok(b) => b,
            Err(e) => anyhow::bail!("{label}: no bound: {e}"),
        };
        let report = wcet::report::build(input, &bounds, std::slice::from_ref(&trace));
        std::fs::write(
            args.out.join(format!("report-{label}.html")),
            report.to_html(),
        )?;
        std::fs::write(
            args.out.join(format!("report-{label}.md")),
            report.to_markdown(),
        )?;
        std::fs::write(
            args.out.join(format!("report-{label}.json")),
            report.to_json(),
        )?;
        for s in &report.streams {
            println!(
                "{label}: stream {}: {} samples, bound {} ns, observed max {:?} ns, p99.9 {:?} ns, bound/max {:?}, {:?} ({} samples above), certified {}",
                s.name,
                s.stages.first().map_or(0, |x| x.count),
                s.bound.bound_ns,
                s.observed_max_ns,
                s.stages.first().map(|x| x.p999_ns),
                s.ratio,
                s.verdict,
                s.violation_count,
                report.certified
            );
        }
        for r in &report.not_certified_because {
            println!("{label}: not certified: {r}");
        }
    }
    Ok(())
}

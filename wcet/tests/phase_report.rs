//! The report and the phase-locked assumptions: a run that keeps them gets the phase-locked
//! bounds; stamps off the ticks, a release outside its window or a set of unequal stamps make
//! every stream fall back to its sporadic bound, and say why; a release jitter wider than the
//! arrival curves assume is not certified; the sample count and its shortfall are stated.

mod common;

use rtfuse_trace::{Record, TraceReader, TraceWriter};
use wcet::bound::{analyze, AnalysisInput, BoundReport, Method, StreamSpec, SyncSet};
use wcet::phase::Phase;
use wcet::report::{build_with, Report, ReportOptions};

const CAM: f64 = 30.0;
const LIDAR: f64 = 10.0;
const IMU: f64 = 400.0;

fn tick(rate: f64, k: u64) -> u64 {
    (k as f64 * 1e9 / rate).round() as u64
}

fn input() -> AnalysisInput {
    let mut input = common::input();
    let phased = |name: &str, rate: f64, service: u64, offset: u64, jitter: u64| StreamSpec {
        jitter_ns: jitter,
        phase: Some(Phase {
            offset_ns: offset,
            jitter_ns: jitter,
        }),
        ..common::stream(name, rate, service, 64)
    };
    input.streams = vec![
        phased("camera", CAM, 0, 8_000_000, 4_000_000),
        phased("lidar", LIDAR, 0, 10_000_000, 4_000_000),
        phased("imu", IMU, 50_000, 0, 1_000_000),
    ];
    input.sync_sets = vec![SyncSet {
        name: "camera+lidar".into(),
        members: vec!["camera".into(), "lidar".into()],
        service_ns: 7_000_000,
        equal_stamps: true,
    }];
    input
}

/// How a run deviates from the assumptions.
#[derive(Clone, Copy, PartialEq)]
enum Deviation {
    None,
    /// One camera frame released 20 ms after its window.
    LateCamera,
    /// One set fused from a camera and a LiDAR sample of different ticks.
    UnequalSet,
    /// One IMU stamp half a millisecond off its tick.
    OffTick,
}

/// One second of the three streams: releases inside their windows, the pair fused 1 ms after the
/// later member, dequeues 20 µs after release.
fn trace(dev: Deviation) -> TraceReader {
    let header = common::header(&[("camera", CAM), ("lidar", LIDAR), ("imu", IMU)], 64);
    let base = 1_000_000_000u64; // a whole number of common ticks
    let mut records = Vec::new();
    let mut push = |stream: u16, seq: u64, sensor: u64, dma: u64, fuse: (u64, u64)| {
        records.push(Record {
            stream,
            seq,
            t_sensor_ns: sensor,
            t_dma_ns: dma,
            t_enqueue_ns: dma + 100,
            t_dequeue_ns: dma + 20_000,
            t_fuse_start_ns: fuse.0,
            t_fuse_end_ns: fuse.1,
            ..Record::default()
        });
    };
    for k in 0..10u64 {
        let t = base + tick(LIDAR, k);
        let lidar_dma = t + 11_000_000;
        let fuse = (lidar_dma + 1_000_000, lidar_dma + 8_000_000);
        let lidar_stamp = if dev == Deviation::UnequalSet && k == 4 {
            t - tick(CAM, 1)
        } else {
            t
        };
        push(1, k + 1, lidar_stamp, lidar_dma, fuse);
        for j in 0..3u64 {
            let ct = base + tick(CAM, 3 * k + j);
            let late = if dev == Deviation::LateCamera && k == 5 && j == 1 {
                20_000_000
            } else {
                0
            };
            let f = if j == 0 { fuse } else { (0, 0) };
            push(0, 3 * k + j + 1, ct, ct + 9_000_000 + late, f);
        }
    }
    for k in 0..400u64 {
        let t = base + tick(IMU, k);
        let off = if dev == Deviation::OffTick && k == 7 {
            500_000
        } else {
            0
        };
        push(
            2,
            k + 1,
            t + off,
            t + off + 200_000,
            (t + 300_000, t + 320_000),
        );
    }
    let mut buf = Vec::new();
    let mut w = TraceWriter::new(&mut buf, &header).unwrap();
    for r in &records {
        w.write(r).unwrap();
    }
    w.finish(0).unwrap();
    TraceReader::from_bytes(&buf).unwrap()
}

/// The input's bounds and its report on a run with `dev`.
fn report(input: &AnalysisInput, dev: Deviation) -> (BoundReport, Report) {
    let bounds = analyze(input).unwrap();
    let r = build_with(input, &bounds, &[trace(dev)], &ReportOptions::default());
    (bounds, r)
}

#[test]
fn a_run_that_keeps_the_assumptions_gets_the_phase_locked_bounds() {
    let (bounds, r) = report(&input(), Deviation::None);
    assert!(matches!(
        bounds.streams[1].method,
        Method::PhaseLocked {
            sets_counted: 0,
            ..
        }
    ));
    assert!(r.set_checks[0].holds, "{:?}", r.set_checks);
    assert!(r.certified, "{:?}", r.not_certified_because);
    for (used, analysed) in r.streams.iter().zip(&bounds.streams) {
        assert_eq!(used.bound.bound_ns, analysed.bound_ns, "{}", used.name);
    }
    let md = r.to_markdown();
    assert!(md.contains("phase-locked assumptions hold"), "{md}");
    assert!(
        md.contains("phase-locked member of camera+lidar: 0 set(s) can reach it"),
        "{md}"
    );
}

#[test]
fn a_run_that_breaks_them_falls_back_to_the_sporadic_bounds() {
    for (dev, finding) in [
        (Deviation::LateCamera, "OUTSIDE"),
        (
            Deviation::UnequalSet,
            "not one sample of each member with equal stamps",
        ),
    ] {
        let (bounds, r) = report(&input(), dev);
        let check = &r.set_checks[0];
        assert!(!check.holds);
        assert!(
            check.findings.iter().any(|f| f.contains(finding)),
            "{:?}",
            check.findings
        );
        for (used, analysed) in r.streams.iter().zip(&bounds.streams) {
            let fallback = analysed.fallback.as_ref().expect("a sporadic bound");
            assert_eq!(used.bound.bound_ns, fallback.bound_ns, "{}", used.name);
            assert!(used
                .bound
                .notes
                .iter()
                .any(|n| n.contains("sporadic bound is used")));
        }
        assert!(r.to_markdown().contains("**DO NOT HOLD**"));
    }
}

#[test]
fn stamps_off_the_ticks_and_jitter_beyond_the_arrival_curve_are_findings() {
    let mut input = input();
    // An IMU stamp off its tick: the stream is not driven the way its arrival curve assumes.
    let (_, r) = report(&input, Deviation::OffTick);
    assert_eq!(r.releases["imu"].off_tick, 1);
    assert_eq!(r.releases["camera"].off_tick, 0);
    assert!(r.set_checks[0].holds, "the IMU is not in the set");
    assert!(!r.certified);
    assert!(
        r.not_certified_because
            .iter()
            .any(|x| x.contains("stream `imu`: 1 sensor stamps are not ticks of 400 Hz")),
        "{:?}",
        r.not_certified_because
    );
    // A camera declared with 1 ms of release jitter, which the late frame exceeds: its arrival
    // curve (below the two periods a Pacer stream never exceeds) is not backed by this run.
    input.streams[0].jitter_ns = 1_000_000;
    let (_, r) = report(&input, Deviation::LateCamera);
    assert!(!r.certified);
    assert!(
        r.not_certified_because
            .iter()
            .any(|x| x.contains("stream `camera`") && x.contains("wider than")),
        "{:?}",
        r.not_certified_because
    );
    // Two periods of jitter cover any stall of a Pacer-driven stream: no finding then.
    input.streams[0].jitter_ns = 2 * 33_333_333 + 3;
    let (_, r) = report(&input, Deviation::LateCamera);
    assert!(
        !r.not_certified_because
            .iter()
            .any(|x| x.contains("wider than")),
        "{:?}",
        r.not_certified_because
    );
}

#[test]
fn the_report_states_the_samples_behind_each_verdict_and_what_the_target_would_take() {
    let input = input();
    let bounds = analyze(&input).unwrap();
    let tr = [trace(Deviation::None)];
    let r = build_with(&input, &bounds, &tr, &ReportOptions::default());
    let samples: Vec<u64> = r.streams.iter().map(|s| s.samples).collect();
    assert_eq!(samples, [30, 10, 400]);
    assert_eq!(
        r.streams[0].samples_short.as_deref(),
        Some("camera at 30 Hz: 1000000 samples would take 9.3 h (this run: 30)")
    );
    assert_eq!(
        r.streams[2].samples_short.as_deref(),
        Some("imu at 400 Hz: 1000000 samples would take 41.7 min (this run: 400)")
    );
    let md = r.to_markdown();
    assert!(md.contains("**FEWER THAN 1000000 SAMPLES**"), "{md}");
    let r = build_with(&input, &bounds, &tr, &ReportOptions { sample_target: 10 });
    assert!(r.streams.iter().all(|s| s.samples_short.is_none()));
    assert!(r
        .to_markdown()
        .contains("Every verdict rests on at least 10 samples."));
}

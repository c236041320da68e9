//! Stalls of the fusion thread in its traces (no dequeue, no fusion step, while a sample waits):
//! one placed on purpose is found with its start and length, a long fusion step is not one, the
//! golden trace has none, and the report says in words which violations a stall explains, what
//! on the host can cause it, and when no stall explains a violation.

mod common;

use rtfuse_trace::{Record, TraceReader, TraceWriter};
use wcet::bound::{analyze, AnalysisInput};
use wcet::report::{build, Report, Verdict};
use wcet::rta::Task;
use wcet::stall;

const BASE: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// Where the fusion thread is stopped in [`trace`], and for how long.
const STALL_AT: u64 = BASE + 500 * MS;
const STALL_LEN: u64 = 25 * MS;
/// Fusion work per camera frame.
const CAMERA_STEP: u64 = 8 * MS;

/// IMU at 1 kHz and camera at 30 Hz (service 9 ms declared), wake-up maxima 2 ms, RT throttling
/// 950 ms / 1 s, no isolated CPU.
fn input() -> AnalysisInput {
    let mut input = common::input();
    input.streams = vec![
        common::stream("imu", 1000.0, 2_000, 64),
        common::stream("camera", 30.0, 9_000_000, 4),
    ];
    input.host.fifo_wakeup = common::stat(500_000, 2_000_000);
    input.host.futex_wakeup = common::stat(500_000, 2_000_000);
    input.host.host.rt_runtime_us = 950_000;
    input.host.host.rt_period_us = 1_000_000;
    input
}

/// One second of a simulated fusion thread serving samples in order of "DMA complete": a sample
/// is dequeued 5 µs after its enqueue or when the thread is free, then fused (2 µs for IMU,
/// [`CAMERA_STEP`] for a camera frame). With `stalled`, the thread does not run from the first
/// enqueue at or after [`STALL_AT`] for [`STALL_LEN`]. `late` IMU sequence numbers are dequeued
/// 30 ms late while the thread keeps serving the others.
fn trace(stalled: bool, late: &[u64]) -> TraceReader {
    let header = common::header(&[("imu", 1000.0), ("camera", 30.0)], 64);
    let mut arrivals: Vec<(u64, u16, u64)> = (0..1000).map(|k| (BASE + k * MS, 0, k)).collect();
    arrivals.extend((0..30).map(|j| (BASE + 300_000 + j * 33_333_333, 1, j)));
    arrivals.sort_unstable();
    let mut buf = Vec::new();
    let mut w = TraceWriter::new(&mut buf, &header).unwrap();
    let mut free = 0u64;
    for (dma, stream, seq) in arrivals {
        let enq = dma + 100;
        if stalled && (STALL_AT..STALL_AT + STALL_LEN).contains(&enq) {
            free = free.max(STALL_AT + STALL_LEN);
        }
        let mut deq = (enq + 5_000).max(free);
        let step = if stream == 1 { CAMERA_STEP } else { 2_000 };
        free = deq + 1_000 + step;
        if stream == 0 && late.contains(&seq) {
            deq += 30 * MS;
        }
        w.write(&Record {
            stream,
            seq,
            t_sensor_ns: dma,
            t_dma_ns: dma,
            t_enqueue_ns: enq,
            t_dequeue_ns: deq,
            t_fuse_start_ns: deq + 1_000,
            t_fuse_end_ns: deq + 1_000 + step,
            ..Record::default()
        })
        .unwrap();
    }
    w.finish(0).unwrap();
    TraceReader::from_bytes(&buf).unwrap()
}

fn report(input: &AnalysisInput, trace: TraceReader) -> Report {
    let bounds = analyze(input).unwrap();
    build(input, &bounds, &[trace])
}

#[test]
fn a_stall_placed_on_purpose_is_found_with_its_start_and_length() {
    let stalls = stall::find(&trace(true, &[]), 0, 2 * MS);
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    let s = stalls[0];
    // From the enqueue of the first sample it held back (the thread's last step ended before)
    // to the first dequeue after it.
    assert_eq!(s.start_ns, STALL_AT + 100);
    assert_eq!(s.end_ns, STALL_AT + STALL_LEN);
    assert_eq!(s.len_ns(), STALL_LEN - 100);
    assert_eq!(s.offset_ns, 500 * MS + 100, "from the trace's first stamp");
    assert_eq!(s.waiting, 26, "25 IMU samples and one camera frame");
}

#[test]
fn a_busy_fusion_step_is_not_a_stall() {
    let t = trace(false, &[]);
    let longest_wait = t
        .records
        .iter()
        .map(|r| r.t_dequeue_ns - r.t_enqueue_ns)
        .max()
        .unwrap();
    assert!(
        longest_wait > 7 * MS,
        "IMU samples wait through camera steps: {longest_wait} ns"
    );
    assert_eq!(stall::find(&t, 0, 2 * MS), vec![]);
    // Without the T_sched threshold every wake-up (5 µs here) would count.
    assert!(!stall::find(&t, 0, 0).is_empty());
    let r = report(&input(), t);
    assert!(r.all_hold, "{}", r.to_markdown());
    assert_eq!((r.stall_count, r.stall_threshold_ns), (0, 2 * MS));
}

#[test]
fn no_stall_in_the_golden_trace() {
    let input = common::input();
    let bounds = analyze(&input).unwrap();
    let golden =
        TraceReader::from_bytes(&common::trace([20_000, 600, 200], &|_, _| 0, &[], true)).unwrap();
    // Its wake-ups are 2–20 µs against a T_sched of 25 µs; the thread is never stopped.
    assert_eq!(stall::find(&golden, 0, 25_000), vec![]);
    let r = build(&input, &bounds, &[golden]);
    assert_eq!((r.stall_count, r.stall_threshold_ns), (0, 25_000));
    assert!(r.stalls.is_empty() && r.stall_cause.is_none());
    assert!(r.streams.iter().all(|s| s.stall_finding.is_none()));
}

#[test]
fn the_report_says_which_stall_explains_a_violation_and_why() {
    let input = input();
    let r = report(&input, trace(true, &[]));
    let imu = &r.streams[0];
    assert_eq!(imu.verdict, Verdict::Violated);
    let f = imu.stall_finding.as_ref().expect("a finding");
    assert_eq!(f.violating, imu.violation_count);
    assert_eq!((f.explained, f.partly, f.stall_count), (f.violating, 0, 1));
    assert_eq!(f.stalls[0].start_ns, STALL_AT + 100);
    assert_eq!(
        f.text,
        format!(
            "imu: {} samples exceeded the bound; all waited through a 25.0 ms stall at 0.50 s \
             in which the fusion thread made no progress while work was queued.",
            f.violating
        )
    );
    let cause = r.stall_cause.as_deref().expect("a cause");
    for part in [
        "The bound assumes the fusion thread is not preempted by anything outside the analysis",
        "RT throttling is enabled (950000/1000000 µs)",
        "shares CPUs with other SCHED_FIFO threads (this host isolates none)",
        "either can stop it for tens of ms",
        "Fix: set kernel.sched_rt_runtime_us = -1 with the fusion thread on an isolated CPU \
         (node.thread.cpu), or charge the throttle window in the bound ([report] rt_throttling = \
         \"charge\").",
    ] {
        assert!(cause.contains(part), "{part:?} missing from {cause:?}");
    }
    let (md, html, json) = (r.to_markdown(), r.to_html(), r.to_json());
    for out in [&md, &html, &json] {
        assert!(out.contains("all waited through a 25.0 ms stall at 0.50 s"));
        assert!(out.contains("RT throttling is enabled (950000/1000000 µs)"));
    }
    assert!(
        md.contains("Stalls of the fusion thread")
            && md.contains("| 0 | 0.500 s | 24999.900 µs | 26 |")
    );
    assert!(json.contains("\"stall_finding\"") && json.contains("\"stall_count\": 1"));
}

#[test]
fn the_cause_counts_known_rt_threads_and_names_other_causes() {
    let mut input = input();
    let low = |name: &str| Task {
        name: name.into(),
        c: 10_000,
        t: 1_000_000,
        j: 0,
        priority: 70,
        b: 0,
        d: None,
    };
    input.other_rt_load = vec![low("imu-driver"), low("odometry-driver")];
    let cause = report(&input, trace(true, &[])).stall_cause.unwrap();
    assert!(
        cause.contains("shares CPUs with 2 other SCHED_FIFO threads"),
        "{cause}"
    );
    input.other_rt_load.clear();
    input.host.host.rt_runtime_us = -1;
    input.fusion.dedicated_core = true;
    input.host.host.isolated_cpus = "1".into();
    let cause = report(&input, trace(true, &[])).stall_cause.unwrap();
    assert!(
        cause.contains("its CPU is isolated and RT throttling is off")
            && cause.contains("hypervisor"),
        "{cause}"
    );
    assert!(!cause.contains("sched_rt_runtime_us"), "{cause}");
}

#[test]
fn a_violation_no_stall_explains_is_called_unsound() {
    let r = report(&input(), trace(false, &[300]));
    let imu = &r.streams[0];
    assert_eq!((imu.verdict, imu.violation_count), (Verdict::Violated, 1));
    let f = imu.stall_finding.as_ref().unwrap();
    assert_eq!((f.explained, f.stall_count), (0, 0));
    assert_eq!(
        f.text,
        "imu: 1 sample exceeded the bound; no stall in the trace explains it: the analysis is \
         unsound for this run — please report."
    );
    assert!(r.stall_cause.is_none(), "no stall, no cause to blame");
    assert!(r
        .to_markdown()
        .contains("the analysis is unsound for this run"));
}

#[test]
fn a_violation_partly_explained_says_which_part_is_not() {
    // The stall, and one sample far before it dequeued 30 ms late while the thread ran.
    let r = report(&input(), trace(true, &[300]));
    let f = r.streams[0].stall_finding.as_ref().unwrap();
    assert_eq!(f.explained + 1, f.violating);
    assert!(
        f.text.contains(&format!(
            "{} of them waited through a 25.0 ms stall",
            f.explained
        )) && f
            .text
            .contains("1 is not explained by a stall in the trace")
            && f.text.contains("please report"),
        "{}",
        f.text
    );
}

/// Without the option the report says the bound does not cover the host's RT throttling and names
/// the option; with it the throttle window is its own column of the breakdown and term of the
/// JSON, the 25 ms stall is within the bound, and the note is gone. On an isolated CPU, or with
/// throttling off, there is nothing to say.
#[test]
fn the_report_says_when_the_throttle_window_is_not_charged_and_charges_it_on_request() {
    let mut input = input();
    let r = report(&input, trace(true, &[]));
    let note = r.rt_throttling_note.as_deref().expect("a note");
    assert!(
        note.contains("does not cover RT throttling")
            && note.contains("(950000/1000000 µs)")
            && note.contains("for 50 ms of every 1000 ms")
            && note.contains("[report] rt_throttling = \"charge\""),
        "{note}"
    );
    let md = r.to_markdown();
    assert!(md.contains(note) && !md.contains("| RT throttle |"), "{md}");
    assert!(r.to_html().contains("does not cover RT throttling"));
    assert!(r.to_json().contains("\"rt_throttling_note\""));

    input.rt_throttling = wcet::bound::RtThrottling::Charge;
    let r = report(&input, trace(true, &[]));
    assert!(r.rt_throttling_note.is_none());
    assert!(r.all_hold, "{:?}", r.streams[0].verdict);
    let imu = &r.streams[0].bound;
    assert_eq!(imu.terms.rt_throttle_ns, 50 * MS);
    let md = r.to_markdown();
    assert!(
        md.contains("| stream | Δirq | t_enq | T_sched | RT throttle | backlog | t_cc | L_b |")
            && md.contains("| 50000.000 µs |"),
        "{md}"
    );
    assert!(r.to_json().contains("\"rt_throttle_ns\": 50000000"));

    input.rt_throttling = wcet::bound::RtThrottling::Ignore;
    input.host.host.rt_runtime_us = -1;
    assert!(report(&input, trace(true, &[]))
        .rt_throttling_note
        .is_none());
    input.host.host.rt_runtime_us = 950_000;
    input.fusion.dedicated_core = true;
    assert!(report(&input, trace(true, &[]))
        .rt_throttling_note
        .is_none());
}

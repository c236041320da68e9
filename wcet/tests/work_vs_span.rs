//! The fusion thread's CPU time per step (trace records' `fuse_cpu_ns`) against the work per
//! sample the bound assumes: a long span with little CPU time is an interruption, noted as such;
//! CPU time above the assumed work (more work than declared, or interrupts charged to the thread)
//! makes the report say the traces do not back the bound's work and refuse to certify it; traces without CPU times say that they cannot tell.

mod common;

use rtfuse_trace::{Record, TraceReader, TraceWriter};
use wcet::bound::{analyze, AnalysisInput};
use wcet::report::{build, Report};

const MS: u64 = 1_000_000;
/// Work per IMU sample the bound assumes.
const SERVICE: u64 = 2_000;

fn input() -> AnalysisInput {
    let mut input = common::input();
    input.streams = vec![common::stream("imu", 1000.0, SERVICE, 64)];
    input
}

/// 200 IMU samples at 1 kHz, each fused in 1 µs of 1 µs CPU time, but sample 100's step spans
/// 3 ms and uses `cpu_ns` of CPU time (0: not measured, as in older traces).
fn report(cpu_ns: u32) -> Report {
    report_on(cpu_ns, None)
}

/// `report` on a host whose interrupt time accounting is `irq_time` (`None`: unknown).
fn report_on(cpu_ns: u32, irq_time: Option<bool>) -> Report {
    let header = common::header(&[("imu", 1000.0)], 64);
    let mut buf = Vec::new();
    let mut w = TraceWriter::new(&mut buf, &header).unwrap();
    for seq in 1..=200u64 {
        let dma = 1_000 * MS + seq * MS;
        let deq = dma + 5_000;
        let (span, cpu) = if seq == 100 {
            (3 * MS, cpu_ns)
        } else {
            (1_000, if cpu_ns == 0 { 0 } else { 1_000 })
        };
        w.write(&Record {
            stream: 0,
            seq,
            t_sensor_ns: dma,
            t_dma_ns: dma,
            t_enqueue_ns: dma + 100,
            t_dequeue_ns: deq,
            t_fuse_start_ns: deq + 500,
            t_fuse_end_ns: deq + 500 + span,
            fuse_cpu_ns: cpu,
            ..Record::default()
        })
        .unwrap();
    }
    w.finish(0).unwrap();
    let trace = TraceReader::from_bytes(&buf).unwrap();
    let mut input = input();
    input.host.host.irq_time_accounting = irq_time;
    let bounds = analyze(&input).unwrap();
    build(&input, &bounds, &[trace])
}

fn notes(r: &Report) -> String {
    r.streams[0].bound.notes.join("\n")
}

#[test]
fn a_long_step_with_little_cpu_time_is_an_interruption() {
    let r = report(1_500);
    let n = notes(&r);
    assert!(
        n.contains("took 3000.000 µs")
            && n.contains("no step was charged more than 1.500 µs of CPU time"),
        "{n}"
    );
    assert!(!n.contains("NOT BACKED"), "{n}");
    assert!(
        !r.not_certified_because
            .iter()
            .any(|w| w.contains("CPU time")),
        "{:?}",
        r.not_certified_because
    );
    let cpu = r.streams[0]
        .stages
        .iter()
        .find(|s| s.stage == "fuse_cpu")
        .expect("the CPU-time stage is reported");
    assert_eq!((cpu.count, cpu.max_ns), (200, 1_500));
}

#[test]
fn cpu_time_above_the_assumed_work_is_not_backed_and_not_certified() {
    let r = report(5_000);
    let n = notes(&r);
    assert!(n.starts_with("WORK NOT BACKED"), "{n}");
    assert!(
        n.contains("up to 5.000 µs of CPU time") && n.contains("the 2.000 µs of work"),
        "{n}"
    );
    assert!(!r.certified, "{:?}", r.not_certified_because);
    assert!(
        r.not_certified_because
            .iter()
            .any(|w| w == "stream `imu`: the traces do not back the 2.000 µs of work per sample the bound assumes: a fusion step was charged 5.000 µs of CPU time (p99.9 5.000 µs)"),
        "{:?}",
        r.not_certified_because
    );
    assert!(r.to_markdown().contains("WORK NOT BACKED"));
}

#[test]
fn traces_without_cpu_times_say_they_cannot_tell() {
    let r = report(0);
    let n = notes(&r);
    assert!(n.contains("do not give the CPU time per step"), "{n}");
    assert!(r.streams[0].stages.iter().all(|s| s.stage != "fuse_cpu"));
}

#[test]
fn the_host_says_whether_interrupt_time_is_charged_to_threads() {
    let r = report_on(5_000, Some(false));
    assert!(
        notes(&r).contains("(this host's kernel does)"),
        "{}",
        notes(&r)
    );
    let md = r.to_markdown();
    assert!(
        md.contains("| interrupt time | charged to the interrupted thread |"),
        "{md}"
    );
    let r = report_on(5_000, Some(true));
    assert!(
        notes(&r).contains("this host accounts interrupt time apart"),
        "{}",
        notes(&r)
    );
    assert!(report(5_000)
        .to_markdown()
        .lines()
        .all(|l| !l.starts_with("| interrupt time")));
}

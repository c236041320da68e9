//! Untrusted input never panics: arbitrary trace records, arbitrary samples, arbitrary task sets.

mod common;

use proptest::prelude::*;
use rtfuse_trace::{Record, StreamInfo, TraceHeader, TraceReader, TraceWriter};
use wcet::rta::{analyze_set, Task};

fn arb_record() -> impl Strategy<Value = Record> {
    (
        0u16..5,
        any::<u16>(),
        any::<u64>(),
        prop::array::uniform6(any::<u64>()),
        any::<u32>(),
    )
        .prop_map(|(stream, flags, seq, t, cpu)| Record {
            stream,
            flags: flags & !rtfuse_trace::FLAG_TRAILER,
            seq,
            t_sensor_ns: t[0],
            t_dma_ns: t[1],
            t_enqueue_ns: t[2],
            t_dequeue_ns: t[3],
            t_fuse_start_ns: t[4],
            t_fuse_end_ns: t[5],
            fuse_cpu_ns: cpu,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_records_make_a_report(records in prop::collection::vec(arb_record(), 0..400), finish in any::<bool>()) {
        let header = TraceHeader {
            streams: ["imu", "camera", "lidar"]
                .iter()
                .enumerate()
                .map(|(i, n)| StreamInfo { id: i as u16, name: (*n).into(), ..StreamInfo::default() })
                .collect(),
            ..TraceHeader::default()
        };
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &header).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        if finish {
            w.finish(0).unwrap();
        }
        let trace = TraceReader::from_bytes(&buf).unwrap();
        let input = common::input();
        let bounds = wcet::bound::analyze(&input).unwrap();
        let report = wcet::report::build(&input, &bounds, &[trace]);
        prop_assert!(!report.to_html().is_empty());
        prop_assert!(!report.to_markdown().is_empty());
        prop_assert!(serde_json::from_str::<serde_json::Value>(&report.to_json()).is_ok());
    }

    #[test]
    fn arbitrary_samples_give_a_fit_or_an_error(xs in prop::collection::vec(prop_oneof![any::<f64>(), 0.0f64..1e6, Just(5.0)], 0..2000)) {
        if let Ok(r) = wcet::evt::analyze(&xs, &Default::default()) {
            prop_assert!(r.gev.sigma > 0.0);
        }
    }

    #[test]
    fn arbitrary_task_sets_give_a_verdict_or_an_error(
        raw in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), -3i32..3), 1..5),
        horizon in prop::option::of(any::<u64>()),
    ) {
        let tasks: Vec<Task> = raw
            .iter()
            .enumerate()
            .map(|(i, &(c, t, j, b, priority))| Task { name: format!("t{i}"), c, t, j, priority, b, d: None })
            .collect();
        if let Ok(r) = analyze_set(&tasks, horizon.map(|h| h % (1 << 40))) {
            for t in &r.tasks {
                prop_assert_eq!(t.response_ns.is_some(), t.busy_window.is_some());
            }
        }
    }
}

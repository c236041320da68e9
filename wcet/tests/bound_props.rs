//! The latency bound: a hand-computed example, and property tests — the bound never shrinks when a
//! term or a load grows, and an unschedulable fusion thread gets no number.

mod common;

use proptest::prelude::*;
use wcet::bound::{analyze, AnalysisInput, BoundError, RtThrottling, StreamSpec, Wakeup};
use wcet::rta::Task;

/// Two streams and one higher-priority thread on the fusion core, spinning with a 5 µs poll.
///
/// s1 (T = 1 ms, C = 100 µs): w = B 5 000 + C 100 000 + s2 300 000 + hp 50 000 = 455 000 ns
/// (⌈455 000/2 ms⌉ = ⌈455 000/1 ms⌉ = 1: fixed point). Waiting = 455 000 − 100 000 = 355 000,
/// of which T_sched 5 000 and backlog 350 000; L_b = 0 + 1 000 + 5 000 + 350 000 + 2·150 = 356 300.
/// s2 (T = 2 ms, C = 300 µs): w = 5 000 + 300 000 + 100 000 + 50 000 = 455 000, waiting 155 000,
/// L_b = 1 000 + 5 000 + 150 000 + 300 = 156 300.
#[test]
fn hand_computed_two_streams_and_interfering_thread() {
    let mut input = common::input();
    let mut s1 = common::stream("s1", 1000.0, 100_000, 8);
    let mut s2 = common::stream("s2", 500.0, 300_000, 8);
    for s in [&mut s1, &mut s2] {
        s.jitter_ns = 0;
        s.t_enq_ns = Some(1_000);
    }
    input.streams = vec![s1, s2];
    input.fusion.wakeup = Wakeup::Spin {
        poll_period_ns: 5_000,
    };
    input.other_rt_load = vec![
        Task {
            name: "hp".into(),
            c: 50_000,
            t: 1_000_000,
            j: 0,
            priority: 90,
            b: 0,
            d: None,
        },
        Task {
            name: "lp".into(),
            c: 500_000,
            t: 1_000_000,
            j: 0,
            priority: 10,
            b: 0,
            d: None,
        },
    ];
    let r = analyze(&input).unwrap();
    let (a, b) = (&r.streams[0], &r.streams[1]);
    assert_eq!(
        (
            a.terms.t_sched_ns,
            a.terms.backlog_ns,
            a.terms.t_cc_ns,
            a.bound_ns
        ),
        (5_000, 350_000, 300, 356_300)
    );
    assert_eq!((b.terms.backlog_ns, b.bound_ns), (150_000, 156_300));
    assert_eq!(a.busy_window.length_ns, 455_000);
    assert_eq!(a.min_ring_depth, 1);
    // The lower-priority thread does not interfere; utilisation = 0.1 + 0.15 + 0.05.
    assert!((r.utilisation - 0.3).abs() < 1e-12);
    assert!(a.busy_window.interference.iter().all(|i| i.task != "lp"));
}

/// A thread spinning on a shared core is charged the kernel's RT throttling (here the default
/// 950 ms of every 1 s): 50 ms of interference, shown in the busy window and in a note. Sleeping,
/// or on a dedicated core, it is not.
#[test]
fn spinning_on_a_shared_core_pays_rt_throttling() {
    let mut input = common::input();
    input.streams.truncate(1);
    input.host.host.rt_runtime_us = 950_000;
    input.host.host.rt_period_us = 1_000_000;
    let futex = analyze(&input).unwrap().streams[0].bound_ns;
    input.fusion.wakeup = Wakeup::Spin {
        poll_period_ns: 1_000,
    };
    let r = analyze(&input).unwrap();
    let s = &r.streams[0];
    assert!(s
        .busy_window
        .interference
        .iter()
        .any(|i| i.task == "rt-throttling" && i.time_ns == 50_000_000));
    assert!(
        s.notes.iter().any(|n| n.contains("RT throttling")),
        "{:?}",
        s.notes
    );
    assert!(
        s.bound_ns > 50_000_000 && futex < 1_000_000,
        "{} {futex}",
        s.bound_ns
    );
    input.fusion.dedicated_core = true;
    assert!(analyze(&input).unwrap().streams[0].bound_ns < 1_000_000);
}

/// With `rt_throttling = charge` a sleeping thread is charged the throttle window too, as its
/// own term (the busy window's throttle interference, not added on top of it); a spinning one is
/// charged it once, not twice; a host that does not throttle adds nothing.
#[test]
fn charging_the_throttle_window_shows_it_once_as_its_own_term() {
    let mut input = common::input();
    input.streams.truncate(1);
    input.host.host.rt_runtime_us = 950_000;
    input.host.host.rt_period_us = 1_000_000;
    let ignored = analyze(&input).unwrap().streams[0].clone();
    assert_eq!(ignored.terms.rt_throttle_ns, 0);
    input.rt_throttling = RtThrottling::Charge;
    let charged = analyze(&input).unwrap().streams[0].clone();
    assert_eq!(charged.terms.rt_throttle_ns, 50_000_000);
    assert_eq!(charged.terms.total(), charged.bound_ns);
    // Items that arrive during the window are backlog; a lone stream's first item waits longest.
    assert!(charged.terms.backlog_ns >= ignored.terms.backlog_ns);
    assert!(charged.bound_ns >= ignored.bound_ns + 50_000_000);
    assert!(
        charged
            .notes
            .iter()
            .any(|n| n.contains("rt_throttling = \"charge\"") && n.contains("50000 µs")),
        "{:?}",
        charged.notes
    );
    // Spinning on a shared core: charged either way, and the same once.
    input.fusion.wakeup = Wakeup::Spin {
        poll_period_ns: 1_000,
    };
    let spin_charged = analyze(&input).unwrap().streams[0].clone();
    input.rt_throttling = RtThrottling::Ignore;
    let spin_ignored = analyze(&input).unwrap().streams[0].clone();
    assert_eq!(spin_charged.bound_ns, spin_ignored.bound_ns);
    assert_eq!(spin_charged.terms.rt_throttle_ns, 50_000_000);
    let windows: Vec<_> = spin_charged
        .busy_window
        .interference
        .iter()
        .filter(|i| i.task == "rt-throttling")
        .collect();
    assert_eq!(windows.len(), 1, "{windows:?}");
    // No throttling on the host: nothing to charge.
    input.rt_throttling = RtThrottling::Charge;
    input.fusion.wakeup = Wakeup::Futex;
    input.host.host.rt_runtime_us = -1;
    let off = analyze(&input).unwrap().streams[0].clone();
    assert_eq!(off, ignored);
}

/// The option reads from JSON with a default, and an unknown value is refused.
#[test]
fn the_option_defaults_to_ignore_in_json() {
    let json = serde_json::to_value(common::input()).unwrap();
    let mut obj = json.as_object().unwrap().clone();
    obj.remove("rt_throttling");
    let back: AnalysisInput = serde_json::from_value(obj.clone().into()).unwrap();
    assert_eq!(back.rt_throttling, RtThrottling::Ignore);
    obj.insert("rt_throttling".into(), "charge".into());
    let back: AnalysisInput = serde_json::from_value(obj.clone().into()).unwrap();
    assert_eq!(back.rt_throttling, RtThrottling::Charge);
    obj.insert("rt_throttling".into(), "sometimes".into());
    assert!(serde_json::from_value::<AnalysisInput>(obj.into()).is_err());
}

#[test]
fn overloaded_fusion_thread_gets_no_number() {
    let mut input = common::input();
    input.streams = vec![
        common::stream("a", 1000.0, 600_000, 8),
        common::stream("b", 1000.0, 600_000, 8),
    ];
    match analyze(&input) {
        Err(BoundError::Unschedulable { reason, .. }) => {
            assert!(reason.contains("utilisation"), "{reason}")
        }
        other => panic!("expected unschedulable, got {other:?}"),
    }
    let mut missing = common::input();
    missing.host.futex_wakeup.samples = 0;
    assert!(matches!(
        analyze(&missing),
        Err(BoundError::MissingCalibration(_))
    ));
}

fn arb_input() -> impl Strategy<Value = AnalysisInput> {
    let stream = (
        50.0f64..5000.0,
        0u64..200_000,
        1u64..60,
        0u64..50_000,
        0u64..5_000,
        1u64..64,
        0u32..4,
    );
    (
        prop::collection::vec(stream, 1..4),
        0u64..20_000,
        any::<bool>(),
        prop::option::of((1u64..100, 1u64..20)),
    )
        .prop_map(|(streams, poll, futex, hp)| {
            let mut input = common::input();
            input.streams = streams
                .into_iter()
                .enumerate()
                .map(
                    |(i, (rate, jitter, permille, irq, enq, depth, lines))| StreamSpec {
                        jitter_ns: jitter,
                        delta_irq_ns: irq,
                        t_enq_ns: (enq % 2 == 0).then_some(enq),
                        cache_lines: lines,
                        ..common::stream(
                            &format!("s{i}"),
                            rate,
                            ((1e9 / rate) * permille as f64 / 1000.0) as u64,
                            depth,
                        )
                    },
                )
                .collect();
            input.fusion.wakeup = if futex {
                Wakeup::Futex
            } else {
                Wakeup::Spin {
                    poll_period_ns: poll,
                }
            };
            if let Some((permille, period_ms)) = hp {
                let t = period_ms * 1_000_000;
                input.other_rt_load.push(Task {
                    name: "hp".into(),
                    c: t * permille / 1000,
                    t,
                    j: 0,
                    priority: 90,
                    b: 0,
                    d: None,
                });
            }
            input
        })
}

/// Every way of making things worse: a bigger term, more load, a faster stream.
fn grow(input: &AnalysisInput, which: usize, by: u64) -> AnalysisInput {
    let mut g = input.clone();
    let (idx, enq) = (which % g.streams.len(), g.host.enqueue.p9999_ns);
    let s = &mut g.streams[idx];
    match which % 11 {
        0 => s.delta_irq_ns += by,
        1 => s.t_enq_ns = Some(s.t_enq_ns.unwrap_or(enq) + by),
        2 => s.jitter_ns += by,
        3 => s.service_ns += by,
        4 => s.rate_hz *= 1.0 + by as f64 / 100_000.0,
        5 => s.cache_lines += 1,
        6 => g.fusion.blocking_ns += by,
        7 => {
            g.host.futex_wakeup.max_ns += by;
            g.host.fifo_wakeup.max_ns += by;
            g.host.cache_line_transfer.max_ns += by;
            g.host.cache_line_transfer.p9999_ns += by;
            g.host.enqueue.max_ns += by;
            g.host.enqueue.p9999_ns += by;
        }
        8 => {
            if let Wakeup::Spin { poll_period_ns } = &mut g.fusion.wakeup {
                *poll_period_ns += by;
            }
        }
        9 => g.other_rt_load.push(Task {
            name: "extra".into(),
            c: by,
            t: 1_000_000,
            j: 0,
            priority: 99,
            b: 0,
            d: None,
        }),
        _ => g.streams.push(common::stream("extra", 100.0, by, 8)),
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn bound_never_shrinks_when_a_term_or_load_grows(input in arb_input(), which in 0usize..44, by in 1u64..200_000) {
        let grown = grow(&input, which, by);
        match (analyze(&input), analyze(&grown)) {
            (Ok(a), Ok(b)) => {
                for sa in &a.streams {
                    let sb = b.streams.iter().find(|s| s.name == sa.name).unwrap();
                    prop_assert!(sb.bound_ns >= sa.bound_ns, "{}: {} -> {} after change {}", sa.name, sa.bound_ns, sb.bound_ns, which % 11);
                    prop_assert!(sb.min_ring_depth >= sa.min_ring_depth);
                    prop_assert_eq!(sa.terms.total(), sa.bound_ns);
                }
            }
            (Err(BoundError::Unschedulable { .. }), Ok(_)) => prop_assert!(false, "more load made it schedulable"),
            (Ok(_) | Err(BoundError::Unschedulable { .. }), Err(BoundError::Unschedulable { .. })) => {}
            (a, b) => prop_assert!(false, "unexpected {a:?} / {b:?}"),
        }
    }

    /// Charging the throttle window never lowers a bound (it may leave none), and on a host that
    /// does not throttle (runtime −1) it changes nothing.
    #[test]
    fn charging_the_throttle_window_never_lowers_a_bound(input in arb_input(), runtime_ms in 0i64..1000, throttles in any::<bool>(), dedicated in any::<bool>()) {
        let mut off = input;
        off.host.host.rt_period_us = 1_000_000;
        off.host.host.rt_runtime_us = if throttles { runtime_ms * 1000 } else { -1 };
        off.fusion.dedicated_core = dedicated;
        let mut on = off.clone();
        on.rt_throttling = RtThrottling::Charge;
        match (analyze(&off), analyze(&on)) {
            (Ok(a), Ok(b)) => {
                for (sa, sb) in a.streams.iter().zip(&b.streams) {
                    prop_assert!(sb.bound_ns >= sa.bound_ns, "{}: {} -> {}", sa.name, sa.bound_ns, sb.bound_ns);
                    prop_assert_eq!(sb.terms.total(), sb.bound_ns);
                    if !throttles {
                        prop_assert_eq!(sa, sb);
                    } else {
                        let window = (1000 - runtime_ms) as u64 * 1_000_000;
                        prop_assert!(sb.terms.rt_throttle_ns >= window.min(sb.bound_ns), "{:?}", sb.terms);
                    }
                }
            }
            (Err(BoundError::Unschedulable { .. }), Ok(_)) => prop_assert!(false, "charging made it schedulable"),
            (Ok(_) | Err(BoundError::Unschedulable { .. }), Err(BoundError::Unschedulable { .. })) => prop_assert!(throttles),
            (a, b) => prop_assert!(false, "unexpected {a:?} / {b:?}"),
        }
    }

    /// Above full utilisation there is never a number.
    #[test]
    fn overload_is_never_a_number(n in 2usize..5, rate in 100.0f64..2000.0) {
        let mut input = common::input();
        let service = (1e9 / rate / n as f64 * 1.05) as u64;
        input.streams = (0..n).map(|i| common::stream(&format!("s{i}"), rate, service, 8)).collect();
        let unschedulable = matches!(analyze(&input), Err(BoundError::Unschedulable { .. }));
        prop_assert!(unschedulable);
    }
}

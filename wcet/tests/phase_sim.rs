//! The phase-locked charging of synchronised sets (`wcet::phase`) against a simulation of the
//! fusion thread over whole hyperperiods: streams released at their `Pacer` ticks plus a jitter
//! placement, a set's work started once both members are processed, the wake-up delay at every
//! idle → busy transition, and several service orders. Every simulated wait must stay within the
//! analysed bound — on small sets for every placement of every job at either end of its release
//! window, on random sets for random placements. And the set-charged bound of a stream outside
//! the set must equal the `response-time-analysis` crate's on the same task set.

mod common;

use proptest::prelude::*;
use wcet::bound::{analyze, AnalysisInput, Method, StreamSpec, SyncSet, Wakeup};
use wcet::phase::Phase;

/// One simulated stream: rate (Hz, integer for members), cost, offset φ, jitter J, and for a
/// stream outside the set a shift of its ticks (it is sporadic to the analysis).
#[derive(Debug, Clone, Copy)]
struct Sim {
    rate: u64,
    cost: u64,
    offset: u64,
    jitter: u64,
    shift: u64,
    member: bool,
}

fn tick(rate: u64, k: u64) -> u64 {
    (k as f64 * 1e9 / rate as f64).round() as u64
}

/// Service orders of the simulated thread among ready work.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Earliest release first (set work when it becomes ready).
    Fifo,
    /// Set work and other streams first, members last: the adversary of a member.
    MembersLast,
    /// Members and set work last: the adversary of the other streams.
    OthersLast,
    /// Pseudo-random, from a seed.
    Random(u64),
}

struct Job {
    stream: usize,
    tick: u64,
    release: u64,
}

/// Largest wait (release → start) per stream over `[0, horizon)` with `place(stream, k)` choosing
/// each job's point in its release window (0 = earliest, 1 = latest, anything between).
fn simulate(
    streams: &[Sim],
    set_cost: u64,
    wake: u64,
    horizon: u64,
    place: &dyn Fn(usize, u64) -> f64,
    order: Order,
) -> Vec<u64> {
    let mut jobs: Vec<Job> = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        for k in 0.. {
            let t = tick(s.rate, k) + s.shift;
            if t >= horizon {
                break;
            }
            let d = s.offset + (s.jitter as f64 * place(i, k)).round() as u64;
            jobs.push(Job {
                stream: i,
                tick: t,
                release: t + d,
            });
        }
    }
    jobs.sort_by_key(|j| (j.release, j.stream));
    let members: Vec<usize> = (0..streams.len()).filter(|&i| streams[i].member).collect();
    let mut done_ticks: Vec<Vec<u64>> = vec![Vec::new(); streams.len()];
    let mut started = vec![false; jobs.len()];
    let mut sets_ready: Vec<u64> = Vec::new(); // ready times of set work not yet run
    let mut worst = vec![0u64; streams.len()];
    let mut rng = match order {
        Order::Random(s) => s | 1,
        _ => 1,
    };
    let mut now = 0u64;
    let mut busy = false;
    loop {
        // Ready items: the oldest unstarted job of each stream released by now (ring order).
        let mut ready: Vec<usize> = Vec::new();
        for i in 0..streams.len() {
            if let Some(j) = (0..jobs.len())
                .find(|&j| !started[j] && jobs[j].stream == i && jobs[j].release <= now)
            {
                ready.push(j);
            }
        }
        if ready.is_empty() && sets_ready.is_empty() {
            // Idle until the next release, then the wake-up delay.
            let Some(next) = (0..jobs.len())
                .filter(|&j| !started[j])
                .map(|j| jobs[j].release)
                .min()
            else {
                break;
            };
            now = next.max(now) + if busy { 0 } else { wake };
            busy = true;
            continue;
        }
        // Candidates: items, then the set (as index usize::MAX).
        let mut cands: Vec<usize> = ready.clone();
        if !sets_ready.is_empty() {
            cands.push(usize::MAX);
        }
        let is_member = |c: usize| c == usize::MAX || streams[jobs[c].stream].member;
        let pick = match order {
            Order::Fifo => *cands
                .iter()
                .min_by_key(|&&c| {
                    if c == usize::MAX {
                        sets_ready[0]
                    } else {
                        jobs[c].release
                    }
                })
                .unwrap(),
            Order::MembersLast => *cands
                .iter()
                .min_by_key(|&&c| (c != usize::MAX && streams[jobs[c].stream].member, c))
                .unwrap(),
            Order::OthersLast => *cands.iter().min_by_key(|&&c| (!is_member(c), c)).unwrap(),
            Order::Random(_) => {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                cands[(rng % cands.len() as u64) as usize]
            }
        };
        if pick == usize::MAX {
            sets_ready.remove(0);
            now += set_cost;
        } else {
            let j = &jobs[pick];
            started[pick] = true;
            worst[j.stream] = worst[j.stream].max(now - j.release);
            now += streams[j.stream].cost;
            if streams[j.stream].member {
                done_ticks[j.stream].push(j.tick);
                if members.iter().all(|&m| done_ticks[m].contains(&j.tick)) {
                    sets_ready.push(now);
                }
            }
        }
        // The thread sleeps again once nothing is ready.
        let more = sets_ready.len()
            + (0..jobs.len())
                .filter(|&j| !started[j] && jobs[j].release <= now)
                .count();
        if more == 0 {
            busy = false;
        }
    }
    worst
}

fn input(streams: &[Sim], set_cost: u64, wake: u64) -> AnalysisInput {
    let mut input = common::input();
    input.fusion.wakeup = Wakeup::Spin {
        poll_period_ns: wake,
    };
    input.fusion.dedicated_core = true;
    input.streams = streams
        .iter()
        .enumerate()
        .map(|(i, s)| StreamSpec {
            jitter_ns: s.jitter,
            phase: s.member.then_some(Phase {
                offset_ns: s.offset,
                jitter_ns: s.jitter,
            }),
            t_enq_ns: Some(0),
            cache_lines: 0,
            ..common::stream(&format!("s{i}"), s.rate as f64, s.cost, 1024)
        })
        .collect();
    input.sync_sets = vec![SyncSet {
        name: "pair".into(),
        members: (0..streams.len())
            .filter(|&i| streams[i].member)
            .map(|i| format!("s{i}"))
            .collect(),
        service_ns: set_cost,
        equal_stamps: true,
    }];
    input
}

/// The analysed waits (T_sched + backlog), or `None` when no bound exists.
fn waits(streams: &[Sim], set_cost: u64, wake: u64) -> Option<Vec<u64>> {
    let r = analyze(&input(streams, set_cost, wake)).ok()?;
    Some(
        r.streams
            .iter()
            .map(|b| b.terms.t_sched_ns + b.terms.backlog_ns)
            .collect(),
    )
}

fn check(streams: &[Sim], set_cost: u64, wake: u64, sim: &[u64], what: &str) {
    let Some(w) = waits(streams, set_cost, wake) else {
        return;
    };
    for (i, (b, s)) in w.iter().zip(sim).enumerate() {
        assert!(
            b >= s,
            "{what}: stream {i} simulated wait {s} ns above the bound {b} ns\n{streams:?} set {set_cost} wake {wake}"
        );
    }
}

/// A camera-like and a LiDAR-like member (3 : 1), one sporadic stream outside the set; every job
/// of two hyperperiods at either end of its release window, four service orders.
#[test]
fn every_extreme_placement_of_a_small_set_stays_within_the_bound() {
    let cases = [
        // (camera φ, J), (lidar φ, J), other (rate, cost, J, shift), set cost, wake
        (
            (300_000, 200_000),
            (350_000, 100_000),
            (1_000, 40_000, 50_000, 0),
            700_000,
            30_000,
        ),
        (
            (0, 400_000),
            (0, 400_000),
            (1_000, 60_000, 0, 123_457),
            900_000,
            50_000,
        ),
        (
            (100_000, 0),
            (500_000, 300_000),
            (800, 20_000, 100_000, 77_777),
            300_000,
            10_000,
        ),
        // Short set work and release windows against the camera period, as in the demo: no set
        // reaches either member.
        (
            (100_000, 50_000),
            (120_000, 50_000),
            (1_000, 20_000, 30_000, 5_000),
            200_000,
            10_000,
        ),
        // Both members at 1200 Hz with release windows nearly a period wide: two sets can fall in
        // one busy window of the other stream (the set's jitter at work).
        (
            (0, 700_000),
            (0, 700_000),
            (1_000, 100_000, 0, 600_000),
            300_000,
            10_000,
        ),
    ];
    for (n, ((co, cj), (lo, lj), (orate, ocost, oj, oshift), set_cost, wake)) in
        cases.into_iter().enumerate()
    {
        let phase_locked_camera = n == 3;
        let (lidar_rate, horizon) = if n == 4 {
            (1200, 4 * 833_334) // four common-tick periods
        } else {
            (400, 2 * 2_500_000) // two common-tick periods
        };
        let streams = [
            Sim {
                rate: 1200,
                cost: 20_000,
                offset: co,
                jitter: cj,
                shift: 0,
                member: true,
            },
            Sim {
                rate: lidar_rate,
                cost: 30_000,
                offset: lo,
                jitter: lj,
                shift: 0,
                member: true,
            },
            Sim {
                rate: orate,
                cost: ocost,
                offset: 0,
                jitter: oj,
                shift: oshift,
                member: false,
            },
        ];
        let n_jobs: Vec<u64> = streams
            .iter()
            .map(|s| {
                (0..)
                    .take_while(|&k| tick(s.rate, k) + s.shift < horizon)
                    .count() as u64
            })
            .collect();
        let total: u64 = n_jobs.iter().sum();
        assert!(total <= 13, "{total} jobs: too many to enumerate");
        let mut worst = vec![0u64; streams.len()];
        for mask in 0u64..(1 << total) {
            let place = |i: usize, k: u64| {
                let before: u64 = n_jobs[..i].iter().sum();
                ((mask >> (before + k)) & 1) as f64
            };
            for order in [
                Order::Fifo,
                Order::MembersLast,
                Order::OthersLast,
                Order::Random(mask),
            ] {
                let w = simulate(&streams, set_cost, wake, horizon, &place, order);
                for (a, b) in worst.iter_mut().zip(w) {
                    *a = (*a).max(b);
                }
            }
        }
        check(&streams, set_cost, wake, &worst, "exhaustive");
        // The LiDAR-like member's own set never delays it: its bound is phase-locked.
        let r = analyze(&input(&streams, set_cost, wake)).unwrap();
        if n == 4 {
            continue;
        }
        assert!(
            matches!(r.streams[1].method, Method::PhaseLocked { .. }),
            "{:?}",
            r.streams[1].method
        );
        if phase_locked_camera {
            assert!(
                matches!(
                    r.streams[0].method,
                    Method::PhaseLocked {
                        sets_counted: 0,
                        ..
                    }
                ),
                "{:?}",
                r.streams[0].method
            );
        }
    }
}

fn member() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..400_000, 0u64..400_000, 0u64..50_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random small sets, random placements over three hyperperiods: never above the bound.
    #[test]
    fn random_sets_and_placements_stay_within_the_bound(
        ratio in 1u64..4,
        cam in member(),
        lidar in member(),
        others in prop::collection::vec((1_000u64..6_000, 5_000u64..80_000, 0u64..200_000, 0u64..1_000_000), 0..3),
        set_cost in 50_000u64..1_200_000,
        wake in 0u64..60_000,
        seed in any::<u64>(),
    ) {
        let base = 1200u64;
        let mut streams = vec![
            Sim { rate: base, cost: cam.2, offset: cam.0, jitter: cam.1, shift: 0, member: true },
            Sim { rate: base / ratio, cost: lidar.2, offset: lidar.0, jitter: lidar.1, shift: 0, member: true },
        ];
        streams.extend(others.iter().map(|&(rate, cost, jitter, shift)| Sim {
            rate, cost, offset: 0, jitter, shift, member: false,
        }));
        prop_assume!(waits(&streams, set_cost, wake).is_some());
        let horizon = 3 * 1_000_000_000 / (base / ratio);
        let place = move |i: usize, k: u64| {
            let mut x = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 31;
            x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^= x >> 29;
            match x % 4 { 0 => 0.0, 1 => 1.0, _ => (x >> 8) as f64 / (u64::MAX >> 8) as f64 }
        };
        for order in [Order::Fifo, Order::MembersLast, Order::OthersLast, Order::Random(seed)] {
            let w = simulate(&streams, set_cost, wake, horizon, &place, order);
            check(&streams, set_cost, wake, &w, "random");
        }
    }

    /// More work, a wider release window or a longer wake-up never lowers any stream's bound.
    #[test]
    fn the_bound_never_shrinks_when_load_grows(
        cam in member(),
        lidar in member(),
        other in (1_000u64..6_000, 5_000u64..80_000, 0u64..200_000),
        set_cost in 50_000u64..900_000,
        wake in 0u64..60_000,
        which in 0usize..6,
        by in 1u64..300_000,
    ) {
        let streams = vec![
            Sim { rate: 1200, cost: cam.2, offset: cam.0, jitter: cam.1, shift: 0, member: true },
            Sim { rate: 400, cost: lidar.2, offset: lidar.0, jitter: lidar.1, shift: 0, member: true },
            Sim { rate: other.0, cost: other.1, offset: 0, jitter: other.2, shift: 0, member: false },
        ];
        let before = waits(&streams, set_cost, wake);
        prop_assume!(before.is_some());
        let before = before.unwrap_or_default();
        let (mut grown, mut set2, mut wake2) = (streams.clone(), set_cost, wake);
        match which {
            0 => grown[0].cost += by / 10,
            1 => grown[2].cost += by / 10,
            2 => set2 += by,
            3 => grown[1].jitter += by,
            4 => grown[2].jitter += by,
            _ => wake2 += by / 10,
        }
        // A grown set may have no bound at all: that is not a smaller bound.
        if let Some(after) = waits(&grown, set2, wake2) {
            for (a, b) in after.iter().zip(&before) {
                prop_assert!(a >= b, "grew {which} by {by}: {before:?} → {after:?}");
            }
        }
    }
}

/// Outside the set, the set-charged bound is plain fixed-priority RTA with the set as one more
/// sporadic task (period 10⁹/gcd of the rates, jitter the spread of the members' release
/// windows): the `response-time-analysis` crate gives the same response on that task set.
#[test]
fn outside_the_set_the_bound_is_the_crates_rta_with_the_set_as_a_task() {
    let streams = [
        Sim {
            rate: 1200,
            cost: 10_000,
            offset: 200_000,
            jitter: 150_000,
            shift: 0,
            member: true,
        },
        Sim {
            rate: 400,
            cost: 20_000,
            offset: 300_000,
            jitter: 100_000,
            shift: 0,
            member: true,
        },
        Sim {
            rate: 5_000,
            cost: 30_000,
            offset: 0,
            jitter: 40_000,
            shift: 0,
            member: false,
        },
        Sim {
            rate: 2_000,
            cost: 50_000,
            offset: 0,
            jitter: 0,
            shift: 0,
            member: false,
        },
    ];
    let (set_cost, wake) = (800_000u64, 25_000u64);
    let r = analyze(&input(&streams, set_cost, wake)).unwrap();
    // (C, T, J) of everything the stream under analysis sees: the other streams and the set.
    // D_lo = min φ = 200 µs, D_hi = max(φ + J) = 400 µs, two rounding nanoseconds.
    let set_task = (set_cost, 2_500_000u64, 400_000 - 200_000 + 2);
    for (k, s) in streams.iter().enumerate().filter(|(_, s)| !s.member) {
        let mut hp: Vec<(u64, u64, u64)> = streams
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != k)
            .map(|(_, o)| (o.cost, 1_000_000_000 / o.rate, o.jitter))
            .collect();
        hp.push(set_task);
        let own = (s.cost, 1_000_000_000 / s.rate, s.jitter);
        let oracle = common::crate_response(&hp, own, wake, 100_000_000)
            .expect("the crate finds a response time");
        let b = &r.streams[k];
        assert!(
            matches!(b.method, Method::SetCharged { .. }),
            "{:?}",
            b.method
        );
        assert_eq!(
            b.terms.t_sched_ns + b.terms.backlog_ns + s.cost,
            oracle,
            "stream {k}"
        );
    }
}

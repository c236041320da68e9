//! `wcet::phase::pacer_jitter_ns`: a stream driven by fusion's `Pacer` never releases more samples
//! in a window of length Δ than `⌈(Δ + 2T + 3)/T⌉`, however long its driver stalls. Checked on a
//! model of the driver loop (`fusion::driver::run_periodic` with `Pacer::wait`, restated here
//! line for line because wcet does not depend on fusion) with random stalls and fill times, over
//! every window that starts and ends at a release.

use proptest::prelude::*;
use wcet::phase::pacer_jitter_ns;
use wcet::rta::eta;

/// `Pacer`'s tick `k`.
fn tick(rate: f64, k: u64) -> u64 {
    (k as f64 * 1e9 / rate).round() as u64
}

/// `Pacer::first_after`.
fn first_after(rate: f64, t: u64) -> u64 {
    let mut k = (t as f64 * rate / 1e9).ceil() as u64;
    while tick(rate, k) <= t {
        k += 1;
    }
    k
}

/// Release times ("DMA complete") of the driver loop: `wait` (skip to the latest missed tick when
/// more than one was missed, sleep until the tick), fill, stamp, publish; `late(i)` is how long
/// the thread is kept off the CPU before it reads the clock for sample `i`, `fill(i)` its fill.
fn releases(
    rate: f64,
    n: usize,
    late: &dyn Fn(usize) -> u64,
    fill: &dyn Fn(usize) -> u64,
) -> Vec<u64> {
    let mut next = first_after(rate, 1_000_000);
    let mut clock = 1_000_000u64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        clock += late(i);
        let now = clock;
        if now > tick(rate, next) {
            let k = first_after(rate, now);
            if k > next + 1 {
                next = k - 1;
            }
        }
        let t = tick(rate, next);
        clock = clock.max(t);
        next += 1;
        clock += fill(i);
        out.push(clock); // t_dma: after the fill, before publish
    }
    out
}

fn check(rate: f64, rel: &[u64]) {
    let period = (1e9 / rate).floor() as u64;
    let j = pacer_jitter_ns(period);
    for a in 0..rel.len() {
        for b in a..rel.len() {
            let delta = rel[b] - rel[a] + 1; // the half-open window [rel[a], rel[b] + 1)
            let n = (b - a + 1) as u64;
            assert!(
                n <= eta(delta, period, j),
                "{n} releases in {delta} ns at {rate} Hz exceed ⌈(Δ + 2T + 3)/T⌉"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stalls_never_bunch_more_than_two_periods_of_jitter_allow(
        rate in prop::sample::select(vec![10.0, 30.0, 400.0, 2500.0, 3000.0, 7.0]),
        stalls in prop::collection::vec((0u64..8, 0u64..4_000_000_000), 200),
        fills in prop::collection::vec(0u64..1_000_000_000, 200),
    ) {
        let period = 1e9 / rate;
        // Mostly on time, sometimes a stall of up to several periods.
        let late = |i: usize| {
            let (kind, x) = stalls[i];
            match kind {
                0 => x % (10 * period as u64).max(1),
                1 => x % (period as u64).max(1),
                _ => x % 50_000,
            }
        };
        let fill = |i: usize| fills[i] % (period as u64 / 2).max(1);
        check(rate, &releases(rate, 200, &late, &fill));
    }
}

#[test]
fn a_stall_releases_the_latest_missed_tick_at_once_then_the_next_on_time() {
    // 100 Hz, ticks at 10, 20, 30 … ms, no fill; the thread is kept off the CPU for 35 ms before
    // the third sample: it reads the clock at 55 ms, skips the ticks 30 and 40, serves the latest
    // missed one (50 ms) at once, and the fourth sample comes at its own tick, 60 ms.
    let rate = 100.0;
    let rel = releases(rate, 5, &|i| if i == 2 { 35_000_000 } else { 0 }, &|_| 0);
    let t0 = rel[0];
    let rel_ms: Vec<u64> = rel.iter().map(|r| (r - t0) / 1_000_000).collect();
    assert_eq!(rel_ms, vec![0, 10, 45, 50, 60]);
    check(rate, &rel);
    // Two of them 5 ms apart: more than a jitter-free sporadic model (⌈Δ/T⌉ = 1) allows.
    assert!(eta(5_000_001, 10_000_000, 0) < 2);
}

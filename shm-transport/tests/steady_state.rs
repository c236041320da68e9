//! The real-time path allocates nothing and takes no page fault in steady state: publisher and
//! subscriber threads over a real shared-memory channel, measured with a counting global allocator
//! (per thread) and `getrusage(RUSAGE_THREAD)` minor faults.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use shm_transport::{ChannelConfig, OverflowPolicy, Publisher, Subscriber, WakeupPolicy};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator; the counter is a thread-local Cell that
// does not allocate (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

fn minor_faults() -> i64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; RUSAGE_THREAD is supported on Linux.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_minflt
}

const WARMUP: u64 = 10_000;
const MEASURED: u64 = 50_000;

fn run(wakeup: WakeupPolicy) {
    let name =
        format!("steady{}_{:?}", std::process::id(), wakeup).replace([' ', '{', '}', ':'], "");
    let cfg = ChannelConfig {
        chunk_size: 4096,
        chunk_count: 32,
        ring_depth: 16,
        overflow: OverflowPolicy::Reject,
        wakeup,
        ..ChannelConfig::default()
    };
    let mut p = Publisher::create(&name, &cfg).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    assert_eq!(p.subscriber_count(), 1);
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));
    let (b2, d2) = (start.clone(), done.clone());
    let consumer = std::thread::spawn(move || {
        b2.wait();
        let mut got = 0u64;
        let mut sum = 0u64;
        let (mut a0, mut f0) = (0, 0);
        while got < WARMUP + MEASURED {
            if got == WARMUP {
                a0 = allocs();
                f0 = minor_faults();
            }
            if let Ok(Some(sample)) = s.receive() {
                sum = sum.wrapping_add(sample.payload()[0] as u64);
                got += 1;
            }
        }
        let (a, f) = (allocs() - a0, minor_faults() - f0);
        d2.store(true, Ordering::Release);
        (a, f, sum, s)
    });
    start.wait();
    let (mut sent, mut a0, mut f0) = (0u64, 0, 0);
    while sent < WARMUP + MEASURED {
        if sent == WARMUP {
            a0 = allocs();
            f0 = minor_faults();
        }
        if let Ok(mut m) = p.loan() {
            m.payload_mut()[0] = sent as u8;
            m.set_len(64);
            m.set_dma_time(shm_transport::now_ns());
            if m.publish().is_ok() {
                sent += 1;
            }
        }
    }
    let (pa, pf) = (allocs() - a0, minor_faults() - f0);
    let (ca, cf, _sum, s) = consumer.join().unwrap();
    assert!(done.load(Ordering::Acquire));
    eprintln!("{wakeup:?}: publisher allocs {pa} faults {pf}; subscriber allocs {ca} faults {cf}");
    assert_eq!(pa, 0, "publisher thread allocated in steady state");
    assert_eq!(ca, 0, "subscriber thread allocated in steady state");
    assert_eq!(
        pf, 0,
        "publisher thread took minor page faults in steady state"
    );
    assert_eq!(
        cf, 0,
        "subscriber thread took minor page faults in steady state"
    );
    drop(s);
    drop(p);
}

#[test]
fn spin_path_allocates_nothing_and_never_faults() {
    run(WakeupPolicy::Spin);
}

#[test]
fn futex_path_allocates_nothing_and_never_faults() {
    run(WakeupPolicy::SpinThenFutex { spin_ns: 5_000 });
}

//! Damaged rings heal: each test plays the hostile process by writing one word of a subscriber's
//! slot directly, then checks that the publisher or the subscriber notices, that the subscriber
//! re-attaches in a fresh slot and receives what is published next, that what it still holds
//! stays readable, and that every chunk comes back to the publisher.

use super::*;
use crate::{ChannelConfig, OverflowPolicy, Publisher};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "resync_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    )
}

fn cfg(overflow: OverflowPolicy, max_subscribers: u32) -> ChannelConfig {
    ChannelConfig {
        chunk_size: 64,
        chunk_count: 8,
        ring_depth: 4,
        max_subscribers,
        overflow,
        alignment: 64,
        ..ChannelConfig::default()
    }
}

const CHUNKS: u32 = 8;

fn send(p: &mut Publisher, v: u64) {
    let mut s = p.loan().expect("a free chunk");
    s.payload_mut()[..8].copy_from_slice(&v.to_le_bytes());
    s.set_len(8);
    s.publish().expect("published");
}

fn value(s: &Sample) -> u64 {
    u64::from_le_bytes(s.payload()[..8].try_into().expect("8 bytes"))
}

fn next(sub: &mut Subscriber) -> Sample {
    sub.receive_timeout(Duration::from_secs(10))
        .expect("connected")
        .expect("a sample within 10 s")
}

/// Empty polls until the subscriber has re-attached `n` times in all (each 64th poll looks; a
/// slotless subscriber retries once a millisecond), for at most 10 s.
fn poll_until_resynced(sub: &mut Subscriber, p: &mut Publisher, n: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        for _ in 0..64 {
            assert!(sub.receive().expect("connected").is_none());
            if sub.stats().resyncs >= n {
                return;
            }
        }
        p.maintain();
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("no re-attach: {:?}", sub.stats());
}

/// A channel with one subscriber that has received sample 1 (dropped again).
fn channel(tag: &str, overflow: OverflowPolicy, max_subscribers: u32) -> (Publisher, Subscriber) {
    let name = unique(tag);
    let mut p = Publisher::create(&name, &cfg(overflow, max_subscribers)).unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    send(&mut p, 1);
    assert_eq!(value(&next(&mut sub)), 1);
    (p, sub)
}

/// Hostile: gives the descriptor slot for position `pos` of the subscriber's ring `stamp`.
fn scribble_stamp(sub: &Subscriber, pos: u64, stamp: u64) {
    let ring = sub.inner.seg.desc_ring(sub.inner.slot);
    ring.raw(pos).0.stamp.store(stamp, Relaxed);
}

fn all_chunks_back(p: &mut Publisher) {
    p.maintain();
    assert_eq!(p.stats().free_chunks, CHUNKS, "{:?}", p.stats());
}

#[test]
fn impossible_descriptor_stamp_publisher_sets_slot_aside_subscriber_reattaches() {
    let (mut p, mut sub) = channel("stamp", OverflowPolicy::KeepLast, 4);
    let old = sub.inner.slot;
    // The slot the publisher writes next (position 1) gets an impossible stamp.
    scribble_stamp(&sub, 1, 0xdead_beef);
    send(&mut p, 2);
    assert_eq!(p.stats().resynced, 1, "{:?}", p.stats());
    poll_until_resynced(&mut sub, &mut p, 1);
    assert_ne!(sub.inner.slot, old, "a fresh slot");
    send(&mut p, 3);
    let s = next(&mut sub);
    assert_eq!((s.seq(), value(&s)), (3, 3));
    assert_eq!(sub.stats().gaps, 1, "sample 2 went into the damaged ring");
    drop(s);
    all_chunks_back(&mut p);
    assert_eq!(p.subscriber_count(), 1);
}

#[test]
fn subscriber_finds_its_ring_damaged_keeps_what_it_holds_and_reattaches() {
    let (mut p, mut sub) = channel("tail", OverflowPolicy::KeepLast, 4);
    send(&mut p, 10);
    let held = next(&mut sub);
    send(&mut p, 20);
    // Hostile: the shared tail index (2) moves one lap back, so every claim sees an impossible
    // stamp.
    let old = sub.inner.slot;
    let ring = sub.inner.seg.desc_ring(old);
    ring.raw(0).1.tail.0.store(2u64.wrapping_sub(4), Relaxed);
    assert!(sub.receive().unwrap().is_none());
    assert!(sub.stats().invalid >= 1);
    assert_eq!(
        sub.stats().resyncs,
        1,
        "re-attached at once (a sample is held)"
    );
    assert_ne!(sub.inner.slot, old);
    send(&mut p, 30);
    let s = next(&mut sub);
    assert_eq!(value(&s), 30);
    assert_eq!(
        p.stats().resynced,
        1,
        "the publisher set the old slot aside"
    );
    assert_eq!(
        p.stats().errors,
        0,
        "the subscriber said so itself: no error"
    );
    // The sample held through the old slot is intact: its chunk was not reused.
    for v in 40..60 {
        send(&mut p, v);
        assert_eq!(value(&next(&mut sub)), v);
    }
    assert_eq!(value(&held), 10);
    drop((held, s));
    all_chunks_back(&mut p);
}

#[test]
fn return_that_cannot_be_queued_makes_the_subscriber_reattach_and_the_chunk_comes_back() {
    let (mut p, mut sub) = channel("ret", OverflowPolicy::KeepLast, 4);
    // Hostile: the return ring's shared head index jumps far ahead: every return looks "full".
    let ret = sub.inner.seg.ret_ring(sub.inner.slot);
    ret.raw(0).1.head.0.store(1000, Relaxed);
    send(&mut p, 2);
    drop(next(&mut sub));
    assert_eq!(sub.stats().return_errors, 1);
    poll_until_resynced(&mut sub, &mut p, 1);
    send(&mut p, 3);
    assert_eq!(value(&next(&mut sub)), 3);
    // The chunk whose return was lost came back with the old slot.
    all_chunks_back(&mut p);
}

#[test]
fn forged_return_sets_the_slot_aside_instead_of_leaking() {
    let (mut p, mut sub) = channel("forged", OverflowPolicy::KeepLast, 4);
    send(&mut p, 2);
    let s = next(&mut sub);
    // Hostile: a return of a chunk this slot does not hold (wrong generation).
    let ret = sub.inner.seg.ret_ring(sub.inner.slot);
    let words = [
        u64::from(s.descriptor().chunk) | 0xffff_0000_0000_0000,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    ret.push_claim(&words).unwrap();
    // Drain returns: loan everything (the forged one is met when the free list runs dry).
    let mut loans = 0;
    while p.loan().map(core::mem::forget).is_ok() {
        loans += 1;
        assert!(loans < 100);
    }
    assert_eq!(p.stats().resynced, 1, "{:?}", p.stats());
    assert_eq!(p.stats().errors, 1);
    drop(s);
    poll_until_resynced(&mut sub, &mut p, 1);
}

#[test]
fn full_ring_with_nothing_to_take_is_set_aside_after_the_suspect_time() {
    let (mut p, mut sub) = channel("suspect", OverflowPolicy::KeepLast, 4);
    // Hostile: the tail index jumps a long way ahead: the ring looks empty to the subscriber and
    // full with nothing to take to the publisher.
    let ring = sub.inner.seg.desc_ring(sub.inner.slot);
    ring.raw(0).1.tail.0.store(1000, Relaxed);
    let start = std::time::Instant::now();
    let mut v = 2;
    while p.stats().resynced == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never set aside: {:?}",
            p.stats()
        );
        send(&mut p, v);
        v += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    poll_until_resynced(&mut sub, &mut p, 1);
    send(&mut p, 1_000_000);
    assert_eq!(value(&next(&mut sub)), 1_000_000);
    all_chunks_back(&mut p);
}

#[test]
fn reject_policy_does_not_refuse_for_ever_on_a_damaged_ring() {
    let (mut p, mut sub) = channel("reject", OverflowPolicy::Reject, 4);
    scribble_stamp(&sub, 1, 7);
    send(&mut p, 2); // would be `Full` for ever without the damage check
    assert_eq!(p.stats().rejected, 0);
    assert_eq!(p.stats().resynced, 1);
    poll_until_resynced(&mut sub, &mut p, 1);
    send(&mut p, 3);
    assert_eq!(value(&next(&mut sub)), 3);
}

#[test]
fn with_one_slot_in_all_the_subscriber_frees_its_old_slot_first() {
    let (mut p, mut sub) = channel("oneslot", OverflowPolicy::KeepLast, 1);
    scribble_stamp(&sub, 1, u64::MAX);
    send(&mut p, 2);
    assert_eq!(p.stats().resynced, 1);
    // The only slot is the damaged one: the subscriber closes it, the publisher sweeps it, the
    // subscriber takes it again.
    poll_until_resynced(&mut sub, &mut p, 1);
    assert_eq!(sub.inner.slot, 0);
    send(&mut p, 3);
    assert_eq!(value(&next(&mut sub)), 3);
    all_chunks_back(&mut p);
}

#[test]
fn scribbled_slot_state_makes_the_subscriber_reattach() {
    let (mut p, mut sub) = channel("state", OverflowPolicy::KeepLast, 4);
    sub.inner
        .seg
        .control(sub.inner.slot)
        .state
        .store(77, Relaxed);
    poll_until_resynced(&mut sub, &mut p, 1);
    send(&mut p, 2);
    assert_eq!(value(&next(&mut sub)), 2);
    assert_eq!(p.subscriber_count(), 1);
    all_chunks_back(&mut p);
}

#[test]
fn under_reject_a_scribbled_shared_tail_changes_nothing() {
    // The subscriber is the ring's only consumer and keeps its tail privately.
    let (mut p, mut sub) = channel("rejtail", OverflowPolicy::Reject, 4);
    let ring = sub.inner.seg.desc_ring(sub.inner.slot);
    ring.raw(0).1.tail.0.store(1000, Relaxed);
    for v in 2..20 {
        send(&mut p, v);
        assert_eq!(value(&next(&mut sub)), v);
    }
    assert_eq!((sub.stats().resyncs, sub.stats().invalid), (0, 0));
    assert_eq!((p.stats().errors, p.stats().resynced), (0, 0));
    all_chunks_back(&mut p);
}

#[test]
fn a_slotless_subscriber_blocked_in_receive_timeout_reattaches_when_the_slot_frees() {
    let (mut p, mut sub) = channel("slotwait", OverflowPolicy::KeepLast, 1);
    scribble_stamp(&sub, 1, u64::MAX);
    send(&mut p, 2);
    assert_eq!(p.stats().resynced, 1);
    // The publisher goes on publishing from another thread; each loan sweeps closed slots.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let publisher = std::thread::spawn(move || {
        let mut v = 3;
        while !stop2.load(Relaxed) {
            send(&mut p, v);
            v += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        p
    });
    // One blocking call: the subscriber closes its only slot, waits in short sleeps while the
    // publisher frees it, re-attaches and returns a sample published after that.
    let s = sub
        .receive_timeout(Duration::from_secs(10))
        .expect("connected")
        .expect("a sample after re-attaching");
    assert!(value(&s) >= 3, "{}", value(&s));
    assert_eq!(sub.stats().resyncs, 1);
    drop(s);
    stop.store(true, Relaxed);
    let mut p = publisher.join().unwrap();
    assert_eq!(p.subscriber_count(), 1);
}

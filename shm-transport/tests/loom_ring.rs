//! Loom models of the ring protocol (run: `RUSTFLAGS="--cfg loom" cargo test -p shm-transport
//! --test loom_ring --release`, or `ci/loom.sh`). Every interleaving of the modelled threads is
//! explored under the C11 memory model.
//!
//! Models:
//! 1. descriptor ring: a single producer that, when full, steals the oldest item (keep-last) racing a
//!    claiming consumer, across wrap-around with capacity 2 — every item is delivered or stolen
//!    exactly once, the consumer sees increasing values, and stolen + delivered + left = pushed;
//! 2. return ring: two claiming producers and a single consumer at capacity 2 (full edge) — every
//!    push that succeeded is popped exactly once;
//! 3. the empty edge: a consumer racing one push either sees nothing or exactly the item;
//! 4. descriptor ring under the reject policy: a single producer and a single consumer with a
//!    private tail, across wrap-around with capacity 2 — every pushed item arrives once, in order,
//!    untorn, and the producer finds room again once the consumer has freed a slot.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_transport::ring::{HeapRing, PushError, SLOT_WORDS};

fn w(v: u64) -> [u64; SLOT_WORDS] {
    [v, v ^ 1, 0, 0, 0, 0, v]
}

#[test]
fn descriptor_ring_single_producer_with_steal_vs_consumer() {
    loom::model(|| {
        let hr = Arc::new(HeapRing::new(2));
        let c = hr.clone();
        let consumer = thread::spawn(move || {
            let r = c.ring();
            let mut got = Vec::new();
            for _ in 0..2 {
                if let Ok(Some((_, words))) = r.pop_claim() {
                    assert_eq!(words[1], words[0] ^ 1, "torn slot");
                    assert_eq!(words[6], words[0], "torn slot");
                    got.push(words[0]);
                }
            }
            got
        });
        let r = hr.ring();
        let mut head = 0;
        let mut stolen = Vec::new();
        let mut pushed = Vec::new();
        for v in 1..=3u64 {
            // As the publisher does: a bounded number of attempts, stealing the oldest when full.
            for _ in 0..4 {
                match r.push_single(&mut head, &w(v)) {
                    Ok(()) => {
                        pushed.push(v);
                        break;
                    }
                    Err(PushError::Full) => match r.pop_claim() {
                        Ok(Some((_, words))) => stolen.push(words[0]),
                        // The consumer holds the claim on the oldest slot: let it finish.
                        _ => thread::yield_now(),
                    },
                    Err(PushError::Corrupt) => panic!("corrupt in a clean model"),
                }
            }
        }
        let got = consumer.join().unwrap();
        let mut rest = Vec::new();
        while let Ok(Some((_, words))) = r.pop_claim() {
            rest.push(words[0]);
        }
        assert!(
            got.windows(2).all(|p| p[0] < p[1]),
            "consumer order {got:?}"
        );
        let mut all: Vec<u64> = got.iter().chain(&stolen).chain(&rest).copied().collect();
        all.sort_unstable();
        assert_eq!(all, pushed, "got {got:?} stolen {stolen:?} rest {rest:?}");
        assert!(
            pushed.len() >= 2,
            "a wedged producer: pushed only {pushed:?}"
        );
    });
}

#[test]
fn return_ring_two_claiming_producers_single_consumer() {
    loom::model(|| {
        let hr = Arc::new(HeapRing::new(2));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let h = hr.clone();
                thread::spawn(move || {
                    let r = h.ring();
                    let mut pushed = Vec::new();
                    for k in 0..2u64 {
                        let v = 10 * (p + 1) + k;
                        if r.push_claim(&w(v)).is_ok() {
                            pushed.push(v);
                        }
                    }
                    pushed
                })
            })
            .collect();
        let r = hr.ring();
        let mut tail = 0;
        let mut popped = Vec::new();
        for _ in 0..2 {
            if let Ok(Some(words)) = r.pop_single(&mut tail) {
                assert_eq!(words[1], words[0] ^ 1, "torn slot");
                popped.push(words[0]);
            }
        }
        let mut pushed: Vec<u64> = producers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        while let Ok(Some(words)) = r.pop_single(&mut tail) {
            popped.push(words[0]);
        }
        pushed.sort_unstable();
        popped.sort_unstable();
        assert_eq!(pushed, popped);
        assert!(pushed.len() >= 2, "capacity 2 accepts at least two pushes");
    });
}

#[test]
fn empty_edge_consumer_sees_nothing_or_the_whole_item() {
    loom::model(|| {
        let hr = Arc::new(HeapRing::new(2));
        let c = hr.clone();
        let consumer = thread::spawn(move || {
            c.ring()
                .pop_claim()
                .unwrap()
                .map(|(pos, words)| (pos, words[0], words[6]))
        });
        let r = hr.ring();
        let mut head = 0;
        r.push_single(&mut head, &w(7)).unwrap();
        match consumer.join().unwrap() {
            None => assert_eq!(r.pop_claim().unwrap().map(|(_, x)| x[0]), Some(7)),
            Some(got) => assert_eq!(got, (0, 7, 7)),
        }
    });
}

#[test]
fn descriptor_ring_single_producer_single_consumer_with_private_tail() {
    loom::model(|| {
        let hr = Arc::new(HeapRing::new(2));
        let c = hr.clone();
        let consumer = thread::spawn(move || {
            let r = c.ring();
            let mut tail = 0;
            let mut got = Vec::new();
            for _ in 0..3 {
                if let Ok(Some(words)) = r.pop_single(&mut tail) {
                    assert_eq!(words[1], words[0] ^ 1, "torn slot");
                    assert_eq!(words[6], words[0], "torn slot");
                    got.push(words[0]);
                }
            }
            (got, tail)
        });
        let r = hr.ring();
        let mut head = 0;
        let mut pushed = Vec::new();
        for v in 1..=3u64 {
            // As the publisher does under reject: check for room, else hand the sample back.
            match r.room_single(head) {
                Ok(()) => {
                    r.push_single(&mut head, &w(v)).expect("room was checked");
                    pushed.push(v);
                }
                Err(PushError::Full) => {}
                Err(PushError::Corrupt) => panic!("corrupt in a clean model"),
            }
        }
        let (got, mut tail) = consumer.join().unwrap();
        let mut rest = Vec::new();
        while let Ok(Some(words)) = r.pop_single(&mut tail) {
            rest.push(words[0]);
        }
        let all: Vec<u64> = got.iter().chain(&rest).copied().collect();
        assert_eq!(all, pushed, "got {got:?} rest {rest:?}");
        assert!(pushed.len() >= 2, "the first two always fit: {pushed:?}");
    });
}

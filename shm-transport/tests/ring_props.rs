//! Property tests of the ring against a `VecDeque` model: order, no loss, no duplication, through
//! any sequence of pushes, consumer pops, keep-last steals, and wrap-arounds.
#![cfg(not(loom))]

use std::collections::VecDeque;

use proptest::prelude::*;
use shm_transport::ring::{HeapRing, PushError, SLOT_WORDS};

#[derive(Debug, Clone)]
enum Op {
    Push,
    PushKeepLast,
    Pop,
    ReturnPush,
    ReturnPop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Push),
        Just(Op::PushKeepLast),
        Just(Op::Pop),
        Just(Op::ReturnPush),
        Just(Op::ReturnPop)
    ]
}

fn w(v: u64) -> [u64; SLOT_WORDS] {
    [v, !v, 0, 0, 0, 0, v]
}

proptest! {
    #[test]
    fn ring_matches_a_bounded_fifo(cap_log in 1u32..5, ops in proptest::collection::vec(op(), 1..400)) {
        let cap = 1usize << cap_log;
        let desc = HeapRing::new(cap);
        let ret = HeapRing::new(cap);
        let (d, r) = (desc.ring(), ret.ring());
        let (mut head, mut rtail) = (0u64, 0u64);
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut rmodel: VecDeque<u64> = VecDeque::new();
        let mut next = 1u64;
        for o in ops {
            match o {
                Op::Push => match d.push_single(&mut head, &w(next)) {
                    Ok(()) => { model.push_back(next); next += 1; }
                    Err(PushError::Full) => prop_assert_eq!(model.len(), cap),
                    Err(e) => prop_assert!(false, "{:?}", e),
                },
                Op::PushKeepLast => {
                    if d.push_single(&mut head, &w(next)).is_err() {
                        let (_, old) = d.pop_claim().unwrap().expect("full ring has an oldest item");
                        prop_assert_eq!(Some(old[0]), model.pop_front());
                        d.push_single(&mut head, &w(next)).unwrap();
                    }
                    model.push_back(next);
                    next += 1;
                }
                Op::Pop => {
                    let got = d.pop_claim().unwrap().map(|(_, x)| { assert_eq!(x[1], !x[0]); x[0] });
                    prop_assert_eq!(got, model.pop_front());
                }
                Op::ReturnPush => match r.push_claim(&w(next)) {
                    Ok(()) => { rmodel.push_back(next); next += 1; }
                    Err(PushError::Full) => prop_assert_eq!(rmodel.len(), cap),
                    Err(e) => prop_assert!(false, "{:?}", e),
                },
                Op::ReturnPop => {
                    let got = r.pop_single(&mut rtail).unwrap().map(|x| x[0]);
                    prop_assert_eq!(got, rmodel.pop_front());
                }
            }
            prop_assert!(d.len_hint() <= d.capacity());
        }
    }
}

//! Bounded lock-free queue of fixed 64-byte slots placed in shared memory.
//!
//! Algorithm: Dmitry Vyukov's bounded MPMC queue ("Bounded MPMC queue", 1024cores.net, 2010).
//! Every slot carries a sequence stamp: `pos` while it is free for the enqueue at position `pos`,
//! `pos + 1` while it holds the item of position `pos`. A consumer therefore polls one cache line —
//! the slot it expects next — and never reads the producer's index; a producer checks the stamp of the
//! slot it is about to write, which is its "cached consumer index" for free.
//!
//! rtfuse uses each ring in one of two shapes, each with a private (trusted) index on the single side:
//! - **descriptor ring** (publisher → subscriber): single producer ([`Ring::push_single`], private
//!   head) and CAS-claiming consumers ([`Ring::pop_claim`]): the subscriber, and the publisher itself
//!   when the keep-last policy drops the oldest undelivered sample.
//! - **return ring** (subscriber → publisher): CAS-claiming producers ([`Ring::push_claim`]: samples may be
//!   dropped on any thread of the subscriber's process) and a single consumer ([`Ring::pop_single`],
//!   private tail).
//!
//! Nothing read from the slots is trusted by the callers: a scribbled stamp can only make a ring look
//! full or empty, or deliver words that the caller validates. Every loop is bounded.
//!
//! Measured cost (`cargo run --release -p rtfuse-bench -- transport`, BENCHMARKS.md; 2-vCPU KVM
//! Xeon family 6 model 207, loaded): a publish → receive hop through this ring with the payload
//! touched costs ≈ 430–480 ns one way (p50), about 3× a bare cache-line ping-pong between the same
//! cores (≈ 140–180 ns) and ≈ 0.65× iceoryx2 0.10; about 5 M descriptors/s streamed one way.

use crate::sync::{AtomicU64, Ordering};

/// Payload words per slot (the eighth word of the 64-byte slot is the stamp).
pub const SLOT_WORDS: usize = 7;

/// How many times a CAS loop retries before giving up with `Contended` (only a hostile or broken peer
/// can make a loop run this long).
const MAX_TRIES: usize = if cfg!(loom) { 8 } else { 1024 };

/// A 128-byte aligned cell: the producer's and consumer's indices never share a cache line or its
/// adjacent-line prefetch partner.
#[repr(C, align(128))]
pub struct CachePadded<T>(pub T);

/// One slot: a stamp and seven payload words, exactly one cache line.
#[repr(C, align(64))]
pub struct Slot {
    /// Invariant (for an uncorrupted ring): `stamp ∈ {pos, pos + 1}` for the position `pos` this
    /// slot currently serves (`pos ≡ index mod capacity`).
    pub(crate) stamp: AtomicU64,
    pub(crate) words: [AtomicU64; SLOT_WORDS],
}

/// The two indices of a ring, each on its own 128-byte line.
#[repr(C)]
pub struct RingIndices {
    /// Next position to enqueue. Authoritative only for claiming producers; a single producer keeps
    /// its own private copy and mirrors it here for observers.
    pub(crate) head: CachePadded<AtomicU64>,
    /// Next position to dequeue. Authoritative only for claiming consumers (see `head`).
    pub(crate) tail: CachePadded<AtomicU64>,
}

/// Why a push did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The slot for the next position still holds an undelivered item.
    Full,
    /// A claim loop ran out of retries or the stamp is impossible (the ring was scribbled on).
    Corrupt,
}

/// A view of one ring: its indices and its `capacity` slots (a power of two).
pub struct Ring<'a> {
    idx: &'a RingIndices,
    slots: &'a [Slot],
    mask: u64,
}

impl<'a> Ring<'a> {
    /// Creates a view.
    ///
    /// # Panics
    /// If `slots.len()` is not a power of two (callers validate capacities before this).
    pub fn new(idx: &'a RingIndices, slots: &'a [Slot]) -> Self {
        assert!(
            slots.len().is_power_of_two(),
            "ring capacity must be a power of two"
        );
        Ring {
            idx,
            slots,
            mask: slots.len() as u64 - 1,
        }
    }

    /// Capacity in items.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Resets the ring to empty. Only while no other party uses it (attach time).
    pub fn init(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            s.stamp.store(i as u64, Ordering::Relaxed);
            for w in &s.words {
                w.store(0, Ordering::Relaxed);
            }
        }
        self.idx.head.0.store(0, Ordering::Relaxed);
        self.idx.tail.0.store(0, Ordering::Relaxed);
        // SYNC: the reset becomes visible to whoever later acquires the slot's state word (the
        // attach protocol publishes it with a Release store of ACTIVE).
        crate::sync::fence(Ordering::Release);
    }

    /// The slot serving `pos` and the indices, for tests that play a hostile process.
    #[cfg(test)]
    pub(crate) fn raw(&self, pos: u64) -> (&Slot, &RingIndices) {
        (self.slot(pos), self.idx)
    }

    fn slot(&self, pos: u64) -> &Slot {
        // In bounds by construction: `mask = len - 1` with `len` a power of two.
        &self.slots[(pos & self.mask) as usize]
    }

    /// Single-producer push at the private position `*head`.
    ///
    /// # Errors
    /// `Full` when the consumer has not yet freed the slot; `Corrupt` when the stamp is neither
    /// "free for this position" nor "holds the item one lap ago".
    pub fn push_single(&self, head: &mut u64, words: &[u64; SLOT_WORDS]) -> Result<(), PushError> {
        let pos = *head;
        let slot = self.slot(pos);
        // SYNC: acquire the consumer's release of this slot (stamp = pos): its reads of the old
        // words happened before our writes below.
        let stamp = slot.stamp.load(Ordering::Acquire);
        if stamp != pos {
            return Err(if stamp == pos.wrapping_sub(self.mask) {
                PushError::Full
            } else {
                PushError::Corrupt
            });
        }
        for (w, v) in slot.words.iter().zip(words) {
            w.store(*v, Ordering::Relaxed);
        }
        // SYNC: release the words: a consumer that acquires stamp == pos + 1 sees them.
        slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
        *head = pos.wrapping_add(1);
        self.idx.head.0.store(*head, Ordering::Relaxed);
        Ok(())
    }

    /// What `push_single` at `head` would find now: `Ok` when the slot is free.
    ///
    /// # Errors
    /// `Full` when it still holds the item one lap ago; `Corrupt` when its stamp is neither.
    pub fn room_single(&self, head: u64) -> Result<(), PushError> {
        // SYNC: acquire the consumer's release of the slot (as in `push_single`).
        let stamp = self.slot(head).stamp.load(Ordering::Acquire);
        if stamp == head {
            Ok(())
        } else if stamp == head.wrapping_sub(self.mask) {
            Err(PushError::Full)
        } else {
            Err(PushError::Corrupt)
        }
    }

    /// Multi-producer push: claims a position by CAS on the shared head.
    ///
    /// # Errors
    /// `Full`, or `Corrupt` after `MAX_TRIES` failed claims.
    pub fn push_claim(&self, words: &[u64; SLOT_WORDS]) -> Result<(), PushError> {
        let mut pos = self.idx.head.0.load(Ordering::Relaxed);
        for _ in 0..MAX_TRIES {
            let slot = self.slot(pos);
            // SYNC: acquire the consumer's release of this slot (stamp = pos).
            let stamp = slot.stamp.load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(pos) as i64;
            if diff == 0 {
                match self.idx.head.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        for (w, v) in slot.words.iter().zip(words) {
                            w.store(*v, Ordering::Relaxed);
                        }
                        // SYNC: release the words to the consumer that acquires stamp == pos + 1.
                        slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return Err(PushError::Full);
            } else {
                pos = self.idx.head.0.load(Ordering::Relaxed);
            }
            crate::sync::spin_hint();
        }
        Err(PushError::Corrupt)
    }

    /// Multi-consumer pop: claims the oldest item by CAS on the shared tail. Returns its position
    /// and words, `Ok(None)` when empty.
    ///
    /// # Errors
    /// `Corrupt` after `MAX_TRIES` failed claims.
    pub fn pop_claim(&self) -> Result<Option<(u64, [u64; SLOT_WORDS])>, PushError> {
        let mut pos = self.idx.tail.0.load(Ordering::Relaxed);
        for _ in 0..MAX_TRIES {
            let slot = self.slot(pos);
            // SYNC: acquire the producer's release of the words (stamp = pos + 1).
            let stamp = slot.stamp.load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                match self.idx.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let mut out = [0u64; SLOT_WORDS];
                        for (o, w) in out.iter_mut().zip(&slot.words) {
                            *o = w.load(Ordering::Relaxed);
                        }
                        // SYNC: release the slot for position pos + capacity: our reads above
                        // happen before the producer's next writes.
                        slot.stamp
                            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                        return Ok(Some((pos, out)));
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return Ok(None);
            } else {
                pos = self.idx.tail.0.load(Ordering::Relaxed);
            }
            crate::sync::spin_hint();
        }
        Err(PushError::Corrupt)
    }

    /// Single-consumer pop at the private position `*tail`.
    ///
    /// # Errors
    /// `Corrupt` when the stamp is neither "empty" (`tail`, or a claimed-but-unwritten slot) nor
    /// "holds this position's item" (`tail + 1`).
    pub fn pop_single(&self, tail: &mut u64) -> Result<Option<[u64; SLOT_WORDS]>, PushError> {
        let pos = *tail;
        let slot = self.slot(pos);
        // SYNC: acquire the producer's release of the words (stamp = pos + 1).
        let stamp = slot.stamp.load(Ordering::Acquire);
        if stamp != pos.wrapping_add(1) {
            // Empty slots carry `pos` (free for this lap's producer).
            return if stamp == pos {
                Ok(None)
            } else {
                Err(PushError::Corrupt)
            };
        }
        let mut out = [0u64; SLOT_WORDS];
        for (o, w) in out.iter_mut().zip(&slot.words) {
            *o = w.load(Ordering::Relaxed);
        }
        // SYNC: release the slot for position pos + capacity (our reads happen before reuse).
        slot.stamp
            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
        *tail = pos.wrapping_add(1);
        self.idx.tail.0.store(*tail, Ordering::Relaxed);
        Ok(Some(out))
    }

    /// True when a single consumer at the private position `tail` would find an item now (one
    /// cache line read).
    pub fn has_item_at(&self, tail: u64) -> bool {
        // SYNC: pairs with the producer's Release of the stamp; a hint only, `pop_single` re-checks.
        self.slot(tail).stamp.load(Ordering::Acquire) == tail.wrapping_add(1)
    }

    /// True when a claiming consumer would find an item now (one cache line read).
    pub fn has_item(&self) -> bool {
        let pos = self.idx.tail.0.load(Ordering::Relaxed);
        // SYNC: pairs with the producer's Release of the stamp; a hint only, `pop_claim` re-checks.
        self.slot(pos).stamp.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// Items between the shared indices (a hint for statistics; exact only when both sides use them).
    pub fn len_hint(&self) -> u64 {
        let h = self.idx.head.0.load(Ordering::Relaxed);
        let t = self.idx.tail.0.load(Ordering::Relaxed);
        h.wrapping_sub(t).min(self.capacity())
    }
}

/// A ring that owns its memory on the heap: for in-process tests, miri and loom models.
pub struct HeapRing {
    idx: Box<RingIndices>,
    slots: Box<[Slot]>,
}

impl HeapRing {
    /// A ring of `capacity` slots (a power of two), initialised empty.
    pub fn new(capacity: usize) -> Self {
        let new_cell = || CachePadded(AtomicU64::new(0));
        let idx = Box::new(RingIndices {
            head: new_cell(),
            tail: new_cell(),
        });
        let slots: Box<[Slot]> = (0..capacity)
            .map(|i| Slot {
                stamp: AtomicU64::new(i as u64),
                words: core::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect();
        HeapRing { idx, slots }
    }

    /// A view of the ring.
    pub fn ring(&self) -> Ring<'_> {
        Ring::new(&self.idx, &self.slots)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn w(v: u64) -> [u64; SLOT_WORDS] {
        [v, !v, v ^ 0x5555, 0, 0, 0, v.wrapping_mul(3)]
    }

    #[test]
    fn single_producer_claiming_consumer_in_order_with_wrap() {
        let hr = HeapRing::new(4);
        let r = hr.ring();
        let mut head = 0;
        for round in 0..10u64 {
            for i in 0..4 {
                r.push_single(&mut head, &w(round * 4 + i)).unwrap();
            }
            assert_eq!(r.push_single(&mut head, &w(99)), Err(PushError::Full));
            for i in 0..4 {
                let (pos, words) = r.pop_claim().unwrap().unwrap();
                assert_eq!(pos, round * 4 + i);
                assert_eq!(words, w(round * 4 + i));
            }
            assert_eq!(r.pop_claim().unwrap(), None);
        }
    }

    #[test]
    fn single_producer_single_consumer_with_private_tail_and_room_checks() {
        let hr = HeapRing::new(4);
        let r = hr.ring();
        let (mut head, mut tail) = (0, 0);
        for round in 0..10u64 {
            assert!(!r.has_item_at(tail));
            for i in 0..4 {
                assert_eq!(r.room_single(head), Ok(()));
                r.push_single(&mut head, &w(round * 4 + i)).unwrap();
                assert!(r.has_item_at(tail));
            }
            assert_eq!(r.room_single(head), Err(PushError::Full));
            for i in 0..4 {
                assert_eq!(r.pop_single(&mut tail), Ok(Some(w(round * 4 + i))));
            }
            assert_eq!(r.pop_single(&mut tail), Ok(None));
            assert_eq!(r.len_hint(), 0, "the private tail is mirrored");
        }
        // An impossible stamp is told apart from full and from empty.
        r.raw(head).0.stamp.store(head + 7, Ordering::Relaxed);
        assert_eq!(r.room_single(head), Err(PushError::Corrupt));
        assert_eq!(r.pop_single(&mut tail), Err(PushError::Corrupt));
    }

    #[test]
    fn claiming_producers_single_consumer() {
        let hr = HeapRing::new(2);
        let r = hr.ring();
        let mut tail = 0;
        for i in 0..20 {
            r.push_claim(&w(i)).unwrap();
            r.push_claim(&w(i + 100)).unwrap();
            assert_eq!(r.push_claim(&w(0)), Err(PushError::Full));
            assert_eq!(r.pop_single(&mut tail), Ok(Some(w(i))));
            assert_eq!(r.pop_single(&mut tail), Ok(Some(w(i + 100))));
            assert_eq!(r.pop_single(&mut tail), Ok(None));
        }
    }

    #[test]
    fn threads_transfer_every_item_once_in_order() {
        let n: u64 = if cfg!(miri) { 200 } else { 200_000 };
        let hr = Arc::new(HeapRing::new(8));
        let prod = {
            let hr = hr.clone();
            std::thread::spawn(move || {
                let r = hr.ring();
                let mut head = 0;
                let mut i = 0;
                while i < n {
                    match r.push_single(&mut head, &w(i)) {
                        Ok(()) => i += 1,
                        Err(PushError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        };
        let r = hr.ring();
        let mut next = 0;
        while next < n {
            if let Some((pos, words)) = r.pop_claim().unwrap() {
                assert_eq!(pos, next);
                assert_eq!(words, w(next));
                next += 1;
            } else {
                std::thread::yield_now();
            }
        }
        prod.join().unwrap();
    }

    #[test]
    fn scribbled_stamps_never_panic() {
        let hr = HeapRing::new(4);
        let r = hr.ring();
        let mut head = 0;
        let mut tail = 0;
        for (i, s) in hr.slots.iter().enumerate() {
            s.stamp
                .store(0xdead_beef ^ (i as u64 * 77), Ordering::Relaxed);
        }
        assert_eq!(r.push_single(&mut head, &w(1)), Err(PushError::Corrupt));
        // Whatever the scribbled stamps say, every call returns (bounded loops) and stays in bounds.
        for _ in 0..8 {
            let _ = r.pop_claim();
            let _ = r.pop_single(&mut tail);
            let _ = r.push_claim(&w(2));
        }
        assert!(r.len_hint() <= r.capacity());
    }
}

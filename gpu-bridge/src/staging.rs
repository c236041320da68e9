//! The bounce path's staging ring: a fixed set of pinned slots used round-robin. A slot is
//! handed out again only after the event of the transfer that last used it has completed;
//! with two or more slots the CPU copy of frame n+1 overlaps the DMA of frame n.

use crate::error::BridgeError;

struct Slot<B> {
    buf: B,
    /// Sequence number of the transfer whose event must complete before reuse.
    busy: Option<u64>,
}

/// Round-robin ring of staging buffers of type `B`.
pub(crate) struct StagingRing<B> {
    slots: Vec<Slot<B>>,
    /// Index of the slot `acquire` hands out next; `< slots.len()` when slots exist.
    next: usize,
    slot_bytes: usize,
}

impl<B> StagingRing<B> {
    pub(crate) fn new() -> Self {
        StagingRing {
            slots: Vec::new(),
            next: 0,
            slot_bytes: 0,
        }
    }

    /// Makes sure there are at least `slots` slots of at least `bytes` each, reallocating
    /// the ring (start-up only) if not.
    pub(crate) fn ensure(
        &mut self,
        slots: usize,
        bytes: usize,
        mut alloc: impl FnMut(usize) -> Result<B, BridgeError>,
    ) -> Result<(), BridgeError> {
        let slots = slots.max(2);
        if self.slots.len() >= slots && self.slot_bytes >= bytes {
            return Ok(());
        }
        if self.slots.iter().any(|s| s.busy.is_some()) {
            return Err(BridgeError::HostMemory(
                "cannot resize the staging ring while transfers are in flight".into(),
            ));
        }
        let bytes = bytes.max(self.slot_bytes).max(1);
        let mut fresh = Vec::with_capacity(slots);
        for _ in 0..slots.max(self.slots.len()) {
            fresh.push(Slot {
                buf: alloc(bytes)?,
                busy: None,
            });
        }
        self.slots = fresh;
        self.next = 0;
        self.slot_bytes = bytes;
        Ok(())
    }

    /// The transfer that must complete before the next `acquire` can succeed, if any.
    pub(crate) fn next_busy_seq(&self) -> Option<u64> {
        self.slots.get(self.next).and_then(|s| s.busy)
    }

    /// Takes the next slot for transfer `seq` of `len` bytes.
    pub(crate) fn acquire(&mut self, seq: u64, len: usize) -> Result<usize, BridgeError> {
        if self.slots.is_empty() {
            return Err(BridgeError::HostMemory(
                "no staging slots: allocate them with ensure_staging first".into(),
            ));
        }
        if len > self.slot_bytes {
            return Err(BridgeError::OutOfBounds {
                what: "staging slot",
                offset: 0,
                len,
                capacity: self.slot_bytes,
            });
        }
        let idx = self.next;
        let slot = &mut self.slots[idx];
        if let Some(busy) = slot.busy {
            return Err(BridgeError::SlabBusy(busy));
        }
        slot.busy = Some(seq);
        self.next = (idx + 1) % self.slots.len();
        debug_assert!(self.next < self.slots.len());
        Ok(idx)
    }

    /// Marks slot `idx` free after transfer `seq`'s event completed; returns its buffer.
    pub(crate) fn complete(&mut self, idx: usize, seq: u64) -> &B {
        let slot = &mut self.slots[idx];
        if slot.busy == Some(seq) {
            slot.busy = None;
        }
        &slot.buf
    }

    /// Mutable access to slot `idx` (only between `acquire` and the copy).
    pub(crate) fn slot_mut(&mut self, idx: usize) -> &mut B {
        &mut self.slots[idx].buf
    }

    /// Bytes per slot.
    #[cfg(test)]
    pub(crate) fn slot_bytes(&self) -> usize {
        self.slot_bytes
    }

    /// Number of slots.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_not_reused_before_its_event() {
        let mut r: StagingRing<Vec<u8>> = StagingRing::new();
        r.ensure(2, 16, |n| Ok(vec![0; n])).unwrap();
        assert_eq!(r.acquire(0, 16).unwrap(), 0);
        assert_eq!(r.acquire(1, 8).unwrap(), 1);
        assert_eq!(r.next_busy_seq(), Some(0));
        assert!(matches!(r.acquire(2, 8), Err(BridgeError::SlabBusy(0))));
        r.complete(0, 0);
        assert_eq!(r.next_busy_seq(), None);
        assert_eq!(r.acquire(2, 8).unwrap(), 0);
        assert!(matches!(
            r.acquire(3, 17),
            Err(BridgeError::OutOfBounds { .. })
        ));
        assert!(r.ensure(4, 32, |n| Ok(vec![0; n])).is_err());
        assert_eq!((r.len(), r.slot_bytes()), (2, 16));
    }
}

//! Bookkeeping shared by both backends: the slab table (with per-slab in-flight counts that
//! block unregistering), transfer sequence numbers, the in-order queue of transfers in flight,
//! and the reports of completed transfers waiting for their owner to collect them.

use std::collections::{BTreeMap, VecDeque};

use crate::backend::{SlabId, SlabRegion, Ticket, TransferReport, TransferRequest};
use crate::error::BridgeError;
use crate::model::Path;

/// A slab known to a backend.
pub(crate) struct SlabEntry {
    pub(crate) region: SlabRegion,
    pub(crate) registered: bool,
    /// Device pointer of the mapped registration (CUDA; 0 otherwise).
    pub(crate) mapped: u64,
    /// Transfers reading this slab whose event has not completed; unregistering needs 0.
    pub(crate) in_flight: usize,
}

/// A transfer in flight: anything with a sequence number.
pub(crate) trait Flight {
    fn seq(&self) -> u64;
}

/// See the module docs.
pub(crate) struct Book<F> {
    pub(crate) slabs: BTreeMap<u64, SlabEntry>,
    next_slab: u64,
    /// Sequence number the next transfer gets.
    pub(crate) next_seq: u64,
    /// Transfers in submission order; they complete in this order.
    pub(crate) in_flight: VecDeque<F>,
    finished: BTreeMap<u64, Result<TransferReport, BridgeError>>,
}

pub(crate) fn unknown(kind: &'static str, id: u64) -> BridgeError {
    BridgeError::UnknownId { kind, id }
}

impl<F: Flight> Book<F> {
    pub(crate) fn new() -> Self {
        Book {
            slabs: BTreeMap::new(),
            next_slab: 0,
            next_seq: 0,
            in_flight: VecDeque::new(),
            finished: BTreeMap::new(),
        }
    }

    pub(crate) fn add_slab(&mut self, region: SlabRegion, registered: bool, mapped: u64) -> SlabId {
        let id = self.next_slab;
        self.next_slab += 1;
        self.slabs.insert(
            id,
            SlabEntry {
                region,
                registered,
                mapped,
                in_flight: 0,
            },
        );
        SlabId(id)
    }

    /// The slab a request reads, after checking its range and that its path can read it.
    pub(crate) fn source(&self, req: &TransferRequest) -> Result<&SlabEntry, BridgeError> {
        let s = self
            .slabs
            .get(&req.slab.0)
            .ok_or_else(|| unknown("slab", req.slab.0))?;
        s.region.check(req.offset, req.len)?;
        check_path(req.path, s.registered)?;
        Ok(s)
    }

    /// The slab to unregister, if it is known and idle.
    pub(crate) fn idle_slab(&self, id: SlabId) -> Result<&SlabEntry, BridgeError> {
        match self.slabs.get(&id.0) {
            None => Err(unknown("slab", id.0)),
            Some(s) if s.in_flight > 0 => Err(BridgeError::SlabBusy(id.0)),
            Some(s) => Ok(s),
        }
    }

    /// Counts a transfer that reads slab `id` until its event completes (+1) or after (−1).
    pub(crate) fn hold_slab(&mut self, id: SlabId, hold: bool) {
        if let Some(s) = self.slabs.get_mut(&id.0) {
            s.in_flight = if hold {
                s.in_flight + 1
            } else {
                s.in_flight.saturating_sub(1)
            };
        }
    }

    /// Stores a completed transfer's outcome for its owner.
    pub(crate) fn finish(&mut self, seq: u64, r: Result<TransferReport, BridgeError>) {
        self.finished.insert(seq, r);
    }

    /// The outcome if completed, `None` if still in flight, an error for a ticket that was
    /// never issued or already collected.
    pub(crate) fn poll(&mut self, t: Ticket) -> Result<Option<TransferReport>, BridgeError> {
        if let Some(r) = self.finished.remove(&t.0) {
            return r.map(Some);
        }
        if self.in_flight.iter().any(|f| f.seq() == t.0) {
            Ok(None)
        } else {
            Err(unknown("ticket", t.0))
        }
    }

    /// The outcome of a transfer that must have completed.
    pub(crate) fn take(&mut self, t: Ticket) -> Result<TransferReport, BridgeError> {
        self.finished
            .remove(&t.0)
            .unwrap_or(Err(unknown("ticket", t.0)))
    }
}

/// Checks that `path` can read a slab that is (or is not) registered.
pub(crate) fn check_path(path: Path, registered: bool) -> Result<(), BridgeError> {
    let reason = match path {
        Path::PeerDma | Path::PeerZeroCopy if !registered => {
            "peer paths need a slab registered with RegisterMode::Pin"
        }
        Path::Pageable if registered => "the slab is registered: use peer-dma",
        Path::ThirdPartyPeer => {
            "a third-party peer writes GPU memory itself; the bridge does not move its frames"
        }
        _ => return Ok(()),
    };
    Err(BridgeError::PathUnavailable {
        path,
        reason: reason.into(),
    })
}

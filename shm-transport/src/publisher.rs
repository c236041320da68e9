//! The publishing end of a channel: owns the segment, the free list and every chunk's holders.
//!
//! Chunk ownership lives in the publisher's private memory (never trusted to shared memory): for
//! each chunk a bit mask of the subscriber slots holding it (in their ring or as a `Sample`) and a
//! generation bumped on every loan. A return from a subscriber is honoured only if that slot's bit
//! is set and the generation matches; a dead or closed subscriber's bits are cleared in one sweep.
//! A chunk is free exactly when no bit is set and it is not on loan.
//!
//! Damaged rings: a subscriber's rings that break the ring protocol (an impossible stamp, a return
//! the ownership records deny, a full ring with nothing to take for longer than
//! [`SUSPECT_NS`]) are set aside (`SLOT_RESYNC`): the publisher stops pushing into them and the
//! subscriber re-attaches in a fresh slot. The chunks the damaged slot holds stay held (the
//! subscriber may still be reading some) until it closes the slot or dies; then all come back in
//! one sweep, so a scribbled return ring cannot leak chunks.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::config::{ChannelConfig, HugePages, OverflowPolicy, WakeupPolicy};
use crate::descriptor::Descriptor;
use crate::layout::{
    Layout, PUB_CLOSED, SLOT_ACTIVE, SLOT_ATTACHING, SLOT_CLOSING, SLOT_FREE, SLOT_RESYNC,
};
use crate::liveness::{self, Watch, WatchKind};
use crate::ring::PushError;
use crate::segment::{self, Segment};
use crate::sync::{fence, Ordering};
use crate::{CreateError, LoanError, PublishError, ShmSafe};

struct SubState {
    /// `attach_count` of the occupant we adopted.
    attach: u64,
    /// Private head of its descriptor ring. Invariant: equals the number of pushes since adoption.
    head: u64,
    /// Private tail of its return ring.
    ret_tail: u64,
    /// Chunk written at each descriptor-ring position (index `pos & (depth - 1)`), trusted.
    shadow: Vec<u32>,
    /// When a full descriptor ring first had nothing to take (0: not now). Only a scribbled tail
    /// index keeps it so for long; see [`SUSPECT_NS`].
    suspect_since: u64,
}

/// How long a keep-last ring may stay "full with nothing to take" before it is declared damaged.
/// A consumer preempted between claiming an item and releasing its slot causes it for a moment;
/// a scribbled tail index causes it for ever.
pub const SUSPECT_NS: u64 = 100_000_000;

/// The publisher's private, trusted record of who holds which chunk.
struct Ownership {
    /// Free chunks (a stack: the most recently freed chunk is cache-hot). Capacity = chunk count,
    /// reserved at creation, so pushes never allocate.
    free: Vec<u32>,
    /// Bumped on every loan.
    generation: Vec<u32>,
    /// Bit `i`: subscriber slot `i` holds the chunk (queued in its ring or as a `Sample`).
    holders: Vec<u32>,
    /// On loan as a `SampleMut`.
    loaned: Vec<bool>,
}

impl Ownership {
    fn release_holder(&mut self, chunk: u32, slot: u32) {
        let c = chunk as usize;
        self.holders[c] &= !(1u32 << slot);
        if self.holders[c] == 0 && !self.loaned[c] {
            // Capacity was reserved at creation for every chunk: no allocation.
            self.free.push(chunk);
        }
    }
}

/// Counters of a publisher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Samples published.
    pub published: u64,
    /// Subscribers currently served.
    pub subscribers: u32,
    /// Chunks free to loan now.
    pub free_chunks: u32,
    /// Samples dropped from subscriber rings under keep-last.
    pub dropped: u64,
    /// Publishes refused under reject.
    pub rejected: u64,
    /// Chunks reclaimed from dead or departed subscribers.
    pub reclaimed: u64,
    /// Subscribers found dead.
    pub dead_subscribers: u64,
    /// Inconsistencies seen in shared memory (bogus returns, scribbled rings).
    pub errors: u64,
    /// Subscriber slots whose rings were found damaged and set aside (the subscriber re-attaches
    /// in a fresh slot; the old slot's chunks come back when it closes the old slot).
    pub resynced: u64,
    /// Whether the segment is locked in RAM.
    pub locked: bool,
}

/// The publishing end of a channel.
///
/// # Examples
/// ```no_run
/// use shm_transport::{ChannelConfig, Publisher};
/// let mut publisher = Publisher::create("doc_example", &ChannelConfig::default())?;
/// let mut sample = publisher.loan()?;
/// sample.payload_mut()[..5].copy_from_slice(b"hello");
/// sample.set_len(5);
/// sample.publish().map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Publisher {
    seg: Arc<Segment>,
    watch: Arc<Watch>,
    own: Ownership,
    subs: Vec<SubState>,
    /// Bit `i`: slot `i` is served. Invariant: only slots adopted in state ACTIVE.
    active: u32,
    /// Bit `i`: slot `i`'s rings are damaged (`SLOT_RESYNC`): not served, its chunks still held.
    /// Disjoint from `active`.
    quarantined: u32,
    seq: u64,
    epoch_seen: u64,
    stats: PublisherStats,
}

impl Publisher {
    /// Creates channel `name` (POSIX shm object `/rtfuse.<name>`, O_EXCL, mode 0600), maps, locks and
    /// prefaults it. A stale segment of that name whose publisher is dead is replaced.
    ///
    /// # Errors
    /// Invalid name or configuration, a live publisher of that name, `mlock` refused under
    /// `MemoryLock::Required` (the error says how much, the limit, and how to raise it), OS errors.
    pub fn create(name: &str, cfg: &ChannelConfig) -> Result<Publisher, CreateError> {
        let huge = segment::huge_pages_wanted(cfg.huge_pages);
        if cfg.huge_pages == HugePages::Required && !huge {
            return Err(CreateError::HugePagesUnavailable);
        }
        let layout = Layout::compute(cfg, huge)?;
        let seg = Arc::new(Segment::create(name, layout, cfg.memory_lock)?);
        let l = &seg.layout;
        let n = l.max_subscribers;
        let fd: OwnedFd = seg.fd.try_clone()?;
        let watch = Watch::new(fd, WatchKind::Publisher { seg: seg.clone() });
        liveness::register(&watch);
        let count = l.chunk_count;
        Ok(Publisher {
            watch,
            own: Ownership {
                free: (0..count).rev().collect(),
                generation: vec![0; count as usize],
                holders: vec![0; count as usize],
                loaned: vec![false; count as usize],
            },
            subs: (0..n)
                .map(|_| SubState {
                    attach: 0,
                    head: 0,
                    ret_tail: 0,
                    shadow: vec![0; l.ring_depth as usize],
                    suspect_since: 0,
                })
                .collect(),
            active: 0,
            quarantined: 0,
            seq: 0,
            epoch_seen: u64::MAX,
            stats: PublisherStats {
                locked: seg.locked,
                free_chunks: count,
                ..PublisherStats::default()
            },
            seg,
        })
    }

    /// Creates a channel carrying values of `T`: chunk size and alignment come from `T` (see
    /// [`ChannelConfig::typed`]), the rest from `cfg`.
    ///
    /// # Errors
    /// As [`Publisher::create`].
    pub fn create_typed<T: ShmSafe>(
        name: &str,
        mut cfg: ChannelConfig,
    ) -> Result<Publisher, CreateError> {
        let t = ChannelConfig::typed::<T>();
        cfg.chunk_size = t.chunk_size;
        cfg.alignment = t.alignment;
        cfg.type_info = t.type_info;
        Self::create(name, &cfg)
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.seg.channel
    }

    /// Payload capacity of a chunk.
    pub fn chunk_size(&self) -> usize {
        self.seg.layout.chunk_size as usize
    }

    /// The pinned footprint of this channel.
    pub fn footprint(&self) -> crate::Footprint {
        self.seg.layout.footprint()
    }

    /// The slab (chunk area): base pointer, length and chunk stride, for registering with a GPU or
    /// a DMA engine. Chunk `i` starts at `base + i * stride`.
    pub fn slab(&self) -> (*mut u8, usize, usize) {
        let (p, len) = self.seg.slab();
        (p, len, self.seg.layout.chunk_stride as usize)
    }

    /// Counters.
    pub fn stats(&self) -> PublisherStats {
        let mut s = self.stats;
        s.subscribers = self.active.count_ones();
        s.free_chunks = self.own.free.len() as u32;
        s
    }

    /// Number of subscribers currently served (after applying pending attaches, detaches and deaths).
    pub fn subscriber_count(&mut self) -> u32 {
        self.maintain();
        self.active.count_ones()
    }

    /// Applies attaches, detaches and deaths of subscribers, and takes back returned chunks. `loan`
    /// and `publish` do this themselves; call it when idle to reclaim a dead subscriber's chunks.
    pub fn maintain(&mut self) {
        self.rescan();
        self.drain_returns();
    }

    /// Loans a free chunk to fill in place.
    ///
    /// # Errors
    /// `OutOfChunks` when every chunk is in flight or held by subscribers.
    pub fn loan(&mut self) -> Result<SampleMut<'_>, LoanError> {
        self.rescan();
        if self.own.free.is_empty() {
            // Returns are taken lazily, only when the free list runs dry: every return slot is a
            // line the subscriber wrote last, so reading them on every loan would put one more
            // cross-core transfer on each hop. The return ring holds every chunk, so it never fills.
            self.drain_returns();
        }
        let chunk = self.own.free.pop().ok_or(LoanError::OutOfChunks)?;
        let c = chunk as usize;
        self.own.generation[c] = self.own.generation[c].wrapping_add(1);
        self.own.loaned[c] = true;
        debug_assert_eq!(self.own.holders[c], 0, "a free chunk has no holders");
        Ok(SampleMut {
            desc: Descriptor {
                chunk,
                generation: self.own.generation[c],
                ..Descriptor::default()
            },
            publisher: self,
        })
    }

    fn rescan(&mut self) {
        let hdr = self.seg.header();
        // SYNC: acquire subscribers' attach/detach (their Release bump of sub_epoch after writing
        // their slot state and rings).
        let epoch = hdr.sub_epoch.load(Ordering::Acquire);
        // SYNC: acquire the monitor's death reports.
        let raised = self.watch.raised.load(Ordering::Acquire);
        if epoch == self.epoch_seen && !raised {
            return;
        }
        self.epoch_seen = epoch;
        if raised {
            self.watch.raised.store(false, Ordering::Relaxed);
        }
        for i in 0..self.subs.len() as u32 {
            let ctl = self.seg.control(i);
            // SYNC: acquire the slot state released by the subscriber (ACTIVE after ring init).
            let state = ctl.state.load(Ordering::Acquire);
            let attach = ctl.attach_count.load(Ordering::Acquire);
            let dead =
                self.watch.dead_slot[i as usize].load(Ordering::Acquire) == attach.wrapping_add(1);
            let bit = 1u32 << i;
            if self.quarantined & bit != 0 {
                if dead || state == SLOT_CLOSING {
                    // The subscriber let go of the damaged slot (or died): its chunks come back.
                    if dead {
                        self.stats.dead_subscribers += 1;
                    }
                    self.detach(i);
                } else if state != SLOT_RESYNC {
                    self.stats.errors += 1;
                    if segment::byte_is_locked(&self.seg.fd, 1 + i as u64) {
                        // SYNC: as in `quarantine`.
                        ctl.state.store(SLOT_RESYNC, Ordering::Release);
                    } else {
                        self.stats.dead_subscribers += 1;
                        self.detach(i);
                    }
                }
            } else if self.active & bit != 0 {
                let ours = self.subs[i as usize].attach;
                if dead || state == SLOT_CLOSING {
                    if dead {
                        self.stats.dead_subscribers += 1;
                    }
                    self.detach(i);
                } else if state == SLOT_RESYNC && attach == ours {
                    // The subscriber found its rings damaged and is re-attaching.
                    self.quarantine(i);
                } else if state != SLOT_ACTIVE || attach != ours {
                    // Not a state a live subscriber writes: someone scribbled on its slot. If the
                    // subscriber still holds its lock, count the damage and repair the words.
                    self.stats.errors += 1;
                    if segment::byte_is_locked(&self.seg.fd, 1 + i as u64) {
                        ctl.attach_count.store(ours, Ordering::Relaxed);
                        ctl.state.store(SLOT_ACTIVE, Ordering::Release);
                    } else {
                        self.stats.dead_subscribers += 1;
                        self.detach(i);
                    }
                }
            } else if state == SLOT_ACTIVE && !dead {
                let s = &mut self.subs[i as usize];
                s.attach = attach;
                s.head = 0;
                s.ret_tail = 0;
                s.suspect_since = 0;
                self.active |= bit;
            } else if state == SLOT_CLOSING
                || (state == SLOT_ACTIVE && dead)
                || (state != SLOT_FREE && !segment::byte_is_locked(&self.seg.fd, 1 + i as u64))
            {
                if !matches!(
                    state,
                    SLOT_ACTIVE | SLOT_ATTACHING | SLOT_CLOSING | SLOT_RESYNC
                ) {
                    self.stats.errors += 1; // a scribbled state on an unoccupied slot
                }
                // Never adopted (or died while attaching): nothing was delivered, just free the slot.
                self.watch.dead_slot[i as usize].store(0, Ordering::Relaxed);
                // SYNC: release the slot for a new occupant (who acquires FREE in its CAS).
                let _ = ctl.state.compare_exchange(
                    state,
                    SLOT_FREE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }

    /// Stops serving slot `i`, whose rings are damaged, and tells its subscriber to re-attach. The
    /// chunks it holds stay held until it closes the slot or dies (it may be reading some).
    fn quarantine(&mut self, i: u32) {
        let bit = 1u32 << i;
        if self.active & bit == 0 {
            return;
        }
        self.active &= !bit;
        self.quarantined |= bit;
        self.stats.resynced += 1;
        let ctl = self.seg.control(i);
        // SYNC: Release: the subscriber that acquires RESYNC sees every push before it (it drains
        // what its old ring still holds before it re-attaches). A slot already CLOSING keeps that
        // state (the next rescan sweeps it).
        let _ = ctl
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                (s != SLOT_CLOSING).then_some(SLOT_RESYNC)
            });
        // Wake a sleeping subscriber so that it notices now, not at its next timeout.
        ctl.futex.fetch_add(1, Ordering::Release);
        crate::wakeup::futex_wake_all(&ctl.futex);
    }

    /// Takes every chunk slot `i` holds back and frees the slot.
    fn detach(&mut self, i: u32) {
        let bit = 1u32 << i;
        self.quarantined &= !bit;
        for c in 0..self.own.holders.len() {
            if self.own.holders[c] & bit != 0 {
                self.own.release_holder(c as u32, i);
                self.stats.reclaimed += 1;
            }
        }
        self.active &= !bit;
        self.watch.dead_slot[i as usize].store(0, Ordering::Relaxed);
        let ctl = self.seg.control(i);
        let state = ctl.state.load(Ordering::Acquire);
        if state != SLOT_FREE && state != SLOT_ATTACHING {
            // SYNC: release the slot for a new occupant (who acquires FREE in its CAS).
            let _ =
                ctl.state
                    .compare_exchange(state, SLOT_FREE, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn drain_returns(&mut self) {
        let mut active = self.active;
        while active != 0 {
            let i = active.trailing_zeros();
            active &= active - 1;
            let ring = self.seg.ret_ring(i);
            let mut tail = self.subs[i as usize].ret_tail;
            for _ in 0..ring.capacity() {
                let w = match ring.pop_single(&mut tail) {
                    Ok(Some(w)) => w,
                    Ok(None) => break,
                    Err(_) => {
                        self.stats.errors += 1;
                        self.quarantine(i);
                        break;
                    }
                };
                let chunk = w[0] as u32;
                let gen = (w[0] >> 32) as u32;
                let valid = (chunk as usize) < self.own.holders.len()
                    && self.own.generation[chunk as usize] == gen
                    && self.own.holders[chunk as usize] & (1 << i) != 0;
                if valid {
                    self.own.release_holder(chunk, i);
                } else {
                    // A return was lost or forged: which chunk leaked is unknown, so the slot is
                    // set aside and all its chunks come back when it closes.
                    self.stats.errors += 1;
                    self.quarantine(i);
                    break;
                }
            }
            self.subs[i as usize].ret_tail = tail;
        }
    }

    fn publish_desc(&mut self, mut desc: Descriptor) -> Result<(u64, u64), ()> {
        self.rescan();
        let l = &self.seg.layout;
        let overflow = l.overflow;
        let wake = l.wakeup != WakeupPolicy::Spin;
        if overflow == OverflowPolicy::Reject {
            let mut active = self.active;
            while active != 0 {
                let i = active.trailing_zeros();
                active &= active - 1;
                match self
                    .seg
                    .desc_ring(i)
                    .room_single(self.subs[i as usize].head)
                {
                    Ok(()) => {}
                    Err(PushError::Full) => {
                        self.stats.rejected += 1;
                        return Err(());
                    }
                    Err(PushError::Corrupt) => {
                        // Not full, damaged: set aside instead of refusing every sample for ever.
                        self.stats.errors += 1;
                        self.quarantine(i);
                    }
                }
            }
        }
        self.seq += 1;
        desc.seq = self.seq;
        desc.t_enqueue_ns = crate::now_ns();
        let words = desc.to_words();
        let chunk = desc.chunk;
        let mut active = self.active;
        while active != 0 {
            let i = active.trailing_zeros();
            active &= active - 1;
            self.deliver(i, chunk, &words);
        }
        if wake {
            // SYNC: order our stamp stores before reading `waiting` (Dekker pair with the sleeper's
            // fence in `Subscriber::wait`).
            fence(Ordering::SeqCst);
            let mut active = self.active;
            while active != 0 {
                let i = active.trailing_zeros();
                active &= active - 1;
                let ctl = self.seg.control(i);
                if ctl.waiting.load(Ordering::Relaxed) != 0 {
                    ctl.futex.fetch_add(1, Ordering::Release);
                    crate::wakeup::futex_wake_all(&ctl.futex);
                }
            }
        }
        self.own.loaned[chunk as usize] = false;
        if self.own.holders[chunk as usize] == 0 {
            self.own.free.push(chunk);
        }
        self.stats.published += 1;
        // Only the publisher writes it: a plain store, no locked read-modify-write.
        self.seg
            .header()
            .published
            .store(self.stats.published, Ordering::Relaxed);
        Ok((desc.seq, desc.t_enqueue_ns))
    }

    fn deliver(&mut self, i: u32, chunk: u32, words: &[u64; crate::ring::SLOT_WORDS]) {
        let ring = self.seg.desc_ring(i);
        let mask = ring.capacity() - 1;
        let bit = 1u32 << i;
        // A push can fail at most once per concurrent consumer pop plus one steal.
        for _ in 0..4 {
            let pos = self.subs[i as usize].head;
            match ring.push_single(&mut self.subs[i as usize].head, words) {
                Ok(()) => {
                    self.subs[i as usize].suspect_since = 0;
                    self.subs[i as usize].shadow[(pos & mask) as usize] = chunk;
                    self.own.holders[chunk as usize] |= bit;
                    self.seg
                        .control(i)
                        .delivered
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(PushError::Full) if self.seg.layout.overflow == OverflowPolicy::KeepLast => {
                    // Drop the oldest undelivered sample of this subscriber: claim it like a consumer.
                    match ring.pop_claim() {
                        Ok(Some((old_pos, _))) => {
                            let old = self.subs[i as usize].shadow[(old_pos & mask) as usize];
                            if self.own.holders[old as usize] & bit != 0 {
                                self.own.release_holder(old, i);
                            } else {
                                self.stats.errors += 1;
                            }
                            self.stats.dropped += 1;
                            self.seg.control(i).dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(None) => {
                            // Full, yet nothing to take: the subscriber is between claiming an
                            // item and freeing its slot, or its tail index was scribbled on.
                            let now = crate::now_ns();
                            let s = &mut self.subs[i as usize];
                            if s.suspect_since == 0 {
                                s.suspect_since = now;
                            } else if now.saturating_sub(s.suspect_since) > SUSPECT_NS {
                                self.stats.errors += 1;
                                self.quarantine(i);
                                return;
                            }
                        }
                        Err(_) => {
                            self.stats.errors += 1;
                            self.quarantine(i);
                            return;
                        }
                    }
                }
                Err(_) => {
                    // Full under reject (checked before, so only a scribbled ring) or corrupt.
                    self.stats.errors += 1;
                    self.quarantine(i);
                    return;
                }
            }
        }
        // Four tries lost to a consumer racing us: this sample misses it (a gap it sees).
        self.stats.errors += 1;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let hdr = self.seg.header();
        // SYNC: release every push before it: a subscriber that acquires CLOSED and then finds its
        // ring empty has received everything.
        hdr.publisher_state.store(PUB_CLOSED, Ordering::Release);
        for i in 0..self.subs.len() as u32 {
            let ctl = self.seg.control(i);
            ctl.futex.fetch_add(1, Ordering::Release);
            crate::wakeup::futex_wake_all(&ctl.futex);
        }
        // Late openers find nothing; attached subscribers keep their mapping and drain.
        self.seg.unlink_if_same();
    }
}

/// A loaned chunk being filled. Publish it, or drop it to give the chunk back unpublished.
pub struct SampleMut<'a> {
    publisher: &'a mut Publisher,
    desc: Descriptor,
}

/// What `publish` assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishInfo {
    /// Sequence number.
    pub seq: u64,
    /// Enqueue time, CLOCK_MONOTONIC ns.
    pub t_enqueue_ns: u64,
}

impl<'a> SampleMut<'a> {
    /// The whole chunk (`chunk_size` bytes) to write into, in shared memory.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let seg = &self.publisher.seg;
        // SAFETY: the chunk is on loan to us: no subscriber holds it (holders == 0) and no other
        // SampleMut exists (loan borrows the publisher mutably), so this is the only reference.
        // It lies inside the mapping (validated layout). Only a misbehaving foreign process could
        // write it concurrently; bytes are valid for any value.
        unsafe {
            core::slice::from_raw_parts_mut(
                seg.chunk_ptr(self.desc.chunk),
                seg.layout.chunk_size as usize,
            )
        }
    }

    /// The chunk's fixed user header (`user_header_size` bytes).
    pub fn user_header_mut(&mut self) -> &mut [u8] {
        let seg = &self.publisher.seg;
        // SAFETY: as for `payload_mut`: the header of a loaned chunk is ours alone, in bounds.
        unsafe {
            core::slice::from_raw_parts_mut(
                seg.user_header_ptr(self.desc.chunk),
                seg.layout.user_header_size as usize,
            )
        }
    }

    /// Sets the number of valid payload bytes.
    ///
    /// # Panics
    /// If `len` exceeds the chunk size.
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len as u64 <= self.publisher.seg.layout.chunk_size,
            "length beyond the chunk"
        );
        self.desc.len = len as u64;
    }

    /// Sets the sensor (acquisition) time, CLOCK_MONOTONIC ns.
    pub fn set_sensor_time(&mut self, t_ns: u64) {
        self.desc.t_sensor_ns = t_ns;
    }

    /// Sets the "DMA complete" time, CLOCK_MONOTONIC ns.
    pub fn set_dma_time(&mut self, t_ns: u64) {
        self.desc.t_dma_ns = t_ns;
    }

    /// Sets the descriptor's user word.
    pub fn set_user(&mut self, user: u64) {
        self.desc.user = user;
    }

    /// The chunk index (its position in the slab, for DMA drivers).
    pub fn chunk_index(&self) -> u32 {
        self.desc.chunk
    }

    /// Writes a typed value at the start of the payload and sets the length to its size.
    ///
    /// # Panics
    /// If `T` is larger than the chunk.
    pub fn write<T: ShmSafe>(&mut self, value: &T) {
        let size = core::mem::size_of::<T>();
        let dst = &mut self.payload_mut()[..size];
        // SAFETY: T: ShmSafe is plain data without padding-dependent invariants; viewing it as
        // `size` bytes for a copy is valid.
        let src = unsafe { core::slice::from_raw_parts(value as *const T as *const u8, size) };
        dst.copy_from_slice(src);
        self.set_len(size);
    }

    /// Publishes to every subscriber. With no subscriber the chunk is simply freed.
    ///
    /// # Errors
    /// `Full(self)` under `OverflowPolicy::Reject` when a subscriber's ring is full.
    pub fn publish(self) -> Result<PublishInfo, PublishError<'a>> {
        let desc = self.desc;
        match self.publisher.publish_desc(desc) {
            Ok((seq, t_enqueue_ns)) => {
                core::mem::forget(self);
                Ok(PublishInfo { seq, t_enqueue_ns })
            }
            Err(()) => Err(PublishError::Full(self)),
        }
    }
}

impl Drop for SampleMut<'_> {
    fn drop(&mut self) {
        let c = self.desc.chunk;
        self.publisher.own.loaned[c as usize] = false;
        if self.publisher.own.holders[c as usize] == 0 {
            self.publisher.own.free.push(c);
        }
    }
}

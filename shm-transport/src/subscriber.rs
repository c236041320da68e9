//! The subscribing end of a channel and the samples it hands out.
//!
//! Damaged rings: when this subscriber's rings break the ring protocol (an impossible stamp, a
//! return that cannot be queued) or the publisher set the slot aside (`SLOT_RESYNC`), the
//! subscriber first takes what its old descriptor ring still validly holds, then re-attaches in a
//! fresh slot and goes on receiving; samples published in between are missed and show as sequence
//! gaps. The old slot stays held until every sample received through it has been dropped, then
//! closes, and the publisher takes its chunks back.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64 as StdAtomicU64};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{MemoryLock, WakeupPolicy};
use crate::descriptor::Descriptor;
use crate::layout::{
    PUB_CLOSED, SLOT_ACTIVE, SLOT_ATTACHING, SLOT_CLOSING, SLOT_FREE, SLOT_RESYNC,
};
use crate::liveness::{self, Watch, WatchKind};
use crate::segment::{self, Segment};
use crate::sync::{fence, Ordering};
use crate::{OpenError, ReceiveError, ShmSafe, TypeError};

/// Options for opening a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriberOptions {
    /// `mlock` policy for this process's mapping.
    pub memory_lock: MemoryLock,
}

/// Counters of a subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Samples received.
    pub received: u64,
    /// Sequence numbers skipped (samples dropped before reaching us).
    pub gaps: u64,
    /// Samples the publisher dropped from our ring under keep-last (as counted by the publisher).
    pub dropped_by_publisher: u64,
    /// Descriptors refused by validation (out-of-range chunk or length, regressed sequence).
    pub invalid: u64,
    /// Returns that could not be queued (only a scribbled return ring causes this).
    pub return_errors: u64,
    /// Times this subscriber left damaged rings and re-attached in a fresh slot.
    pub resyncs: u64,
    /// Whether this process's mapping is locked in RAM.
    pub locked: bool,
}

/// One attachment to one slot. A resync makes a new one; samples keep the old one (and its slot)
/// alive until they drop.
pub(crate) struct SubInner {
    seg: Arc<Segment>,
    /// The open file description holding this slot's liveness lock. Each attachment has its own:
    /// OFD locks of one description merge, so a resync's attach through a shared one would take
    /// (and on a failed claim release) the old slot's lock.
    lock_fd: OwnedFd,
    slot: u32,
    /// The slot's attach count when we took it.
    attach: u64,
    watch: Arc<Watch>,
    /// Shared by every attachment of one subscriber.
    return_errors: Arc<StdAtomicU64>,
    /// The slot was given up (`close`): nothing may be read from or returned to it any more.
    closed: AtomicBool,
}

impl SubInner {
    /// Gives the slot up: the publisher sweeps its chunks and frees it. Once.
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let ctl = self.seg.control(self.slot);
        // A slot the publisher already swept (after a scribbled state) may have a new occupant:
        // leave its state alone.
        if ctl.attach_count.load(Ordering::Acquire) == self.attach {
            // SYNC: release our last returns before the publisher acquires CLOSING and sweeps.
            ctl.state.store(SLOT_CLOSING, Ordering::Release);
        }
        self.seg.header().sub_epoch.fetch_add(1, Ordering::Release);
        segment::unlock_byte(&self.lock_fd, 1 + self.slot as u64);
        if self.watch.publisher_dead.load(Ordering::Acquire) {
            // The publisher crashed: nobody else will remove its name.
            self.seg.unlink_if_same();
        }
    }
}

impl Drop for SubInner {
    fn drop(&mut self) {
        self.close();
    }
}

/// The consumer position of a freshly initialised descriptor ring: private under the reject policy
/// (see `Subscriber::private_tail`), the shared index otherwise.
fn fresh_tail(seg: &Segment) -> Option<u64> {
    (seg.layout.overflow == crate::OverflowPolicy::Reject).then_some(0)
}

/// A new open file description of the file behind `fd` (not a `dup`, which shares one).
fn reopen(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    Ok(OwnedFd::from(file))
}

/// The subscribing end of a channel. `receive` hands out [`Sample`]s; each chunk goes back to the
/// publisher when its sample drops.
///
/// # Examples
/// ```no_run
/// use shm_transport::Subscriber;
/// let mut sub = Subscriber::open("camera")?;
/// if let Some(sample) = sub.receive()? {
///     println!("seq {} with {} bytes", sample.seq(), sample.payload().len());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    inner: Arc<SubInner>,
    last_seq: u64,
    /// Empty polls since the last sample (throttles reads of the publisher's header line).
    empty_polls: u32,
    /// The rings of the current slot are damaged: re-attach once the old ring is drained.
    damaged: bool,
    /// Damaged, and the old slot already closed (no fresh one yet): read nothing from it.
    slotless: bool,
    /// While slotless: when to try to re-attach next (CLOCK_MONOTONIC ns).
    retry_at_ns: u64,
    /// Under the reject policy this subscriber is its ring's only consumer and keeps the tail
    /// index privately (`Ring::pop_single`): no claim CAS per receive, and a scribbled shared tail
    /// changes nothing. Under keep-last the publisher also takes from the ring (it drops the
    /// oldest), so both claim through the shared tail (`None`).
    private_tail: Option<u64>,
    /// `return_errors` when last looked at (a new one means the return ring is damaged).
    return_errors_seen: u64,
    stats: SubscriberStats,
}

impl Subscriber {
    /// Opens channel `name` with default options.
    ///
    /// # Errors
    /// See [`OpenError`]: not found, not ready, another user's, another layout version or a header
    /// that does not validate, no free slot.
    pub fn open(name: &str) -> Result<Subscriber, OpenError> {
        Self::open_with(name, SubscriberOptions::default())
    }

    /// Opens a channel that must carry values of `T`.
    ///
    /// # Errors
    /// As [`Subscriber::open`], plus `TypeMismatch`.
    pub fn open_typed<T: ShmSafe>(name: &str) -> Result<Subscriber, OpenError> {
        let seg = Segment::open(name, SubscriberOptions::default().memory_lock)?;
        let want = crate::TypeInfo::of::<T>();
        match &seg.layout.type_info {
            Some(t) if *t == want => {}
            other => {
                return Err(OpenError::TypeMismatch {
                    found: other
                        .as_ref()
                        .map_or("untyped bytes".to_string(), |t| t.name.clone()),
                    expected: want.name,
                })
            }
        }
        Self::attach_to(seg)
    }

    /// Opens channel `name`.
    ///
    /// # Errors
    /// As [`Subscriber::open`].
    pub fn open_with(name: &str, opts: SubscriberOptions) -> Result<Subscriber, OpenError> {
        Self::attach_to(Segment::open(name, opts.memory_lock)?)
    }

    /// Takes a subscriber slot in an opened, validated segment.
    fn attach_to(seg: Segment) -> Result<Subscriber, OpenError> {
        let lock_fd = seg.fd.try_clone()?;
        let (slot, attach) = Self::attach(&seg, &lock_fd)?;
        let fd = seg.fd.try_clone()?;
        let watch = Watch::new(fd, WatchKind::Subscriber);
        liveness::register(&watch);
        let locked = seg.locked;
        let private_tail = fresh_tail(&seg);
        Ok(Subscriber {
            inner: Arc::new(SubInner {
                seg: Arc::new(seg),
                lock_fd,
                slot,
                attach,
                watch,
                return_errors: Arc::new(StdAtomicU64::new(0)),
                closed: AtomicBool::new(false),
            }),
            last_seq: 0,
            empty_polls: 0,
            damaged: false,
            slotless: false,
            retry_at_ns: 0,
            private_tail,
            return_errors_seen: 0,
            stats: SubscriberStats {
                locked,
                ..SubscriberStats::default()
            },
        })
    }

    /// Claims a free slot; returns it and its attach count.
    fn attach(seg: &Segment, lock_fd: &OwnedFd) -> Result<(u32, u64), OpenError> {
        for i in 0..seg.layout.max_subscribers {
            // Lock first: a non-FREE state then always has a live lock holder or a dead process.
            if !segment::try_lock_byte(lock_fd, 1 + i as u64)? {
                continue;
            }
            let ctl = seg.control(i);
            // SYNC: acquire the publisher's release of FREE (it has finished with the slot).
            if ctl
                .state
                .compare_exchange(
                    SLOT_FREE,
                    SLOT_ATTACHING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                segment::unlock_byte(lock_fd, 1 + i as u64);
                continue;
            }
            let attach = ctl
                .attach_count
                .fetch_add(1, Ordering::AcqRel)
                .wrapping_add(1);
            ctl.pid.store(std::process::id(), Ordering::Relaxed);
            ctl.start_ticks.store(
                segment::process_start_ticks(std::process::id()),
                Ordering::Relaxed,
            );
            ctl.waiting.store(0, Ordering::Relaxed);
            seg.desc_ring(i).init();
            seg.ret_ring(i).init();
            // SYNC: release the initialised rings to the publisher (it acquires ACTIVE).
            ctl.state.store(SLOT_ACTIVE, Ordering::Release);
            seg.header().sub_epoch.fetch_add(1, Ordering::Release);
            return Ok((i, attach));
        }
        Err(OpenError::NoFreeSlot(seg.channel.clone()))
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.inner.seg.channel
    }

    /// Payload capacity of a chunk.
    pub fn chunk_size(&self) -> usize {
        self.inner.seg.layout.chunk_size as usize
    }

    /// The publisher's pid as recorded in the header (informational).
    pub fn publisher_pid(&self) -> u32 {
        self.inner.seg.creator_pid
    }

    /// The slab as mapped in this process: base, length, chunk stride (for GPU registration).
    pub fn slab(&self) -> (*const u8, usize, usize) {
        let (p, len) = self.inner.seg.slab();
        (
            p as *const u8,
            len,
            self.inner.seg.layout.chunk_stride as usize,
        )
    }

    /// The channel's wake-up policy.
    pub fn wakeup(&self) -> WakeupPolicy {
        self.inner.seg.layout.wakeup
    }

    /// Counters.
    pub fn stats(&self) -> SubscriberStats {
        let mut s = self.stats;
        s.dropped_by_publisher = self
            .inner
            .seg
            .control(self.inner.slot)
            .dropped
            .load(Ordering::Relaxed);
        s.return_errors = self.inner.return_errors.load(Ordering::Relaxed);
        s
    }

    /// Times this subscriber left damaged rings and re-attached (as in [`Subscriber::stats`], but
    /// without reading shared memory: cheap enough for every empty poll).
    pub fn resyncs(&self) -> u64 {
        self.stats.resyncs
    }

    /// Whether the slot is no longer ours as we attached it: the publisher set it aside
    /// (`SLOT_RESYNC`), or a scribbled state or attach count made it sweep the slot. One read of
    /// the slot's control line, only on the slow paths.
    fn slot_lost(&self) -> bool {
        if self.slotless {
            return false;
        }
        let ctl = self.inner.seg.control(self.inner.slot);
        // SYNC: acquire the publisher's pushes before it set the slot aside (drained first).
        ctl.state.load(Ordering::Acquire) != SLOT_ACTIVE
            || ctl.attach_count.load(Ordering::Relaxed) != self.inner.attach
    }

    /// Leaves the damaged slot and attaches to a fresh one. Without a free slot (the old one is
    /// freed only after the publisher sweeps it) it stays damaged and is retried on a later look.
    fn resync(&mut self) {
        let seg = self.inner.seg.clone();
        if !self.slotless {
            // Tell the publisher to stop pushing into the old rings (it may have said so already).
            // SYNC: pairs with the publisher's Acquire of the state in its rescan.
            let _ = seg.control(self.inner.slot).state.compare_exchange(
                SLOT_ACTIVE,
                SLOT_RESYNC,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            seg.header().sub_epoch.fetch_add(1, Ordering::Release);
        }
        // The new slot's lock goes on a new open file description of the same segment.
        let Ok(lock_fd) = reopen(&seg.fd) else {
            return;
        };
        match Self::attach(&seg, &lock_fd) {
            Ok((slot, attach)) => {
                self.inner = Arc::new(SubInner {
                    seg,
                    lock_fd,
                    slot,
                    attach,
                    watch: self.inner.watch.clone(),
                    return_errors: self.inner.return_errors.clone(),
                    closed: AtomicBool::new(false),
                });
                self.return_errors_seen = self.inner.return_errors.load(Ordering::Relaxed);
                self.private_tail = fresh_tail(&self.inner.seg);
                self.damaged = false;
                self.slotless = false;
                self.empty_polls = 0;
                self.stats.resyncs += 1;
            }
            Err(_) => {
                if !self.slotless && Arc::strong_count(&self.inner) == 1 {
                    // Nothing received through the old slot is still held: close it now, so
                    // that the publisher frees it (one slot in all, say) for the next try.
                    self.inner.close();
                    self.slotless = true;
                }
            }
        }
    }

    fn publisher_gone(&self) -> bool {
        // SYNC: acquire the publisher's pushes before its CLOSED (or its death, reported by the
        // monitor after the kernel released the publisher's lock).
        self.inner
            .seg
            .header()
            .publisher_state
            .load(Ordering::Acquire)
            == PUB_CLOSED
            || self.inner.watch.publisher_dead.load(Ordering::Acquire)
    }

    /// Whether the publisher has closed or died (samples may still be queued).
    pub fn is_publisher_gone(&self) -> bool {
        self.publisher_gone()
    }

    /// Whether a sample is waiting (one cache-line read).
    pub fn has_data(&self) -> bool {
        if self.slotless {
            return false;
        }
        let ring = self.inner.seg.desc_ring(self.inner.slot);
        match self.private_tail {
            Some(tail) => ring.has_item_at(tail),
            None => ring.has_item(),
        }
    }

    /// Whether this subscriber must look at its slot now (damaged or set aside by the publisher).
    /// A slotless one cannot re-attach before the publisher frees a slot: waits poll it every
    /// millisecond instead (`SLOTLESS_POLL_NS`) of spinning.
    fn needs_attention(&self) -> bool {
        (self.damaged && !self.slotless) || self.slot_lost()
    }

    /// Takes the next sample without blocking: `Ok(None)` when none is queued.
    ///
    /// # Errors
    /// `Disconnected` once the publisher is gone and every sample it published was received.
    pub fn receive(&mut self) -> Result<Option<Sample>, ReceiveError> {
        if let Some(s) = self.try_take() {
            self.empty_polls = 0;
            return Ok(Some(s));
        }
        // The header line is the publisher's: look at it on the first empty poll after data and
        // then every 64th, not on every spin of a polling loop (the monitor's death flag is local).
        // A slotless subscriber (waiting for the publisher to free a slot) looks every time; the
        // waits below wake it every millisecond meanwhile.
        let look = self.empty_polls % 64 == 0 || self.slotless;
        self.empty_polls = self.empty_polls.wrapping_add(1);
        if (look && self.publisher_gone())
            || self.inner.watch.publisher_dead.load(Ordering::Acquire)
        {
            // Everything published before the close/death is visible now: one more look.
            return match self.try_take() {
                Some(s) => Ok(Some(s)),
                None => Err(ReceiveError::Disconnected),
            };
        }
        if look {
            let errors = self.inner.return_errors.load(Ordering::Relaxed);
            if errors != self.return_errors_seen || self.slot_lost() {
                // A return could not be queued (its chunk would leak) or the publisher found our
                // rings damaged.
                self.return_errors_seen = errors;
                if !self.damaged {
                    self.damaged = true;
                    // Every push before the publisher's RESYNC is visible now: take those first.
                    if let Some(s) = self.try_take() {
                        return Ok(Some(s));
                    }
                }
            }
            if self.damaged && (!self.slotless || crate::now_ns() >= self.retry_at_ns) {
                self.resync();
                if !self.damaged {
                    return Ok(self.try_take());
                }
                self.retry_at_ns = crate::now_ns().saturating_add(SLOTLESS_POLL_NS);
            }
        }
        Ok(None)
    }

    fn try_take(&mut self) -> Option<Sample> {
        if self.slotless {
            return None;
        }
        let seg = &self.inner.seg;
        let ring = seg.desc_ring(self.inner.slot);
        for _ in 0..ring.capacity() {
            let popped = match self.private_tail.as_mut() {
                Some(tail) => ring.pop_single(tail),
                None => ring.pop_claim().map(|o| o.map(|(_, w)| w)),
            };
            let words = match popped {
                Ok(Some(w)) => w,
                Ok(None) => return None,
                Err(_) => {
                    // An impossible stamp: the ring is damaged. Re-attach at the next look.
                    self.stats.invalid += 1;
                    self.damaged = true;
                    self.empty_polls = 0;
                    return None;
                }
            };
            let d = Descriptor::from_words(&words);
            if d.validate(seg.layout.chunk_count, seg.layout.chunk_size)
                .is_err()
            {
                // Out of range: never dereferenced, never returned (we cannot know its owner).
                self.stats.invalid += 1;
                continue;
            }
            if d.seq > self.last_seq {
                if self.last_seq != 0 {
                    // Saturating: a scribbled sequence number may be anything.
                    self.stats.gaps = self.stats.gaps.saturating_add(d.seq - self.last_seq - 1);
                }
            } else {
                // Duplicate or reordered: only a scribbled ring does this. Counted; the sample is
                // in bounds, so it is still handed out and the sequence resynchronises on it
                // instead of poisoning every later sample.
                self.stats.invalid += 1;
            }
            self.last_seq = d.seq;
            self.stats.received += 1;
            return Some(Sample {
                inner: self.inner.clone(),
                desc: d,
            });
        }
        None
    }

    /// Waits for the next sample, per the channel's wake-up policy, at most `timeout`.
    ///
    /// # Errors
    /// `Disconnected` as for [`Subscriber::receive`].
    pub fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<Sample>, ReceiveError> {
        let deadline =
            crate::now_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        loop {
            if let Some(s) = self.receive()? {
                return Ok(Some(s));
            }
            let now = crate::now_ns();
            if now >= deadline {
                return Ok(None);
            }
            wait_any_until(&[&*self], deadline);
        }
    }
}

fn return_chunk(inner: &SubInner, d: &Descriptor) {
    let words = [
        d.chunk as u64 | (d.generation as u64) << 32,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    if inner.seg.ret_ring(inner.slot).push_claim(&words).is_err() {
        inner.return_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sleeps until any of `subs` has a sample or its publisher is gone, at most `timeout`. Returns
/// whether one is ready. Channels with the `Spin` wake-up policy are busy-polled (their publisher
/// never issues wake-ups); the others sleep on their futexes together (`futex_waitv`).
pub fn wait_any(subs: &[&Subscriber], timeout: Duration) -> bool {
    let deadline = crate::now_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
    wait_any_until(subs, deadline)
}

fn ready(subs: &[&Subscriber]) -> bool {
    subs.iter().any(|s| s.has_data() || s.publisher_gone())
}

/// `ready`, or a subscriber must re-attach (checked off the spin path: it reads the slot's
/// control line).
fn ready_or_damaged(subs: &[&Subscriber]) -> bool {
    ready(subs) || subs.iter().any(|s| s.needs_attention())
}

fn wait_any_until(subs: &[&Subscriber], deadline: u64) -> bool {
    const SLICE_NS: u64 = 5_000_000; // re-check liveness at least this often
    let spin_all = subs.iter().any(|s| s.wakeup() == WakeupPolicy::Spin);
    let spin_ns = subs
        .iter()
        .map(|s| match s.wakeup() {
            WakeupPolicy::SpinThenFutex { spin_ns } => spin_ns,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let spin_end = crate::now_ns().saturating_add(spin_ns);
    let mut n = 0u32;
    loop {
        if ready(subs) {
            return true;
        }
        n = n.wrapping_add(1);
        if n % 64 == 0 {
            // A slotless subscriber retries on the caller's next receive: at once under the spin
            // policy, after the futex phase's short sleep otherwise.
            if subs
                .iter()
                .any(|s| s.needs_attention() || (spin_all && s.slotless))
            {
                return true;
            }
            let now = crate::now_ns();
            if now >= deadline {
                return false;
            }
            if !spin_all && now >= spin_end {
                break;
            }
        }
        core::hint::spin_loop();
    }
    let mut words = [None; crate::wakeup::FUTEX_WAITV_MAX];
    let mut expected = [0u32; crate::wakeup::FUTEX_WAITV_MAX];
    let n = subs.len().min(crate::wakeup::FUTEX_WAITV_MAX);
    loop {
        for (i, s) in subs.iter().take(n).enumerate() {
            let ctl = s.inner.seg.control(s.inner.slot);
            expected[i] = ctl.futex.load(Ordering::Acquire);
            ctl.waiting.fetch_add(1, Ordering::SeqCst);
            words[i] = Some(&ctl.futex);
        }
        // SYNC: order `waiting` before re-checking the rings (Dekker pair with the publisher's fence).
        fence(Ordering::SeqCst);
        let now = crate::now_ns();
        let is_ready = ready_or_damaged(subs);
        if !is_ready && now < deadline {
            let slotless = subs.iter().any(|s| s.slotless);
            let slice = Duration::from_nanos((deadline - now).min(if slotless {
                SLOTLESS_POLL_NS
            } else {
                SLICE_NS
            }));
            let refs: [&crate::sync::AtomicU32; crate::wakeup::FUTEX_WAITV_MAX] =
                core::array::from_fn(|i| words[i].unwrap_or(&DUMMY_FUTEX));
            if n == 1 {
                crate::wakeup::futex_wait(refs[0], expected[0], slice);
            } else if !crate::wakeup::futex_waitv(&refs[..n], &expected[..n], slice) {
                // Kernel without futex_waitv: sleep on the first word in short slices.
                crate::wakeup::futex_wait(
                    refs[0],
                    expected[0],
                    slice.min(Duration::from_millis(1)),
                );
            }
        }
        for s in subs.iter().take(n) {
            s.inner
                .seg
                .control(s.inner.slot)
                .waiting
                .fetch_sub(1, Ordering::SeqCst);
        }
        if is_ready || ready(subs) || subs.iter().any(|s| s.slotless) {
            return true;
        }
        if crate::now_ns() >= deadline {
            return false;
        }
    }
}

/// How often a wait returns while a subscriber is slotless, so that it retries its re-attach.
const SLOTLESS_POLL_NS: u64 = 1_000_000;

static DUMMY_FUTEX: crate::sync::AtomicU32 = crate::sync::AtomicU32::new(0);

/// A received sample: read-only view of a chunk in shared memory. The chunk goes back to the
/// publisher when this drops.
pub struct Sample {
    inner: Arc<SubInner>,
    desc: Descriptor,
}

impl Sample {
    /// The payload (`len` bytes). Lives in shared memory: a misbehaving publisher process could
    /// still be writing it, so treat its contents as untrusted input.
    pub fn payload(&self) -> &[u8] {
        let seg = &self.inner.seg;
        // SAFETY: the descriptor was validated (chunk < chunk_count, len ≤ chunk_size), so the range
        // is inside the mapping, which `inner` keeps alive. The chunk is held by us (the publisher
        // will not reuse it before our return), and bytes are valid for any value.
        unsafe {
            core::slice::from_raw_parts(seg.chunk_ptr(self.desc.chunk), self.desc.len as usize)
        }
    }

    /// The chunk's fixed user header.
    pub fn user_header(&self) -> &[u8] {
        let seg = &self.inner.seg;
        // SAFETY: validated chunk index, header inside the mapping; bytes valid for any value.
        unsafe {
            core::slice::from_raw_parts(
                seg.user_header_ptr(self.desc.chunk),
                seg.layout.user_header_size as usize,
            )
        }
    }

    /// The descriptor (sequence number, timestamps, chunk, length, user word).
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.desc.seq
    }

    /// Sensor time, CLOCK_MONOTONIC ns.
    pub fn sensor_time(&self) -> u64 {
        self.desc.t_sensor_ns
    }

    /// "DMA complete" time, CLOCK_MONOTONIC ns.
    pub fn dma_time(&self) -> u64 {
        self.desc.t_dma_ns
    }

    /// Enqueue time, CLOCK_MONOTONIC ns.
    pub fn enqueue_time(&self) -> u64 {
        self.desc.t_enqueue_ns
    }

    /// The user word.
    pub fn user(&self) -> u64 {
        self.desc.user
    }

    /// Copies out a typed value.
    ///
    /// # Errors
    /// `Size` when the sample length is not `size_of::<T>()`.
    pub fn read<T: ShmSafe>(&self) -> Result<T, TypeError> {
        let size = core::mem::size_of::<T>();
        if self.desc.len != size as u64 {
            return Err(TypeError::Size {
                len: self.desc.len,
                size: size as u64,
            });
        }
        // SAFETY: `size` bytes are in bounds (len checked); T: ShmSafe is valid for any bit pattern;
        // read_unaligned has no alignment requirement.
        Ok(unsafe { core::ptr::read_unaligned(self.payload().as_ptr() as *const T) })
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        return_chunk(&self.inner, &self.desc);
    }
}

// Sample is Send (Arc<SubInner> with a Sync segment) and the return ring accepts pushes from any
// thread (claiming producers), so a sample may be dropped anywhere.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Sample>();
    assert_send::<Subscriber>();
};

#[cfg(all(test, not(loom)))]
mod resync_tests;

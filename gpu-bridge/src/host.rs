//! The host backend, for machines without a GPU. It does the CPU part of every path for real
//! — the bounce copy into a staging ring of page-locked slots, the "device" write, a CRC-32
//! integrity check, in-order completion and slot reuse only after the completion "event" —
//! and models the PCIe part: each transfer completes `wire + setup + sync` ns (from the
//! profile, marked `modeled`) after the previous one, as on one copy engine.
//!
//! The device write happens at completion, from the source the real DMA would read at that
//! time (the slab on peer paths, the staging slot on the bounce path). A slab chunk or staging
//! slot reused before its event completed therefore shows up as a [`BridgeError::Integrity`]
//! error, exactly the corruption a real GPU would suffer silently.

use std::time::{Duration, Instant};

use crate::backend::{
    check_range, Backend, BackendKind, CalibrationOptions, DeviceBufferId, RegisterMode, SlabId,
    SlabRegion, SlabRegistration, Ticket, TransferReport, TransferRequest,
};
use crate::book::{unknown, Book};
use crate::calibrate::measure_host_copy;
use crate::error::BridgeError;
use crate::hostmem::{copy_bytes, PageBuffer};
use crate::model::{Capabilities, Path, Profile, Provenance};
use crate::staging::StagingRing;

enum Source {
    Slab,
    Staging(usize),
}

struct Flight {
    seq: u64,
    req: TransferRequest,
    source: Source,
    crc_sent: u32,
    complete_at: Instant,
    submit_ns: u64,
    cpu_copy_ns: u64,
    link_ns: u64,
}

impl crate::book::Flight for Flight {
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// CPU-real, PCIe-modeled backend. See the module docs.
pub struct HostBackend {
    profile: Profile,
    book: Book<Flight>,
    device: Vec<Vec<u8>>,
    staging: StagingRing<PageBuffer>,
    /// Completion time of the last transfer on the modeled copy engine.
    engine_free_at: Instant,
}

impl HostBackend {
    /// A host backend modeling the link with `profile` (usually
    /// [`Profile::pcie4_x16_default`] or the result of [`Backend::calibrate`]).
    pub fn new(profile: Profile) -> Self {
        HostBackend {
            profile,
            book: Book::new(),
            device: Vec::new(),
            staging: StagingRing::new(),
            engine_free_at: Instant::now(),
        }
    }

    /// The profile the PCIe part is modeled from.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Replaces the profile (e.g. after calibration).
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    /// Completes, in order, every transfer whose modeled completion time has passed.
    fn advance(&mut self, now: Instant) {
        while self
            .book
            .in_flight
            .front()
            .is_some_and(|f| f.complete_at <= now)
        {
            if let Some(f) = self.book.in_flight.pop_front() {
                let result = self.complete(&f);
                self.book.finish(f.seq, result);
            }
        }
    }

    /// Performs the device write of a transfer whose event "fires" now, and checks integrity.
    fn complete(&mut self, f: &Flight) -> Result<TransferReport, BridgeError> {
        let src: &[u8] = match f.source {
            Source::Staging(i) => &self.staging.complete(i, f.seq).as_slice()[..f.req.len],
            Source::Slab => {
                self.book.hold_slab(f.req.slab, false);
                let s = self
                    .book
                    .slabs
                    .get(&f.req.slab.0)
                    .ok_or_else(|| unknown("slab", f.req.slab.0))?;
                // SAFETY: the range was checked at submit; the slab stays mapped while
                // registered, and it could not be unregistered while this transfer held it.
                unsafe { s.region.bytes(f.req.offset, f.req.len) }
            }
        };
        let dst_buf = self
            .device
            .get_mut(f.req.dst.0 as usize)
            .ok_or_else(|| unknown("device buffer", f.req.dst.0))?;
        let dst = &mut dst_buf[f.req.dst_offset..f.req.dst_offset + f.req.len];
        copy_bytes(dst, src);
        let arrived = crc32fast::hash(dst);
        if arrived != f.crc_sent {
            return Err(BridgeError::Integrity {
                seq: f.seq,
                sent: f.crc_sent,
                arrived,
            });
        }
        Ok(TransferReport {
            seq: f.seq,
            path: f.req.path,
            bytes: f.req.len,
            submit_ns: f.submit_ns,
            cpu_copy_ns: f.cpu_copy_ns,
            link_ns: f.link_ns,
            link_provenance: Provenance::Modeled,
        })
    }

    /// Waits (sleep, then spin) until transfer `seq`'s modeled event fired, completing it and
    /// everything before it. Reports stay in `finished` for their owners.
    fn block_until(&mut self, seq: u64) {
        if let Some(f) = self.book.in_flight.iter().find(|f| f.seq == seq) {
            let at = f.complete_at;
            let now = Instant::now();
            if at > now + Duration::from_micros(200) {
                std::thread::sleep(at - now - Duration::from_micros(100));
            }
            while Instant::now() < at {
                std::hint::spin_loop();
            }
        }
        self.advance(Instant::now());
    }

    fn modeled_link_ns(&self, path: Path, len: usize) -> u64 {
        let e = self.profile.estimate(path, len as u64);
        (e.wire_ns + e.setup_ns + e.sync_ns).ceil() as u64
    }
}

impl Backend for HostBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }

    fn describe(&self) -> String {
        format!(
            "host backend (no GPU): CPU parts measured, PCIe modeled from profile {:?}",
            self.profile.label
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn register_slab(
        &mut self,
        region: SlabRegion,
        mode: RegisterMode,
    ) -> Result<SlabRegistration, BridgeError> {
        let registered = mode == RegisterMode::Pin;
        let id = self.book.add_slab(region, registered, 0);
        let cost_ns = if registered {
            self.profile.registration.cost_ns(region.len() as u64)
        } else {
            0.0
        };
        Ok(SlabRegistration {
            id,
            registered,
            cost_ns,
            provenance: Provenance::Modeled,
        })
    }

    fn unregister_slab(&mut self, id: SlabId) -> Result<(), BridgeError> {
        self.advance(Instant::now());
        self.book.idle_slab(id)?;
        self.book.slabs.remove(&id.0);
        Ok(())
    }

    /// Page-locked slots; locking falls back to unlocked pages with a warning when
    /// RLIMIT_MEMLOCK is too small (the host backend has no DMA that needs them locked).
    fn ensure_staging(&mut self, slots: usize, bytes: usize) -> Result<(), BridgeError> {
        self.staging.ensure(slots, bytes, |n| {
            PageBuffer::new(n, true).or_else(|e| {
                tracing::warn!("staging slot not locked ({e}); using unlocked pages");
                PageBuffer::new(n, false)
            })
        })
    }

    fn alloc_device(&mut self, bytes: usize) -> Result<DeviceBufferId, BridgeError> {
        let mut v = Vec::new();
        v.try_reserve_exact(bytes)
            .map_err(|e| BridgeError::HostMemory(format!("device buffer of {bytes} B: {e}")))?;
        v.resize(bytes, 0);
        self.device.push(v);
        Ok(DeviceBufferId(self.device.len() as u64 - 1))
    }

    fn submit(&mut self, req: &TransferRequest) -> Result<Ticket, BridgeError> {
        let t0 = Instant::now();
        let dst_len = self
            .device
            .get(req.dst.0 as usize)
            .ok_or_else(|| unknown("device buffer", req.dst.0))?
            .len();
        check_range("device buffer", req.dst_offset, req.len, dst_len)?;
        let region = self.book.source(req)?.region;
        let seq = self.book.next_seq;
        // SAFETY: range checked above; the consumer owns the chunk during the transfer.
        let src = unsafe { region.bytes(req.offset, req.len) };
        let crc_sent = crc32fast::hash(src);
        let (source, cpu_copy_ns) = if req.path == Path::Bounce {
            // Wait (modeled time) for the slot's previous event, then copy for real.
            if let Some(busy) = self.staging.next_busy_seq() {
                self.block_until(busy);
            }
            let c0 = Instant::now();
            let idx = self.staging.acquire(seq, req.len)?;
            copy_bytes(self.staging.slot_mut(idx).as_mut_slice(), src);
            (Source::Staging(idx), c0.elapsed().as_nanos() as u64)
        } else {
            self.book.hold_slab(req.slab, true);
            (Source::Slab, 0)
        };
        let link_ns = self.modeled_link_ns(req.path, req.len);
        let now = Instant::now();
        let start = self.engine_free_at.max(now);
        let complete_at = start + Duration::from_nanos(link_ns);
        self.engine_free_at = complete_at;
        self.book.next_seq += 1;
        self.book.in_flight.push_back(Flight {
            seq,
            req: *req,
            source,
            crc_sent,
            complete_at,
            submit_ns: t0.elapsed().as_nanos() as u64,
            cpu_copy_ns,
            link_ns,
        });
        Ok(Ticket(seq))
    }

    fn poll(&mut self, ticket: Ticket) -> Result<Option<TransferReport>, BridgeError> {
        self.advance(Instant::now());
        self.book.poll(ticket)
    }

    fn wait(&mut self, ticket: Ticket) -> Result<TransferReport, BridgeError> {
        self.block_until(ticket.0);
        self.book.take(ticket)
    }

    fn read_device(
        &mut self,
        buf: DeviceBufferId,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), BridgeError> {
        if let Some(last) = self.book.in_flight.back().map(|f| f.seq) {
            // Drain like a device-wide synchronisation; the reports stay for their owners.
            self.block_until(last);
        }
        let b = self
            .device
            .get(buf.0 as usize)
            .ok_or_else(|| unknown("device buffer", buf.0))?;
        check_range("device buffer", offset, out.len(), b.len())?;
        out.copy_from_slice(&b[offset..offset + out.len()]);
        Ok(())
    }

    fn calibrate(&mut self, opts: &CalibrationOptions) -> Result<Profile, BridgeError> {
        let mut p = Profile::pcie4_x16_default();
        p.host_copy = measure_host_copy(&opts.sizes, opts.reps)?;
        p.label = format!(
            "host backend: CPU copy measured ({:.1} GB/s), PCIe modeled as PCIe 4.0 x16",
            p.host_copy.bandwidth_gbps
        );
        self.profile = p.clone();
        Ok(p)
    }
}

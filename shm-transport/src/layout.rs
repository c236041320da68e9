//! The segment layout: the versioned header at offset 0, then one block per subscriber slot (control
//! words, descriptor ring, return ring), the user-header area and the chunk slab.
//!
//! ```text
//! 0                      SegmentHeader (one page)
//! subs_offset            SubscriberSlot × max_subscribers, each `sub_stride` bytes:
//!                          SubControl (256 B) | desc RingIndices (256 B) | desc slots (depth × 64 B)
//!                          | return RingIndices (256 B) | return slots (return_depth × 64 B)
//! uhdr_offset            user headers: chunk_count × user_header_stride
//! chunks_offset          chunks: chunk_count × chunk_stride, aligned to `alignment` (≥ page)
//! total_size             rounded up to the page (2 MiB with huge pages)
//! ```
//! Every offset is a pure function of the geometry fields, so a subscriber recomputes the layout
//! from the header's geometry and refuses a header whose stored offsets disagree: after that check
//! every access is in bounds by construction.

use crate::config::{
    ChannelConfig, ExternalSlab, Footprint, OverflowPolicy, TypeInfo, WakeupPolicy,
};
use crate::ring::{RingIndices, Slot};
use crate::sync::{AtomicU32, AtomicU64};
use crate::CreateError;

/// `b"RTFUSEsg"` as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RTFUSEsg");
/// Bumped on every incompatible change of this file or of the slot protocol (2: `SLOT_RESYNC`).
pub const LAYOUT_VERSION: u32 = 2;
/// Value of `SegmentHeader::ready` once the creator finished initialising.
pub(crate) const READY: u32 = 0x5245_4459;
pub(crate) const PAGE: u64 = 4096;
pub(crate) const HUGE_PAGE: u64 = 2 << 20;
/// Most subscribers per channel (one bit each in the publisher's holder masks).
pub const MAX_SUBSCRIBERS: u32 = 32;
/// Largest ring depth accepted.
pub const MAX_RING_DEPTH: u32 = 1 << 16;
/// Largest chunk count accepted.
pub const MAX_CHUNKS: u32 = 1 << 16;
/// Largest user header per chunk.
pub const MAX_USER_HEADER: usize = 4096;
const CONTROL_BYTES: u64 = 256;
const INDICES_BYTES: u64 = 256;
const SLOT_BYTES: u64 = 64;

/// Publisher states in `SegmentHeader::publisher_state`.
pub(crate) const PUB_ALIVE: u32 = 1;
pub(crate) const PUB_CLOSED: u32 = 2;

/// Subscriber slot states in `SubControl::state`.
pub(crate) const SLOT_FREE: u32 = 0;
pub(crate) const SLOT_ATTACHING: u32 = 1;
pub(crate) const SLOT_ACTIVE: u32 = 2;
pub(crate) const SLOT_CLOSING: u32 = 3;
/// The slot's rings were found damaged (by the publisher or by the subscriber): the publisher no
/// longer pushes into them and keeps the chunks the slot holds until the subscriber closes it
/// (`SLOT_CLOSING`) or dies. The subscriber re-attaches in a fresh slot.
pub(crate) const SLOT_RESYNC: u32 = 4;

/// The segment header. Geometry fields are written once by the creator before `ready` is released
/// and copied (and validated) by every opener: they are never re-read after open.
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub header_size: u32,
    pub total_size: u64,
    pub creator_uid: u32,
    pub creator_pid: u32,
    pub creator_start_ticks: u64,
    pub created_unix_ns: u64,
    pub chunk_size: u64,
    pub chunk_stride: u64,
    pub chunk_count: u32,
    pub ring_depth: u32,
    pub return_depth: u32,
    pub max_subscribers: u32,
    pub user_header_size: u32,
    pub user_header_stride: u32,
    pub alignment: u64,
    pub overflow: u32,
    pub wakeup: u32,
    pub spin_ns: u64,
    pub huge: u32,
    pub _pad0: u32,
    pub subs_offset: u64,
    pub sub_stride: u64,
    pub uhdr_offset: u64,
    pub chunks_offset: u64,
    pub type_size: u64,
    pub type_align: u64,
    pub type_name: [u8; 128],
    /// 1 when the chunks live in an external region (`ext_path` at `ext_offset`).
    pub external: u32,
    pub _pad1: u32,
    pub ext_offset: u64,
    pub ext_path: [u8; 256],
    /// `READY` once the creator has initialised everything (Release); 0 before.
    pub ready: AtomicU32,
    /// `PUB_ALIVE`, then `PUB_CLOSED` after a graceful close.
    pub publisher_state: AtomicU32,
    /// Bumped (Release) by every subscriber attach/detach so the publisher rescans slots.
    pub sub_epoch: AtomicU64,
    /// Keeps `published` off the line subscribers poll (`publisher_state`, `sub_epoch`).
    pub _pad_line: [u64; 16],
    /// Samples published (statistics; written only by the publisher, a plain store).
    pub published: AtomicU64,
}

/// Per-subscriber control words, 256 bytes.
#[repr(C, align(128))]
pub(crate) struct SubControl {
    /// `SLOT_*` state.
    pub state: AtomicU32,
    /// Subscriber pid (informational; liveness uses the slot's file lock).
    pub pid: AtomicU32,
    /// Bumped on every attach of this slot; lets the liveness monitor tell occupants apart.
    pub attach_count: AtomicU64,
    pub start_ticks: AtomicU64,
    /// Keep-last drops of this subscriber's samples, written by the publisher.
    pub dropped: AtomicU64,
    /// Samples delivered into this subscriber's ring, written by the publisher.
    pub delivered: AtomicU64,
    pub _pad: [u64; 11],
    /// Futex word on its own line: bumped by the publisher when `waiting != 0`.
    pub futex: AtomicU32,
    /// Number of threads of the subscriber about to sleep on `futex`.
    pub waiting: AtomicU32,
}

const _: () = {
    assert!(core::mem::size_of::<SegmentHeader>() as u64 <= PAGE);
    assert!(core::mem::size_of::<SubControl>() as u64 == CONTROL_BYTES);
    assert!(core::mem::size_of::<RingIndices>() as u64 == INDICES_BYTES);
    assert!(core::mem::size_of::<Slot>() as u64 == SLOT_BYTES);
};

/// A validated, private copy of the geometry (trusted after validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub chunk_size: u64,
    pub chunk_stride: u64,
    pub chunk_count: u32,
    pub ring_depth: u32,
    pub return_depth: u32,
    pub max_subscribers: u32,
    pub user_header_size: u32,
    pub user_header_stride: u32,
    pub alignment: u64,
    pub overflow: OverflowPolicy,
    pub wakeup: WakeupPolicy,
    pub huge: bool,
    pub subs_offset: u64,
    pub sub_stride: u64,
    pub uhdr_offset: u64,
    pub chunks_offset: u64,
    pub total_size: u64,
    pub type_info: Option<TypeInfo>,
    /// Chunks in a driver-provided region instead of the segment (`chunks_offset` is then 0 and
    /// chunk offsets are relative to `external.offset` in that file).
    pub external: Option<ExternalSlab>,
}

fn round_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

fn invalid(msg: String) -> CreateError {
    CreateError::InvalidConfig(msg)
}

impl Layout {
    /// Checks a configuration and computes where everything goes.
    pub fn compute(cfg: &ChannelConfig, huge: bool) -> Result<Layout, CreateError> {
        if cfg.chunk_size == 0 {
            return Err(invalid("chunk_size must be at least 1 byte".into()));
        }
        if cfg.chunk_count == 0 || cfg.chunk_count > MAX_CHUNKS {
            return Err(invalid(format!(
                "chunk_count must be in 1..={MAX_CHUNKS}, got {}",
                cfg.chunk_count
            )));
        }
        if !cfg.ring_depth.is_power_of_two()
            || cfg.ring_depth < 2
            || cfg.ring_depth > MAX_RING_DEPTH
        {
            return Err(invalid(format!(
                "ring_depth must be a power of two in 2..={MAX_RING_DEPTH}, got {}",
                cfg.ring_depth
            )));
        }
        if cfg.max_subscribers == 0 || cfg.max_subscribers > MAX_SUBSCRIBERS {
            return Err(invalid(format!(
                "max_subscribers must be in 1..={MAX_SUBSCRIBERS}, got {}",
                cfg.max_subscribers
            )));
        }
        if !cfg.alignment.is_power_of_two()
            || cfg.alignment < 64
            || cfg.alignment > HUGE_PAGE as usize
        {
            return Err(invalid(format!(
                "alignment must be a power of two in 64..=2097152, got {}",
                cfg.alignment
            )));
        }
        if cfg.user_header_size > MAX_USER_HEADER {
            return Err(invalid(format!(
                "user_header_size must be at most {MAX_USER_HEADER}, got {}",
                cfg.user_header_size
            )));
        }
        let too_big = || invalid("channel does not fit in the address space".into());
        let alignment = cfg.alignment as u64;
        let chunk_size = cfg.chunk_size as u64;
        let chunk_stride = round_up(chunk_size, alignment).ok_or_else(too_big)?;
        // Every chunk can be returned once without the return ring ever filling.
        let return_depth = cfg.chunk_count.next_power_of_two().max(2);
        let sub_stride = CONTROL_BYTES
            + INDICES_BYTES
            + cfg.ring_depth as u64 * SLOT_BYTES
            + INDICES_BYTES
            + return_depth as u64 * SLOT_BYTES;
        let subs_offset = PAGE;
        let uhdr_offset = subs_offset + sub_stride * cfg.max_subscribers as u64;
        let user_header_stride = round_up(cfg.user_header_size as u64, 64).ok_or_else(too_big)?;
        let uhdr_end = uhdr_offset + user_header_stride * cfg.chunk_count as u64;
        let slab_len = chunk_stride
            .checked_mul(cfg.chunk_count as u64)
            .ok_or_else(too_big)?;
        let (chunks_offset, end) = match &cfg.external_slab {
            None => {
                let off = round_up(uhdr_end, alignment.max(PAGE)).ok_or_else(too_big)?;
                (off, off.checked_add(slab_len).ok_or_else(too_big)?)
            }
            Some(ext) => {
                if ext.offset % PAGE != 0 || ext.offset % alignment != 0 {
                    return Err(invalid(format!(
                        "external slab offset {} must be a multiple of 4096 and of the alignment",
                        ext.offset
                    )));
                }
                let len = ext.path.as_os_str().len();
                if len == 0 || len > 255 {
                    return Err(invalid(format!(
                        "external slab path must be 1..=255 bytes, got {len}"
                    )));
                }
                (0, uhdr_end)
            }
        };
        let total_size = round_up(end, if huge { HUGE_PAGE } else { PAGE }).ok_or_else(too_big)?;
        if total_size > isize::MAX as u64 / 2 {
            return Err(too_big());
        }
        Ok(Layout {
            chunk_size,
            chunk_stride,
            chunk_count: cfg.chunk_count,
            ring_depth: cfg.ring_depth,
            return_depth,
            max_subscribers: cfg.max_subscribers,
            user_header_size: cfg.user_header_size as u32,
            user_header_stride: user_header_stride as u32,
            alignment,
            overflow: cfg.overflow,
            wakeup: cfg.wakeup,
            huge,
            subs_offset,
            sub_stride,
            uhdr_offset,
            chunks_offset,
            total_size,
            type_info: cfg.type_info.clone(),
            external: cfg.external_slab.clone(),
        })
    }

    /// The pinned footprint.
    pub fn footprint(&self) -> Footprint {
        let payload = self.chunk_size * self.chunk_count as u64;
        Footprint {
            pinned_bytes: self.total_size,
            payload_bytes: payload,
            waste_bytes: self.total_size - payload,
        }
    }

    /// Writes the geometry into a fresh header (the caller publishes `ready` afterwards).
    pub fn write_header(
        &self,
        h: &mut SegmentHeader,
        pid: u32,
        uid: u32,
        start_ticks: u64,
        now_unix_ns: u64,
    ) {
        h.magic = MAGIC;
        h.layout_version = LAYOUT_VERSION;
        h.header_size = core::mem::size_of::<SegmentHeader>() as u32;
        h.total_size = self.total_size;
        h.creator_uid = uid;
        h.creator_pid = pid;
        h.creator_start_ticks = start_ticks;
        h.created_unix_ns = now_unix_ns;
        h.chunk_size = self.chunk_size;
        h.chunk_stride = self.chunk_stride;
        h.chunk_count = self.chunk_count;
        h.ring_depth = self.ring_depth;
        h.return_depth = self.return_depth;
        h.max_subscribers = self.max_subscribers;
        h.user_header_size = self.user_header_size;
        h.user_header_stride = self.user_header_stride;
        h.alignment = self.alignment;
        h.overflow = match self.overflow {
            OverflowPolicy::KeepLast => 0,
            OverflowPolicy::Reject => 1,
        };
        let (w, spin) = self.wakeup.encode();
        h.wakeup = w;
        h.spin_ns = spin;
        h.huge = self.huge as u32;
        h.subs_offset = self.subs_offset;
        h.sub_stride = self.sub_stride;
        h.uhdr_offset = self.uhdr_offset;
        h.chunks_offset = self.chunks_offset;
        h.type_name = [0; 128];
        h.ext_path = [0; 256];
        match &self.external {
            Some(ext) => {
                use std::os::unix::ffi::OsStrExt;
                let b = ext.path.as_os_str().as_bytes();
                h.external = 1;
                h.ext_offset = ext.offset;
                h.ext_path[..b.len()].copy_from_slice(b);
            }
            None => {
                h.external = 0;
                h.ext_offset = 0;
            }
        }
        if let Some(t) = &self.type_info {
            h.type_size = t.size;
            h.type_align = t.align;
            h.type_name[..t.name.len()].copy_from_slice(t.name.as_bytes());
        } else {
            h.type_size = 0;
            h.type_align = 0;
        }
    }

    /// Validates a header read from shared memory against the mapped size and returns the trusted
    /// geometry. `Err` carries a human reason.
    pub fn from_header(h: &HeaderCopy, mapped: u64) -> Result<Layout, String> {
        if h.magic != MAGIC {
            return Err(format!("bad magic {:#018x}", h.magic));
        }
        let overflow = match h.overflow {
            0 => OverflowPolicy::KeepLast,
            1 => OverflowPolicy::Reject,
            o => return Err(format!("unknown overflow policy code {o}")),
        };
        let wakeup = WakeupPolicy::decode(h.wakeup, h.spin_ns)
            .ok_or_else(|| format!("unknown wake-up code {}", h.wakeup))?;
        let type_info = if h.type_size == 0 {
            None
        } else {
            let end = h
                .type_name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(h.type_name.len());
            let name = String::from_utf8_lossy(&h.type_name[..end]).into_owned();
            Some(TypeInfo {
                name,
                size: h.type_size,
                align: h.type_align,
            })
        };
        let external_slab = match h.external {
            0 => None,
            1 => {
                use std::os::unix::ffi::OsStrExt;
                let end = h
                    .ext_path
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(h.ext_path.len());
                let path =
                    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&h.ext_path[..end]));
                Some(ExternalSlab {
                    path,
                    offset: h.ext_offset,
                })
            }
            x => return Err(format!("unknown external-slab flag {x}")),
        };
        let cfg = ChannelConfig {
            external_slab,
            chunk_size: usize::try_from(h.chunk_size)
                .map_err(|_| "chunk_size overflows".to_string())?,
            chunk_count: h.chunk_count,
            ring_depth: h.ring_depth,
            max_subscribers: h.max_subscribers,
            alignment: usize::try_from(h.alignment)
                .map_err(|_| "alignment overflows".to_string())?,
            user_header_size: h.user_header_size as usize,
            overflow,
            wakeup,
            type_info,
            ..ChannelConfig::default()
        };
        let l = Layout::compute(&cfg, h.huge != 0).map_err(|e| e.to_string())?;
        let stored = (
            h.chunk_stride,
            h.return_depth,
            h.user_header_stride,
            h.subs_offset,
            h.sub_stride,
            h.uhdr_offset,
            h.chunks_offset,
            h.total_size,
        );
        let computed = (
            l.chunk_stride,
            l.return_depth,
            l.user_header_stride,
            l.subs_offset,
            l.sub_stride,
            l.uhdr_offset,
            l.chunks_offset,
            l.total_size,
        );
        if stored != computed {
            return Err(format!(
                "stored offsets {stored:?} disagree with the geometry {computed:?}"
            ));
        }
        if l.total_size > mapped {
            return Err(format!(
                "header claims {} bytes but the object has {mapped}",
                l.total_size
            ));
        }
        Ok(l)
    }
}

/// A plain copy of the header's non-atomic fields, taken once at open.
#[derive(Debug, Clone)]
pub(crate) struct HeaderCopy {
    pub magic: u64,
    pub layout_version: u32,
    pub total_size: u64,
    pub creator_uid: u32,
    pub creator_pid: u32,
    pub creator_start_ticks: u64,
    pub created_unix_ns: u64,
    pub chunk_size: u64,
    pub chunk_stride: u64,
    pub chunk_count: u32,
    pub ring_depth: u32,
    pub return_depth: u32,
    pub max_subscribers: u32,
    pub user_header_size: u32,
    pub user_header_stride: u32,
    pub alignment: u64,
    pub overflow: u32,
    pub wakeup: u32,
    pub spin_ns: u64,
    pub huge: u32,
    pub subs_offset: u64,
    pub sub_stride: u64,
    pub uhdr_offset: u64,
    pub chunks_offset: u64,
    pub type_size: u64,
    pub type_align: u64,
    pub type_name: [u8; 128],
    pub external: u32,
    pub ext_offset: u64,
    pub ext_path: [u8; 256],
}

impl HeaderCopy {
    /// Copies the header with volatile reads (another process may scribble concurrently; we take
    /// one snapshot and validate it).
    ///
    /// # Safety
    /// `h` must point to a mapped, readable `SegmentHeader`.
    pub unsafe fn read(h: *const SegmentHeader) -> HeaderCopy {
        macro_rules! rd {
            ($f:ident) => {
                // SAFETY: the caller guarantees `h` is mapped and readable; `addr_of!` takes no
                // reference, and a volatile read of a plain integer field is valid for any bits.
                unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*h).$f)) }
            };
        }
        HeaderCopy {
            magic: rd!(magic),
            layout_version: rd!(layout_version),
            total_size: rd!(total_size),
            creator_uid: rd!(creator_uid),
            creator_pid: rd!(creator_pid),
            creator_start_ticks: rd!(creator_start_ticks),
            created_unix_ns: rd!(created_unix_ns),
            chunk_size: rd!(chunk_size),
            chunk_stride: rd!(chunk_stride),
            chunk_count: rd!(chunk_count),
            ring_depth: rd!(ring_depth),
            return_depth: rd!(return_depth),
            max_subscribers: rd!(max_subscribers),
            user_header_size: rd!(user_header_size),
            user_header_stride: rd!(user_header_stride),
            alignment: rd!(alignment),
            overflow: rd!(overflow),
            wakeup: rd!(wakeup),
            spin_ns: rd!(spin_ns),
            huge: rd!(huge),
            subs_offset: rd!(subs_offset),
            sub_stride: rd!(sub_stride),
            uhdr_offset: rd!(uhdr_offset),
            chunks_offset: rd!(chunks_offset),
            type_size: rd!(type_size),
            type_align: rd!(type_align),
            type_name: rd!(type_name),
            external: rd!(external),
            ext_offset: rd!(ext_offset),
            ext_path: rd!(ext_path),
        }
    }
}

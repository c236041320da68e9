//! Channel configuration and the policies it selects.

use std::time::Duration;

/// What `publish` does when a subscriber's descriptor ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest undelivered sample of that subscriber (ROS 2 KEEP_LAST). Drops are counted on
    /// both sides and show as gaps in sequence numbers.
    #[default]
    KeepLast,
    /// Hand the sample back to the caller as [`PublishError::Full`](crate::PublishError::Full).
    Reject,
}

/// How a blocked receiver waits for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeupPolicy {
    /// Busy-poll: lowest latency, burns a core, no system call on the data path.
    Spin,
    /// Sleep on a futex in the shared segment; the publisher wakes it (one system call per publish
    /// while someone sleeps).
    Futex,
    /// Spin for `spin_ns`, then sleep on the futex.
    SpinThenFutex {
        /// Spin budget in nanoseconds before sleeping.
        spin_ns: u64,
    },
}

impl Default for WakeupPolicy {
    fn default() -> Self {
        WakeupPolicy::SpinThenFutex { spin_ns: 50_000 }
    }
}

impl WakeupPolicy {
    pub(crate) fn encode(self) -> (u32, u64) {
        match self {
            WakeupPolicy::Spin => (0, 0),
            WakeupPolicy::Futex => (1, 0),
            WakeupPolicy::SpinThenFutex { spin_ns } => (2, spin_ns),
        }
    }

    pub(crate) fn decode(code: u32, spin_ns: u64) -> Option<Self> {
        match code {
            0 => Some(WakeupPolicy::Spin),
            1 => Some(WakeupPolicy::Futex),
            2 => Some(WakeupPolicy::SpinThenFutex { spin_ns }),
            _ => None,
        }
    }
}

/// Whether the mapping is locked into RAM (`mlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryLock {
    /// Fail with [`CreateError::MemLock`](crate::CreateError::MemLock) when `mlock` is refused.
    Required,
    /// Try `mlock`; on refusal keep going with prefaulted (but swappable) pages and report
    /// `locked = false` in the stats.
    #[default]
    BestEffort,
    /// Do not lock (pages are still prefaulted).
    Off,
}

/// Whether to back the segment with 2 MiB transparent huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePages {
    /// 4 KiB pages.
    #[default]
    Off,
    /// `madvise(MADV_HUGEPAGE)` and a 2 MiB-rounded size when the kernel allows huge pages on shared
    /// memory (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`), else 4 KiB pages.
    IfAvailable,
    /// As `IfAvailable`, but fail when the kernel does not allow them.
    Required,
}

/// Everything that fixes a channel's shape. The publisher chooses it; subscribers read it from the
/// segment header.
///
/// # Examples
/// ```
/// use shm_transport::{ChannelConfig, OverflowPolicy};
/// let cfg = ChannelConfig { chunk_size: 1920 * 1080 * 3, chunk_count: 6, ..ChannelConfig::default() };
/// let f = cfg.footprint().unwrap();
/// assert!(f.pinned_bytes >= f.payload_bytes);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Payload capacity of one chunk in bytes.
    pub chunk_size: usize,
    /// Number of chunks in the slab (in flight + held by subscribers + one being filled).
    pub chunk_count: u32,
    /// Capacity of each subscriber's descriptor ring (a power of two).
    pub ring_depth: u32,
    /// Most subscribers at once (1..=32).
    pub max_subscribers: u32,
    /// Chunk alignment in bytes: 4096 (page, what DMA and GPU registration want) by default; a power
    /// of two ≥ 64 for small messages so a 300-byte IMU sample does not pin a page.
    pub alignment: usize,
    /// Bytes of fixed user header per chunk (0..=4096), beside the payload.
    pub user_header_size: usize,
    /// Full-ring behaviour.
    pub overflow: OverflowPolicy,
    /// Receiver wake-up.
    pub wakeup: WakeupPolicy,
    /// `mlock` policy.
    pub memory_lock: MemoryLock,
    /// Huge-page policy.
    pub huge_pages: HugePages,
    /// Type carried, for typed channels (`None` for byte channels).
    pub type_info: Option<TypeInfo>,
    /// Publish from memory the driver brings (a DMA buffer exported as a file, a hugetlbfs file, a
    /// device node): the chunks live in that file instead of the segment. `None`: in the segment.
    pub external_slab: Option<ExternalSlab>,
}

/// A driver-provided memory region that holds the chunks. Every party maps it by path, so it must
/// be a file all of them can open read-write (owned by the same user), at least
/// `offset + chunk_count × chunk_stride` bytes long; `offset` a multiple of 4096 and of `alignment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSlab {
    /// Path of the region (at most 255 bytes).
    pub path: std::path::PathBuf,
    /// Byte offset of chunk 0 in it.
    pub offset: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            chunk_size: 4096,
            chunk_count: 16,
            ring_depth: 8,
            max_subscribers: 4,
            alignment: 4096,
            user_header_size: 0,
            overflow: OverflowPolicy::KeepLast,
            wakeup: WakeupPolicy::default(),
            memory_lock: MemoryLock::BestEffort,
            huge_pages: HugePages::Off,
            type_info: None,
            external_slab: None,
        }
    }
}

impl ChannelConfig {
    /// A channel carrying values of `T`: chunk size and alignment from `T` (alignment at least 64).
    pub fn typed<T: crate::ShmSafe>() -> Self {
        ChannelConfig {
            chunk_size: core::mem::size_of::<T>().max(1),
            alignment: core::mem::align_of::<T>().max(64).next_power_of_two(),
            type_info: Some(TypeInfo::of::<T>()),
            ..ChannelConfig::default()
        }
    }

    /// The memory this channel pins, and its waste against the payload, before creating anything.
    ///
    /// # Errors
    /// When the configuration is invalid (same checks as [`Publisher::create`](crate::Publisher::create)).
    pub fn footprint(&self) -> Result<Footprint, crate::CreateError> {
        let l = crate::layout::Layout::compute(
            self,
            crate::segment::huge_pages_wanted(self.huge_pages),
        )?;
        Ok(l.footprint())
    }

    /// How long a receiver spins before sleeping, if it sleeps at all.
    pub fn spin_budget(&self) -> Option<Duration> {
        match self.wakeup {
            WakeupPolicy::Spin => None,
            WakeupPolicy::Futex => Some(Duration::ZERO),
            WakeupPolicy::SpinThenFutex { spin_ns } => Some(Duration::from_nanos(spin_ns)),
        }
    }
}

/// The pinned memory of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes mapped, locked and prefaulted (the whole segment).
    pub pinned_bytes: u64,
    /// Bytes of payload capacity (`chunk_size × chunk_count`).
    pub payload_bytes: u64,
    /// `pinned_bytes - payload_bytes`: headers, rings, alignment padding.
    pub waste_bytes: u64,
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = if self.pinned_bytes == 0 {
            0.0
        } else {
            100.0 * self.waste_bytes as f64 / self.pinned_bytes as f64
        };
        write!(
            f,
            "{} pinned for {} of payload ({} or {pct:.1}% overhead)",
            human_bytes(self.pinned_bytes),
            human_bytes(self.payload_bytes),
            human_bytes(self.waste_bytes)
        )
    }
}

/// Formats a byte count with a binary unit.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Identity of a typed payload, checked when a typed subscriber opens the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    /// `core::any::type_name` (at most 127 bytes are stored).
    pub name: String,
    /// `size_of`.
    pub size: u64,
    /// `align_of`.
    pub align: u64,
}

impl TypeInfo {
    /// The identity of `T`.
    pub fn of<T>() -> Self {
        let mut name = core::any::type_name::<T>().to_string();
        let mut cut = name.len().min(127);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        TypeInfo {
            name,
            size: core::mem::size_of::<T>() as u64,
            align: core::mem::align_of::<T>() as u64,
        }
    }
}

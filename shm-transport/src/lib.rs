//! # shm-transport: zero-copy channels in pinned shared memory
//!
//! A *channel* is one POSIX shared-memory segment (`/dev/shm/rtfuse.<name>`, mode 0600) holding a
//! versioned header, a slab of fixed-size chunks (4096-byte aligned by default, so a GPU or DMA engine
//! can register it), and per subscriber two lock-free rings: descriptors publisher → subscriber and
//! returned chunks subscriber → publisher. The segment is `mlock`ed and prefaulted in every process,
//! so the data path never takes a page fault.
//!
//! - [`Publisher::loan`] gives a chunk to fill in place (a driver's "DMA" target);
//!   [`SampleMut::publish`] enqueues a small [`Descriptor`] to every subscriber.
//! - [`Subscriber::receive`] hands out a [`Sample`] (a read-only view of the chunk); dropping it
//!   returns the chunk. [`Subscriber::receive_timeout`] and [`wait_any`] block per the channel's
//!   [`WakeupPolicy`] (spin, futex, spin-then-futex).
//! - Overflow: [`OverflowPolicy::KeepLast`] drops the oldest undelivered sample (counted on both
//!   sides, visible as sequence gaps); [`OverflowPolicy::Reject`] hands the sample back.
//! - Liveness: per-party file locks that the kernel releases when a process dies; a monitor thread
//!   checks them (see [`liveness`](crate#liveness)). A dead subscriber's chunks are reclaimed at the
//!   publisher's next operation after detection (≤ 1 ms by default); after a publisher's death a
//!   subscriber reads every published sample, then gets [`ReceiveError::Disconnected`].
//! - Nothing read from shared memory is trusted: headers are validated against a recomputed layout,
//!   descriptors against the geometry, returns against the publisher's private ownership records.
//!   A subscriber slot whose rings are found damaged is set aside and the subscriber re-attaches in
//!   a fresh slot, so the stream goes on once the damage stops (see `PublisherStats::resynced`).
//!
//! ## Liveness
//! Byte 0 of the shm object carries the publisher's `F_OFD_SETLK` lock, byte `1 + i` subscriber
//! slot `i`'s. The kernel drops these locks with the last descriptor of the holder, whatever killed
//! it; the monitor thread tests them with `F_OFD_GETLK` every `RTFUSE_LIVENESS_PERIOD_US` (default
//! 1000) microseconds and raises flags the data path reads with one atomic load.
//!
//! ## Example
//! ```no_run
//! use shm_transport::{ChannelConfig, Publisher, Subscriber};
//! let mut publisher = Publisher::create("lib_example", &ChannelConfig::default())?;
//! let mut subscriber = Subscriber::open("lib_example")?;
//! let mut s = publisher.loan()?;
//! s.payload_mut()[0] = 42;
//! s.set_len(1);
//! s.publish().map_err(|e| e.to_string())?;
//! let sample = subscriber.receive()?.expect("published above");
//! assert_eq!(sample.payload(), &[42]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod ring;
mod sync;

#[cfg(not(loom))]
pub mod admin;
#[cfg(not(loom))]
mod config;
#[cfg(not(loom))]
mod descriptor;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod liveness;
#[cfg(not(loom))]
mod publisher;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod subscriber;
#[cfg(not(loom))]
mod wakeup;

#[cfg(not(loom))]
pub use config::{
    human_bytes, ChannelConfig, ExternalSlab, Footprint, HugePages, MemoryLock, OverflowPolicy,
    TypeInfo, WakeupPolicy,
};
#[cfg(not(loom))]
pub use descriptor::{Descriptor, DescriptorError};
#[cfg(not(loom))]
pub use error::{CreateError, LoanError, OpenError, PublishError, ReceiveError, TypeError};
#[cfg(not(loom))]
pub use layout::{LAYOUT_VERSION, MAX_SUBSCRIBERS};
#[cfg(not(loom))]
pub use publisher::{PublishInfo, Publisher, PublisherStats, SampleMut};
#[cfg(not(loom))]
pub use segment::{process_start_ticks, shm_name, validate_name, SHM_PREFIX};
#[cfg(not(loom))]
pub use subscriber::{wait_any, Sample, Subscriber, SubscriberOptions, SubscriberStats};

/// Types that may be placed in shared memory and read by another process.
///
/// # Safety
/// Implementors must be `#[repr(C)]` (or primitive), contain no pointers or references (offsets
/// only), no `Drop`, and be valid for **every** bit pattern (a peer may write anything): integers,
/// floats, arrays and `#[repr(C)]` structs of those without padding whose meaning depends on it.
pub unsafe trait ShmSafe: Copy + Send + 'static {}

macro_rules! shm_safe {
    ($($t:ty),*) => { $(
        // SAFETY: primitive numeric type: no pointers, valid for every bit pattern.
        unsafe impl ShmSafe for $t {}
    )* };
}
shm_safe!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
// SAFETY: an array of ShmSafe elements has no padding between them and is valid for any bits.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

/// CLOCK_MONOTONIC now, in nanoseconds (vDSO: no system call).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC is always supported.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

//! From a `[[channel]]` table to shm-transport's `ChannelConfig`, and the pinned memory a
//! deployment needs (computed by shm-transport's own layout, so the figure is what will be mapped).

use super::schema::{Channel, Deployment, MemoryLock, Overflow, Wakeup};
use shm_transport::{ChannelConfig, CreateError, Footprint};

/// The shm-transport configuration of a channel.
pub fn channel_config(ch: &Channel) -> ChannelConfig {
    ChannelConfig {
        chunk_size: usize::try_from(ch.chunk_size.get_ref().bytes()).unwrap_or(usize::MAX),
        chunk_count: *ch.chunk_count.get_ref(),
        ring_depth: *ch.ring_depth.get_ref(),
        max_subscribers: *ch.max_subscribers.get_ref(),
        alignment: usize::try_from(ch.alignment.get_ref().bytes()).unwrap_or(usize::MAX),
        // Drivers write their frame metadata into the user header: leave room for it.
        user_header_size: usize::try_from(ch.user_header_size.bytes())
            .unwrap_or(usize::MAX)
            .max(fusion::driver::meta::META_LEN),
        overflow: match ch.overflow {
            Overflow::KeepLast => shm_transport::OverflowPolicy::KeepLast,
            Overflow::Reject => shm_transport::OverflowPolicy::Reject,
        },
        wakeup: match ch.wakeup {
            Wakeup::Spin => shm_transport::WakeupPolicy::Spin,
            Wakeup::Futex => shm_transport::WakeupPolicy::Futex,
            Wakeup::SpinThenFutex => shm_transport::WakeupPolicy::SpinThenFutex {
                spin_ns: u64::from(ch.spin_us) * 1_000,
            },
        },
        memory_lock: match ch.memory_lock {
            MemoryLock::Required => shm_transport::MemoryLock::Required,
            MemoryLock::BestEffort => shm_transport::MemoryLock::BestEffort,
            MemoryLock::Off => shm_transport::MemoryLock::Off,
        },
        ..ChannelConfig::default()
    }
}

/// The segment footprint of one channel.
///
/// # Errors
/// When shm-transport rejects the geometry.
pub fn channel_footprint(ch: &Channel) -> Result<Footprint, CreateError> {
    channel_config(ch).footprint()
}

/// Pinned bytes per channel (name, bytes) and the total; a channel shm-transport rejects counts 0
/// (the config check reports it).
pub fn pinned_memory(dep: &Deployment) -> (Vec<(String, u64)>, u64) {
    let per: Vec<(String, u64)> = dep
        .channels
        .iter()
        .map(|c| {
            let bytes = channel_footprint(c).map_or(0, |f| f.pinned_bytes);
            (c.name.get_ref().clone(), bytes)
        })
        .collect();
    let total = per.iter().map(|(_, b)| *b).sum();
    (per, total)
}

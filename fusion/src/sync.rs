//! Time synchronisation of N message streams with the semantics of ROS 2 `message_filters`' C++ sync
//! policies ([`ExactTime`] from `sync_policies/exact_time.hpp`, [`ApproximateTime`] from
//! `sync_policies/approximate_time.hpp`, ros2/message_filters, rolling).
//!
//! Both are bounded and allocation-free: queues are `heapless` deques of capacity `Q` inside the value,
//! messages are generic handles `M` (an index into a slot table, a loaned sample, ...) that the policy
//! owns while it holds them and hands back exactly once, either inside a published set
//! ([`SyncEvent::Set`]) or as a drop ([`SyncEvent::Dropped`]), so a caller that returns shared-memory
//! chunks on both events never leaks one. `M` need not be `Clone`.
//!
//! Time stamps are `i64` nanoseconds (ROS `builtin_interfaces/Time` as nanoseconds).

mod approximate;
mod exact;

pub use approximate::ApproximateTime;
pub use exact::ExactTime;

/// A message handle with its header time stamp (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped<M> {
    /// Header stamp, nanoseconds.
    pub stamp: i64,
    /// The message handle.
    pub msg: M,
}

/// What a policy hands back to its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncEvent<M, const N: usize> {
    /// A synchronised set: element `i` came from stream `i`.
    Set([Stamped<M>; N]),
    /// A message the policy will never use (queue overflow, superseded, too far from any partner, or
    /// flushed by [`ApproximateTime::drain`] / [`ExactTime::drain`]).
    Dropped {
        /// Stream it came from.
        stream: usize,
        /// The message.
        msg: Stamped<M>,
    },
}

/// Why a policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `queue_size` must be in `1 ..= Q - 1` (one slot is needed for the message being added).
    #[error("queue size {queue_size} must be between 1 and {max} (the capacity Q minus one)")]
    QueueSize {
        /// Requested queue size.
        queue_size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A policy needs at least 2 streams (and at most what the caller's const `N` says).
    #[error("a synchroniser needs at least 2 streams, got {0}")]
    TooFewStreams(usize),
    /// A negative duration or age penalty, or a non-finite age penalty.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}

/// Why a message was refused by `add`; the message is handed back inside.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError<M> {
    /// `stream` is not below `N`.
    #[error("stream index {stream} out of range (the policy has {n} streams)")]
    NoSuchStream {
        /// The index given.
        stream: usize,
        /// The number of streams.
        n: usize,
        /// The message, given back.
        msg: Stamped<M>,
    },
    /// The stamp is older than the newest one already queued on this stream. message_filters assumes
    /// in-order arrival per topic (it only warns); we refuse such messages so the guarantees hold.
    #[error("stream {stream}: stamp {stamp} ns is older than the previous {previous} ns")]
    OutOfOrder {
        /// Stream index.
        stream: usize,
        /// The refused stamp.
        stamp: i64,
        /// The newest stamp seen on the stream.
        previous: i64,
        /// The message, given back.
        msg: Stamped<M>,
    },
}

impl<M> AddError<M> {
    /// Takes the refused message back out of the error.
    pub fn into_msg(self) -> Stamped<M> {
        match self {
            Self::NoSuchStream { msg, .. } | Self::OutOfOrder { msg, .. } => msg,
        }
    }
}

/// Checks the stream count `n` and a queue size against the capacity `q`.
fn check_sizes(n: usize, q: usize, queue_size: usize) -> Result<(), ConfigError> {
    if n < 2 {
        return Err(ConfigError::TooFewStreams(n));
    }
    if queue_size == 0 || queue_size + 1 > q {
        return Err(ConfigError::QueueSize {
            queue_size,
            max: q.saturating_sub(1),
        });
    }
    Ok(())
}

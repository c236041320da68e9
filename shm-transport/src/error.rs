//! Error types, one per operation.

use crate::SampleMut;

/// Creating a channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The channel name is not acceptable.
    #[error("invalid channel name: {0}")]
    InvalidName(String),
    /// The configuration is inconsistent.
    #[error("invalid channel configuration: {0}")]
    InvalidConfig(String),
    /// A live publisher already owns a channel of this name.
    #[error("channel {channel:?} already exists and its publisher (pid {pid}) is alive")]
    AlreadyExists {
        /// Channel name.
        channel: String,
        /// The live publisher's pid (0 if unknown).
        pid: u32,
    },
    /// `mlock` was refused.
    #[error(
        "cannot lock {needed} bytes of shared memory into RAM (RLIMIT_MEMLOCK soft limit is {} bytes): \
         {source}. Raise it with `ulimit -l unlimited` (or `memlock` in /etc/security/limits.conf, or \
         LimitMEMLOCK= in a systemd unit), run with CAP_IPC_LOCK, or set memory_lock = best-effort",
        fmt_limit(*limit)
    )]
    MemLock {
        /// Bytes the segment needs locked.
        needed: u64,
        /// The soft RLIMIT_MEMLOCK in bytes (`u64::MAX` = unlimited).
        limit: u64,
        /// The OS error.
        source: std::io::Error,
    },
    /// Huge pages were required but the kernel does not allow them for shared memory.
    #[error(
        "huge pages required but /sys/kernel/mm/transparent_hugepage/shmem_enabled does not allow them \
         (set it to `advise` or use huge_pages = if-available)"
    )]
    HugePagesUnavailable,
    /// An OS call failed.
    #[error("shared memory: {0}")]
    Io(#[from] std::io::Error),
}

fn fmt_limit(l: u64) -> String {
    if l == u64::MAX {
        "unlimited".into()
    } else {
        l.to_string()
    }
}

/// Opening a channel as a subscriber failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The channel name is not acceptable.
    #[error("invalid channel name: {0}")]
    InvalidName(String),
    /// No such channel (no publisher has created it yet).
    #[error("channel {0:?} does not exist (is its publisher running?)")]
    NotFound(String),
    /// The publisher has not finished creating it; retry shortly.
    #[error("channel {0:?} is still being created; retry")]
    NotReady(String),
    /// The segment belongs to another user.
    #[error("channel {channel:?} belongs to another user (uid {uid:?}); segments are private (mode 0600)")]
    ForeignOwner {
        /// Channel name.
        channel: String,
        /// Owner uid when known.
        uid: Option<u32>,
    },
    /// Another layout version, or a header that does not validate.
    #[error("channel {channel:?} is incompatible: {reason}")]
    Incompatible {
        /// Channel name.
        channel: String,
        /// What did not match.
        reason: String,
    },
    /// The typed subscriber's type differs from the channel's.
    #[error("channel carries {found}, not {expected}")]
    TypeMismatch {
        /// The channel's type.
        found: String,
        /// The subscriber's type.
        expected: String,
    },
    /// All subscriber slots are taken by live subscribers.
    #[error("channel {0:?} has no free subscriber slot (raise max_subscribers)")]
    NoFreeSlot(String),
    /// `mlock` refused under `MemoryLock::Required`.
    #[error("{0}")]
    MemLock(String),
    /// An OS call failed.
    #[error("shared memory: {0}")]
    Io(#[from] std::io::Error),
}

/// `Publisher::loan` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoanError {
    /// Every chunk is in flight or held by subscribers.
    #[error("no free chunk: all are in flight or held by subscribers (raise chunk_count)")]
    OutOfChunks,
}

/// `SampleMut::publish` failed; the sample comes back.
#[non_exhaustive]
pub enum PublishError<'a> {
    /// Under `OverflowPolicy::Reject`, a subscriber's ring is full.
    Full(SampleMut<'a>),
}

impl std::fmt::Debug for PublishError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl std::fmt::Display for PublishError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Full(_) => {
                f.write_str("a subscriber's descriptor ring is full (overflow policy: reject)")
            }
        }
    }
}

impl std::error::Error for PublishError<'_> {}

/// `Subscriber::receive` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The publisher closed or died, and every sample it published has been received.
    #[error("publisher disconnected; all its samples were received")]
    Disconnected,
}

/// Reading a typed value from a sample failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// The sample's length is not the type's size.
    #[error("sample has {len} bytes, the type needs {size}")]
    Size {
        /// Sample length.
        len: u64,
        /// Type size.
        size: u64,
    },
    /// The payload is not aligned for the type (use `read`, which copies).
    #[error("payload not aligned to {0}")]
    Alignment(usize),
}

//! Error types of the bridge: one enum for the backends and the bridge front, one for profiles.

use crate::model::Path;

/// Errors from a [`Backend`](crate::Backend) or the [`GpuBridge`](crate::GpuBridge).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// No usable CUDA driver or device; the message says what was missing.
    #[error("CUDA unavailable: {0}")]
    CudaUnavailable(String),
    /// A CUDA driver call failed.
    #[error("CUDA call {call} failed: {message}")]
    Cuda {
        /// The driver call (e.g. `cuMemHostRegister_v2`).
        call: &'static str,
        /// The driver's error name and string.
        message: String,
    },
    /// A slab region was null, empty or otherwise unusable.
    #[error("invalid slab region: {0}")]
    InvalidRegion(String),
    /// An id (slab, device buffer, stream, ticket) that this backend never issued or already retired.
    #[error("unknown {kind} id {id}")]
    UnknownId {
        /// What the id names.
        kind: &'static str,
        /// The id.
        id: u64,
    },
    /// A transfer's byte range lies outside its slab or destination buffer.
    #[error("range {offset}..{offset}+{len} is outside the {what} of {capacity} bytes")]
    OutOfBounds {
        /// Which buffer.
        what: &'static str,
        /// Start of the range.
        offset: usize,
        /// Length of the range.
        len: usize,
        /// Capacity of the buffer.
        capacity: usize,
    },
    /// The path cannot be used for this slab or on this device (e.g. peer DMA from an
    /// unregistered slab, or GPUDirect RDMA on a GPU that does not report it).
    #[error("path {path} unavailable: {reason}")]
    PathUnavailable {
        /// The path asked for.
        path: Path,
        /// Why it cannot be used.
        reason: String,
    },
    /// The bytes that arrived differ from the bytes that were sent: a slab or staging slot was
    /// overwritten before its transfer completed.
    #[error("integrity check failed for transfer {seq}: crc32 sent {sent:#010x}, arrived {arrived:#010x}")]
    Integrity {
        /// Transfer sequence number.
        seq: u64,
        /// CRC-32 of the source at submission.
        sent: u32,
        /// CRC-32 of the destination at completion.
        arrived: u32,
    },
    /// A slab still has transfers in flight and cannot be unregistered yet.
    #[error("slab {0} still has transfers in flight")]
    SlabBusy(u64),
    /// Host memory could not be mapped or locked.
    #[error("host memory: {0}")]
    HostMemory(String),
    /// A profile could not be read, parsed or validated.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// Errors from loading, saving or validating a cost-model [`Profile`](crate::Profile).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Reading or writing the file failed.
    #[error("profile file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON did not parse or did not match the schema.
    #[error("profile JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A value is out of range (non-finite, negative, zero bandwidth, wrong version).
    #[error("profile field {field}: {problem}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Converts a cudarc driver error into a [`BridgeError::Cuda`] naming the call.
pub(crate) fn cuda_err(call: &'static str, e: cudarc::driver::DriverError) -> BridgeError {
    let name = e
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    let text = e
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    BridgeError::Cuda {
        call,
        message: format!("{name}: {text}"),
    }
}

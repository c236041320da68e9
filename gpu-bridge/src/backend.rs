//! The [`Backend`] trait and the types that cross it: slab regions (the only thing the bridge
//! takes from shm-transport), device buffers, transfer requests, tickets and reports.

use std::ptr::NonNull;

use serde::Serialize;

use crate::error::BridgeError;
use crate::model::{Capabilities, Path, Profile, Provenance};

/// A byte region of host memory holding a slab: a base pointer and a length. This is all the
/// bridge needs from shm-transport.
#[derive(Debug, Clone, Copy)]
pub struct SlabRegion {
    /// Base of the region; valid for `len` bytes for as long as the region is registered.
    ptr: NonNull<u8>,
    /// Length in bytes (> 0).
    len: usize,
}

// SAFETY: the region is a plain address range; the `from_raw` contract makes the caller keep
// it mapped while registered, and the bridge only reads it.
unsafe impl Send for SlabRegion {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for SlabRegion {}

impl SlabRegion {
    /// Describes `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be readable, mapped memory that stays mapped until the slab is
    /// unregistered from every backend it was registered with (or the backend is dropped).
    ///
    /// # Errors
    /// [`BridgeError::InvalidRegion`] for a null pointer or zero length.
    pub unsafe fn from_raw(ptr: *const u8, len: usize) -> Result<Self, BridgeError> {
        let ptr = NonNull::new(ptr.cast_mut())
            .ok_or_else(|| BridgeError::InvalidRegion("null base pointer".into()))?;
        if len == 0 {
            return Err(BridgeError::InvalidRegion("zero length".into()));
        }
        if (ptr.as_ptr() as usize).checked_add(len).is_none() {
            return Err(BridgeError::InvalidRegion(
                "range wraps the address space".into(),
            ));
        }
        Ok(SlabRegion { ptr, len })
    }

    /// A region over memory that lives forever.
    ///
    /// # Errors
    /// [`BridgeError::InvalidRegion`] for an empty slice.
    pub fn from_static(bytes: &'static [u8]) -> Result<Self, BridgeError> {
        // SAFETY: a 'static slice is readable and mapped forever.
        unsafe { Self::from_raw(bytes.as_ptr(), bytes.len()) }
    }

    /// Base pointer.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (a region has at least one byte).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bounds-checks `offset..offset+len` against the region.
    ///
    /// # Errors
    /// [`BridgeError::OutOfBounds`].
    pub fn check(&self, offset: usize, len: usize) -> Result<(), BridgeError> {
        check_range("slab", offset, len, self.len)
    }

    /// The bytes `offset..offset+len`.
    ///
    /// # Safety
    /// The range must have passed [`check`](Self::check), and nobody may write it while the
    /// returned slice lives (the chunk is owned by the consumer during a transfer).
    pub(crate) unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: in bounds by the caller's check; mapped by the `from_raw` contract; not
        // written concurrently by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }
}

/// Bounds check shared by slabs and device buffers.
pub(crate) fn check_range(
    what: &'static str,
    offset: usize,
    len: usize,
    capacity: usize,
) -> Result<(), BridgeError> {
    match offset.checked_add(len) {
        Some(end) if end <= capacity && len > 0 => Ok(()),
        _ => Err(BridgeError::OutOfBounds {
            what,
            offset,
            len,
            capacity,
        }),
    }
}

/// How a slab is handed to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterMode {
    /// Register with the driver (`cuMemHostRegister`, DEVICEMAP | PORTABLE): peer paths usable.
    Pin,
    /// Track only (memory is at most `mlock`ed): bounce and pageable paths.
    TrackOnly,
}

/// Id of a slab known to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SlabId(pub u64);

/// Id of a device buffer owned by a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DeviceBufferId(pub u64);

/// Result of handing a slab to a backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlabRegistration {
    /// The slab's id.
    pub id: SlabId,
    /// Whether the slab is registered with the driver (peer paths usable).
    pub registered: bool,
    /// Time the registration took, in ns (0 for track-only).
    pub cost_ns: f64,
    /// Whether `cost_ns` was measured or modeled.
    pub provenance: Provenance,
}

/// One transfer: `len` bytes at `offset` in a slab, to `dst_offset` in a device buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRequest {
    /// The path to use.
    pub path: Path,
    /// Source slab.
    pub slab: SlabId,
    /// Byte offset in the slab.
    pub offset: usize,
    /// Bytes to move (> 0).
    pub len: usize,
    /// Destination device buffer.
    pub dst: DeviceBufferId,
    /// Byte offset in the destination.
    pub dst_offset: usize,
}

/// Handle of a submitted transfer; transfers complete in submission order per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// What happened to one completed transfer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TransferReport {
    /// Sequence number (the ticket).
    pub seq: u64,
    /// Path taken.
    pub path: Path,
    /// Bytes moved.
    pub bytes: usize,
    /// CPU time spent in `submit` (including the bounce CPU copy), measured.
    pub submit_ns: u64,
    /// Of which the bounce CPU copy, measured (0 on other paths).
    pub cpu_copy_ns: u64,
    /// Device-link time from submission to the completed event.
    pub link_ns: u64,
    /// Whether `link_ns` was measured (CUDA events) or modeled (host backend).
    pub link_provenance: Provenance,
}

/// Which backend is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A real GPU through the CUDA driver.
    Cuda,
    /// No GPU: CPU parts real, PCIe modeled.
    Host,
}

/// Options for the start-up calibration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationOptions {
    /// Frame sizes to measure (bytes).
    pub sizes: Vec<usize>,
    /// Repetitions per size (the median is used).
    pub reps: usize,
}

impl Default for CalibrationOptions {
    /// Short: two sizes that pin setup and bandwidth, 9 repetitions each.
    fn default() -> Self {
        CalibrationOptions {
            sizes: vec![64 << 10, 4 << 20],
            reps: 9,
        }
    }
}

/// A way of moving slab bytes to GPU memory.
///
/// Transfers complete in submission order. A slab chunk must stay untouched until its
/// transfer's report came back from [`poll`](Backend::poll) or [`wait`](Backend::wait), except on
/// paths where [`Path::holds_slab_until_event`] is false (bounce: the chunk may be reused as soon
/// as `submit` returned).
pub trait Backend: Send {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// A human description (GPU name and driver, or "host backend").
    fn describe(&self) -> String;
    /// Device capabilities relevant to peer paths.
    fn capabilities(&self) -> Capabilities;
    /// Hands a slab to the backend (the registration hook).
    ///
    /// # Errors
    /// Driver errors from registration.
    fn register_slab(
        &mut self,
        region: SlabRegion,
        mode: RegisterMode,
    ) -> Result<SlabRegistration, BridgeError>;
    /// Forgets a slab (unregisters it from the driver).
    ///
    /// # Errors
    /// [`BridgeError::SlabBusy`] while transfers from it are in flight; unknown id.
    fn unregister_slab(&mut self, id: SlabId) -> Result<(), BridgeError>;
    /// Allocates at least `slots` (≥ 2) pinned staging slots of at least `bytes` each for
    /// the bounce path. Call at start-up, never on the real-time path.
    ///
    /// # Errors
    /// Allocation failures; resizing while bounce transfers are in flight.
    fn ensure_staging(&mut self, slots: usize, bytes: usize) -> Result<(), BridgeError>;
    /// Allocates a device buffer.
    ///
    /// # Errors
    /// Allocation failures.
    fn alloc_device(&mut self, bytes: usize) -> Result<DeviceBufferId, BridgeError>;
    /// Starts a transfer. On the bounce path this waits for the staging slot's previous event
    /// if every slot is in flight.
    ///
    /// # Errors
    /// Unknown ids, out-of-bounds ranges, unavailable paths, driver errors.
    fn submit(&mut self, req: &TransferRequest) -> Result<Ticket, BridgeError>;
    /// Non-blocking: the report if the transfer's event has completed.
    ///
    /// # Errors
    /// Unknown ticket, driver errors, [`BridgeError::Integrity`].
    fn poll(&mut self, ticket: Ticket) -> Result<Option<TransferReport>, BridgeError>;
    /// Blocks until the transfer's event completed.
    ///
    /// # Errors
    /// As [`poll`](Backend::poll).
    fn wait(&mut self, ticket: Ticket) -> Result<TransferReport, BridgeError>;
    /// Copies device bytes back to the host (checks and tests; waits for in-flight work).
    ///
    /// # Errors
    /// Unknown buffer, out of bounds, driver errors.
    fn read_device(
        &mut self,
        buf: DeviceBufferId,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), BridgeError>;
    /// Runs the short start-up calibration and returns the resulting profile.
    ///
    /// # Errors
    /// Allocation or driver errors during the calibration.
    fn calibrate(&mut self, opts: &CalibrationOptions) -> Result<Profile, BridgeError>;
}

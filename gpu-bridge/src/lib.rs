//! gpu-bridge: moves sensor frames from pinned shared-memory slabs to GPU memory, choosing per
//! stream between peer-to-peer paths (DMA straight from the registered slab, or a kernel
//! reading it zero-copy) and a pinned bounce ring, from a measured cost model
//! ΔL = wire(size) + setup + sync, where the wire time is `size / bandwidth` or, for a link
//! whose cost per byte changes with size (the driver-staged pageable path), two segments.
//!
//! - [`model`]: paths, the cost model, JSON profiles (every number says `measured` or
//!   `modeled`); [`fit`]: fitting them to calibration samples.
//! - [`policy`]: the per-stream choice and its one-line explanation.
//! - [`Backend`]: [`CudaBackend`] on cudarc's driver API (loaded at run time; probed first, so
//!   a machine without libcuda never crashes) and [`HostBackend`] (CPU parts real, PCIe
//!   modeled).
//! - [`GpuBridge`]: the front that a node uses; it takes from shm-transport only a slab's
//!   base and length ([`GpuBridge::register_slab`] is the registration hook) and hands each
//!   chunk back when it may be released.
//!
//! # Examples
//! ```
//! use gpu_bridge::{BridgeOptions, GpuBridge, PageBuffer, RegisterMode, Source, StreamSpec};
//!
//! let mut bridge = GpuBridge::open(&BridgeOptions { calibrate: false, ..Default::default() })?;
//! let mut slab = PageBuffer::new(1 << 20, false)?;
//! slab.as_mut_slice()[..4].copy_from_slice(b"scan");
//! // SAFETY: `slab` stays mapped until `unregister_slab` below has returned.
//! let id = unsafe { bridge.register_slab(slab.as_ptr(), slab.len(), RegisterMode::Pin)? };
//! let (stream, choice) = bridge.add_stream(&StreamSpec {
//!     name: "lidar".into(),
//!     frame_bytes: 64 << 10,
//!     slab: id,
//!     source: Source::HostSlab,
//!     forced: None,
//! })?;
//! println!("{}", choice.explain());
//! bridge.send(stream, 0, 64 << 10, 7)?;
//! let mut released = Vec::new();
//! bridge.drain(stream, |token| released.push(token))?;
//! assert_eq!(released, [7]);
//! bridge.unregister_slab(id)?;
//! # Ok::<(), gpu_bridge::BridgeError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backend;
mod book;
pub mod bridge;
pub mod calibrate;
pub mod cuda;
pub mod cuda_info;
pub mod error;
pub mod fit;
pub mod host;
pub mod hostmem;
pub mod model;
pub mod policy;
pub mod ptx;
mod staging;

pub use backend::{
    Backend, BackendKind, CalibrationOptions, DeviceBufferId, RegisterMode, SlabId, SlabRegion,
    SlabRegistration, Ticket, TransferReport, TransferRequest,
};
pub use bridge::{BridgeOptions, GpuBridge, SendReceipt, StreamHandle, StreamSpec};
pub use cuda::CudaBackend;
pub use cuda_info::{probe, DeviceInfo};
pub use error::{BridgeError, ProfileError};
pub use host::HostBackend;
pub use hostmem::PageBuffer;
pub use model::{Capabilities, Estimate, Knee, LinkCost, Path, Profile, Provenance};
pub use policy::{Choice, ChoiceSummary, Policy, Source, StreamConfig};

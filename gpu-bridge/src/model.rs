//! The cost model: ΔL = wire(size) + setup + synchronisation, per path.
//!
//! A link's wire time is `size / bandwidth`, or, for a link whose cost per byte changes with
//! size, two segments joined at a [`Knee`]: the first `knee.bytes` bytes at one bandwidth, the
//! rest at another. The pageable path needs this: the driver stages pageable copies through its
//! own pinned buffers, and on an H200 (2026-11-26) that costs ~4 GB/s up to 64 KiB but ~16 GB/s
//! beyond, which one straight line fitted to 4 KiB … 16 MiB underestimates by half at 64 KiB.
//! Both segments have positive bandwidth, so ΔL stays strictly increasing in size.
//!
//! Units: bandwidth in GB/s (10⁹ bytes per second, which is exactly one byte per nanosecond),
//! times in nanoseconds. Every number carries a [`Provenance`]: `measured` when a calibration on
//! this machine produced it, `modeled` when it comes from the documented default profile
//! ([`Profile::pcie4_x16_default`]) or was derived from modeled numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ProfileError;
pub use crate::fit::{fit_link, fit_link_segmented};

/// The current profile file format version.
/// Version 2 added the optional [`Knee`] per link; version 1 files (no knees) still load.
pub const PROFILE_FORMAT_VERSION: u32 = 2;

/// One way a frame can reach GPU memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// Peer-to-peer DMA: `cuMemcpyHtoDAsync` straight from the registered slab, no CPU copy.
    PeerDma,
    /// Peer-to-peer zero-copy: a kernel reads the registered, device-mapped slab over PCIe
    /// (`cuMemHostGetDevicePointer`).
    PeerZeroCopy,
    /// Bounce: CPU copy slab → pinned staging slot (not write-combined), then async H2D.
    Bounce,
    /// `cuMemcpyHtoDAsync` from a slab that is only `mlock`ed, not registered: the driver
    /// stages it through its own pinned buffers.
    Pageable,
    /// A third-party device (NIC, capture card) writes GPU memory directly over GPUDirect RDMA
    /// or dma-buf. Only represented in the model; available when the GPU reports support and
    /// the stream's source is such a device.
    ThirdPartyPeer,
}

impl Path {
    /// Every path, in a fixed order (ties in the policy go to the earlier one).
    pub const ALL: [Path; 5] = [
        Path::PeerDma,
        Path::PeerZeroCopy,
        Path::Bounce,
        Path::Pageable,
        Path::ThirdPartyPeer,
    ];

    /// The kebab-case name used in configs, logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Path::PeerDma => "peer-dma",
            Path::PeerZeroCopy => "peer-zero-copy",
            Path::Bounce => "bounce",
            Path::Pageable => "pageable",
            Path::ThirdPartyPeer => "third-party-peer",
        }
    }

    /// Whether the path reads the slab through a `cuMemHostRegister` registration.
    pub fn needs_registered_slab(self) -> bool {
        matches!(self, Path::PeerDma | Path::PeerZeroCopy)
    }

    /// Whether the path must keep the slab chunk until the transfer's event completed. The
    /// bounce path reads the slab only during its synchronous CPU copy, so its chunk may be
    /// released right after submission (the *staging slot* then waits for the event).
    pub fn holds_slab_until_event(self) -> bool {
        !matches!(self, Path::Bounce)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Path {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Path::ALL.iter().map(|p| p.name()).collect();
                format!("unknown path {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// Where a number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Measured on this machine.
    Measured,
    /// Taken from a documented default or derived from modeled numbers.
    Modeled,
}

impl Provenance {
    /// `Measured` only if both are measured.
    pub fn and(self, other: Provenance) -> Provenance {
        if self == Provenance::Measured && other == Provenance::Measured {
            Provenance::Measured
        } else {
            Provenance::Modeled
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provenance::Measured => "measured",
            Provenance::Modeled => "modeled",
        })
    }
}

/// Where a two-segment link changes its cost per byte.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The first `bytes` bytes of every transfer move at `head_bandwidth_gbps`; > 0.
    pub bytes: u64,
    /// Bandwidth of the first segment in GB/s; > 0 and finite.
    pub head_bandwidth_gbps: f64,
}

/// Bandwidth and fixed setup cost of one link (a DMA engine, a kernel, a CPU copy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkCost {
    /// Sustained bandwidth in GB/s (10⁹ B/s); > 0 and finite. With a [`Knee`], the bandwidth of
    /// the bytes past it.
    pub bandwidth_gbps: f64,
    /// Fixed cost per transfer in ns (API call, descriptor setup, kernel launch); ≥ 0.
    pub setup_ns: f64,
    /// `None`: one segment, `wire = bytes / bandwidth`. `Some`: two segments (see [`Knee`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Knee>,
    /// Where the numbers came from.
    pub provenance: Provenance,
}

impl LinkCost {
    /// A modeled one-segment link.
    pub const fn modeled(bandwidth_gbps: f64, setup_ns: f64) -> Self {
        LinkCost {
            bandwidth_gbps,
            setup_ns,
            knee: None,
            provenance: Provenance::Modeled,
        }
    }

    /// Time on the wire alone in ns: `bytes / bandwidth`, or with a knee
    /// `min(bytes, knee) / head_bandwidth + max(bytes − knee, 0) / bandwidth`.
    pub fn wire_ns(&self, bytes: u64) -> f64 {
        self.wire_at(bytes as f64)
    }

    /// [`wire_ns`](Self::wire_ns) at a fractional size (for crossover arithmetic).
    pub fn wire_at(&self, bytes: f64) -> f64 {
        match self.knee {
            None => bytes / self.bandwidth_gbps,
            Some(k) => {
                let head = bytes.min(k.bytes as f64);
                head / k.head_bandwidth_gbps + (bytes - head) / self.bandwidth_gbps
            }
        }
    }

    /// ns per byte of the segment that starts at `bytes` (the slope just past it).
    pub fn ns_per_byte_after(&self, bytes: f64) -> f64 {
        match self.knee {
            Some(k) if bytes < k.bytes as f64 => 1.0 / k.head_bandwidth_gbps,
            _ => 1.0 / self.bandwidth_gbps,
        }
    }

    /// `wire + setup` in ns.
    pub fn transfer_ns(&self, bytes: u64) -> f64 {
        self.wire_ns(bytes) + self.setup_ns
    }

    fn validate(&self, field: &str) -> Result<(), ProfileError> {
        if !(self.bandwidth_gbps.is_finite() && self.bandwidth_gbps > 0.0) {
            return Err(invalid(
                field,
                format!("bandwidth_gbps must be > 0, got {}", self.bandwidth_gbps),
            ));
        }
        if let Some(k) = self.knee {
            if !(k.head_bandwidth_gbps.is_finite() && k.head_bandwidth_gbps > 0.0) {
                return Err(invalid(
                    field,
                    format!(
                        "knee.head_bandwidth_gbps must be > 0, got {}",
                        k.head_bandwidth_gbps
                    ),
                ));
            }
            if k.bytes == 0 {
                return Err(invalid(field, "knee.bytes must be > 0".to_string()));
            }
        }
        check_ns(&format!("{field}.setup_ns"), self.setup_ns)
    }
}

/// One-time cost of `cuMemHostRegister` for a slab: `fixed + ns_per_mib × MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegistrationCost {
    /// Fixed cost per registration in ns.
    pub fixed_ns: f64,
    /// Cost per MiB registered in ns (page pinning and IOMMU mapping).
    pub ns_per_mib: f64,
    /// Where the numbers came from.
    pub provenance: Provenance,
}

impl RegistrationCost {
    /// Predicted cost of registering `bytes`.
    pub fn cost_ns(&self, bytes: u64) -> f64 {
        self.fixed_ns + self.ns_per_mib * bytes as f64 / (1024.0 * 1024.0)
    }
}

/// Synchronisation cost: recording an event and observing its completion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyncCost {
    /// ns per transfer.
    pub ns: f64,
    /// Where the number came from.
    pub provenance: Provenance,
}

/// What the GPU reports about peer access (device attributes), or `false` everywhere on the
/// host backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// `CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY`: kernels can read mapped host memory.
    pub can_map_host_memory: bool,
    /// `CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED`.
    pub gpudirect_rdma: bool,
    /// `CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED`.
    pub dma_buf: bool,
    /// True when these flags were read from a real device, false when assumed.
    pub detected: bool,
}

/// A complete cost model, loadable from and savable to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Must equal [`PROFILE_FORMAT_VERSION`].
    pub format_version: u32,
    /// Human label: the GPU name and link, or the default profile's name.
    pub label: String,
    /// CPU copy slab → staging buffer (bounce path, first leg).
    pub host_copy: LinkCost,
    /// DMA staging buffer → device (bounce path, second leg).
    pub bounce_dma: LinkCost,
    /// DMA registered slab → device.
    pub peer_dma: LinkCost,
    /// Kernel reads of mapped registered memory.
    pub zero_copy: LinkCost,
    /// DMA from unregistered (mlock-only) memory, staged by the driver.
    pub pageable: LinkCost,
    /// Third-party peer writing GPU memory (GPUDirect RDMA / dma-buf).
    pub third_party: LinkCost,
    /// Event record + completion observed, per transfer.
    pub sync: SyncCost,
    /// One-time cost of registering a slab.
    pub registration: RegistrationCost,
    /// Device capabilities.
    pub capabilities: Capabilities,
}

/// A ΔL prediction for one path and size, with its terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The path.
    pub path: Path,
    /// Frame size in bytes.
    pub bytes: u64,
    /// CPU copy time (bounce only; 0 otherwise), including its setup.
    pub host_copy_ns: f64,
    /// `bytes / bandwidth` of the device link.
    pub wire_ns: f64,
    /// Fixed setup of the device link.
    pub setup_ns: f64,
    /// Synchronisation.
    pub sync_ns: f64,
    /// For a peer-device source on a host path: the device → host-slab leg the frame takes
    /// first (modeled with the third-party link); 0 otherwise.
    pub ingress_ns: f64,
    /// `Measured` only if every term is measured.
    pub provenance: Provenance,
}

impl Estimate {
    /// ΔL in ns: the sum of the terms.
    pub fn total_ns(&self) -> f64 {
        self.ingress_ns + self.host_copy_ns + self.wire_ns + self.setup_ns + self.sync_ns
    }
}

impl Profile {
    /// The documented default: PCIe 4.0 x16 (31.5 GB/s raw, ~25 GB/s achieved by pinned H2D
    /// copies), a CPU copy at 10 GB/s, ~6 µs per async copy call, ~5 µs per kernel launch,
    /// ~2 µs per event synchronisation, pageable copies at 10 GB/s with ~10 µs setup, slab
    /// registration at 20 µs + 40 µs/MiB. Every number is `modeled`; no capabilities.
    pub fn pcie4_x16_default() -> Self {
        Profile {
            format_version: PROFILE_FORMAT_VERSION,
            label: "default: PCIe 4.0 x16 (modeled)".to_string(),
            host_copy: LinkCost::modeled(10.0, 200.0),
            bounce_dma: LinkCost::modeled(25.0, 6_000.0),
            peer_dma: LinkCost::modeled(25.0, 6_000.0),
            zero_copy: LinkCost::modeled(20.0, 5_000.0),
            pageable: LinkCost::modeled(10.0, 10_000.0),
            third_party: LinkCost::modeled(20.0, 3_000.0),
            sync: SyncCost {
                ns: 2_000.0,
                provenance: Provenance::Modeled,
            },
            registration: RegistrationCost {
                fixed_ns: 20_000.0,
                ns_per_mib: 40_000.0,
                provenance: Provenance::Modeled,
            },
            capabilities: Capabilities::default(),
        }
    }

    /// The link cost that carries `path` to the device.
    pub fn link(&self, path: Path) -> &LinkCost {
        match path {
            Path::PeerDma => &self.peer_dma,
            Path::PeerZeroCopy => &self.zero_copy,
            Path::Bounce => &self.bounce_dma,
            Path::Pageable => &self.pageable,
            Path::ThirdPartyPeer => &self.third_party,
        }
    }

    /// Mutable access to the link cost of `path`.
    pub fn link_mut(&mut self, path: Path) -> &mut LinkCost {
        match path {
            Path::PeerDma => &mut self.peer_dma,
            Path::PeerZeroCopy => &mut self.zero_copy,
            Path::Bounce => &mut self.bounce_dma,
            Path::Pageable => &mut self.pageable,
            Path::ThirdPartyPeer => &mut self.third_party,
        }
    }

    /// Predicts ΔL for moving `bytes` over `path`.
    ///
    /// # Examples
    /// ```
    /// use gpu_bridge::{Path, Profile};
    ///
    /// let e = Profile::pcie4_x16_default().estimate(Path::Bounce, 2_500_000);
    /// assert_eq!(e.wire_ns.round(), 100_000.0); // the DMA leg at 25 GB/s
    /// assert!(e.total_ns() > e.wire_ns + e.host_copy_ns); // plus setup and sync
    /// ```
    pub fn estimate(&self, path: Path, bytes: u64) -> Estimate {
        let link = self.link(path);
        let (host_copy_ns, mut provenance) = if path == Path::Bounce {
            (self.host_copy.transfer_ns(bytes), self.host_copy.provenance)
        } else {
            (0.0, Provenance::Measured)
        };
        provenance = provenance.and(link.provenance).and(self.sync.provenance);
        Estimate {
            path,
            bytes,
            host_copy_ns,
            wire_ns: link.wire_ns(bytes),
            setup_ns: link.setup_ns,
            sync_ns: self.sync.ns,
            ingress_ns: 0.0,
            provenance,
        }
    }

    /// Like [`estimate`](Self::estimate), but for a frame that a third-party peer device
    /// produces: every path except [`Path::ThirdPartyPeer`] first moves it into the host slab
    /// (the ingress leg, modeled with the third-party link's cost), so the frame crosses PCIe
    /// twice.
    pub fn estimate_from_peer(&self, path: Path, bytes: u64) -> Estimate {
        let mut e = self.estimate(path, bytes);
        if path != Path::ThirdPartyPeer {
            e.ingress_ns = self.third_party.transfer_ns(bytes);
            e.provenance = e.provenance.and(self.third_party.provenance);
        }
        e
    }

    /// Checks every number; a loaded file is untrusted input.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if !(1..=PROFILE_FORMAT_VERSION).contains(&self.format_version) {
            return Err(invalid(
                "format_version",
                format!(
                    "expected 1 … {PROFILE_FORMAT_VERSION}, got {}",
                    self.format_version
                ),
            ));
        }
        self.host_copy.validate("host_copy")?;
        for path in Path::ALL {
            self.link(path).validate(path.name())?;
        }
        check_ns("sync.ns", self.sync.ns)?;
        check_ns("registration.fixed_ns", self.registration.fixed_ns)?;
        check_ns("registration.ns_per_mib", self.registration.ns_per_mib)
    }

    /// Parses and validates a JSON profile (format 1 or 2; a format-1 file has no knees and
    /// means exactly what it meant before).
    ///
    /// # Errors
    /// [`ProfileError::Json`] or [`ProfileError::Invalid`].
    pub fn from_json(text: &str) -> Result<Self, ProfileError> {
        let p: Profile = serde_json::from_str(text)?;
        p.validate()?;
        Ok(p)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Loads and validates a profile file.
    ///
    /// # Errors
    /// [`ProfileError::Io`], [`ProfileError::Json`] or [`ProfileError::Invalid`].
    pub fn load(path: &std::path::Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Writes the profile as JSON (via a temporary file and rename, so a reader never sees
    /// half a profile).
    ///
    /// # Errors
    /// [`ProfileError::Io`].
    pub fn save(&self, path: &std::path::Path) -> Result<(), ProfileError> {
        let io = |source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn invalid(field: &str, problem: String) -> ProfileError {
    ProfileError::Invalid {
        field: field.to_string(),
        problem,
    }
}

fn check_ns(field: &str, v: f64) -> Result<(), ProfileError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("must be finite and >= 0, got {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_round_trip() {
        for p in Path::ALL {
            assert_eq!(p.name().parse::<Path>(), Ok(p));
        }
        assert!("warp-drive"
            .parse::<Path>()
            .unwrap_err()
            .contains("peer-dma"));
    }
}

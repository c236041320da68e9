//! Probing for a GPU without ever letting a missing driver crash the process, and what the
//! probe reports: name, driver version, PCIe link, and the peer-access attributes.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cudarc::driver::result;
use cudarc::driver::sys::{self, CUdevice_attribute_enum as Attr};
use serde::Serialize;

use crate::error::{cuda_err, BridgeError};
use crate::model::Capabilities;

/// The PCIe link as Linux reports it in sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcieLink {
    /// e.g. "16.0 GT/s PCIe".
    pub current_speed: String,
    /// e.g. "16".
    pub current_width: String,
    /// Maximum speed the device supports.
    pub max_speed: String,
    /// Maximum width.
    pub max_width: String,
}

/// What [`probe`] found about one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceInfo {
    /// Device ordinal.
    pub ordinal: usize,
    /// Number of CUDA devices.
    pub device_count: i32,
    /// Device name.
    pub name: String,
    /// Driver API version, e.g. "13.0".
    pub driver_version: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub multiprocessors: i32,
    /// Copy engines that can overlap with kernels.
    pub async_engines: i32,
    /// PCI address "dddd:bb:dd.f".
    pub pci_bus_id: String,
    /// Link speed and width from sysfs, if readable.
    pub pcie: Option<PcieLink>,
    /// Peer-access attributes.
    pub capabilities: Capabilities,
}

/// Checks for libcuda, initialises the driver and reads device `ordinal`'s properties.
/// Never panics: a missing library, a failing `cuInit`, zero devices or a panic inside cudarc
/// all become [`BridgeError::CudaUnavailable`] with a message saying which.
///
/// # Errors
/// [`BridgeError::CudaUnavailable`], or a driver error reading attributes.
pub fn probe(ordinal: usize) -> Result<DeviceInfo, BridgeError> {
    // SAFETY: only tries to dlopen the candidate library names.
    if !unsafe { sys::is_culib_present() } {
        return Err(BridgeError::CudaUnavailable(
            "libcuda.so (the NVIDIA driver library) was not found; is an NVIDIA driver installed?"
                .into(),
        ));
    }
    match catch_unwind(AssertUnwindSafe(|| probe_inner(ordinal))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(BridgeError::CudaUnavailable(format!(
                "the CUDA driver library is incomplete: {msg}"
            )))
        }
    }
}

fn probe_inner(ordinal: usize) -> Result<DeviceInfo, BridgeError> {
    result::init().map_err(|e| {
        BridgeError::CudaUnavailable(format!("cuInit failed: {}", cuda_err("cuInit", e)))
    })?;
    let device_count = result::device::get_count()
        .map_err(|e| BridgeError::CudaUnavailable(cuda_err("cuDeviceGetCount", e).to_string()))?;
    if device_count <= 0 {
        return Err(BridgeError::CudaUnavailable(
            "the driver reports no CUDA device".into(),
        ));
    }
    if ordinal >= device_count as usize {
        return Err(BridgeError::CudaUnavailable(format!(
            "device {ordinal} requested, only {device_count} present"
        )));
    }
    let dev = result::device::get(ordinal as i32).map_err(|e| cuda_err("cuDeviceGet", e))?;
    let attr = |a: Attr| -> Result<i32, BridgeError> {
        // SAFETY: `dev` is a valid device handle from cuDeviceGet.
        unsafe { result::device::get_attribute(dev, a) }
            .map_err(|e| cuda_err("cuDeviceGetAttribute", e))
    };
    let name = result::device::get_name(dev).map_err(|e| cuda_err("cuDeviceGetName", e))?;
    let mut v: i32 = 0;
    // SAFETY: `v` is a valid out-pointer.
    unsafe { sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(|e| cuda_err("cuDriverGetVersion", e))?;
    let mut bus = [0 as std::ffi::c_char; 32];
    // SAFETY: `bus` is a writable buffer of the length passed.
    let pci_bus_id = match unsafe { sys::cuDeviceGetPCIBusId(bus.as_mut_ptr(), 32, dev) }.result() {
        Ok(()) => {
            let bytes: Vec<u8> = bus
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).to_lowercase()
        }
        Err(_) => String::new(),
    };
    let capabilities = Capabilities {
        can_map_host_memory: attr(Attr::CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)? != 0,
        gpudirect_rdma: attr(Attr::CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED)? != 0,
        dma_buf: attr(Attr::CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED)? != 0,
        detected: true,
    };
    Ok(DeviceInfo {
        ordinal,
        device_count,
        name,
        driver_version: format!("{}.{}", v / 1000, (v % 1000) / 10),
        compute_capability: (
            attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ),
        multiprocessors: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        async_engines: attr(Attr::CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT)?,
        pcie: read_pcie_link(&pci_bus_id),
        pci_bus_id,
        capabilities,
    })
}

/// Reads the link speed and width of PCI device `bus_id` from sysfs.
pub fn read_pcie_link(bus_id: &str) -> Option<PcieLink> {
    if bus_id.is_empty() {
        return None;
    }
    let dir = std::path::Path::new("/sys/bus/pci/devices").join(bus_id);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    Some(PcieLink {
        current_speed: read("current_link_speed")?,
        current_width: read("current_link_width")?,
        max_speed: read("max_link_speed").unwrap_or_default(),
        max_width: read("max_link_width").unwrap_or_default(),
    })
}

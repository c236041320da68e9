//! The CUDA backend on cudarc's driver API, loaded at run time.
//!
//! cudarc panics when `libcuda` is missing, so [`probe`] checks
//! `cudarc::driver::sys::is_culib_present()` before any other call, then `cuInit` and the device
//! count, and turns every failure into [`BridgeError::CudaUnavailable`].
//!
//! Paths: peer DMA is `cuMemcpyHtoDAsync` straight from a slab registered with
//! `cuMemHostRegister` (DEVICEMAP | PORTABLE); zero-copy launches a copy kernel that reads
//! the slab through `cuMemHostGetDevicePointer`; bounce copies into a ring of pinned staging
//! slots (`alloc_pinned_with_flags(n, 0)`, not write-combined) and then `cuMemcpyHtoDAsync`;
//! pageable is `cuMemcpyHtoDAsync` from an unregistered slab. Everything runs on one
//! non-blocking stream, with a timing event pair around each transfer; a slab chunk or staging
//! slot is released only after its end event completed.

use std::ffi::{c_void, CString};
use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::sys;
use cudarc::driver::{result, CudaContext, CudaStream, DriverError, PinnedHostSlice};

use crate::backend::{
    check_range, Backend, BackendKind, CalibrationOptions, DeviceBufferId, RegisterMode, SlabId,
    SlabRegion, SlabRegistration, Ticket, TransferReport, TransferRequest,
};
use crate::book::{unknown, Book};
use crate::calibrate::fit_profile;
use crate::error::{cuda_err, BridgeError};
use crate::hostmem::copy_bytes;
use crate::model::{Capabilities, Path, Profile, Provenance};
use crate::ptx;
use crate::staging::StagingRing;

pub use crate::cuda_info::{probe, DeviceInfo, PcieLink};

mod measure;

struct DeviceAlloc {
    ptr: sys::CUdeviceptr,
    len: usize,
}

struct Staging {
    /// Keeps the pinned allocation alive; freed (after its own event) on drop.
    _slice: PinnedHostSlice<u8>,
    /// Base of `_slice`, valid for `len` bytes while `_slice` lives.
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `ptr` points into `_slice`, which cudarc declares Send; the ring hands out `&mut`
// access only through `&mut CudaBackend`.
unsafe impl Send for Staging {}

struct Kernels {
    module: sys::CUmodule,
    copy_v4: sys::CUfunction,
    copy_u8: sys::CUfunction,
    noop: sys::CUfunction,
}

struct Flight {
    seq: u64,
    req: TransferRequest,
    start: sys::CUevent,
    end: sys::CUevent,
    staging: Option<usize>,
    submit_ns: u64,
    cpu_copy_ns: u64,
}

impl crate::book::Flight for Flight {
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// Backend on a real GPU. Create with [`CudaBackend::new`] after [`probe`] succeeded.
pub struct CudaBackend {
    info: DeviceInfo,
    profile: Profile,
    book: Book<Flight>,
    device: Vec<Option<DeviceAlloc>>,
    staging: StagingRing<Staging>,
    event_pool: Vec<sys::CUevent>,
    kernels: Result<Kernels, String>,
    max_blocks: u32,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
}

// SAFETY: the raw handles (events, module, functions, device pointers) belong to `ctx`, which
// is bound to the calling thread at every entry point; `&mut self` serialises all use.
unsafe impl Send for CudaBackend {}

impl CudaBackend {
    /// Opens device `ordinal`. Call [`probe`] first: it makes sure libcuda exists, so that no
    /// call here can panic.
    ///
    /// # Errors
    /// [`BridgeError::CudaUnavailable`] if the probe fails, driver errors otherwise.
    pub fn new(ordinal: usize) -> Result<Self, BridgeError> {
        let info = probe(ordinal)?;
        let ctx = CudaContext::new(ordinal).map_err(|e| cuda_err("cuDevicePrimaryCtxRetain", e))?;
        let stream = ctx
            .new_stream()
            .map_err(|e| cuda_err("cuStreamCreate", e))?;
        let kernels = load_kernels().map_err(|e| {
            tracing::warn!("zero-copy kernels unavailable: {e}");
            e.to_string()
        });
        let sms = info.multiprocessors.max(1) as u32;
        let mut profile = Profile::pcie4_x16_default();
        profile.capabilities = info.capabilities;
        profile.label = format!("{} (uncalibrated, modeled)", info.name);
        Ok(CudaBackend {
            info,
            profile,
            book: Book::new(),
            device: Vec::new(),
            staging: StagingRing::new(),
            event_pool: Vec::new(),
            kernels,
            max_blocks: sms * 8,
            stream,
            ctx,
        })
    }

    /// What the probe found.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The current profile (the default until [`Backend::calibrate`] ran).
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Why the zero-copy kernels are missing, if they are.
    pub fn kernels_error(&self) -> Option<&str> {
        self.kernels.as_ref().err().map(String::as_str)
    }

    fn bind(&self) -> Result<(), BridgeError> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("cuCtxSetCurrent", e))
    }

    fn event(&mut self) -> Result<sys::CUevent, BridgeError> {
        match self.event_pool.pop() {
            Some(e) => Ok(e),
            None => result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
                .map_err(|e| cuda_err("cuEventCreate", e)),
        }
    }

    fn record(&self, ev: sys::CUevent) -> Result<(), BridgeError> {
        // SAFETY: `ev` is a live event of this context; the stream is ours and alive.
        unsafe { result::event::record(ev, self.stream.cu_stream()) }
            .map_err(|e| cuda_err("cuEventRecord", e))
    }

    /// Completes, in order, every transfer whose end event has fired (non-blocking).
    fn advance(&mut self) {
        while let Some(f) = self.book.in_flight.front() {
            // SAFETY: `f.end` is a live, recorded event.
            match unsafe { result::event::query(f.end) } {
                Ok(()) => {
                    if let Some(f) = self.book.in_flight.pop_front() {
                        let r = self.complete(&f);
                        self.book.finish(f.seq, r);
                    }
                }
                Err(DriverError(sys::CUresult::CUDA_ERROR_NOT_READY)) => break,
                Err(e) => {
                    if let Some(f) = self.book.in_flight.pop_front() {
                        let r = self.complete(&f).and(Err(cuda_err("cuEventQuery", e)));
                        self.book.finish(f.seq, r);
                    }
                }
            }
        }
    }

    fn complete(&mut self, f: &Flight) -> Result<TransferReport, BridgeError> {
        // SAFETY: both events are live and `end` completed after `start` on one stream.
        let ms = unsafe { result::event::elapsed(f.start, f.end) }.unwrap_or(f32::NAN);
        self.event_pool.push(f.start);
        self.event_pool.push(f.end);
        match f.staging {
            Some(i) => {
                self.staging.complete(i, f.seq);
            }
            None => self.book.hold_slab(f.req.slab, false),
        }
        Ok(TransferReport {
            seq: f.seq,
            path: f.req.path,
            bytes: f.req.len,
            submit_ns: f.submit_ns,
            cpu_copy_ns: f.cpu_copy_ns,
            link_ns: if ms.is_finite() {
                (f64::from(ms) * 1e6) as u64
            } else {
                0
            },
            link_provenance: Provenance::Measured,
        })
    }

    /// Blocks on transfer `seq`'s end event, then completes everything that finished.
    fn block_until(&mut self, seq: u64) -> Result<(), BridgeError> {
        if let Some(f) = self.book.in_flight.iter().find(|f| f.seq == seq) {
            // SAFETY: live, recorded event.
            unsafe { result::event::synchronize(f.end) }
                .map_err(|e| cuda_err("cuEventSynchronize", e))?;
        }
        self.advance();
        Ok(())
    }

    fn device_ptr(&self, id: DeviceBufferId, off: usize, len: usize) -> Result<u64, BridgeError> {
        let d = self
            .device
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| unknown("device buffer", id.0))?;
        check_range("device buffer", off, len, d.len)?;
        Ok(d.ptr + off as u64)
    }

    fn launch_copy(&self, dst: u64, src: u64, len: usize) -> Result<(), BridgeError> {
        let k = self
            .kernels
            .as_ref()
            .map_err(|e| BridgeError::PathUnavailable {
                path: Path::PeerZeroCopy,
                reason: format!("copy kernels did not load: {e}"),
            })?;
        let len = len as u64;
        let (vec_words, tail_from) = if (dst | src) % 16 == 0 {
            (len / 16, len / 16 * 16)
        } else {
            (0, 0)
        };
        if vec_words > 0 {
            // SAFETY: `copy_v4` reads `vec_words*16` bytes at `src` (a mapped registered slab
            // range, checked) and writes them at `dst` (a checked device range); both 16-aligned.
            unsafe { self.launch(k.copy_v4, dst, src, vec_words) }?;
        }
        if tail_from < len {
            // SAFETY: as above for the remaining `len - tail_from` bytes, byte-wise.
            unsafe { self.launch(k.copy_u8, dst + tail_from, src + tail_from, len - tail_from) }?;
        }
        Ok(())
    }

    /// # Safety
    /// `f` takes (dst, src, n) and touches exactly the ranges the caller checked.
    unsafe fn launch(
        &self,
        f: sys::CUfunction,
        dst: u64,
        src: u64,
        n: u64,
    ) -> Result<(), BridgeError> {
        let (mut a, mut b, mut c) = (dst, src, n);
        let mut params: [*mut c_void; 3] = [
            (&mut a as *mut u64).cast(),
            (&mut b as *mut u64).cast(),
            (&mut c as *mut u64).cast(),
        ];
        let grid = ptx::grid_for(n, self.max_blocks);
        // SAFETY: `f` is a live function of our module; the params array matches its three
        // u64 parameters and outlives the call (the driver copies the values at launch).
        unsafe {
            result::launch_kernel(
                f,
                (grid, 1, 1),
                (ptx::BLOCK, 1, 1),
                0,
                self.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(|e| cuda_err("cuLaunchKernel", e))
    }

    /// Frees a device buffer (waits for in-flight work first).
    ///
    /// # Errors
    /// Unknown id, driver errors.
    pub fn free_device(&mut self, id: DeviceBufferId) -> Result<(), BridgeError> {
        self.bind()?;
        if let Some(last) = self.book.in_flight.back().map(|f| f.seq) {
            self.block_until(last)?;
        }
        let d = self
            .device
            .get_mut(id.0 as usize)
            .and_then(Option::take)
            .ok_or_else(|| unknown("device buffer", id.0))?;
        // SAFETY: allocated by `malloc_sync`, taken out of the table so freed once, and no
        // work on it is in flight.
        unsafe { result::free_sync(d.ptr) }.map_err(|e| cuda_err("cuMemFree", e))
    }
}

/// `cuMemHostRegister_v2(DEVICEMAP | PORTABLE)` and the mapped device pointer.
///
/// # Safety
/// `ptr..ptr+len` must be a live mapping that stays mapped until unregistered.
unsafe fn register(ptr: *const u8, len: usize) -> Result<sys::CUdeviceptr, BridgeError> {
    let flags = sys::CU_MEMHOSTREGISTER_DEVICEMAP | sys::CU_MEMHOSTREGISTER_PORTABLE;
    // SAFETY: the caller guarantees the range is live.
    unsafe { sys::cuMemHostRegister_v2(ptr as *mut c_void, len, flags) }
        .result()
        .map_err(|e| cuda_err("cuMemHostRegister_v2", e))?;
    let mut dptr: sys::CUdeviceptr = 0;
    // SAFETY: `ptr` was registered with DEVICEMAP just above; `dptr` is a valid out-pointer.
    let r = unsafe { sys::cuMemHostGetDevicePointer_v2(&mut dptr, ptr as *mut c_void, 0) }.result();
    match r {
        Ok(()) => Ok(dptr),
        Err(e) => {
            // SAFETY: undo the registration made above.
            let _ = unsafe { sys::cuMemHostUnregister(ptr as *mut c_void) };
            Err(cuda_err("cuMemHostGetDevicePointer_v2", e))
        }
    }
}

fn load_kernels() -> Result<Kernels, BridgeError> {
    let src = CString::new(ptx::COPY_KERNELS).map_err(|e| BridgeError::Cuda {
        call: "cuModuleLoadData",
        message: e.to_string(),
    })?;
    // SAFETY: `src` is a NUL-terminated PTX string alive for the call.
    let module = unsafe { result::module::load_data(src.as_ptr().cast()) }
        .map_err(|e| cuda_err("cuModuleLoadData", e))?;
    let get = |name: &str| -> Result<sys::CUfunction, BridgeError> {
        let n = CString::new(name).map_err(|e| BridgeError::Cuda {
            call: "cuModuleGetFunction",
            message: e.to_string(),
        })?;
        // SAFETY: `module` was loaded just above and is not unloaded yet.
        unsafe { result::module::get_function(module, n) }
            .map_err(|e| cuda_err("cuModuleGetFunction", e))
    };
    let k = (|| {
        Ok(Kernels {
            module,
            copy_v4: get(ptx::COPY_V4)?,
            copy_u8: get(ptx::COPY_U8)?,
            noop: get(ptx::NOOP)?,
        })
    })();
    if k.is_err() {
        // SAFETY: loaded above, unloaded once on this error path.
        let _ = unsafe { result::module::unload(module) };
    }
    k
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn describe(&self) -> String {
        let link = match &self.info.pcie {
            Some(l) => format!("PCIe {} x{}", l.current_speed, l.current_width),
            None => "PCIe link unknown".into(),
        };
        format!(
            "CUDA backend: {} (sm_{}{}, driver {}, {}, bus {})",
            self.info.name,
            self.info.compute_capability.0,
            self.info.compute_capability.1,
            self.info.driver_version,
            link,
            self.info.pci_bus_id
        )
    }

    fn capabilities(&self) -> Capabilities {
        self.info.capabilities
    }

    fn register_slab(
        &mut self,
        region: SlabRegion,
        mode: RegisterMode,
    ) -> Result<SlabRegistration, BridgeError> {
        self.bind()?;
        let t0 = Instant::now();
        let mapped = match mode {
            // SAFETY: the `SlabRegion::from_raw` contract keeps the range mapped until it is
            // unregistered (in `unregister_slab` or `Drop`).
            RegisterMode::Pin => unsafe { register(region.as_ptr(), region.len()) }?,
            RegisterMode::TrackOnly => 0,
        };
        let cost_ns = t0.elapsed().as_nanos() as f64;
        let registered = mode == RegisterMode::Pin;
        let id = self.book.add_slab(region, registered, mapped);
        Ok(SlabRegistration {
            id,
            registered,
            cost_ns: if registered { cost_ns } else { 0.0 },
            provenance: Provenance::Measured,
        })
    }

    fn unregister_slab(&mut self, id: SlabId) -> Result<(), BridgeError> {
        self.bind()?;
        self.advance();
        let s = self.book.idle_slab(id)?;
        if s.registered {
            // SAFETY: registered in `register_slab`; no transfer reads it any more.
            unsafe { sys::cuMemHostUnregister(s.region.as_ptr() as *mut c_void) }
                .result()
                .map_err(|e| cuda_err("cuMemHostUnregister", e))?;
        }
        self.book.slabs.remove(&id.0);
        Ok(())
    }

    fn ensure_staging(&mut self, slots: usize, bytes: usize) -> Result<(), BridgeError> {
        self.bind()?;
        let ctx = self.ctx.clone();
        self.staging.ensure(slots, bytes, |n| {
            // SAFETY: the bytes are uninitialised until the bounce copy writes them; we only
            // ever read back the `len` bytes a copy wrote. Flags 0: pinned, not
            // write-combined (CPU writes stay cached and fast), not mapped.
            let mut slice = unsafe { ctx.alloc_pinned_with_flags::<u8>(n, 0) }
                .map_err(|e| cuda_err("cuMemHostAlloc", e))?;
            let ptr = slice
                .as_mut_ptr()
                .map_err(|e| cuda_err("cuEventSynchronize", e))?;
            Ok(Staging {
                _slice: slice,
                ptr,
                len: n,
            })
        })
    }

    fn alloc_device(&mut self, bytes: usize) -> Result<DeviceBufferId, BridgeError> {
        self.bind()?;
        // SAFETY: plain device allocation; freed exactly once in `free_device` or `Drop`.
        let ptr =
            unsafe { result::malloc_sync(bytes.max(1)) }.map_err(|e| cuda_err("cuMemAlloc", e))?;
        self.device.push(Some(DeviceAlloc { ptr, len: bytes }));
        Ok(DeviceBufferId(self.device.len() as u64 - 1))
    }

    fn submit(&mut self, req: &TransferRequest) -> Result<Ticket, BridgeError> {
        let t0 = Instant::now();
        self.bind()?;
        let dst = self.device_ptr(req.dst, req.dst_offset, req.len)?;
        let slab = self.book.source(req)?;
        let (region, mapped) = (slab.region, slab.mapped);
        let seq = self.book.next_seq;
        let mut staging = None;
        let mut cpu_copy_ns = 0;
        let src_host: *const u8 = if req.path == Path::Bounce {
            if let Some(busy) = self.staging.next_busy_seq() {
                self.block_until(busy)?;
            }
            let idx = self.staging.acquire(seq, req.len)?;
            let c0 = Instant::now();
            let slot = self.staging.slot_mut(idx);
            // SAFETY: `slot.ptr` is valid for `slot.len` bytes, and no DMA reads the slot:
            // its previous transfer's end event completed before `acquire` handed it out.
            let dst_slice = unsafe { std::slice::from_raw_parts_mut(slot.ptr, slot.len) };
            // SAFETY: range checked above; the consumer owns the chunk during the copy.
            copy_bytes(dst_slice, unsafe { region.bytes(req.offset, req.len) });
            cpu_copy_ns = c0.elapsed().as_nanos() as u64;
            staging = Some(idx);
            slot.ptr
        } else {
            // SAFETY: `offset` is within the region (checked above).
            unsafe { region.as_ptr().add(req.offset) }
        };
        let start = self.event()?;
        let end = self.event()?;
        let issued = self.record(start).and_then(|()| match req.path {
            Path::PeerZeroCopy => self.launch_copy(dst, mapped + req.offset as u64, req.len),
            // SAFETY: `src_host` is valid for `len` bytes (registered slab, unregistered slab,
            // or staging slot) and stays untouched until `end` completes: slab chunks are held
            // by the caller per `Path::holds_slab_until_event`, staging slots by the ring.
            _ => unsafe {
                sys::cuMemcpyHtoDAsync_v2(dst, src_host.cast(), req.len, self.stream.cu_stream())
            }
            .result()
            .map_err(|e| cuda_err("cuMemcpyHtoDAsync_v2", e)),
        });
        let issued = issued.and_then(|()| self.record(end));
        if let Err(e) = issued {
            self.event_pool.push(start);
            self.event_pool.push(end);
            if let Some(i) = staging {
                self.staging.complete(i, seq);
            }
            return Err(e);
        }
        if staging.is_none() {
            self.book.hold_slab(req.slab, true);
        }
        self.book.next_seq += 1;
        self.book.in_flight.push_back(Flight {
            seq,
            req: *req,
            start,
            end,
            staging,
            submit_ns: t0.elapsed().as_nanos() as u64,
            cpu_copy_ns,
        });
        Ok(Ticket(seq))
    }

    fn poll(&mut self, ticket: Ticket) -> Result<Option<TransferReport>, BridgeError> {
        self.bind()?;
        self.advance();
        self.book.poll(ticket)
    }

    fn wait(&mut self, ticket: Ticket) -> Result<TransferReport, BridgeError> {
        self.bind()?;
        self.block_until(ticket.0)?;
        self.book.take(ticket)
    }

    fn read_device(
        &mut self,
        buf: DeviceBufferId,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), BridgeError> {
        self.bind()?;
        let src = self.device_ptr(buf, offset, out.len())?;
        // SAFETY: our live stream; waits for all work before the read.
        unsafe { result::stream::synchronize(self.stream.cu_stream()) }
            .map_err(|e| cuda_err("cuStreamSynchronize", e))?;
        self.advance();
        // SAFETY: `src..src+len` is a checked range of a live allocation; `out` is writable.
        unsafe { sys::cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), src, out.len()) }
            .result()
            .map_err(|e| cuda_err("cuMemcpyDtoH_v2", e))
    }

    fn calibrate(&mut self, opts: &CalibrationOptions) -> Result<Profile, BridgeError> {
        let timings = self.measure_paths(&opts.sizes, opts.reps)?;
        let sync_ns = self.measure_event_overhead_ns(opts.reps.max(5))?;
        let mut base = self.profile.clone();
        base.sync = crate::model::SyncCost {
            ns: sync_ns,
            provenance: Provenance::Measured,
        };
        base.registration = self.measure_registration(&[1, 16])?;
        base.capabilities = self.info.capabilities;
        let mut p = fit_profile(&base, &timings, sync_ns);
        p.label = match &self.info.pcie {
            Some(l) => format!(
                "{} on PCIe {} x{} (measured)",
                self.info.name, l.current_speed, l.current_width
            ),
            None => format!("{} (measured)", self.info.name),
        };
        self.profile = p.clone();
        Ok(p)
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        let _ = self.bind();
        // SAFETY: our live stream; after this no work references any resource below.
        let _ = unsafe { result::stream::synchronize(self.stream.cu_stream()) };
        for f in std::mem::take(&mut self.book.in_flight) {
            self.event_pool.push(f.start);
            self.event_pool.push(f.end);
        }
        for ev in self.event_pool.drain(..) {
            // SAFETY: each pooled event is live and destroyed once.
            let _ = unsafe { result::event::destroy(ev) };
        }
        for s in self.book.slabs.values().filter(|s| s.registered) {
            // SAFETY: registered by us; no transfer is in flight any more.
            let _ = unsafe { sys::cuMemHostUnregister(s.region.as_ptr() as *mut c_void) };
        }
        for d in self.device.drain(..).flatten() {
            // SAFETY: allocated by `malloc_sync`, freed once, stream idle.
            let _ = unsafe { result::free_sync(d.ptr) };
        }
        if let Ok(k) = &self.kernels {
            // SAFETY: loaded once in `load_kernels`, unloaded once here.
            let _ = unsafe { result::module::unload(k.module) };
        }
    }
}

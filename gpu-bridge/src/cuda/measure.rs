//! Measurements on the CUDA backend: event and launch overheads, registration cost, and
//! every host path at a set of sizes (the calibration and the device check use them).

use std::ffi::c_void;
use std::time::Instant;

use cudarc::driver::{result, sys};

use super::{register, CudaBackend};
use crate::backend::{Backend, RegisterMode, SlabRegion, TransferRequest};
use crate::calibrate::{time_median_ns, time_path};
use crate::error::{cuda_err, BridgeError};
use crate::hostmem::PageBuffer;
use crate::model::{fit_link, Path, Provenance, RegistrationCost};

impl CudaBackend {
    /// Median ns of recording an event on the idle stream and synchronising on it.
    ///
    /// # Errors
    /// Driver errors.
    pub fn measure_event_overhead_ns(&mut self, reps: usize) -> Result<f64, BridgeError> {
        self.bind()?;
        let ev = self.event()?;
        let mut err = None;
        let t = time_median_ns(reps, || {
            let r = self.record(ev).and_then(|()| {
                // SAFETY: live, just-recorded event.
                unsafe { result::event::synchronize(ev) }
                    .map_err(|e| cuda_err("cuEventSynchronize", e))
            });
            if let Err(e) = r {
                err = Some(e);
            }
        });
        self.event_pool.push(ev);
        err.map_or(Ok(t), Err)
    }

    /// Median ns of launching the empty kernel and waiting for it.
    ///
    /// # Errors
    /// Driver errors; [`BridgeError::PathUnavailable`] when the kernels did not load.
    pub fn measure_launch_overhead_ns(&mut self, reps: usize) -> Result<f64, BridgeError> {
        self.bind()?;
        let noop = match &self.kernels {
            Ok(k) => k.noop,
            Err(e) => {
                return Err(BridgeError::PathUnavailable {
                    path: Path::PeerZeroCopy,
                    reason: e.clone(),
                })
            }
        };
        let stream = self.stream.cu_stream();
        let mut err = None;
        let t = time_median_ns(reps, || {
            // SAFETY: `noop` takes no parameters; our stream is live.
            let r =
                unsafe { result::launch_kernel(noop, (1, 1, 1), (1, 1, 1), 0, stream, &mut []) }
                    .map_err(|e| cuda_err("cuLaunchKernel", e))
                    .and_then(|()| {
                        // SAFETY: our live stream.
                        unsafe { result::stream::synchronize(stream) }
                            .map_err(|e| cuda_err("cuStreamSynchronize", e))
                    });
            if let Err(e) = r {
                err = Some(e);
            }
        });
        err.map_or(Ok(t), Err)
    }

    /// Registration cost fitted over fresh buffers of `sizes_mib` MiB (register + unregister
    /// each once; the unregister is not counted).
    ///
    /// # Errors
    /// Host memory or driver errors.
    pub fn measure_registration(
        &mut self,
        sizes_mib: &[usize],
    ) -> Result<RegistrationCost, BridgeError> {
        self.bind()?;
        let mut samples = Vec::new();
        for &mib in sizes_mib {
            let buf = PageBuffer::new(mib << 20, false)?;
            let t0 = Instant::now();
            // SAFETY: `buf` is a live mapping of exactly this length, unregistered below
            // before it is dropped.
            let dp = unsafe { register(buf.as_ptr(), buf.len()) }?;
            samples.push(((mib as u64) << 20, t0.elapsed().as_nanos() as f64));
            let _ = dp;
            // SAFETY: registered just above.
            unsafe { sys::cuMemHostUnregister(buf.as_ptr() as *mut c_void) }
                .result()
                .map_err(|e| cuda_err("cuMemHostUnregister", e))?;
        }
        Ok(match fit_link(&samples, Provenance::Measured) {
            Some(l) => RegistrationCost {
                fixed_ns: l.setup_ns,
                ns_per_mib: (1u64 << 20) as f64 / l.bandwidth_gbps,
                provenance: Provenance::Measured,
            },
            None => {
                let (b, t) = samples.last().copied().unwrap_or((1 << 20, 0.0));
                RegistrationCost {
                    fixed_ns: 0.0,
                    ns_per_mib: t / (b as f64 / (1u64 << 20) as f64),
                    provenance: Provenance::Measured,
                }
            }
        })
    }

    /// Times every host path at every size in `sizes` (`reps` runs each, median): peer DMA
    /// and zero-copy from a registered slab, bounce, and pageable from an mlock-only slab.
    /// Paths that fail (e.g. kernels not loaded) are skipped with a warning.
    ///
    /// # Errors
    /// Host memory or driver errors while setting up.
    pub fn measure_paths(
        &mut self,
        sizes: &[usize],
        reps: usize,
    ) -> Result<Vec<crate::calibrate::PathTiming>, BridgeError> {
        let max = sizes.iter().copied().max().unwrap_or(1 << 20);
        let mut pinned = PageBuffer::new(max, false)?;
        let mut locked = PageBuffer::new(max, true).or_else(|e| {
            tracing::warn!("mlock-only slab not locked ({e}); measuring plain pageable memory");
            PageBuffer::new(max, false)
        })?;
        for (i, b) in pinned.as_mut_slice().iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        for (i, b) in locked.as_mut_slice().iter_mut().enumerate() {
            *b = (i * 13) as u8;
        }
        // SAFETY: both buffers outlive their registrations: they are unregistered below
        // before being dropped at the end of this function.
        let reg = unsafe { SlabRegion::from_raw(pinned.as_ptr(), pinned.len()) }?;
        // SAFETY: as above.
        let unreg = unsafe { SlabRegion::from_raw(locked.as_ptr(), locked.len()) }?;
        let unreg = self.register_slab(unreg, RegisterMode::TrackOnly)?.id;
        // Without registration (e.g. not permitted here) the peer paths are skipped and the
        // bounce path reads the unregistered slab.
        let reg = match self.register_slab(reg, RegisterMode::Pin) {
            Ok(r) => Some(r.id),
            Err(e) => {
                tracing::warn!(
                    "slab registration failed ({e}); measuring bounce and pageable only"
                );
                None
            }
        };
        self.ensure_staging(2, max)?;
        let dst = self.alloc_device(max)?;
        let mut out = Vec::new();
        let mut err = None;
        'all: for &n in sizes {
            for path in [
                Path::PeerDma,
                Path::PeerZeroCopy,
                Path::Bounce,
                Path::Pageable,
            ] {
                let slab = match (path, reg) {
                    (Path::Pageable, _) | (Path::Bounce, None) => unreg,
                    (_, Some(r)) => r,
                    (_, None) => continue,
                };
                let req = TransferRequest {
                    path,
                    slab,
                    offset: 0,
                    len: n,
                    dst,
                    dst_offset: 0,
                };
                match time_path(self, &req, reps) {
                    Ok(t) => out.push(t),
                    Err(e @ BridgeError::PathUnavailable { .. }) => {
                        tracing::warn!("skipping {path} at {n} B: {e}");
                    }
                    Err(e) => {
                        err = Some(e);
                        break 'all;
                    }
                }
            }
        }
        let cleanup = reg
            .map_or(Ok(()), |r| self.unregister_slab(r))
            .and(self.unregister_slab(unreg))
            .and(self.free_device(dst));
        match err {
            Some(e) => Err(e),
            None => cleanup.map(|()| out),
        }
    }
}

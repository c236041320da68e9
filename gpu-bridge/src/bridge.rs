//! The bridge front: picks a backend (CUDA if a GPU is there, else the host backend, with a
//! clear message), holds the policy, and moves each stream's frames on the chosen path,
//! telling the caller when each slab chunk may be released.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use crate::backend::{
    Backend, BackendKind, CalibrationOptions, DeviceBufferId, RegisterMode, SlabId, SlabRegion,
    Ticket, TransferReport, TransferRequest,
};
use crate::cuda::CudaBackend;
use crate::error::BridgeError;
use crate::host::HostBackend;
use crate::model::{Path, Profile, Provenance};
use crate::policy::{Choice, Policy, RegistrationLedger, Source, StreamConfig};

/// How to open a [`GpuBridge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOptions {
    /// CUDA device ordinal.
    pub ordinal: usize,
    /// Use this saved profile instead of calibrating.
    pub profile_path: Option<PathBuf>,
    /// Run the short start-up calibration (ignored when `profile_path` is set).
    pub calibrate: bool,
    /// Skip the GPU probe and use the host backend.
    pub force_host: bool,
    /// Staging slots per bounce ring and device buffers per stream (≥ 2: double buffering).
    pub depth: usize,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            ordinal: 0,
            profile_path: None,
            calibrate: true,
            force_host: false,
            depth: 2,
        }
    }
}

/// What a stream asks for; the slab's size and registration come from the slab.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Name for logs and the report.
    pub name: String,
    /// Largest frame in bytes.
    pub frame_bytes: usize,
    /// The slab the frames live in.
    pub slab: SlabId,
    /// Where frames come from.
    pub source: Source,
    /// A forced path, or `None` for the model's choice.
    pub forced: Option<Path>,
}

/// Handle of a stream added with [`GpuBridge::add_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamHandle(usize);

/// What [`GpuBridge::send`] started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    /// The transfer.
    pub ticket: Ticket,
    /// Device buffer the frame lands in (rotates over `depth` buffers).
    pub dst: DeviceBufferId,
    /// True when the slab chunk may be released right away (bounce: the CPU copy is done).
    pub chunk_released_now: bool,
}

#[derive(Debug, Clone, Copy)]
struct SlabInfo {
    len: usize,
    registered: bool,
    cost_ns: f64,
    provenance: Provenance,
}

struct Pending {
    ticket: Ticket,
    token: u64,
    /// The token was already handed back at submit (bounce).
    released: bool,
}

struct StreamState {
    choice: Choice,
    slab: SlabId,
    dst: Vec<DeviceBufferId>,
    next_dst: usize,
    pending: VecDeque<Pending>,
    last_report: Option<TransferReport>,
}

/// Moves frames from slabs to the GPU. See the crate docs for an example.
pub struct GpuBridge {
    backend: Box<dyn Backend>,
    policy: Policy,
    slabs: BTreeMap<SlabId, SlabInfo>,
    streams: Vec<StreamState>,
    ledger: RegistrationLedger,
    depth: usize,
    fallback_reason: Option<String>,
}

impl GpuBridge {
    /// Probes for a GPU and opens the CUDA backend, or falls back to the host backend with a
    /// warning naming why; then loads the profile or calibrates.
    ///
    /// # Errors
    /// A profile file that cannot be loaded; calibration failures.
    pub fn open(opts: &BridgeOptions) -> Result<Self, BridgeError> {
        let (backend, fallback_reason): (Box<dyn Backend>, Option<String>) = if opts.force_host {
            (
                Box::new(HostBackend::new(Profile::pcie4_x16_default())),
                Some("host backend forced by configuration".into()),
            )
        } else {
            // `probe` already turns a missing library into an error; catching a panic here
            // as well means no cudarc surprise can take a node down.
            let opened = std::panic::catch_unwind(|| CudaBackend::new(opts.ordinal))
                .unwrap_or_else(|_| {
                    Err(BridgeError::CudaUnavailable(
                        "the CUDA backend panicked while opening".into(),
                    ))
                });
            match opened {
                Ok(b) => (Box::new(b), None),
                Err(e) => {
                    tracing::warn!(
                        "no usable GPU ({e}); falling back to the host backend: CPU parts real, PCIe modeled"
                    );
                    (
                        Box::new(HostBackend::new(Profile::pcie4_x16_default())),
                        Some(e.to_string()),
                    )
                }
            }
        };
        let mut bridge = Self::with_backend(backend, Profile::pcie4_x16_default(), opts.depth);
        bridge.fallback_reason = fallback_reason;
        if let Some(p) = &opts.profile_path {
            bridge.set_profile(Profile::load(p)?);
        } else if opts.calibrate {
            let p = bridge.backend.calibrate(&CalibrationOptions::default())?;
            bridge.set_profile(p);
        }
        Ok(bridge)
    }

    /// A bridge over a given backend and profile (the profile's capabilities are replaced by
    /// the backend's).
    pub fn with_backend(backend: Box<dyn Backend>, profile: Profile, depth: usize) -> Self {
        let mut b = GpuBridge {
            backend,
            policy: Policy::new(profile.clone()),
            slabs: BTreeMap::new(),
            streams: Vec::new(),
            ledger: RegistrationLedger::default(),
            depth: depth.max(2),
            fallback_reason: None,
        };
        b.set_profile(profile);
        b
    }

    fn set_profile(&mut self, mut profile: Profile) {
        let caps = self.backend.capabilities();
        if caps.detected || !profile.capabilities.detected {
            profile.capabilities = caps;
        }
        self.policy = Policy::new(profile);
    }

    /// Which backend runs.
    pub fn backend_kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// Why the host backend is used, when it is.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The backend's description.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The policy (and through it the profile).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Direct access to the backend (checks and tests).
    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// The registration hook: hands a slab (base, length) to the backend. `Pin` registers it
    /// with the driver so peer paths become available; the cost is charged once per slab.
    ///
    /// # Safety
    /// `base..base+len` must stay mapped and readable until [`unregister_slab`](Self::unregister_slab)
    /// returned `Ok` or the bridge is dropped.
    ///
    /// # Errors
    /// Invalid region; driver errors from registration.
    pub unsafe fn register_slab(
        &mut self,
        base: *const u8,
        len: usize,
        mode: RegisterMode,
    ) -> Result<SlabId, BridgeError> {
        // SAFETY: forwarded contract.
        let region = unsafe { SlabRegion::from_raw(base, len) }?;
        let r = self.backend.register_slab(region, mode)?;
        self.slabs.insert(
            r.id,
            SlabInfo {
                len,
                registered: r.registered,
                cost_ns: r.cost_ns,
                provenance: r.provenance,
            },
        );
        Ok(r.id)
    }

    /// Unregisters a slab; fails with [`BridgeError::SlabBusy`] while transfers read it.
    ///
    /// # Errors
    /// Busy or unknown slab; driver errors.
    pub fn unregister_slab(&mut self, id: SlabId) -> Result<(), BridgeError> {
        self.backend.unregister_slab(id)?;
        self.slabs.remove(&id);
        Ok(())
    }

    /// Adds a stream: chooses its path (logging the explanation), sets up staging slots and
    /// `depth` destination buffers. Start-up only.
    ///
    /// # Errors
    /// Unknown slab; a forced path that cannot carry the stream; allocation failures.
    pub fn add_stream(&mut self, spec: &StreamSpec) -> Result<(StreamHandle, Choice), BridgeError> {
        let slab = *self.slabs.get(&spec.slab).ok_or(BridgeError::UnknownId {
            kind: "slab",
            id: spec.slab.0,
        })?;
        let cfg = StreamConfig {
            name: spec.name.clone(),
            frame_bytes: spec.frame_bytes as u64,
            slab_bytes: slab.len as u64,
            slab_registered: slab.registered,
            source: spec.source,
            forced: spec.forced,
        };
        let mut choice = self.policy.choose(&cfg)?;
        if choice.path() == Path::ThirdPartyPeer {
            return Err(BridgeError::PathUnavailable {
                path: Path::ThirdPartyPeer,
                reason: "the peer device writes GPU memory itself; configure it outside the bridge and force a host path for its slab".into(),
            });
        }
        if choice.path().needs_registered_slab() {
            // Measured registration time when the backend has one, else the model's.
            let (cost, prov) = if slab.cost_ns > 0.0 {
                (slab.cost_ns, slab.provenance)
            } else {
                (
                    choice.registration_once_ns.unwrap_or(0.0),
                    Provenance::Modeled,
                )
            };
            choice.registration_once_ns = self.ledger.charge(spec.slab.0, cost, prov);
        }
        tracing::info!("{}", choice.explain());
        if choice.path() == Path::Bounce {
            self.backend.ensure_staging(self.depth, spec.frame_bytes)?;
        }
        let mut dst = Vec::with_capacity(self.depth);
        for _ in 0..self.depth {
            dst.push(self.backend.alloc_device(spec.frame_bytes)?);
        }
        self.streams.push(StreamState {
            choice: choice.clone(),
            slab: spec.slab,
            dst,
            next_dst: 0,
            pending: VecDeque::with_capacity(self.depth * 2),
            last_report: None,
        });
        Ok((StreamHandle(self.streams.len() - 1), choice))
    }

    fn stream(&mut self, s: StreamHandle) -> Result<&mut StreamState, BridgeError> {
        self.streams.get_mut(s.0).ok_or(BridgeError::UnknownId {
            kind: "stream",
            id: s.0 as u64,
        })
    }

    /// The stream's choice (path, ΔL, explanation).
    ///
    /// # Errors
    /// Unknown stream.
    pub fn choice(&self, s: StreamHandle) -> Result<&Choice, BridgeError> {
        self.streams
            .get(s.0)
            .map(|st| &st.choice)
            .ok_or(BridgeError::UnknownId {
                kind: "stream",
                id: s.0 as u64,
            })
    }

    /// Sends `len` bytes at `offset` of the stream's slab. `token` identifies the slab chunk;
    /// it comes back through [`poll_releases`](Self::poll_releases) once the chunk may be
    /// released (immediately on the bounce path, see [`SendReceipt::chunk_released_now`]).
    ///
    /// # Errors
    /// Out-of-bounds ranges, driver errors. On error the chunk was not used and may be
    /// released by the caller.
    pub fn send(
        &mut self,
        s: StreamHandle,
        offset: usize,
        len: usize,
        token: u64,
    ) -> Result<SendReceipt, BridgeError> {
        let st = self.stream(s)?;
        let dst = st.dst[st.next_dst];
        let req = TransferRequest {
            path: st.choice.path(),
            slab: st.slab,
            offset,
            len,
            dst,
            dst_offset: 0,
        };
        let ticket = self.backend.submit(&req)?;
        let released = !req.path.holds_slab_until_event();
        let st = self.stream(s)?;
        st.next_dst = (st.next_dst + 1) % st.dst.len();
        st.pending.push_back(Pending {
            ticket,
            token,
            released,
        });
        Ok(SendReceipt {
            ticket,
            dst,
            chunk_released_now: released,
        })
    }

    /// Calls `release(token)` for every chunk of the stream whose transfer event completed,
    /// in submission order, without blocking. Returns how many transfers completed.
    ///
    /// # Errors
    /// A failed transfer (e.g. [`BridgeError::Integrity`]); its chunk is still released
    /// first, so nothing leaks.
    pub fn poll_releases(
        &mut self,
        s: StreamHandle,
        release: impl FnMut(u64),
    ) -> Result<usize, BridgeError> {
        self.complete(s, false, release)
    }

    /// Blocks until every transfer of the stream completed, releasing as in
    /// [`poll_releases`](Self::poll_releases).
    ///
    /// # Errors
    /// As [`poll_releases`](Self::poll_releases).
    pub fn drain(
        &mut self,
        s: StreamHandle,
        release: impl FnMut(u64),
    ) -> Result<usize, BridgeError> {
        self.complete(s, true, release)
    }

    fn complete(
        &mut self,
        s: StreamHandle,
        block: bool,
        mut release: impl FnMut(u64),
    ) -> Result<usize, BridgeError> {
        let mut n = 0;
        loop {
            let st = self.stream(s)?;
            let Some(front) = st.pending.front() else {
                return Ok(n);
            };
            let (ticket, token, released) = (front.ticket, front.token, front.released);
            let r = if block {
                self.backend.wait(ticket).map(Some)
            } else {
                self.backend.poll(ticket)
            };
            let st = self.stream(s)?;
            match r {
                Ok(None) => return Ok(n),
                Ok(Some(rep)) => {
                    st.pending.pop_front();
                    st.last_report = Some(rep);
                    n += 1;
                    if !released {
                        release(token);
                    }
                }
                Err(e) => {
                    st.pending.pop_front();
                    if !released {
                        release(token);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The last completed transfer's report on this stream.
    ///
    /// # Errors
    /// Unknown stream.
    pub fn last_report(&self, s: StreamHandle) -> Result<Option<TransferReport>, BridgeError> {
        self.streams
            .get(s.0)
            .map(|st| st.last_report)
            .ok_or(BridgeError::UnknownId {
                kind: "stream",
                id: s.0 as u64,
            })
    }

    /// Total one-time registration cost charged (ns) and whether it was measured.
    pub fn registration_charged(&self) -> (f64, Option<Provenance>) {
        self.ledger.total()
    }
}

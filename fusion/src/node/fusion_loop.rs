//! The fusion thread's loop. Everything it needs is allocated before the loop starts; inside it only
//! loans, receives, pushes into pre-allocated queues and writes into pre-allocated buffers (the
//! `steady_state` test counts allocations and page faults on this thread and asserts zero).

use rtfuse_trace::{Record, FLAG_GAP_BEFORE, FLAG_SCHED_FIFO};
use shm_transport::{Publisher, ReceiveError, Sample, Subscriber};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::outputs::{cloud_meta, OdometryRecord, Outputs};
use super::{EkfSpec, Estimate, NodeConfig, SyncPolicy, Wakeup, MAX_STREAMS, SYNC_CAPACITY};
use crate::alloc_check::{self, AllocCounts};
use crate::driver::meta::{decode_imu, decode_odometry, FrameMeta, MetaError};
use crate::driver::StreamKind;
use crate::ekf::{self, Correction, Covariance, Ekf, State};
use crate::projection::{CloudView, ImageView, Projector, COLOURED_POINT_STEP};
use crate::rt::{self, now_ns, RtStatus, ThreadUsage};
use crate::stats::{NodeCounters, RecordSink, StreamCounters};
use crate::sync::{AddError, ApproximateTime, ExactTime, SyncEvent};
use crate::synth::LIDAR_POINT_STEP;
use crossbeam_queue::ArrayQueue;

/// Handles shared between the starter and the fusion thread.
pub(crate) struct Shared {
    pub stop: Arc<AtomicBool>,
    pub node: Arc<NodeCounters>,
    pub streams: Vec<Arc<StreamCounters>>,
    pub stats: RecordSink,
    pub trace: Option<RecordSink>,
    pub estimates: Arc<ArrayQueue<Estimate>>,
    pub mcap: Option<super::mcap_worker::McapTap>,
}

/// The whole-image prefix of an output chunk's payload as floats, if it is aligned and large enough.
fn floats(bytes: &mut [u8], n: usize) -> Option<&mut [f32]> {
    // SAFETY: f32 is valid for every bit pattern and has no drop glue; align_to_mut only yields the
    // correctly aligned middle part (chunks are 4096-aligned, so all of it).
    let (head, floats, _) = unsafe { bytes.align_to_mut::<f32>() };
    if head.is_empty() {
        floats.get_mut(..n)
    } else {
        None
    }
}

/// The coloured cloud of `cloud` in `cam`'s image, occluded points left out; returns the points written.
fn coloured_cloud(
    p: &Projector,
    cloud: &CloudView<'_>,
    cam: &Held,
    depth: &[f32],
    out: &mut [u8],
) -> Result<usize, ()> {
    let enc = cam.meta.pixel_encoding().ok_or(())?;
    let image = ImageView::new(
        cam.sample.payload(),
        cam.meta.width,
        cam.meta.height,
        cam.meta.step as usize,
        enc,
    )
    .map_err(|_| ())?;
    p.coloured_cloud(cloud, &image, Some((depth, OCCLUSION_TOLERANCE_M)), out)
        .map_err(|_| ())
}

/// Points this far (m) behind the nearest depth at their pixel are hidden from the camera.
const OCCLUSION_TOLERANCE_M: f32 = 0.2;

/// A received sample the thread still holds (in the synchroniser or being fused).
struct Held {
    sample: Sample,
    stream: u16,
    flags: u16,
    t_dequeue: u64,
    meta: FrameMeta,
}

impl Held {
    fn record(&self, t_fuse_start: u64, t_fuse_end: u64) -> Record {
        let d = self.sample.descriptor();
        Record {
            stream: self.stream,
            flags: self.flags,
            seq: d.seq,
            t_sensor_ns: d.t_sensor_ns,
            t_dma_ns: d.t_dma_ns,
            t_enqueue_ns: d.t_enqueue_ns,
            t_dequeue_ns: self.t_dequeue,
            t_fuse_start_ns: t_fuse_start,
            t_fuse_end_ns: t_fuse_end,
        }
    }
}

/// Boxed: the queues live inline in the policies (allocated once, before the loop).
enum Syncer {
    Exact(Box<ExactTime<Held, 2, SYNC_CAPACITY>>),
    Approx(Box<ApproximateTime<Held, 2, SYNC_CAPACITY>>),
}

impl Syncer {
    fn new(
        policy: SyncPolicy,
        lower_bounds_ns: [i64; 2],
    ) -> Result<Syncer, crate::sync::ConfigError> {
        Ok(match policy {
            SyncPolicy::ExactTime { queue_size } => {
                Syncer::Exact(Box::new(ExactTime::new(queue_size)?))
            }
            SyncPolicy::ApproximateTime {
                queue_size,
                age_penalty,
                max_interval_ns,
            } => {
                let mut s = ApproximateTime::new(queue_size, age_penalty)?;
                if let Some(m) = max_interval_ns {
                    s.set_max_interval(m)?;
                }
                for (i, b) in lower_bounds_ns.iter().enumerate() {
                    s.set_inter_message_lower_bound(i, *b)?;
                }
                Syncer::Approx(Box::new(s))
            }
        })
    }

    // The error hands the message (a held sample) back by value, as the sync module's API does.
    #[allow(clippy::result_large_err)]
    fn add(
        &mut self,
        slot: usize,
        stamp: i64,
        h: Held,
        out: &mut impl FnMut(SyncEvent<Held, 2>),
    ) -> Result<(), AddError<Held>> {
        match self {
            Syncer::Exact(s) => s.add(slot, stamp, h, out),
            Syncer::Approx(s) => s.add(slot, stamp, h, out),
        }
    }

    fn drain(&mut self, out: &mut impl FnMut(SyncEvent<Held, 2>)) {
        match self {
            Syncer::Exact(s) => s.drain(out),
            Syncer::Approx(s) => s.drain(out),
        }
    }
}

/// The fusion step and where its results go.
struct Fuser {
    node: Arc<NodeCounters>,
    stats: RecordSink,
    trace: Option<RecordSink>,
    projector: Option<Projector>,
    /// Depth image when there is no output channel (or no free output chunk): width × height.
    depth: Vec<f32>,
    depth_pub: Option<Publisher>,
    depth_frame: u64,
    cloud_pub: Option<Publisher>,
    cloud_frame: u64,
    odometry_pub: Option<Publisher>,
    ekf: Option<(Box<Ekf>, EkfSpec)>,
    /// The EKF starts at the first odometry pose (or the first IMU sample without odometry).
    ekf_started: bool,
    /// The filter time as a sensor stamp (ns): the newest stamp it has fused. After a late
    /// measurement the estimate is the state at this time, not at the late stamp.
    ekf_time_ns: u64,
    has_odometry: bool,
    estimates: Arc<ArrayQueue<Estimate>>,
    mcap: Option<super::mcap_worker::McapTap>,
}

impl Fuser {
    fn emit(&self, h: Held, t0: u64, t1: u64) {
        let r = h.record(t0, t1);
        self.stats.push(r);
        if let Some(t) = &self.trace {
            t.push(r);
        }
        drop(h); // the chunk goes back to its publisher
    }

    fn on_event(&mut self, ev: SyncEvent<Held, 2>) {
        match ev {
            SyncEvent::Set([cam, lidar]) => {
                let t0 = now_ns();
                if self.project(&cam.msg, &lidar.msg).is_err() {
                    self.node.fuse_errors.inc();
                }
                let t1 = now_ns();
                self.node.sets_fused.inc();
                self.emit(cam.msg, t0, t1);
                self.emit(lidar.msg, t0, t1);
            }
            SyncEvent::Dropped { msg, .. } => {
                self.node.sync_discarded.inc();
                self.emit(msg.msg, 0, 0);
            }
        }
    }

    /// LiDAR → camera: the depth image of the scan and its coloured cloud, each written in place
    /// into an output chunk when there is an output channel (the depth image into a pre-allocated
    /// buffer otherwise: the coloured cloud needs it for occlusion).
    fn project(&mut self, cam: &Held, lidar: &Held) -> Result<(), ()> {
        let Some(p) = &self.projector else {
            return Ok(());
        };
        let info = p.camera_info();
        if cam.meta.width != info.width || cam.meta.height != info.height {
            return Err(());
        }
        let cloud = CloudView::new(
            lidar.sample.payload(),
            LIDAR_POINT_STEP,
            [0, 4, 8],
            lidar.meta.width as usize,
        )
        .map_err(|_| ())?;
        let n_px = info.width as usize * info.height as usize;
        let t_cam = cam.sample.sensor_time();
        let mut depth_chunk = self.depth_pub.as_mut().and_then(|pb| pb.loan().ok());
        // The chunk is used only if it holds a whole image of aligned floats.
        if depth_chunk
            .as_mut()
            .is_some_and(|c| floats(c.payload_mut(), n_px).is_none())
        {
            depth_chunk = None;
        }
        let depth: &mut [f32] = match depth_chunk.as_mut() {
            Some(c) => floats(c.payload_mut(), n_px).ok_or(())?,
            None => &mut self.depth[..n_px],
        };
        p.depth_image(&cloud, depth).map_err(|_| ())?;
        if let Some(tap) = &self.mcap {
            tap.offer_depth(t_cam, depth);
        }
        let mut res = Ok(());
        let mut cloud_written = false;
        if let Some(publisher) = &mut self.cloud_pub {
            // A missing free chunk (slow subscribers) skips this cloud, like the depth image.
            if let Ok(mut chunk) = publisher.loan() {
                cloud_written = true;
                // A failed cloud (a scan larger than the chunk) still lets the depth image go out.
                res = coloured_cloud(p, &cloud, cam, depth, chunk.payload_mut()).and_then(|n| {
                    if let Some(tap) = &self.mcap {
                        tap.offer_cloud(t_cam, n, chunk.payload_mut());
                    }
                    let meta = cloud_meta(n as u32, self.cloud_frame);
                    meta.encode(chunk.user_header_mut()).map_err(|_| ())?;
                    chunk.set_len(n * COLOURED_POINT_STEP);
                    chunk.set_sensor_time(t_cam);
                    chunk.set_dma_time(now_ns());
                    chunk.set_user(StreamKind::Lidar.user_word());
                    self.cloud_frame += 1;
                    chunk.publish().map(|_| ()).map_err(|_| ())
                });
            }
        }
        if let (false, Some(tap)) = (cloud_written, &self.mcap) {
            // No shm chunk to copy from: the cloud is written straight into an MCAP buffer.
            res = tap.fill_cloud(t_cam, |buf| coloured_cloud(p, &cloud, cam, depth, buf));
        }
        if let Some(mut chunk) = depth_chunk {
            let meta = FrameMeta::depth(info.width, info.height, self.depth_frame);
            meta.encode(chunk.user_header_mut()).map_err(|_| ())?;
            chunk.set_len(n_px * 4);
            chunk.set_sensor_time(t_cam);
            chunk.set_dma_time(now_ns());
            chunk.set_user(StreamKind::Depth.user_word());
            self.depth_frame += 1;
            chunk.publish().map_err(|_| ())?;
        }
        res
    }

    /// IMU and odometry: decoded, checked, and processed by the EKF.
    fn on_measurement(&mut self, h: Held, kind: StreamKind) -> Result<(), MetaError> {
        let t0 = now_ns();
        let res = match kind {
            StreamKind::Imu => decode_imu(h.sample.payload()).map(|s| {
                let Some(spec) = self.ekf.as_ref().map(|e| e.1) else {
                    return;
                };
                if self.ekf_started {
                    let m = ekf::imu_measurement(&s, spec.imu_std, spec.mahalanobis_threshold);
                    self.correct(h.sample.sensor_time(), |f| f.process(&m));
                } else if !self.has_odometry {
                    // IMU only: start at the origin, unsure of everything.
                    if let Some((f, _)) = self.ekf.as_mut() {
                        f.set_state(s.t, State::zeros(), Covariance::identity());
                    }
                    self.ekf_time_ns = h.sample.sensor_time();
                    self.ekf_started = true;
                }
            }),
            StreamKind::Odometry => decode_odometry(h.sample.payload()).map(|s| {
                let Some(spec) = self.ekf.as_ref().map(|e| e.1) else {
                    return;
                };
                let m = ekf::odometry_measurement(&s, spec.odom_std, spec.mahalanobis_threshold);
                if self.ekf_started {
                    self.correct(h.sample.sensor_time(), |f| f.process(&m));
                } else if let Some((f, _)) = self.ekf.as_mut() {
                    // Start at the first odometry pose, as robot_localization's set_pose would:
                    // what odometry measures is known to 0.1 (σ), the rest (roll, pitch, their
                    // rates, the accelerations) to 1. A confident zero there would gate the first
                    // IMU samples whenever the vehicle starts in a curve, and from then on all.
                    let mut x = State::zeros();
                    let mut p = Covariance::identity();
                    for (i, v) in m.indices.iter().zip(m.values.iter()) {
                        x[*i] = *v;
                        p[(*i, *i)] = 0.01;
                    }
                    f.set_state(s.t, x, p);
                    self.ekf_time_ns = h.sample.sensor_time();
                    self.ekf_started = true;
                }
            }),
            _ => Ok(()),
        };
        let t1 = now_ns();
        match res {
            Ok(()) => self.emit(h, t0, t1),
            Err(_) => self.emit(h, 0, 0),
        }
        res
    }
}

impl Fuser {
    /// Runs one EKF step on the measurement stamped `t_sensor_ns`, mirrors the filter's counters
    /// into the node's, and hands out the estimate after an accepted measurement.
    fn correct(
        &mut self,
        t_sensor_ns: u64,
        step: impl FnOnce(&mut Ekf) -> Result<Correction, ekf::EkfError>,
    ) {
        let Some((f, _)) = self.ekf.as_mut() else {
            return;
        };
        let res = step(f);
        // Counters from the filter: a rewind re-applies later measurements, and their outcomes
        // are counted anew there.
        let st = f.stats();
        self.node.ekf_accepted.set(st.accepted);
        self.node.ekf_rejected.set(st.rejected);
        self.node.ekf_late.set(st.late);
        self.node.ekf_too_late.set(st.too_late);
        match res {
            Ok(Correction::Accepted { .. }) => {
                self.ekf_time_ns = self.ekf_time_ns.max(t_sensor_ns);
                let t = self.ekf_time_ns;
                let mut state = [0.0; ekf::STATE_SIZE];
                state.copy_from_slice(f.state().as_slice());
                let e = Estimate {
                    t_sensor_ns: t,
                    state,
                };
                self.estimates.force_push(e);
                if let Some(publisher) = &mut self.odometry_pub {
                    if let Ok(mut chunk) = publisher.loan() {
                        chunk.write(&OdometryRecord::from_state(t, f.state(), f.covariance()));
                        chunk.set_sensor_time(t);
                        chunk.set_dma_time(now_ns());
                        if chunk.publish().is_err() {
                            self.node.fuse_errors.inc();
                        }
                    }
                }
                if let Some(tap) = &self.mcap {
                    tap.offer_estimate(e);
                }
            }
            Ok(Correction::Rejected { .. }) => {
                self.ekf_time_ns = self.ekf_time_ns.max(t_sensor_ns);
            }
            Ok(Correction::TooLate) => {}
            Err(_) => self.node.fuse_errors.inc(),
        }
    }
}

struct Input {
    channel: String,
    kind: StreamKind,
    sub: Option<Subscriber>,
    last_seq: u64,
    next_open_ns: u64,
    opened_before: bool,
    counters: Arc<StreamCounters>,
    /// Position in the synchroniser (0 camera, 1 LiDAR) when paired.
    sync_slot: Option<usize>,
}

impl Input {
    fn try_open(&mut self, now: u64, period_ns: u64) {
        self.next_open_ns = now + period_ns;
        if let Ok(s) = Subscriber::open(&self.channel) {
            self.sub = Some(s);
            self.last_seq = 0;
            if self.opened_before {
                self.counters.reconnects.inc();
            }
            self.opened_before = true;
        }
    }
}

fn validate(s: &Sample, kind: StreamKind) -> Result<FrameMeta, MetaError> {
    if s.user() != kind.user_word() {
        return Err(MetaError::BadMagic((s.user() >> 32) as u32));
    }
    let meta = FrameMeta::decode(s.user_header(), kind)?;
    meta.check_payload(s.payload().len())?;
    Ok(meta)
}

/// Samples taken from one channel per loop turn at most, so no stream starves the others.
const BURST: usize = 32;
/// Period of the steady-state self-check (allocations and faults), ns.
const SELF_CHECK_NS: u64 = 100_000_000;

struct SteadyCheck {
    start_ns: u64,
    next_ns: u64,
    base: Option<(AllocCounts, ThreadUsage)>,
}

impl SteadyCheck {
    fn tick(&mut self, now: u64, node: &NodeCounters) {
        if now < self.next_ns {
            return;
        }
        self.next_ns = now + SELF_CHECK_NS;
        if now < self.start_ns {
            return;
        }
        let (a, u) = (alloc_check::thread_counts(), rt::thread_usage());
        match &self.base {
            None => {
                self.base = Some((a, u));
                node.steady.set(1);
            }
            Some((a0, u0)) => {
                node.steady_allocations.set(a.since(a0).allocs);
                node.steady_minor_faults.set(u.since(u0).minor_faults);
            }
        }
    }
}

/// The fusion thread: real-time set-up, report the status, loop until stop, release everything.
/// Receives and validates the next sample of one input (counting gaps, invalid samples and
/// disconnects); `None` when it has nothing now.
fn take_one(inp: &mut Input, stream: u16, flags0: u16) -> Option<Held> {
    loop {
        let sub = inp.sub.as_mut()?;
        let sample = match sub.receive() {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(ReceiveError::Disconnected) | Err(_) => {
                // The publisher is gone and everything it sent was received: look for a new one.
                inp.sub = None;
                inp.next_open_ns = now_ns();
                return None;
            }
        };
        let t_dequeue = now_ns();
        let mut flags = flags0;
        let seq = sample.seq();
        if inp.last_seq != 0 && seq > inp.last_seq + 1 {
            inp.counters.dropped.add(seq - inp.last_seq - 1);
            flags |= FLAG_GAP_BEFORE;
        }
        inp.last_seq = seq;
        match validate(&sample, inp.kind) {
            Ok(meta) => {
                inp.counters.received.inc();
                return Some(Held {
                    sample,
                    stream,
                    flags,
                    t_dequeue,
                    meta,
                });
            }
            Err(_) => inp.counters.invalid.inc(),
        }
    }
}

pub(crate) fn run(cfg: NodeConfig, sh: Shared, outs: Outputs, status_tx: Sender<RtStatus>) {
    let status = rt::setup_current_thread(&cfg.rt);
    let fifo = status.is_fifo();
    let _ = status_tx.send(status);
    drop(status_tx);

    let cam = cfg
        .streams
        .iter()
        .position(|s| s.kind == StreamKind::Camera);
    let lidar = cfg.streams.iter().position(|s| s.kind == StreamKind::Lidar);
    let paired = cam.zip(lidar);
    let mut inputs: Vec<Input> = cfg
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| Input {
            channel: s.channel.clone(),
            kind: s.kind,
            sub: None,
            last_seq: 0,
            next_open_ns: 0,
            opened_before: false,
            counters: sh.streams[i].clone(),
            sync_slot: paired.and_then(|(c, l)| (i == c).then_some(0).or((i == l).then_some(1))),
        })
        .collect();
    let lower_bound = |i: usize| {
        let s = &cfg.streams[i];
        cfg.sync_lower_bound_ns
            .iter()
            .find(|(n, _)| *n == s.channel)
            // Drivers tick at whole periods; 90 % of one is a safe lower bound that lets the
            // policy publish without waiting for the next message.
            .map_or((0.9e9 / s.rate_hz) as i64, |(_, b)| *b)
    };
    let bounds = paired.map_or([0, 0], |(c, l)| [lower_bound(c), lower_bound(l)]);
    let mut syncer = match Syncer::new(cfg.sync, bounds) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(
                "node {}: synchroniser: {e}; camera and LiDAR are not paired",
                cfg.name
            );
            None
        }
    };
    let projector = cfg.projection.as_ref().and_then(|p| {
        match Projector::new(&p.camera, &p.extrinsic, p.model) {
            Ok(pr) => Some(pr),
            Err(e) => {
                tracing::error!("node {}: projection disabled: {e}", cfg.name);
                None
            }
        }
    });
    let n_px = projector.as_ref().map_or(0, |p| {
        p.camera_info().width as usize * p.camera_info().height as usize
    });
    let mut fuser = Fuser {
        node: sh.node.clone(),
        stats: sh.stats.clone(),
        trace: sh.trace.clone(),
        projector,
        depth: vec![f32::NAN; n_px],
        depth_pub: outs.depth,
        depth_frame: 0,
        cloud_pub: outs.cloud,
        cloud_frame: 0,
        odometry_pub: outs.odometry,
        ekf: cfg.ekf.map(|spec| {
            let q = Ekf::default().process_noise();
            (Box::new(Ekf::with_history(q, spec.lag)), spec)
        }),
        ekf_started: false,
        ekf_time_ns: 0,
        has_odometry: cfg.streams.iter().any(|s| s.kind == StreamKind::Odometry),
        estimates: sh.estimates.clone(),
        mcap: sh.mcap.clone(),
    };
    let reconnect_ns = cfg.reconnect_period.as_nanos() as u64;
    let flags0 = if fifo { FLAG_SCHED_FIFO } else { 0 };
    let mut check = SteadyCheck {
        start_ns: now_ns() + cfg.warmup.as_nanos() as u64,
        next_ns: 0,
        base: None,
    };

    // One received, validated sample per input waiting for its turn (in sensor-time order).
    let mut pending: [Option<Held>; MAX_STREAMS] = Default::default();
    // SYNC: Acquire pairs with NodeHandle's Release store of `stop`.
    while !sh.stop.load(Ordering::Acquire) {
        sh.node.loop_iterations.inc();
        let now = now_ns();
        for inp in inputs
            .iter_mut()
            .filter(|i| i.sub.is_none() && now >= i.next_open_ns)
        {
            inp.try_open(now, reconnect_ns);
        }
        if let Wakeup::Sleep { max_wait } = cfg.wakeup {
            let mut refs: heapless::Vec<&Subscriber, MAX_STREAMS> = heapless::Vec::new();
            for s in inputs.iter().filter_map(|i| i.sub.as_ref()) {
                let _ = refs.push(s);
            }
            if refs.is_empty() {
                rt::sleep_until_ns(now + reconnect_ns);
            } else {
                let wait = if refs.len() < inputs.len() {
                    max_wait.min(cfg.reconnect_period)
                } else {
                    max_wait
                };
                shm_transport::wait_any(&refs, wait);
            }
        }
        // Take at most one sample per input at a time and hand them on in sensor-time order, so
        // the EKF sees IMU and odometry interleaved as they were measured even after a stall left
        // a backlog in several rings (a per-input burst would apply old odometry after newer IMU).
        for _ in 0..BURST * inputs.len() {
            for (i, inp) in inputs.iter_mut().enumerate() {
                if pending[i].is_none() {
                    pending[i] = take_one(inp, i as u16, flags0);
                }
            }
            let next = pending
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.as_ref().map(|h| (h.sample.sensor_time(), i)))
                .min();
            let Some((_, i)) = next else { break };
            let Some(h) = pending[i].take() else { break };
            let inp = &mut inputs[i];
            match (inp.sync_slot, syncer.as_mut(), inp.kind) {
                (Some(slot), Some(sy), _) => {
                    let stamp = h.sample.sensor_time() as i64;
                    if let Err(e) = sy.add(slot, stamp, h, &mut |ev| fuser.on_event(ev)) {
                        // Non-monotonic stamps: counted, the sample is released unused.
                        inp.counters.invalid.inc();
                        fuser.emit(e.into_msg().msg, 0, 0);
                    }
                }
                (_, _, kind @ (StreamKind::Imu | StreamKind::Odometry)) => {
                    if fuser.on_measurement(h, kind).is_err() {
                        inp.counters.invalid.inc();
                    }
                }
                _ => fuser.emit(h, 0, 0),
            }
        }
        check.tick(now_ns(), &sh.node);
    }
    // Release every held sample (recorded as not fused).
    for h in pending.iter_mut().filter_map(Option::take) {
        fuser.emit(h, 0, 0);
    }
    if let Some(sy) = syncer.as_mut() {
        sy.drain(&mut |ev| fuser.on_event(ev));
    }
}

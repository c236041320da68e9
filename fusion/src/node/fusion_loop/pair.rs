//! Camera–LiDAR pairs on the fusion thread: the scan projected into the camera (depth image and
//! coloured cloud, written in place into output chunks or pre-allocated buffers) in slices, with the
//! other inputs served between two slices.
//!
//! A pair's work is cut into slices of at most `slice_points` points of projection, or the same
//! budget of bulk memory work ([`BULK_BYTES_PER_POINT`]): clearing the depth image, projecting the
//! scan into it ([`DepthPass`]), colouring the visible points ([`CloudPass`]), copying results for
//! the MCAP writer. After each slice [`Slicer::boundary`] runs the loop's `between` callback, which
//! takes and handles the samples waiting on the inputs that are not synchronised (IMU, odometry, …),
//! then the next slice resumes where the last one stopped. The pair in progress (its two passes, the
//! loaned output chunks, the held camera and LiDAR samples) lives in [`PairFuser::on_event`]'s frame
//! on the fusion thread's locked, prefaulted stack: nothing is allocated. The synchronised inputs
//! are not received while a pair is in progress: their samples wait in their channels, as they did
//! behind the unsliced projection.
//!
//! The pair's records span the whole job (fuse start before the first slice, fuse end after the
//! last, samples served in between included); the longest slice, which bounds how long any other
//! input waits for the pair, is kept in [`crate::stats::NodeCounters::fuse_slice_max_ns`].

use shm_transport::Publisher;

use super::{Emitter, Held, Step};
use crate::driver::meta::FrameMeta;
use crate::driver::StreamKind;
use crate::node::mcap_worker::McapTap;
use crate::node::outputs::cloud_meta;
use crate::projection::{
    CloudPass, CloudView, DepthPass, ImageView, Projector, BULK_BYTES_PER_POINT,
    COLOURED_POINT_STEP,
};
use crate::rt::{now_ns, thread_cpu_ns};
use crate::sync::SyncEvent;
use crate::synth::LIDAR_POINT_STEP;

/// Points this far (m) behind the nearest depth at their pixel are hidden from the camera.
const OCCLUSION_TOLERANCE_M: f32 = 0.2;

/// The fusion of synchronised camera–LiDAR pairs and where its results go.
pub(super) struct PairFuser {
    pub out: Emitter,
    pub projector: Option<Projector>,
    /// Depth image when there is no output channel (or no free output chunk): width × height.
    pub depth: Vec<f32>,
    pub depth_pub: Option<Publisher>,
    pub depth_frame: u64,
    pub cloud_pub: Option<Publisher>,
    pub cloud_frame: u64,
    pub mcap: Option<McapTap>,
    /// Points of projection per slice: `1 ..`.
    pub slice_points: usize,
}

/// Cuts a pair's fusion into slices: at each boundary it times the slice that ends, lets the loop
/// serve the other inputs, and starts the next slice.
pub(super) struct Slicer<'a> {
    between: &'a mut dyn FnMut(),
    /// Budget of one slice in points: `1 ..`.
    points: usize,
    /// When the current slice started (CLOCK_MONOTONIC ns).
    start_ns: u64,
    /// Longest slice ended so far (ns).
    max_ns: u64,
    /// Slices ended so far.
    count: u64,
    /// CPU time spent in `between` (serving other inputs), not the set's own work.
    between_cpu_ns: u64,
}

impl<'a> Slicer<'a> {
    fn new(start_ns: u64, points: usize, between: &'a mut dyn FnMut()) -> Slicer<'a> {
        debug_assert!(points >= 1);
        Slicer {
            between,
            points,
            start_ns,
            max_ns: 0,
            count: 0,
            between_cpu_ns: 0,
        }
    }

    /// Ends the current slice at `t_ns`.
    fn end(&mut self, t_ns: u64) {
        self.max_ns = self.max_ns.max(t_ns.saturating_sub(self.start_ns));
        self.count += 1;
    }

    /// Ends the current slice, lets the loop serve the other inputs, starts the next slice.
    fn boundary(&mut self) {
        self.end(now_ns());
        let cpu = thread_cpu_ns();
        (self.between)();
        self.between_cpu_ns += thread_cpu_ns().saturating_sub(cpu);
        self.start_ns = now_ns();
    }

    /// Runs `step` (given the slice budget, returning whether the work is complete) one slice at a
    /// time until the work is complete.
    fn run<E>(&mut self, mut step: impl FnMut(usize) -> Result<bool, E>) -> Result<(), E> {
        loop {
            let done = step(self.points)?;
            self.boundary();
            if done {
                return Ok(());
            }
        }
    }

    /// Copies `src` into `dst` (equal lengths), one slice of bulk work at a time.
    fn copy<T: Copy>(&mut self, dst: &mut [T], src: &[T]) {
        debug_assert_eq!(dst.len(), src.len());
        let per_slice =
            (self.points.saturating_mul(BULK_BYTES_PER_POINT) / core::mem::size_of::<T>()).max(1);
        for (d, s) in dst.chunks_mut(per_slice).zip(src.chunks(per_slice)) {
            d.copy_from_slice(s);
            self.boundary();
        }
    }
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

/// The coloured cloud of `cloud` in `cam`'s image, occluded points left out, written into `out` a
/// slice at a time; returns the points written.
fn coloured_cloud(
    p: &Projector,
    cloud: &CloudView<'_>,
    cam: &Held,
    depth: &[f32],
    out: &mut [u8],
    sl: &mut Slicer<'_>,
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
    let mut pass = CloudPass::new();
    let occlusion = Some((depth, OCCLUSION_TOLERANCE_M));
    sl.run(|n| pass.step(p, cloud, &image, occlusion, out, n))
        .map_err(|_| ())?;
    Ok(pass.written())
}

/// Copies the first `points` coloured points of `cloud` into an MCAP buffer, a slice at a time, and
/// queues it for the writer (no free buffer: counted as dropped by the tap).
fn offer_cloud(tap: &McapTap, t_ns: u64, points: usize, cloud: &[u8], sl: &mut Slicer<'_>) {
    let Some(mut buf) = tap.take_cloud() else {
        return;
    };
    let len = points.saturating_mul(COLOURED_POINT_STEP);
    let copied = match (buf.get_mut(..len), cloud.get(..len)) {
        (Some(dst), Some(src)) => {
            sl.copy(dst, src);
            true
        }
        _ => false,
    };
    if copied {
        tap.queue_cloud(t_ns, points, buf);
    } else {
        tap.return_cloud(buf);
        tap.dropped.inc();
    }
}

impl PairFuser {
    /// A synchroniser event: a set is fused in slices, `between` running at every slice boundary,
    /// and its samples released; a dropped sample is released.
    pub fn on_event(&mut self, ev: SyncEvent<Held, 2>, between: &mut dyn FnMut()) {
        match ev {
            SyncEvent::Set([cam, lidar]) => {
                let t0 = now_ns();
                let cpu0 = thread_cpu_ns();
                let mut sl = Slicer::new(t0, self.slice_points, between);
                if self.fuse(&cam.msg, &lidar.msg, &mut sl).is_err() {
                    self.out.node.fuse_errors.inc();
                }
                let cpu_ns = thread_cpu_ns()
                    .saturating_sub(cpu0)
                    .saturating_sub(sl.between_cpu_ns);
                let t1 = now_ns();
                sl.end(t1);
                let node = &self.out.node;
                node.sets_fused.inc();
                node.fuse_slices.add(sl.count);
                node.fuse_slice_max_ns.raise_to(sl.max_ns);
                let step = Step { t0, t1, cpu_ns };
                self.out.emit(cam.msg, step);
                self.out.emit(lidar.msg, step);
            }
            SyncEvent::Dropped { msg, .. } => {
                self.out.node.sync_discarded.inc();
                self.out.emit(msg.msg, Step::default());
            }
        }
    }

    /// LiDAR → camera: the depth image of the scan and its coloured cloud, each written in place
    /// into an output chunk when there is an output channel (the depth image into a pre-allocated
    /// buffer otherwise: the coloured cloud needs it for occlusion), a slice at a time.
    fn fuse(&mut self, cam: &Held, lidar: &Held, sl: &mut Slicer<'_>) -> Result<(), ()> {
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
        let mut pass = DepthPass::new();
        sl.run(|n| pass.step(p, &cloud, depth, n)).map_err(|_| ())?;
        if let Some(tap) = &self.mcap {
            if let Some(mut buf) = tap.take_depth(n_px) {
                sl.copy(&mut buf, depth);
                tap.queue_depth(t_cam, buf);
            }
        }
        let mut res = Ok(());
        let mut cloud_written = false;
        if let Some(publisher) = &mut self.cloud_pub {
            // A missing free chunk (slow subscribers) skips this cloud, like the depth image.
            if let Ok(mut chunk) = publisher.loan() {
                cloud_written = true;
                // A failed cloud (a scan larger than the chunk) still lets the depth image go out.
                res =
                    coloured_cloud(p, &cloud, cam, depth, chunk.payload_mut(), sl).and_then(|n| {
                        if let Some(tap) = &self.mcap {
                            offer_cloud(tap, t_cam, n, chunk.payload_mut(), sl);
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
            if let Some(mut buf) = tap.take_cloud() {
                match coloured_cloud(p, &cloud, cam, depth, &mut buf, sl) {
                    Ok(n) => tap.queue_cloud(t_cam, n, buf),
                    Err(()) => {
                        tap.return_cloud(buf);
                        res = Err(());
                    }
                }
            }
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
}

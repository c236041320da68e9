//! Fused results to an MCAP file, off the real-time thread.
//!
//! The fusion thread copies each depth image and each coloured cloud into a buffer from a
//! pre-allocated pool (or writes the cloud straight into one; a slice at a time, see
//! [`crate::projection::BULK_BYTES_PER_POINT`]) and pushes it, and each EKF estimate,
//! into bounded `ArrayQueue`s ([`McapTap`]); when a pool is empty the result is counted as dropped,
//! never waited for. A worker thread writes them with [`McapOutput`] (`/fusion/depth` as
//! `sensor_msgs/msg/Image` 32FC1, `/fusion/cloud` as `sensor_msgs/msg/PointCloud2` with x, y, z
//! float32 and the colour as PCL's float32-packed `rgb`, in the LiDAR frame, `/fusion/odometry` as
//! `nav_msgs/msg/Odometry`) and returns each buffer to its pool.

use crossbeam_queue::ArrayQueue;
use nalgebra::UnitQuaternion;
use rtfuse_msgs::nav_msgs::Odometry;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Estimate;
use crate::mcap_out::{ColoredPoint, McapOutError, McapOutput};
use crate::projection::COLOURED_POINT_STEP;
use crate::stats::Counter;

/// Depth buffers in the pool, and cloud buffers in theirs.
const POOL: usize = 3;
/// Estimates queued for the writer.
const ESTIMATES: usize = 4096;
/// Frame of the coloured cloud's points (the LiDAR's).
const CLOUD_FRAME: &str = "lidar";

/// A coloured cloud on its way to the writer: camera stamp, points, buffer (`points` ×
/// [`COLOURED_POINT_STEP`] bytes used).
type CloudBuf = (u64, usize, Box<[u8]>);

/// The real-time side: pre-allocated buffers and bounded queues.
#[derive(Clone)]
pub(crate) struct McapTap {
    free: Arc<ArrayQueue<Box<[f32]>>>,
    full: Arc<ArrayQueue<(u64, Box<[f32]>)>>,
    cloud_free: Arc<ArrayQueue<Box<[u8]>>>,
    cloud_full: Arc<ArrayQueue<CloudBuf>>,
    estimates: Arc<ArrayQueue<Estimate>>,
    /// Results dropped because the writer fell behind.
    pub dropped: Arc<Counter>,
}

impl McapTap {
    /// Pools of depth buffers of `n_px` pixels and of cloud buffers of `cloud_points` coloured
    /// points (none for 0), allocated and written now so that their pages are resident.
    pub fn new(n_px: usize, cloud_points: usize) -> McapTap {
        let free = Arc::new(ArrayQueue::new(POOL));
        let cloud_free = Arc::new(ArrayQueue::new(POOL));
        for _ in 0..POOL {
            let _ = free.push(vec![f32::NAN; n_px].into_boxed_slice());
            if cloud_points > 0 {
                let bytes = cloud_points.saturating_mul(COLOURED_POINT_STEP);
                let _ = cloud_free.push(vec![0xff; bytes].into_boxed_slice());
            }
        }
        McapTap {
            free,
            full: Arc::new(ArrayQueue::new(POOL)),
            cloud_free,
            cloud_full: Arc::new(ArrayQueue::new(POOL)),
            estimates: Arc::new(ArrayQueue::new(ESTIMATES)),
            dropped: Arc::new(Counter::default()),
        }
    }

    /// A free depth buffer of `n_px` pixels to write an image into (then [`Self::queue_depth`]).
    /// Never blocks or allocates. No free buffer of that size: counted as dropped, `None`.
    pub fn take_depth(&self, n_px: usize) -> Option<Box<[f32]>> {
        match self.free.pop() {
            Some(b) if b.len() == n_px => Some(b),
            Some(b) => {
                let _ = self.free.push(b);
                self.dropped.inc();
                None
            }
            None => {
                self.dropped.inc();
                None
            }
        }
    }

    /// Queues a depth image (a buffer from [`Self::take_depth`]) for the writer. Never blocks or
    /// allocates.
    pub fn queue_depth(&self, stamp_ns: u64, buf: Box<[f32]>) {
        // Cannot be full: the pool holds as many buffers as the queue has slots.
        if let Err((_, b)) = self.full.push((stamp_ns, buf)) {
            let _ = self.free.push(b);
            self.dropped.inc();
        }
    }

    /// A free cloud buffer to write a coloured cloud into (layout [`COLOURED_POINT_STEP`]; then
    /// [`Self::queue_cloud`] or [`Self::return_cloud`]). Never blocks or allocates. No free buffer:
    /// counted as dropped, `None`.
    pub fn take_cloud(&self) -> Option<Box<[u8]>> {
        let b = self.cloud_free.pop();
        if b.is_none() {
            self.dropped.inc();
        }
        b
    }

    /// Queues the first `points` coloured points of `buf` (from [`Self::take_cloud`]) for the
    /// writer; more points than the buffer holds are counted as dropped. Never blocks or allocates.
    pub fn queue_cloud(&self, stamp_ns: u64, points: usize, buf: Box<[u8]>) {
        if points.saturating_mul(COLOURED_POINT_STEP) > buf.len() {
            self.return_cloud(buf);
            self.dropped.inc();
        } else if let Err((_, _, b)) = self.cloud_full.push((stamp_ns, points, buf)) {
            // Cannot be full: the pool holds as many buffers as the queue has slots.
            self.return_cloud(b);
            self.dropped.inc();
        }
    }

    /// Gives back a cloud buffer from [`Self::take_cloud`] unused.
    pub fn return_cloud(&self, buf: Box<[u8]>) {
        let _ = self.cloud_free.push(buf);
    }

    /// Queues an estimate. Never blocks or allocates.
    pub fn offer_estimate(&self, e: Estimate) {
        if self.estimates.push(e).is_err() {
            self.dropped.inc();
        }
    }
}

/// The first `n` points of a coloured cloud in the node's layout (x, y, z float32, `0x00RRGGBB`
/// as a little-endian u32; see [`super::outputs::CLOUD_XYZRGB`]) into `out` (cleared first).
fn unpack_cloud(bytes: &[u8], n: usize, out: &mut Vec<ColoredPoint>) {
    out.clear();
    out.extend(bytes.chunks_exact(COLOURED_POINT_STEP).take(n).map(|rec| {
        let f = |i: usize| f32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        let [b, g, r, _] = [rec[12], rec[13], rec[14], rec[15]];
        ColoredPoint {
            xyz: [f(0), f(4), f(8)],
            rgb: [r, g, b],
        }
    }));
}

fn odometry(e: &Estimate) -> Odometry {
    let s = &e.state;
    let q = UnitQuaternion::from_euler_angles(s[3], s[4], s[5]);
    crate::layout::odometry(
        crate::layout::header(e.t_sensor_ns as i64, "odom"),
        [s[0], s[1], s[2]],
        [q.i, q.j, q.k, q.w],
        [s[6], s[7], s[8]],
        [s[9], s[10], s[11]],
        [0.0; 6],
        [0.0; 6],
    )
}

/// The writer thread.
pub(crate) struct McapWorker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64, McapOutError>>>,
}

impl McapWorker {
    /// Creates the file now (errors surface here) and starts writing what `tap` delivers; depth
    /// images are `width × height`.
    pub fn spawn(
        path: &Path,
        tap: McapTap,
        width: u32,
        height: u32,
    ) -> Result<McapWorker, McapOutError> {
        let mut out = McapOutput::create(path)?;
        let mut points = Vec::new();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rtfuse-mcap".into())
            .spawn(move || {
                loop {
                    // SYNC: Acquire pairs with the Release in `finish`: results queued before the stop
                    // request are drained below.
                    let stopping = s.load(Ordering::Acquire);
                    while let Some((stamp, buf)) = tap.full.pop() {
                        let r = out.write_depth_32f(
                            "/fusion/depth",
                            stamp,
                            "camera_optical",
                            width,
                            height,
                            &buf,
                        );
                        let _ = tap.free.push(buf);
                        r?;
                    }
                    while let Some((stamp, n, buf)) = tap.cloud_full.pop() {
                        unpack_cloud(&buf, n, &mut points);
                        let _ = tap.cloud_free.push(buf);
                        out.write_colored_cloud("/fusion/cloud", stamp, CLOUD_FRAME, &points)?;
                    }
                    while let Some(e) = tap.estimates.pop() {
                        out.write_odometry("/fusion/odometry", &odometry(&e))?;
                    }
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let written = out.written();
                out.finish()?;
                Ok(written)
            })
            .map_err(McapOutError::Io)?;
        Ok(McapWorker {
            stop,
            thread: Some(thread),
        })
    }

    /// Writes what is queued, closes the file and returns the number of messages written.
    pub fn finish(mut self) -> Result<u64, McapOutError> {
        self.join()
    }

    fn join(&mut self) -> Result<u64, McapOutError> {
        // SYNC: Release pairs with the worker's Acquire load.
        self.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(McapOutError::Io(std::io::Error::other(
                    "MCAP writer panicked",
                )))
            }),
            None => Ok(0),
        }
    }
}

impl Drop for McapWorker {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            tracing::error!("MCAP output: {e}");
        }
    }
}

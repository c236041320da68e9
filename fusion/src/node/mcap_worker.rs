//! Fused results to an MCAP file, off the real-time thread.
//!
//! The fusion thread copies each depth image into a buffer from a pre-allocated pool and pushes it,
//! and each EKF estimate, into bounded `ArrayQueue`s ([`McapTap`]); when the pool is empty the result is
//! counted as dropped, never waited for. A worker thread writes them with [`McapOutput`]
//! (`/fusion/depth` as `sensor_msgs/msg/Image` 32FC1, `/fusion/odometry` as `nav_msgs/msg/Odometry`)
//! and returns each buffer to the pool.

use crossbeam_queue::ArrayQueue;
use nalgebra::UnitQuaternion;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::geometry_msgs::{
    Point, Pose, PoseWithCovariance, Quaternion, Twist, TwistWithCovariance, Vector3,
};
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::std_msgs::Header;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Estimate;
use crate::mcap_out::{McapOutError, McapOutput};
use crate::stats::Counter;

/// Depth buffers in the pool.
const POOL: usize = 3;
/// Estimates queued for the writer.
const ESTIMATES: usize = 4096;

/// The real-time side: pre-allocated buffers and bounded queues.
#[derive(Clone)]
pub(crate) struct McapTap {
    free: Arc<ArrayQueue<Box<[f32]>>>,
    full: Arc<ArrayQueue<(u64, Box<[f32]>)>>,
    estimates: Arc<ArrayQueue<Estimate>>,
    /// Results dropped because the writer fell behind.
    pub dropped: Arc<Counter>,
}

impl McapTap {
    /// A pool of depth buffers of `n_px` pixels (allocated now).
    pub fn new(n_px: usize) -> McapTap {
        let free = Arc::new(ArrayQueue::new(POOL));
        for _ in 0..POOL {
            let _ = free.push(vec![f32::NAN; n_px].into_boxed_slice());
        }
        McapTap {
            free,
            full: Arc::new(ArrayQueue::new(POOL)),
            estimates: Arc::new(ArrayQueue::new(ESTIMATES)),
            dropped: Arc::new(Counter::default()),
        }
    }

    /// Copies a depth image into a pool buffer and queues it. Never blocks or allocates.
    pub fn offer_depth(&self, stamp_ns: u64, depth: &[f32]) {
        match self.free.pop() {
            Some(mut b) if b.len() == depth.len() => {
                b.copy_from_slice(depth);
                // Cannot be full: the pool holds as many buffers as the queue has slots.
                if let Err((_, b)) = self.full.push((stamp_ns, b)) {
                    let _ = self.free.push(b);
                    self.dropped.inc();
                }
            }
            Some(b) => {
                let _ = self.free.push(b);
                self.dropped.inc();
            }
            None => self.dropped.inc(),
        }
    }

    /// Queues an estimate. Never blocks or allocates.
    pub fn offer_estimate(&self, e: Estimate) {
        if self.estimates.push(e).is_err() {
            self.dropped.inc();
        }
    }
}

fn odometry(e: &Estimate) -> Odometry {
    let s = &e.state;
    let q = UnitQuaternion::from_euler_angles(s[3], s[4], s[5]);
    Odometry {
        header: Header {
            stamp: Time::from_nanos(e.t_sensor_ns as i64),
            frame_id: "odom".into(),
        },
        child_frame_id: "base_link".into(),
        pose: PoseWithCovariance {
            pose: Pose {
                position: Point {
                    x: s[0],
                    y: s[1],
                    z: s[2],
                },
                orientation: Quaternion {
                    x: q.i,
                    y: q.j,
                    z: q.k,
                    w: q.w,
                },
            },
            covariance: [0.0; 36],
        },
        twist: TwistWithCovariance {
            twist: Twist {
                linear: Vector3 {
                    x: s[6],
                    y: s[7],
                    z: s[8],
                },
                angular: Vector3 {
                    x: s[9],
                    y: s[10],
                    z: s[11],
                },
            },
            covariance: [0.0; 36],
        },
    }
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

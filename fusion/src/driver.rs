//! Sensor drivers: the producing side of a channel.
//!
//! A [`SensorDriver`] loans a chunk from its [`Publisher`], fills it in place (the "DMA": the bytes
//! land directly in shared memory), stamps the sensor time and "DMA complete", writes the frame
//! metadata ([`meta::FrameMeta`]) into the chunk's user header, and publishes — at its configured
//! rate, sleeping to absolute deadlines (`clock_nanosleep(TIMER_ABSTIME)`), so the rate does not drift.
//! After warm-up this hand-off allocates nothing and takes no page fault (the `steady_state` test
//! proves it).
//!
//! A driver runs on any thread ([`spawn_driver_thread`]) or as its own process ([`run_standalone`],
//! what `rtfuse driver NAME` calls). The synthetic drivers in [`synthetic`] observe the ground truth
//! of [`crate::truth`] through [`crate::synth`].
//!
//! # Example
//! ```no_run
//! use fusion::driver::{run_standalone, synthetic::{ImuConfig, SyntheticImu}};
//! use fusion::rt::RtConfig;
//! use std::sync::atomic::AtomicBool;
//! let stop = AtomicBool::new(false); // set from a signal handler to stop
//! let mut imu = SyntheticImu::new(ImuConfig::default())?;
//! let stats = run_standalone(&mut imu, "imu", &RtConfig::default(), &stop)?;
//! println!("published {}", stats.published);
//! # Ok::<(), fusion::driver::DriverError>(())
//! ```

pub mod meta;
pub mod synthetic;

pub use meta::{FrameMeta, MetaError, StreamKind};

use shm_transport::{ChannelConfig, CreateError, LoanError, PublishError, Publisher, SampleMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::rt::{self, now_ns, RtConfig, RtStatus};
use crate::synth::SynthError;

/// Counters of one driver run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Samples published.
    pub published: u64,
    /// Ticks skipped because no chunk was free (subscribers hold them all).
    pub loan_failures: u64,
    /// Publishes refused under `OverflowPolicy::Reject`.
    pub rejected: u64,
    /// Ticks missed because filling took longer than the period.
    pub overruns: u64,
    /// Largest "DMA" (fill) time seen, ns.
    pub max_fill_ns: u64,
    /// Heap allocations on the driver thread after warm-up ([`STEADY_AFTER_FRAMES`] ticks); 0 unless
    /// the counting allocator ([`crate::alloc_check`]) is installed.
    pub steady_allocations: u64,
    /// Minor page faults on the driver thread after warm-up.
    pub steady_minor_faults: u64,
    /// Loop turns in the steady-state window.
    pub steady_frames: u64,
}

/// Ticks after which a driver's steady-state window starts.
pub const STEADY_AFTER_FRAMES: u64 = 20;

/// Why a driver could not start or stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The driver's parameters are unusable.
    #[error("driver configuration: {0}")]
    Config(String),
    /// The channel could not be created.
    #[error("creating channel {channel:?}: {source}")]
    Channel {
        /// Channel name.
        channel: String,
        /// Cause.
        source: CreateError,
    },
    /// The sensor model failed.
    #[error("sensor model: {0}")]
    Synth(#[from] SynthError),
    /// The frame metadata could not be written.
    #[error("frame metadata: {0}")]
    Meta(#[from] MetaError),
    /// The driver thread could not be spawned or panicked.
    #[error("driver thread: {0}")]
    Thread(String),
}

/// A source of sensor samples that publishes into a channel.
pub trait SensorDriver: Send {
    /// The driver's name (also its default channel name).
    fn name(&self) -> &str;
    /// The kind of samples it produces.
    fn kind(&self) -> StreamKind;
    /// Nominal rate in Hz.
    fn rate_hz(&self) -> f64;
    /// The channel shape it needs (chunk size fits its largest sample; user header fits the metadata).
    fn channel_config(&self) -> ChannelConfig;
    /// Publishes until `stop` is set; returns the counters.
    ///
    /// # Errors
    /// A fatal error of the source (model or metadata errors).
    fn run(
        &mut self,
        publisher: &mut Publisher,
        stop: &AtomicBool,
    ) -> Result<DriverStats, DriverError>;
}

/// Fills one sample in place: what a periodic driver does at each tick.
pub trait FrameSource: Send {
    /// Writes the sample of sensor time `t_sensor_ns` into `payload` and its metadata into `header`
    /// (the chunk's user header); returns the payload length. Must not allocate.
    ///
    /// # Errors
    /// A model or metadata error; the driver stops with it.
    fn fill(
        &mut self,
        t_sensor_ns: u64,
        frame: u64,
        payload: &mut [u8],
        header: &mut [u8],
    ) -> Result<usize, DriverError>;
}

/// Absolute-deadline ticks at a fixed rate, aligned to multiples of the period on `CLOCK_MONOTONIC`
/// (tick `k` is at `round(k · 10⁹ / rate)` ns), so drivers in different processes with commensurate
/// rates stamp identical times (a 30 Hz camera and a 10 Hz LiDAR share every third stamp).
#[derive(Debug, Clone)]
pub struct Pacer {
    rate_hz: f64,
    /// Index of the next tick; its time is `tick_time(next)`.
    next: u64,
}

impl Pacer {
    /// Ticks at `rate_hz`, starting at the first tick after now.
    ///
    /// # Errors
    /// [`DriverError::Config`] for a rate that is not finite and positive (or above 1 MHz).
    pub fn new(rate_hz: f64) -> Result<Pacer, DriverError> {
        if !(rate_hz.is_finite() && rate_hz > 0.0 && rate_hz <= 1e6) {
            return Err(DriverError::Config(format!(
                "rate {rate_hz} Hz must be in (0, 1e6]"
            )));
        }
        let mut p = Pacer { rate_hz, next: 0 };
        p.next = p.first_after(now_ns());
        Ok(p)
    }

    /// The time of tick `k`, ns.
    pub fn tick_time(&self, k: u64) -> u64 {
        (k as f64 * 1e9 / self.rate_hz).round() as u64
    }

    fn first_after(&self, t_ns: u64) -> u64 {
        let mut k = (t_ns as f64 * self.rate_hz / 1e9).ceil() as u64;
        while self.tick_time(k) <= t_ns {
            k += 1;
        }
        k
    }

    /// Sleeps until the next tick and returns its time and the number of ticks skipped because the
    /// caller came back late (0 when on time).
    pub fn wait(&mut self) -> (u64, u64) {
        let now = now_ns();
        let mut skipped = 0;
        if now > self.tick_time(self.next) {
            let k = self.first_after(now);
            // Late by less than one period: still serve the missed tick (stamped at its own time).
            if k > self.next + 1 {
                skipped = k - self.next - 1;
                self.next = k - 1;
            }
        }
        let t = self.tick_time(self.next);
        rt::sleep_until_ns(t);
        self.next += 1;
        (t, skipped)
    }
}

/// Fills a loaned sample from `source` at sensor time `t_sensor` as a periodic driver does at each
/// tick: payload and metadata written in place, length, sensor and "DMA complete" times and the
/// kind's user word set. Returns the "DMA complete" time.
///
/// # Errors
/// The error of `source`.
pub(crate) fn fill_sample(
    source: &mut dyn FrameSource,
    kind: StreamKind,
    sample: &mut SampleMut<'_>,
    t_sensor: u64,
    frame: u64,
) -> Result<u64, DriverError> {
    // Split the borrow: payload and header are distinct regions of the chunk.
    let mut hdr = [0u8; meta::META_LEN];
    let len = source.fill(t_sensor, frame, sample.payload_mut(), &mut hdr)?;
    let uh = sample.user_header_mut();
    let n = uh.len().min(hdr.len());
    uh[..n].copy_from_slice(&hdr[..n]);
    sample.set_len(len);
    let t_dma = now_ns();
    sample.set_sensor_time(t_sensor);
    sample.set_dma_time(t_dma);
    sample.set_user(kind.user_word());
    Ok(t_dma)
}

/// The shared loop of periodic drivers: at each tick loan, fill in place, stamp, publish.
///
/// # Errors
/// The first error of `source`.
pub fn run_periodic(
    source: &mut dyn FrameSource,
    kind: StreamKind,
    rate_hz: f64,
    publisher: &mut Publisher,
    stop: &AtomicBool,
) -> Result<DriverStats, DriverError> {
    let mut pacer = Pacer::new(rate_hz)?;
    let mut st = DriverStats::default();
    let mut frame = 0u64;
    let mut ticks = 0u64;
    let mut base = None;
    // SYNC: Acquire pairs with the Release store of whoever stops us (nothing else is published).
    while !stop.load(Ordering::Acquire) {
        if ticks == STEADY_AFTER_FRAMES {
            base = Some((crate::alloc_check::thread_counts(), rt::thread_usage()));
        }
        ticks += 1;
        let (t_sensor, skipped) = pacer.wait();
        st.overruns += skipped;
        let mut sample = match publisher.loan() {
            Ok(s) => s,
            Err(LoanError::OutOfChunks) => {
                st.loan_failures += 1;
                continue;
            }
            Err(_) => {
                st.loan_failures += 1;
                continue;
            }
        };
        let t0 = now_ns();
        let t_dma = fill_sample(source, kind, &mut sample, t_sensor, frame)?;
        st.max_fill_ns = st.max_fill_ns.max(t_dma - t0);
        match sample.publish() {
            Ok(_) => st.published += 1,
            Err(PublishError::Full(_)) => st.rejected += 1,
            Err(_) => st.rejected += 1,
        }
        frame += 1;
    }
    if let Some((a0, u0)) = base {
        st.steady_allocations = crate::alloc_check::thread_counts().since(&a0).allocs;
        st.steady_minor_faults = rt::thread_usage().since(&u0).minor_faults;
        st.steady_frames = ticks - STEADY_AFTER_FRAMES;
    }
    Ok(st)
}

/// Truth time (seconds) of a sensor stamp: synthetic sensors sample the trajectory at
/// `CLOCK_MONOTONIC` seconds, so every process agrees on it.
pub fn truth_time(t_sensor_ns: u64) -> f64 {
    t_sensor_ns as f64 * 1e-9
}

/// Runs `driver` on the calling thread: real-time set-up per `rt_cfg`, create channel `channel`, publish
/// until `stop`. This is what a driver process (`rtfuse driver NAME`) calls.
///
/// # Errors
/// The channel cannot be created, or the driver fails.
pub fn run_standalone(
    driver: &mut dyn SensorDriver,
    channel: &str,
    rt_cfg: &RtConfig,
    stop: &AtomicBool,
) -> Result<DriverStats, DriverError> {
    let status = rt::setup_current_thread(rt_cfg);
    tracing::info!(
        "driver {} ({}) on channel {channel:?}: {status}",
        driver.name(),
        driver.kind()
    );
    let mut publisher = Publisher::create(channel, &driver.channel_config()).map_err(|source| {
        DriverError::Channel {
            channel: channel.to_string(),
            source,
        }
    })?;
    driver.run(&mut publisher, stop)
}

/// A driver running on its own thread.
pub struct DriverThread {
    /// The channel it publishes on.
    pub channel: String,
    thread: JoinHandle<Result<(DriverStats, RtStatus), DriverError>>,
}

impl DriverThread {
    /// Waits for the thread to end (set the stop flag first) and returns its counters and RT status.
    ///
    /// # Errors
    /// The driver's error, or [`DriverError::Thread`] if it panicked.
    pub fn join(self) -> Result<(DriverStats, RtStatus), DriverError> {
        self.thread
            .join()
            .map_err(|_| DriverError::Thread(format!("driver {} panicked", self.channel)))?
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Creates channel `channel` now (so a subscriber can open it as soon as this returns) and runs
/// `driver` on a new thread set up per `rt_cfg`, until `stop`.
///
/// # Errors
/// The channel cannot be created or the thread spawned.
pub fn spawn_driver_thread(
    mut driver: Box<dyn SensorDriver>,
    channel: &str,
    rt_cfg: RtConfig,
    stop: Arc<AtomicBool>,
) -> Result<DriverThread, DriverError> {
    let mut publisher = Publisher::create(channel, &driver.channel_config()).map_err(|source| {
        DriverError::Channel {
            channel: channel.to_string(),
            source,
        }
    })?;
    let thread = std::thread::Builder::new()
        .name(format!("drv-{channel}"))
        .spawn(move || {
            let status = rt::setup_current_thread(&rt_cfg);
            let stats = driver.run(&mut publisher, &stop)?;
            Ok((stats, status))
        })
        .map_err(|e| DriverError::Thread(e.to_string()))?;
    Ok(DriverThread {
        channel: channel.to_string(),
        thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_aligns_commensurate_rates_and_rejects_bad_rates() {
        let cam = Pacer::new(30.0).unwrap();
        let lidar = Pacer::new(10.0).unwrap();
        for k in 0..100u64 {
            assert_eq!(
                cam.tick_time(3 * k + 3_000_000),
                lidar.tick_time(k + 1_000_000)
            );
        }
        assert!(Pacer::new(0.0).is_err() && Pacer::new(f64::NAN).is_err());
    }

    #[test]
    fn pacer_ticks_are_periodic_and_skip_when_late() {
        let mut p = Pacer::new(1000.0).unwrap();
        let (t1, _) = p.wait();
        let (t2, s2) = p.wait();
        // Ticks are whole periods apart; a busy host may make us skip some, never drift.
        assert_eq!(t2 - t1, (1 + s2) * 1_000_000);
        assert!(now_ns() >= t2);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (t3, skipped) = p.wait();
        assert!(skipped >= 3, "skipped {skipped}");
        assert!(t3 > t2 + 3_000_000);
    }
}

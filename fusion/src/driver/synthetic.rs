//! Synthetic sensors as drivers: camera, LiDAR, IMU and odometry, all observing the one ground truth
//! of [`crate::truth`] through [`crate::synth`] at the truth time of their sensor stamp
//! ([`super::truth_time`]), so fusion results can be checked against the truth.
//!
//! Each driver renders straight into the loaned chunk (no intermediate buffer).
//!
//! # Example
//! ```no_run
//! use fusion::driver::{spawn_driver_thread, synthetic::{CameraConfig, SyntheticCamera}};
//! use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
//! let stop = Arc::new(AtomicBool::new(false));
//! let cam = SyntheticCamera::new(CameraConfig { width: 640, height: 480, ..CameraConfig::default() })?;
//! let t = spawn_driver_thread(Box::new(cam), "camera", fusion::rt::RtConfig::default(), stop.clone())?;
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! stop.store(true, Ordering::Release);
//! println!("{:?}", t.join()?);
//! # Ok::<(), fusion::driver::DriverError>(())
//! ```

use rand::rngs::StdRng;
use rand::SeedableRng;
use shm_transport::{ChannelConfig, Publisher, WakeupPolicy};
use std::sync::atomic::AtomicBool;

use super::meta::{self, FrameMeta, StreamKind, META_LEN};
use super::{run_periodic, truth_time, DriverError, DriverStats, FrameSource, SensorDriver};
use crate::synth::{self, CameraModel, ImuNoise, LidarModel, OdomNoise, PixelEncoding};

/// Channel shape parameters every driver config carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelParams {
    /// Chunks in the slab.
    pub chunk_count: u32,
    /// Descriptor ring depth per subscriber (a power of two).
    pub ring_depth: u32,
    /// Subscribers at most.
    pub max_subscribers: u32,
    /// Wake-up policy of receivers.
    pub wakeup: WakeupPolicy,
}

impl ChannelParams {
    fn config(&self, chunk_size: usize, alignment: usize) -> ChannelConfig {
        ChannelConfig {
            chunk_size: chunk_size.max(1),
            chunk_count: self.chunk_count,
            ring_depth: self.ring_depth,
            max_subscribers: self.max_subscribers,
            alignment,
            user_header_size: META_LEN,
            wakeup: self.wakeup,
            ..ChannelConfig::default()
        }
    }

    /// Large frames: few chunks, shallow ring.
    pub fn frames() -> ChannelParams {
        ChannelParams {
            chunk_count: 8,
            ring_depth: 4,
            max_subscribers: 4,
            wakeup: WakeupPolicy::Futex,
        }
    }

    /// Small, frequent samples: a deeper ring.
    pub fn small() -> ChannelParams {
        ChannelParams {
            chunk_count: 40,
            ring_depth: 32,
            max_subscribers: 4,
            wakeup: WakeupPolicy::Futex,
        }
    }
}

fn rate_ok(rate_hz: f64) -> Result<(), DriverError> {
    super::Pacer::new(rate_hz).map(|_| ())
}

macro_rules! periodic_driver {
    ($ty:ty, $kind:expr) => {
        impl $ty {
            /// Renames the driver (its default channel name).
            pub fn named(mut self, name: &str) -> Self {
                self.name = name.into();
                self
            }
        }

        impl SensorDriver for $ty {
            fn name(&self) -> &str {
                &self.name
            }
            fn kind(&self) -> StreamKind {
                $kind
            }
            fn rate_hz(&self) -> f64 {
                self.cfg.rate_hz
            }
            fn channel_config(&self) -> ChannelConfig {
                self.channel_config_impl()
            }
            fn run(
                &mut self,
                publisher: &mut Publisher,
                stop: &AtomicBool,
            ) -> Result<DriverStats, DriverError> {
                let rate = self.cfg.rate_hz;
                run_periodic(self, $kind, rate, publisher, stop)
            }
        }
    };
}

/// Parameters of the synthetic camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel encoding.
    pub encoding: PixelEncoding,
    /// Frames per second.
    pub rate_hz: f64,
    /// Horizontal field of view (degrees).
    pub hfov_deg: f64,
    /// Channel shape.
    pub channel: ChannelParams,
}

impl Default for CameraConfig {
    /// The demo camera: 1920×1080 rgb8 at 30 Hz, 90° field of view.
    fn default() -> Self {
        CameraConfig {
            width: 1920,
            height: 1080,
            encoding: PixelEncoding::Rgb8,
            rate_hz: 30.0,
            hfov_deg: 90.0,
            channel: ChannelParams::frames(),
        }
    }
}

impl CameraConfig {
    /// The pinhole model of this camera (what CameraInfo carries).
    pub fn model(&self) -> CameraModel {
        CameraModel::with_hfov(self.width, self.height, self.hfov_deg)
    }
}

/// A camera rendering the scene from the true pose into the loaned chunk.
pub struct SyntheticCamera {
    name: String,
    cfg: CameraConfig,
    model: CameraModel,
}

impl SyntheticCamera {
    /// A camera named "camera".
    ///
    /// # Errors
    /// [`DriverError::Config`] for a zero size, a bad rate or field of view.
    pub fn new(cfg: CameraConfig) -> Result<SyntheticCamera, DriverError> {
        rate_ok(cfg.rate_hz)?;
        if cfg.width == 0 || cfg.height == 0 || !(cfg.hfov_deg > 1.0 && cfg.hfov_deg < 179.0) {
            return Err(DriverError::Config(format!(
                "camera {}x{} with a {}° field of view: size must be non-zero and the field of view in (1, 179)",
                cfg.width, cfg.height, cfg.hfov_deg
            )));
        }
        Ok(SyntheticCamera {
            name: "camera".into(),
            cfg,
            model: cfg.model(),
        })
    }

    fn channel_config_impl(&self) -> ChannelConfig {
        self.cfg
            .channel
            .config(self.model.frame_len(self.cfg.encoding), 4096)
    }
}

impl FrameSource for SyntheticCamera {
    fn fill(
        &mut self,
        t_sensor_ns: u64,
        frame: u64,
        payload: &mut [u8],
        header: &mut [u8],
    ) -> Result<usize, DriverError> {
        let len = self.model.frame_len(self.cfg.encoding);
        synth::camera_frame(
            truth_time(t_sensor_ns),
            &self.model,
            self.cfg.encoding,
            payload,
        )?;
        FrameMeta::camera(self.cfg.width, self.cfg.height, self.cfg.encoding, frame)
            .encode(header)?;
        Ok(len)
    }
}
periodic_driver!(SyntheticCamera, StreamKind::Camera);

/// Parameters of the synthetic LiDAR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LidarConfig {
    /// Rays per revolution (the cloud has at most this many points).
    pub points_per_scan: usize,
    /// Revolutions per second.
    pub rate_hz: f64,
    /// Channel shape.
    pub channel: ChannelParams,
}

impl Default for LidarConfig {
    /// The demo LiDAR: 120 000 points at 10 Hz.
    fn default() -> Self {
        LidarConfig {
            points_per_scan: 120_000,
            rate_hz: 10.0,
            channel: ChannelParams::frames(),
        }
    }
}

/// A spinning LiDAR ray-casting the scene into the loaned chunk (PointCloud2 x, y, z, intensity f32).
pub struct SyntheticLidar {
    name: String,
    cfg: LidarConfig,
    model: LidarModel,
}

impl SyntheticLidar {
    /// A LiDAR named "lidar".
    ///
    /// # Errors
    /// [`DriverError::Config`] for fewer points than beams or a bad rate.
    pub fn new(cfg: LidarConfig) -> Result<SyntheticLidar, DriverError> {
        rate_ok(cfg.rate_hz)?;
        let model = LidarModel::new(cfg.points_per_scan);
        if cfg.points_per_scan < usize::from(model.channels)
            || cfg.points_per_scan > u32::MAX as usize / 16
        {
            return Err(DriverError::Config(format!(
                "LiDAR with {} points per scan: needs at least {} (one per beam)",
                cfg.points_per_scan, model.channels
            )));
        }
        Ok(SyntheticLidar {
            name: "lidar".into(),
            cfg,
            model,
        })
    }

    fn channel_config_impl(&self) -> ChannelConfig {
        self.cfg.channel.config(self.model.max_scan_bytes(), 4096)
    }
}

impl FrameSource for SyntheticLidar {
    fn fill(
        &mut self,
        t_sensor_ns: u64,
        frame: u64,
        payload: &mut [u8],
        header: &mut [u8],
    ) -> Result<usize, DriverError> {
        let n = synth::lidar_scan(truth_time(t_sensor_ns), &self.model, payload)?;
        FrameMeta::lidar(n as u32, frame).encode(header)?;
        Ok(n * synth::LIDAR_POINT_STEP)
    }
}
periodic_driver!(SyntheticLidar, StreamKind::Lidar);

/// Parameters of the synthetic IMU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuConfig {
    /// Samples per second.
    pub rate_hz: f64,
    /// Noise and bias (its `rate_hz` is overwritten with the rate above).
    pub noise: ImuNoise,
    /// Seed of the noise generator.
    pub seed: u64,
    /// Channel shape.
    pub channel: ChannelParams,
}

impl Default for ImuConfig {
    /// The demo IMU: 400 Hz, consumer-grade MEMS noise, a small gyro bias.
    fn default() -> Self {
        ImuConfig {
            rate_hz: 400.0,
            noise: ImuNoise {
                rate_hz: 400.0,
                gyro_noise_density: 1.7e-4,
                accel_noise_density: 2.0e-3,
                gyro_bias: [0.0, 0.0, 0.002],
                accel_bias: [0.02, -0.01, 0.0],
            },
            seed: 1,
            channel: ChannelParams::small(),
        }
    }
}

/// An IMU sampling the true motion plus noise and bias.
pub struct SyntheticImu {
    name: String,
    cfg: ImuConfig,
    rng: StdRng,
}

impl SyntheticImu {
    /// An IMU named "imu".
    ///
    /// # Errors
    /// [`DriverError::Config`] for a bad rate or negative noise.
    pub fn new(mut cfg: ImuConfig) -> Result<SyntheticImu, DriverError> {
        rate_ok(cfg.rate_hz)?;
        if !(cfg.noise.gyro_noise_density >= 0.0 && cfg.noise.accel_noise_density >= 0.0) {
            return Err(DriverError::Config(
                "IMU noise densities must be >= 0".into(),
            ));
        }
        cfg.noise.rate_hz = cfg.rate_hz;
        Ok(SyntheticImu {
            name: "imu".into(),
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
        })
    }

    fn channel_config_impl(&self) -> ChannelConfig {
        self.cfg.channel.config(meta::IMU_PAYLOAD_LEN, 64)
    }
}

impl FrameSource for SyntheticImu {
    fn fill(
        &mut self,
        t_sensor_ns: u64,
        frame: u64,
        payload: &mut [u8],
        header: &mut [u8],
    ) -> Result<usize, DriverError> {
        let s = synth::imu_sample(truth_time(t_sensor_ns), &self.cfg.noise, &mut self.rng);
        FrameMeta::fixed(StreamKind::Imu, frame).encode(header)?;
        Ok(meta::encode_imu(&s, payload)?)
    }
}
periodic_driver!(SyntheticImu, StreamKind::Imu);

/// Parameters of the synthetic wheel odometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdometryConfig {
    /// Samples per second.
    pub rate_hz: f64,
    /// Noise.
    pub noise: OdomNoise,
    /// Seed of the noise generator.
    pub seed: u64,
    /// Channel shape.
    pub channel: ChannelParams,
}

impl Default for OdometryConfig {
    /// The demo odometry: 50 Hz, 5 cm / 1° pose noise.
    fn default() -> Self {
        OdometryConfig {
            rate_hz: 50.0,
            noise: OdomNoise {
                position_std: 0.05,
                yaw_std: 1f64.to_radians(),
                velocity_std: 0.05,
                yaw_rate_std: 0.01,
            },
            seed: 2,
            channel: ChannelParams::small(),
        }
    }
}

/// Wheel odometry reporting the true pose and twist plus noise.
pub struct SyntheticOdometry {
    name: String,
    cfg: OdometryConfig,
    rng: StdRng,
}

impl SyntheticOdometry {
    /// Odometry named "odom".
    ///
    /// # Errors
    /// [`DriverError::Config`] for a bad rate or negative noise.
    pub fn new(cfg: OdometryConfig) -> Result<SyntheticOdometry, DriverError> {
        rate_ok(cfg.rate_hz)?;
        let n = cfg.noise;
        if !(n.position_std >= 0.0
            && n.yaw_std >= 0.0
            && n.velocity_std >= 0.0
            && n.yaw_rate_std >= 0.0)
        {
            return Err(DriverError::Config("odometry noise must be >= 0".into()));
        }
        Ok(SyntheticOdometry {
            name: "odom".into(),
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
        })
    }

    fn channel_config_impl(&self) -> ChannelConfig {
        self.cfg.channel.config(meta::ODOM_PAYLOAD_LEN, 64)
    }
}

impl FrameSource for SyntheticOdometry {
    fn fill(
        &mut self,
        t_sensor_ns: u64,
        frame: u64,
        payload: &mut [u8],
        header: &mut [u8],
    ) -> Result<usize, DriverError> {
        let s = synth::odometry_sample(truth_time(t_sensor_ns), &self.cfg.noise, &mut self.rng);
        FrameMeta::fixed(StreamKind::Odometry, frame).encode(header)?;
        Ok(meta::encode_odometry(&s, payload)?)
    }
}
periodic_driver!(SyntheticOdometry, StreamKind::Odometry);

//! Synthetic sensors that all observe the ground truth of [`crate::truth`]: a camera, a LiDAR, an IMU and
//! wheel odometry. Each is a pure function of time that writes into a caller-provided buffer (or returns a
//! small `Copy` value) and allocates nothing, so the synthetic drivers can call them on the real-time path.
//!
//! The camera renders by columns: its optical axis is horizontal ([`crate::truth::camera_in_body`]) and the
//! motion is planar, so every pixel of image column `u` looks along the same horizontal direction. Each
//! column intersects the walls and box footprints once in 2-D, then fills its rows by ranges (ceiling,
//! wall, floor, then the boxes far to near); only floor pixels need per-pixel work (the checkerboard). The
//! result equals a per-pixel ray cast of [`crate::truth::raycast`] (a test checks this) at a small fraction of
//! the cost. The image ignores lens distortion (a pinhole camera; its CameraInfo has D = 0).

use crate::truth::{self, Surface, BOXES, ROOM};
use nalgebra::{Point3, Vector3};
use rand::Rng;
use rand_distr::StandardNormal;

/// Errors of the synthetic sensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The output buffer cannot hold the frame or scan.
    #[error("output buffer too small: need {needed} bytes, got {got}")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes provided.
        got: usize,
    },
    /// The sensor model is unusable (zero size, non-finite or non-positive focal length, ...).
    #[error("invalid sensor model: {0}")]
    InvalidModel(&'static str),
}

/// Pixel encodings of the synthetic camera (ROS `sensor_msgs/Image` encoding names in [`Self::ros_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelEncoding {
    /// 3 bytes per pixel, R G B.
    Rgb8,
    /// 3 bytes per pixel, B G R.
    Bgr8,
    /// 1 byte per pixel, luminance (0.299 R + 0.587 G + 0.114 B).
    Mono8,
}

impl PixelEncoding {
    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Rgb8 | Self::Bgr8 => 3,
            Self::Mono8 => 1,
        }
    }

    /// The ROS encoding string (`"rgb8"`, `"bgr8"`, `"mono8"`).
    pub const fn ros_name(self) -> &'static str {
        match self {
            Self::Rgb8 => "rgb8",
            Self::Bgr8 => "bgr8",
            Self::Mono8 => "mono8",
        }
    }

    /// Converts an RGB colour to this encoding (the first `bytes_per_pixel` bytes are meaningful).
    #[inline]
    pub fn encode(self, rgb: [u8; 3]) -> [u8; 3] {
        match self {
            Self::Rgb8 => rgb,
            Self::Bgr8 => [rgb[2], rgb[1], rgb[0]],
            Self::Mono8 => {
                let y = 0.299 * f32::from(rgb[0])
                    + 0.587 * f32::from(rgb[1])
                    + 0.114 * f32::from(rgb[2]);
                [(y + 0.5) as u8, 0, 0]
            }
        }
    }
}

/// A pinhole camera (no distortion): image size and intrinsics in pixels. Pixel centres are at integer
/// coordinates (the OpenCV / ROS convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraModel {
    /// Image width (pixels).
    pub width: u32,
    /// Image height (pixels).
    pub height: u32,
    /// Focal length along x (pixels).
    pub fx: f64,
    /// Focal length along y (pixels).
    pub fy: f64,
    /// Principal point x (pixels).
    pub cx: f64,
    /// Principal point y (pixels).
    pub cy: f64,
}

impl CameraModel {
    /// A camera of `width × height` with square pixels, the principal point at the centre and the given
    /// horizontal field of view (degrees).
    pub fn with_hfov(width: u32, height: u32, hfov_deg: f64) -> Self {
        let f = f64::from(width) * 0.5 / (hfov_deg.to_radians() * 0.5).tan();
        Self {
            width,
            height,
            fx: f,
            fy: f,
            cx: (f64::from(width) - 1.0) * 0.5,
            cy: (f64::from(height) - 1.0) * 0.5,
        }
    }

    /// Bytes of one frame in `encoding` (row stride = width × bytes per pixel, no padding).
    pub fn frame_len(&self, encoding: PixelEncoding) -> usize {
        self.width as usize * self.height as usize * encoding.bytes_per_pixel()
    }

    fn validate(&self) -> Result<(), SynthError> {
        if self.width == 0 || self.height == 0 {
            return Err(SynthError::InvalidModel(
                "camera width and height must be non-zero",
            ));
        }
        let ok = |v: f64| v.is_finite();
        if !(ok(self.fx)
            && ok(self.fy)
            && self.fx > 0.0
            && self.fy > 0.0
            && ok(self.cx)
            && ok(self.cy))
        {
            return Err(SynthError::InvalidModel(
                "camera focal lengths must be finite and positive",
            ));
        }
        Ok(())
    }
}

/// Renders the scene as the vehicle's camera sees it at time `t` into `out` (row-major, no padding,
/// `cam.frame_len(encoding)` bytes). Allocation-free.
///
/// # Errors
/// [`SynthError::BufferTooSmall`] if `out` is shorter than a frame, [`SynthError::InvalidModel`] for a
/// degenerate camera. Nothing is written on error.
///
/// # Examples
/// ```
/// use fusion::synth::{camera_frame, CameraModel, PixelEncoding};
/// let cam = CameraModel::with_hfov(64, 48, 90.0);
/// let mut img = vec![0u8; cam.frame_len(PixelEncoding::Rgb8)];
/// camera_frame(1.0, &cam, PixelEncoding::Rgb8, &mut img).unwrap();
/// ```
pub fn camera_frame(
    t: f64,
    cam: &CameraModel,
    encoding: PixelEncoding,
    out: &mut [u8],
) -> Result<(), SynthError> {
    cam.validate()?;
    let needed = cam.frame_len(encoding);
    if out.len() < needed {
        return Err(SynthError::BufferTooSmall {
            needed,
            got: out.len(),
        });
    }
    let out = &mut out[..needed];
    match encoding {
        PixelEncoding::Mono8 => render::<1>(t, cam, encoding, out),
        _ => render::<3>(t, cam, encoding, out),
    }
    Ok(())
}

/// Per-frame constants of the column renderer.
struct Frame<'a> {
    cam: &'a CameraModel,
    enc: PixelEncoding,
    /// Camera centre (world).
    c: [f64; 3],
    /// Forward (optical z) and right (optical x) axes in the world, horizontal.
    fwd: [f64; 2],
    right: [f64; 2],
    ceiling: [u8; 3],
    floor: [[u8; 3]; 2],
    /// Optical depth at which row `v` meets the floor (rows below the horizon; others unused). Images
    /// taller than this table compute it per pixel.
    floor_depth: [f64; FLOOR_TABLE_ROWS],
}

/// Rows of the per-frame floor-depth table (32 KiB on the stack).
const FLOOR_TABLE_ROWS: usize = 4096;

fn render<const BPP: usize>(t: f64, cam: &CameraModel, enc: PixelEncoding, out: &mut [u8]) {
    let pose = truth::state(t).pose() * truth::camera_in_body();
    let c = pose.translation.vector;
    let z = pose.rotation * Vector3::z();
    let x = pose.rotation * Vector3::x();
    debug_assert!(
        z.z.abs() < 1e-9 && x.z.abs() < 1e-9,
        "the camera's optical axis must be horizontal"
    );
    let up = [0.0, 0.0, 1.0];
    let f = Frame {
        cam,
        enc,
        c: [c.x, c.y, c.z],
        fwd: [z.x, z.y],
        right: [x.x, x.y],
        ceiling: enc.encode(truth::shade(
            truth::surface_albedo(Surface::Ceiling, [0.0; 3]),
            [0.0, 0.0, -1.0],
        )),
        floor: [
            enc.encode(truth::shade(
                truth::surface_albedo(Surface::Floor, [0.5, 0.5, 0.0]),
                up,
            )),
            enc.encode(truth::shade(
                truth::surface_albedo(Surface::Floor, [1.5, 0.5, 0.0]),
                up,
            )),
        ],
        floor_depth: [0.0; FLOOR_TABLE_ROWS],
    };
    let mut f = f;
    let rows = (cam.height as usize).min(FLOOR_TABLE_ROWS);
    for (v, d) in f.floor_depth[..rows].iter_mut().enumerate() {
        *d = c.z * cam.fy / (v as f64 - cam.cy);
    }
    for u in 0..cam.width as usize {
        render_column::<BPP>(&f, u, out);
    }
}

/// Row range `[lo, hi)` whose normalised coordinate `yn = (v - cy) / fy` lies in `[a, b]`.
#[inline]
fn rows(cam: &CameraModel, a: f64, b: f64) -> (usize, usize) {
    let h = f64::from(cam.height);
    let lo = (cam.cy + a * cam.fy).ceil().clamp(0.0, h);
    let hi = ((cam.cy + b * cam.fy).floor() + 1.0).clamp(0.0, h);
    (lo as usize, (hi as usize).max(lo as usize))
}

#[inline]
fn fill<const BPP: usize>(
    out: &mut [u8],
    u: usize,
    width: usize,
    (lo, hi): (usize, usize),
    c: [u8; 3],
) {
    if lo >= hi {
        return;
    }
    let stride = width * BPP;
    for px in out[lo * stride + u * BPP..]
        .chunks_mut(stride)
        .take(hi - lo)
    {
        px[..BPP].copy_from_slice(&c[..BPP]);
    }
}

/// Unit outward normal of an axis-aligned face entered along `d` on `axis`.
#[inline]
fn face_normal(axis: usize, d: f64) -> [f64; 3] {
    let mut n = [0.0; 3];
    n[axis] = if d > 0.0 { -1.0 } else { 1.0 };
    n
}

fn render_column<const BPP: usize>(f: &Frame<'_>, u: usize, out: &mut [u8]) {
    let cam = f.cam;
    let width = cam.width as usize;
    let xn = (u as f64 - cam.cx) / cam.fx;
    // Horizontal ray direction per unit of optical depth s.
    let h = [f.fwd[0] + xn * f.right[0], f.fwd[1] + xn * f.right[1]];
    let [cx, cy, zc] = f.c;
    // Walls (2-D exit from the room's footprint; the camera is inside, so this exists).
    let Some((s_wall, wall_axis)) = truth::room_exit([cx, cy], h) else {
        return;
    };
    let wall = truth::room_surface(wall_axis, h[wall_axis] > 0.0);
    let wp = [cx + s_wall * h[0], cy + s_wall * h[1], 0.0];
    let wall_rgb = f.enc.encode(truth::surface_colour(
        wall,
        wp,
        face_normal(wall_axis, h[wall_axis]),
    ));
    let room_h = ROOM.max[2] - ROOM.min[2];
    let (wall_lo, wall_hi) = rows(cam, (zc - room_h) / s_wall, zc / s_wall);
    fill::<BPP>(out, u, width, (0, wall_lo), f.ceiling);
    fill::<BPP>(out, u, width, (wall_lo, wall_hi), wall_rgb);
    let stride = width * BPP;
    let floor_rows = out[wall_hi * stride + u * BPP..].chunks_mut(stride);
    for (v, px) in (wall_hi..cam.height as usize).zip(floor_rows) {
        // Optical depth of the floor seen by row v (the same for every column).
        let s = f
            .floor_depth
            .get(v)
            .copied()
            .unwrap_or_else(|| zc * cam.fy / (v as f64 - cam.cy));
        let parity = (truth::fast_floor(cx + s * h[0]) + truth::fast_floor(cy + s * h[1])) & 1;
        px[..BPP].copy_from_slice(&f.floor[parity as usize][..BPP]);
    }
    // Boxes hit by this column, drawn far to near (their footprints are disjoint, so this is exact).
    let mut hits = [(0.0f64, 0.0f64, 0usize, 0usize); BOXES.len()];
    let mut n = 0;
    for (i, b) in BOXES.iter().enumerate() {
        if let Some((s_in, s_out, axis)) = truth::slab(&b.aabb.min, &b.aabb.max, [cx, cy], h) {
            hits[n] = (s_in, s_out, axis, i);
            n += 1;
        }
    }
    let hits = &mut hits[..n];
    hits.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    for &(s_in, s_out, axis, i) in hits.iter() {
        let b = &BOXES[i];
        let top = b.aabb.max[2];
        let face = f
            .enc
            .encode(truth::shade(b.albedo, face_normal(axis, h[axis])));
        fill::<BPP>(out, u, width, rows(cam, (zc - top) / s_in, zc / s_in), face);
        if zc > top {
            let lid = f.enc.encode(truth::shade(b.albedo, [0.0, 0.0, 1.0]));
            fill::<BPP>(
                out,
                u,
                width,
                rows(cam, (zc - top) / s_out, (zc - top) / s_in),
                lid,
            );
        }
    }
}

/// Bytes per point of the synthetic LiDAR's PointCloud2 layout: x, y, z, intensity as f32 little-endian at
/// offsets 0, 4, 8, 12.
pub const LIDAR_POINT_STEP: usize = 16;

/// A spinning multi-beam LiDAR: `channels` beams evenly spread in elevation, `points_per_scan / channels`
/// azimuth steps per revolution. Points are written azimuth-major (all beams of one firing, then the
/// next), in the LiDAR frame ([`crate::truth::lidar_in_body`]); the scan is a snapshot at one instant (no
/// motion distortion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LidarModel {
    /// Rays per revolution (rounded down to a multiple of `channels`).
    pub points_per_scan: usize,
    /// Number of beams (rings).
    pub channels: u16,
    /// Elevation of the lowest beam (degrees, negative is down).
    pub min_elevation_deg: f64,
    /// Elevation of the highest beam (degrees).
    pub max_elevation_deg: f64,
    /// Returns beyond this range are dropped (m).
    pub max_range: f64,
}

impl LidarModel {
    /// A 32-beam LiDAR with a −25° … +15° vertical field and 100 m range.
    pub fn new(points_per_scan: usize) -> Self {
        Self {
            points_per_scan,
            channels: 32,
            min_elevation_deg: -25.0,
            max_elevation_deg: 15.0,
            max_range: 100.0,
        }
    }

    /// The most bytes one scan can need (`points_per_scan × 16`).
    pub fn max_scan_bytes(&self) -> usize {
        self.points_per_scan * LIDAR_POINT_STEP
    }
}

/// Ray-casts one LiDAR scan at time `t` into `out` in the PointCloud2 layout of [`LIDAR_POINT_STEP`] and
/// returns the number of points written. Allocation-free.
///
/// # Errors
/// [`SynthError::BufferTooSmall`] if `out` is shorter than [`LidarModel::max_scan_bytes`],
/// [`SynthError::InvalidModel`] for zero channels or a non-finite field of view.
///
/// # Examples
/// ```
/// use fusion::synth::{lidar_scan, LidarModel};
/// let m = LidarModel::new(3200);
/// let mut buf = vec![0u8; m.max_scan_bytes()];
/// let n = lidar_scan(0.0, &m, &mut buf).unwrap();
/// assert_eq!(n, 3200); // a closed room: every ray returns
/// ```
pub fn lidar_scan(t: f64, m: &LidarModel, out: &mut [u8]) -> Result<usize, SynthError> {
    if m.channels == 0 {
        return Err(SynthError::InvalidModel("LiDAR needs at least one channel"));
    }
    if !(m.min_elevation_deg.is_finite() && m.max_elevation_deg.is_finite() && m.max_range > 0.0) {
        return Err(SynthError::InvalidModel(
            "LiDAR elevations must be finite and the range positive",
        ));
    }
    let needed = m.max_scan_bytes();
    if out.len() < needed {
        return Err(SynthError::BufferTooSmall {
            needed,
            got: out.len(),
        });
    }
    let pose = truth::state(t).pose() * truth::lidar_in_body();
    let o = pose.translation.vector;
    let origin = [o.x, o.y, o.z];
    let ch = usize::from(m.channels);
    let steps = m.points_per_scan / ch;
    let el_step = if ch > 1 {
        (m.max_elevation_deg - m.min_elevation_deg) / (ch - 1) as f64
    } else {
        0.0
    };
    let mut n = 0;
    for a in 0..steps {
        let az = std::f64::consts::TAU * a as f64 / steps as f64;
        let (sa, ca) = az.sin_cos();
        for c in 0..ch {
            let (se, ce) = (m.min_elevation_deg + el_step * c as f64)
                .to_radians()
                .sin_cos();
            let d_l = Vector3::new(ce * ca, ce * sa, se);
            let d_w = pose.rotation * d_l;
            let Some(hit) = truth::raycast(origin, [d_w.x, d_w.y, d_w.z]) else {
                continue;
            };
            if hit.t > m.max_range {
                continue;
            }
            let p = d_l * hit.t;
            let intensity = truth::surface_reflectivity(hit.surface, hit.point);
            let rec = &mut out[n * LIDAR_POINT_STEP..(n + 1) * LIDAR_POINT_STEP];
            rec[0..4].copy_from_slice(&(p.x as f32).to_le_bytes());
            rec[4..8].copy_from_slice(&(p.y as f32).to_le_bytes());
            rec[8..12].copy_from_slice(&(p.z as f32).to_le_bytes());
            rec[12..16].copy_from_slice(&intensity.to_le_bytes());
            n += 1;
        }
    }
    Ok(n)
}

/// Reads point `i` (x, y, z, intensity) of a scan written by [`lidar_scan`]; `None` past the end.
pub fn lidar_point(buf: &[u8], i: usize) -> Option<[f32; 4]> {
    let rec = buf.get(i * LIDAR_POINT_STEP..(i + 1) * LIDAR_POINT_STEP)?;
    let f = |k: usize| f32::from_le_bytes([rec[k], rec[k + 1], rec[k + 2], rec[k + 3]]);
    Some([f(0), f(4), f(8), f(12)])
}

/// IMU noise model: white noise given as continuous-time densities (discrete σ = density · √rate) plus a
/// constant bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuNoise {
    /// Sample rate (Hz); sets the discrete noise σ.
    pub rate_hz: f64,
    /// Gyroscope noise density (rad/s/√Hz).
    pub gyro_noise_density: f64,
    /// Accelerometer noise density (m/s²/√Hz).
    pub accel_noise_density: f64,
    /// Constant gyroscope bias (rad/s).
    pub gyro_bias: [f64; 3],
    /// Constant accelerometer bias (m/s²).
    pub accel_bias: [f64; 3],
}

impl ImuNoise {
    /// No noise, no bias (rate 400 Hz).
    pub const NONE: Self = Self {
        rate_hz: 400.0,
        gyro_noise_density: 0.0,
        accel_noise_density: 0.0,
        gyro_bias: [0.0; 3],
        accel_bias: [0.0; 3],
    };
}

/// One IMU sample in the body frame (the IMU sits at the body origin, axes aligned).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuSample {
    /// Time (s).
    pub t: f64,
    /// Angular velocity (rad/s).
    pub angular_velocity: [f64; 3],
    /// Specific force (m/s²): acceleration minus gravity, so a level IMU at rest reads +9.81 on z.
    pub linear_acceleration: [f64; 3],
    /// True orientation (quaternion x, y, z, w), as an IMU with an orientation filter would report it.
    pub orientation: [f64; 4],
}

/// Samples the IMU at time `t`.
pub fn imu_sample<R: Rng + ?Sized>(t: f64, noise: &ImuNoise, rng: &mut R) -> ImuSample {
    let s = truth::state(t);
    let sg = noise.gyro_noise_density * noise.rate_hz.sqrt();
    let sa = noise.accel_noise_density * noise.rate_hz.sqrt();
    let f = s.accel_body + s.orientation.inverse() * Vector3::new(0.0, 0.0, truth::GRAVITY);
    let mut n = || -> f64 { rng.sample(StandardNormal) };
    let q = s.orientation.coords;
    ImuSample {
        t,
        angular_velocity: core::array::from_fn(|i| {
            s.angular_velocity_body[i] + noise.gyro_bias[i] + sg * n()
        }),
        linear_acceleration: core::array::from_fn(|i| f[i] + noise.accel_bias[i] + sa * n()),
        orientation: [q.x, q.y, q.z, q.w],
    }
}

/// Odometry noise: independent Gaussian errors (standard deviations) on each reported quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdomNoise {
    /// Position x, y (m).
    pub position_std: f64,
    /// Yaw (rad).
    pub yaw_std: f64,
    /// Body-frame linear velocity, each axis (m/s).
    pub velocity_std: f64,
    /// Yaw rate (rad/s).
    pub yaw_rate_std: f64,
}

/// One odometry sample, as `nav_msgs/Odometry` carries it: pose in the world (`odom`) frame, twist in
/// the body frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdometrySample {
    /// Time (s).
    pub t: f64,
    /// Position (m).
    pub position: [f64; 3],
    /// Yaw (rad).
    pub yaw: f64,
    /// Orientation (quaternion x, y, z, w), the yaw above with zero roll and pitch.
    pub orientation: [f64; 4],
    /// Body-frame linear velocity (m/s).
    pub linear_velocity: [f64; 3],
    /// Body-frame angular velocity (rad/s).
    pub angular_velocity: [f64; 3],
}

/// Samples the odometry at time `t`.
pub fn odometry_sample<R: Rng + ?Sized>(t: f64, noise: &OdomNoise, rng: &mut R) -> OdometrySample {
    let s = truth::state(t);
    let mut n = || -> f64 { rng.sample(StandardNormal) };
    let yaw = wrap_angle(s.yaw + noise.yaw_std * n());
    let q = nalgebra::UnitQuaternion::from_euler_angles(0.0, 0.0, yaw).coords;
    OdometrySample {
        t,
        position: [
            s.position.x + noise.position_std * n(),
            s.position.y + noise.position_std * n(),
            s.position.z,
        ],
        yaw,
        orientation: [q.x, q.y, q.z, q.w],
        linear_velocity: core::array::from_fn(|i| s.velocity_body[i] + noise.velocity_std * n()),
        angular_velocity: [
            0.0,
            0.0,
            s.angular_velocity_body.z + noise.yaw_rate_std * n(),
        ],
    }
}

/// Wraps an angle to (-π, π].
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let w = (a + PI).rem_euclid(TAU) - PI;
    if w <= -PI {
        w + TAU
    } else {
        w
    }
}

/// The world point seen through pixel `(u, v)` of the synthetic camera at time `t`, with its surface, by
/// full 3-D ray casting (the slow reference the column renderer is tested against).
pub fn camera_ray_hit(t: f64, cam: &CameraModel, u: f64, v: f64) -> Option<truth::Hit> {
    let pose = truth::state(t).pose() * truth::camera_in_body();
    let d = pose.rotation * Vector3::new((u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0);
    let c = pose * Point3::origin();
    truth::raycast([c.x, c.y, c.z], [d.x, d.y, d.z])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_renderer_matches_per_pixel_raycast() {
        let cam = CameraModel::with_hfov(160, 120, 90.0);
        let mut img = vec![0u8; cam.frame_len(PixelEncoding::Rgb8)];
        for &t in &[0.0, 3.3, 7.9, 12.0, 25.5] {
            camera_frame(t, &cam, PixelEncoding::Rgb8, &mut img).unwrap();
            let mut bad = 0;
            for v in 0..cam.height {
                for u in 0..cam.width {
                    let hit = camera_ray_hit(t, &cam, f64::from(u), f64::from(v)).unwrap();
                    let want = truth::surface_colour(hit.surface, hit.point, hit.normal);
                    let i = ((v * cam.width + u) * 3) as usize;
                    if img[i..i + 3] != want {
                        bad += 1;
                    }
                }
            }
            // Only pixels whose centre ray grazes an edge may differ (rounding at range boundaries).
            let total = cam.width * cam.height;
            assert!(
                bad * 200 < total,
                "t={t}: {bad} of {total} pixels differ from the ray cast"
            );
        }
    }

    #[test]
    fn encodings_agree() {
        let cam = CameraModel::with_hfov(32, 24, 70.0);
        let mut rgb = vec![0u8; cam.frame_len(PixelEncoding::Rgb8)];
        let mut bgr = rgb.clone();
        let mut mono = vec![0u8; cam.frame_len(PixelEncoding::Mono8)];
        camera_frame(2.0, &cam, PixelEncoding::Rgb8, &mut rgb).unwrap();
        camera_frame(2.0, &cam, PixelEncoding::Bgr8, &mut bgr).unwrap();
        camera_frame(2.0, &cam, PixelEncoding::Mono8, &mut mono).unwrap();
        for (i, m) in mono.iter().enumerate() {
            let p = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]];
            assert_eq!(
                [bgr[3 * i], bgr[3 * i + 1], bgr[3 * i + 2]],
                [p[2], p[1], p[0]]
            );
            assert_eq!(*m, PixelEncoding::Mono8.encode(p)[0]);
        }
        let err = camera_frame(2.0, &cam, PixelEncoding::Rgb8, &mut mono).unwrap_err();
        assert!(matches!(err, SynthError::BufferTooSmall { .. }));
    }

    #[test]
    fn lidar_points_lie_on_scene_surfaces() {
        let m = LidarModel::new(3200);
        let mut buf = vec![0u8; m.max_scan_bytes()];
        let t = 4.2;
        let n = lidar_scan(t, &m, &mut buf).unwrap();
        assert_eq!(n, 3200);
        let pose = truth::state(t).pose() * truth::lidar_in_body();
        let origin = pose * Point3::origin();
        for i in 0..n {
            let [x, y, z, inten] = lidar_point(&buf, i).unwrap();
            let pw = pose * Point3::new(f64::from(x), f64::from(y), f64::from(z));
            let d = pw - origin;
            let hit = truth::raycast([origin.x, origin.y, origin.z], [d.x, d.y, d.z]).unwrap();
            assert!((hit.t - 1.0).abs() < 1e-5, "point {i} is not the first hit");
            assert!((inten - truth::surface_reflectivity(hit.surface, hit.point)).abs() < 1e-3);
        }
    }

    #[test]
    fn imu_reads_gravity_and_truth_without_noise() {
        let mut rng = rand::rng();
        let s = imu_sample(5.0, &ImuNoise::NONE, &mut rng);
        let tr = truth::state(5.0);
        assert!((s.linear_acceleration[2] - truth::GRAVITY).abs() < 1e-12);
        assert!((s.linear_acceleration[0] - tr.accel_body.x).abs() < 1e-12);
        assert!((s.angular_velocity[2] - tr.angular_velocity_body.z).abs() < 1e-12);
        assert!((wrap_angle(3.0 * std::f64::consts::PI) - std::f64::consts::PI).abs() < 1e-12);
    }
}

//! LiDAR → camera projection: transform points with the extrinsic into the camera optical frame, project
//! with `sensor_msgs/CameraInfo` intrinsics, cull, and produce a depth image aligned to the camera and a
//! coloured point cloud. Every call writes into caller buffers and allocates nothing. Both results can
//! also be computed a bounded slice at a time ([`DepthPass`],
//! [`CloudPass`]) with bit-identical results, so that a real-time thread
//! can serve other inputs between slices.
//!
//! Two camera models, as ROS defines them (REP 104, `image_geometry::PinholeCameraModel`):
//! * [`ImageModel::Raw`] — the image as the camera delivers it: `K` and plumb-bob `D = (k1, k2, t1, t2, k3)`,
//!   exactly OpenCV's `projectPoints` (tested against it):
//!   `x' = X/Z, y' = Y/Z, r² = x'² + y'²`,
//!   `x'' = x'(1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 t1 x'y' + t2 (r² + 2x'²)`,
//!   `y'' = y'(1 + k1 r² + k2 r⁴ + k3 r⁶) + t1 (r² + 2y'²) + 2 t2 x'y'`,
//!   `u = fx x'' + s y'' + cx, v = fy y'' + cy`.
//! * [`ImageModel::Rectified`] — the rectified image: the point is rotated into the rectified frame by `R`,
//!   then `(u, v, w)ᵀ = P (X, Y, Z, 1)ᵀ`, `u /= w, v /= w`.
//!
//! Culling: points with depth `Z ≤ min_depth` (behind or at the camera), points outside the image (pixel
//! centres at integers, so the image covers `[-0.5, width - 0.5) × [-0.5, height - 0.5)`), and in the raw
//! model points whose normalised radius lies beyond the first turning point of the radial polynomial
//! (there the distortion folds back and would map far-off-axis points into the image).
//!
//! # Cost
//! `cargo bench -p fusion --bench projection` (run under `chrt -f 50 taskset -c 1` on a loaded shared
//! 2-core VM, Intel Xeon; OpenCV through Python, `setNumThreads(1)`, same points in the same run;
//! `cv2.projectPoints` from Python also computes and returns the 2N × 15 Jacobian, which is most of its
//! cost, hence the numpy row as a second baseline):
//!
//! | work                                                        | time             | rate            |
//! |-------------------------------------------------------------|------------------|-----------------|
//! | [`Projector::project_to_pixels`], 1 M points, plumb-bob      | 4.3 ms           | 231 M points/s  |
//! | OpenCV 5.0.0 / 4.14.0 `projectPoints`, same points           | 501 / 515 ms     | 2.0 / 1.9 M/s   |
//! | the same model in vectorised numpy (no Jacobian)             | 83 ms            | 12.1 M points/s |
//! | synthetic LiDAR scan, 120 k rays                             | 9.2 ms           |                 |
//! | synthetic camera frame 1920×1080 rgb8                        | 9.1 ms           |                 |
//! | depth image 1920×1080 + coloured cloud, 120 k-point scan     | 13.3 ms          |                 |
//!
//! One slice of that step as the fusion node cuts it at its default 8192 points (bulk work at
//! [`BULK_BYTES_PER_POINT`]), same bench, median / max over
//! 21 scans (2026-11-26, same VM, load average ~5, `chrt -f 50 taskset -c 1`):
//!
//! | slice of 8192 points                                         | median   | max      |
//! |-------------------------------------------------------------|----------|----------|
//! | clear the depth image (262 144 pixels, 1 MiB)                | 0.123 ms | 0.456 ms |
//! | project points into the depth image                          | 0.217 ms | 0.731 ms |
//! | colour points (occlusion on)                                 | 0.216 ms | 0.916 ms |
//! | copy a result (1 MiB)                                        | 0.038 ms | 0.503 ms |

use crate::synth::{CameraModel, PixelEncoding};
use nalgebra::Isometry3;

mod sliced;
pub use sliced::{CloudPass, DepthPass, BULK_BYTES_PER_POINT};

/// Errors of the projection module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The CameraInfo is unusable.
    #[error("invalid camera info: {0}")]
    InvalidCameraInfo(&'static str),
    /// A caller buffer is too small.
    #[error("{what} buffer too small: need {needed}, got {got}")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Elements (or bytes) required.
        needed: usize,
        /// Provided.
        got: usize,
    },
    /// A PointCloud2 or image layout is inconsistent (offsets past the point step, data too short, ...).
    #[error("inconsistent layout: {0}")]
    Layout(&'static str),
}

/// The calibration part of `sensor_msgs/CameraInfo` (row-major matrices, plumb-bob distortion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraInfo {
    /// Image width (pixels).
    pub width: u32,
    /// Image height (pixels).
    pub height: u32,
    /// Intrinsics of the raw image, 3×3 row-major.
    pub k: [f64; 9],
    /// Plumb-bob distortion: k1, k2, t1, t2, k3.
    pub d: [f64; 5],
    /// Rectification rotation, 3×3 row-major.
    pub r: [f64; 9],
    /// Projection of the rectified image, 3×4 row-major.
    pub p: [f64; 12],
}

impl CameraInfo {
    /// The CameraInfo of a synthetic pinhole camera (no distortion, `R = I`, `P = [K | 0]`).
    pub fn from_model(m: &CameraModel) -> Self {
        let k = [m.fx, 0.0, m.cx, 0.0, m.fy, m.cy, 0.0, 0.0, 1.0];
        Self {
            width: m.width,
            height: m.height,
            k,
            d: [0.0; 5],
            r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p: [
                k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0,
            ],
        }
    }

    fn validate(&self) -> Result<(), ProjectionError> {
        let all_finite = self
            .k
            .iter()
            .chain(&self.d)
            .chain(&self.r)
            .chain(&self.p)
            .all(|v| v.is_finite());
        if !all_finite {
            return Err(ProjectionError::InvalidCameraInfo(
                "K, D, R and P must be finite",
            ));
        }
        if self.width == 0 || self.height == 0 {
            return Err(ProjectionError::InvalidCameraInfo(
                "width and height must be non-zero",
            ));
        }
        if self.k[0] == 0.0 || self.k[4] == 0.0 {
            return Err(ProjectionError::InvalidCameraInfo(
                "K has a zero focal length",
            ));
        }
        Ok(())
    }
}

/// Which image the projection targets (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageModel {
    /// The distorted image: K and D (OpenCV `projectPoints`).
    Raw,
    /// The rectified image: R then P.
    Rectified,
}

/// A read-only view of point positions: a PointCloud2 data block with float32 little-endian x, y, z.
#[derive(Debug, Clone, Copy)]
pub struct CloudView<'a> {
    data: &'a [u8],
    point_step: usize,
    offsets: [usize; 3],
    len: usize,
}

impl<'a> CloudView<'a> {
    /// Validates a PointCloud2 layout: `len` points of `point_step` bytes, x/y/z float32 at `offsets`.
    ///
    /// # Errors
    /// [`ProjectionError::Layout`] if an offset runs past the point step or `data` is shorter than
    /// `len × point_step`.
    pub fn new(
        data: &'a [u8],
        point_step: usize,
        offsets: [usize; 3],
        len: usize,
    ) -> Result<Self, ProjectionError> {
        if offsets
            .iter()
            .any(|&o| o.checked_add(4).is_none_or(|e| e > point_step))
        {
            return Err(ProjectionError::Layout("a field runs past the point step"));
        }
        if len.checked_mul(point_step).is_none_or(|n| n > data.len()) {
            return Err(ProjectionError::Layout(
                "data shorter than len × point_step",
            ));
        }
        Ok(Self {
            data,
            point_step,
            offsets,
            len,
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no points.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Point `i` (x, y, z); `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<[f32; 3]> {
        if i >= self.len {
            return None;
        }
        let rec = &self.data[i * self.point_step..(i + 1) * self.point_step];
        let f = |o: usize| f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
        Some([f(self.offsets[0]), f(self.offsets[1]), f(self.offsets[2])])
    }
}

/// A read-only view of an image (`sensor_msgs/Image` layout).
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    step: usize,
    encoding: PixelEncoding,
}

impl<'a> ImageView<'a> {
    /// Validates an image: `height` rows of `step` bytes, `step ≥ width × bytes per pixel`.
    ///
    /// # Errors
    /// [`ProjectionError::Layout`] if the step is too small or the data too short.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        step: usize,
        encoding: PixelEncoding,
    ) -> Result<Self, ProjectionError> {
        if step < width as usize * encoding.bytes_per_pixel() {
            return Err(ProjectionError::Layout(
                "image step smaller than width × bytes per pixel",
            ));
        }
        if step
            .checked_mul(height as usize)
            .is_none_or(|n| n > data.len())
        {
            return Err(ProjectionError::Layout(
                "image data shorter than step × height",
            ));
        }
        Ok(Self {
            data,
            width,
            height,
            step,
            encoding,
        })
    }

    /// RGB of pixel `(u, v)` (mono is replicated); `None` outside.
    #[inline]
    pub fn rgb(&self, u: usize, v: usize) -> Option<[u8; 3]> {
        if u >= self.width as usize || v >= self.height as usize {
            return None;
        }
        let i = v * self.step + u * self.encoding.bytes_per_pixel();
        let px = &self.data[i..i + self.encoding.bytes_per_pixel()];
        Some(match self.encoding {
            PixelEncoding::Rgb8 => [px[0], px[1], px[2]],
            PixelEncoding::Bgr8 => [px[2], px[1], px[0]],
            PixelEncoding::Mono8 => [px[0]; 3],
        })
    }
}

/// A projected point: pixel coordinates (sub-pixel) and depth along the camera's optical axis (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projected {
    /// Column (pixel centres at integers).
    pub u: f64,
    /// Row.
    pub v: f64,
    /// Depth Z in the camera (rectified camera for [`ImageModel::Rectified`]) frame, metres.
    pub z: f64,
}

/// What a depth-image pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepthStats {
    /// Points that landed in the image.
    pub in_image: usize,
    /// Points behind the camera (or closer than `min_depth`).
    pub behind: usize,
    /// Points outside the image or the valid distortion radius.
    pub outside: usize,
    /// Points with a non-finite coordinate.
    pub invalid: usize,
}

/// Bytes per point of the coloured cloud: x, y, z float32 LE at 0, 4, 8, and `rgb` at 12 as PCL packs it
/// (a float32 field whose bits are `0x00RRGGBB`).
pub const COLOURED_POINT_STEP: usize = 16;

/// Projects LiDAR points into one camera. Build once, then call per scan.
#[derive(Debug, Clone)]
pub struct Projector {
    info: CameraInfo,
    model: ImageModel,
    /// LiDAR → camera (rectified camera for `Rectified`) as a row-major 3×4 `[R | t]`.
    m: [f64; 12],
    /// Rectified model only: `P`. Raw model: unused.
    p: [f64; 12],
    /// Points with depth at or below this are culled (m).
    min_depth: f64,
    /// Raw model: squared normalised radius beyond which the radial polynomial folds back.
    r2_max: f64,
}

impl Projector {
    /// A projector for `info` and the LiDAR → camera-optical `extrinsic`, targeting the `model` image.
    /// `min_depth` defaults to 1 cm ([`Self::with_min_depth`] changes it).
    ///
    /// # Errors
    /// [`ProjectionError::InvalidCameraInfo`] for a degenerate CameraInfo.
    pub fn new(
        info: &CameraInfo,
        extrinsic: &Isometry3<f64>,
        model: ImageModel,
    ) -> Result<Self, ProjectionError> {
        info.validate()?;
        let rot = extrinsic.rotation.to_rotation_matrix();
        let (r, t) = (rot.matrix(), extrinsic.translation.vector);
        let mut e = [0.0; 12];
        for row in 0..3 {
            for col in 0..3 {
                e[row * 4 + col] = r[(row, col)];
            }
            e[row * 4 + 3] = t[row];
        }
        // For the rectified model fold R into the extrinsic: X_rect = R (E X).
        let m = match model {
            ImageModel::Raw => e,
            ImageModel::Rectified => {
                let mut out = [0.0; 12];
                for row in 0..3 {
                    for col in 0..4 {
                        out[row * 4 + col] =
                            (0..3).map(|k| info.r[row * 3 + k] * e[k * 4 + col]).sum();
                    }
                }
                out
            }
        };
        Ok(Self {
            info: *info,
            model,
            m,
            p: info.p,
            min_depth: 0.01,
            r2_max: radial_fold_r2(&info.d),
        })
    }

    /// Sets the minimum depth (m) below which points are culled.
    pub fn with_min_depth(mut self, min_depth: f64) -> Self {
        self.min_depth = min_depth;
        self
    }

    /// The camera this projector targets.
    pub fn camera_info(&self) -> &CameraInfo {
        &self.info
    }

    /// Projects one LiDAR-frame point. `None` if it is behind the camera (`Z ≤ min_depth`), not finite,
    /// or (raw model) beyond the valid distortion radius. The result may lie outside the image.
    #[inline]
    pub fn project(&self, p: [f64; 3]) -> Option<Projected> {
        self.project_or_cull(p).ok()
    }

    #[inline]
    fn project_or_cull(&self, p: [f64; 3]) -> Result<Projected, Cull> {
        let m = &self.m;
        let x = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
        let y = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7];
        let z = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
        if z.is_nan() || z <= self.min_depth {
            return Err(Cull::Behind);
        }
        match self.model {
            ImageModel::Raw => {
                let iz = 1.0 / z;
                let (xp, yp) = (x * iz, y * iz);
                let r2 = xp * xp + yp * yp;
                if r2.is_nan() || r2 > self.r2_max {
                    return Err(Cull::Outside);
                }
                let [k1, k2, t1, t2, k3] = self.info.d;
                let radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
                let xy = xp * yp;
                let xd = xp * radial + 2.0 * t1 * xy + t2 * (r2 + 2.0 * xp * xp);
                let yd = yp * radial + t1 * (r2 + 2.0 * yp * yp) + 2.0 * t2 * xy;
                let k = &self.info.k;
                Ok(Projected {
                    u: k[0] * xd + k[1] * yd + k[2],
                    v: k[4] * yd + k[5],
                    z,
                })
            }
            ImageModel::Rectified => {
                let p = &self.p;
                let u = p[0] * x + p[1] * y + p[2] * z + p[3];
                let v = p[4] * x + p[5] * y + p[6] * z + p[7];
                let w = p[8] * x + p[9] * y + p[10] * z + p[11];
                if w.is_nan() || w <= 0.0 {
                    return Err(Cull::Behind);
                }
                Ok(Projected {
                    u: u / w,
                    v: v / w,
                    z,
                })
            }
        }
    }

    /// The pixel index (`v × width + u`) a projection falls in, if inside the image.
    #[inline]
    pub fn pixel_of(&self, q: &Projected) -> Option<usize> {
        let (w, h) = (self.info.width as usize, self.info.height as usize);
        let (uf, vf) = ((q.u + 0.5).floor(), (q.v + 0.5).floor());
        if uf >= 0.0 && vf >= 0.0 && uf < w as f64 && vf < h as f64 {
            Some(vf as usize * w + uf as usize)
        } else {
            None
        }
    }

    /// Projects many points to pixel coordinates (the operation OpenCV's `projectPoints` performs);
    /// culled points get `[NaN, NaN]`. Returns how many were projected (not culled).
    ///
    /// # Errors
    /// [`ProjectionError::BufferTooSmall`] if `out` is shorter than `points`.
    pub fn project_to_pixels(
        &self,
        points: &[[f32; 3]],
        out: &mut [[f64; 2]],
    ) -> Result<usize, ProjectionError> {
        if out.len() < points.len() {
            return Err(ProjectionError::BufferTooSmall {
                what: "pixel",
                needed: points.len(),
                got: out.len(),
            });
        }
        let mut n = 0;
        for (p, o) in points.iter().zip(out.iter_mut()) {
            *o = match self.project(p.map(f64::from)) {
                Some(q) => {
                    n += 1;
                    [q.u, q.v]
                }
                None => [f64::NAN; 2],
            };
        }
        Ok(n)
    }

    /// Writes the depth image (float32 metres, row-major, `width × height`): each pixel holds the nearest
    /// depth of the points that fall in it, NaN where none does (REP 118). One [`DepthPass`] with an
    /// unbounded budget.
    ///
    /// # Errors
    /// [`ProjectionError::BufferTooSmall`] if `depth` is shorter than `width × height`.
    pub fn depth_image(
        &self,
        cloud: &CloudView<'_>,
        depth: &mut [f32],
    ) -> Result<DepthStats, ProjectionError> {
        let mut pass = DepthPass::new();
        while !pass.step(self, cloud, depth, usize::MAX)? {}
        Ok(pass.stats())
    }

    /// Writes the coloured cloud: every point that lands in the image, in the LiDAR frame, with the colour
    /// of its pixel (layout [`COLOURED_POINT_STEP`]). With `occlusion = Some((depth, tol))` (a depth image
    /// from [`Self::depth_image`] of the same cloud), points more than `tol` metres behind the nearest
    /// depth at their pixel are left out (the camera cannot see them). Returns the number written. One
    /// [`CloudPass`] with an unbounded budget.
    ///
    /// # Errors
    /// [`ProjectionError::BufferTooSmall`] if `out` cannot hold every point or the depth image is short;
    /// [`ProjectionError::Layout`] if the image size differs from the CameraInfo.
    pub fn coloured_cloud(
        &self,
        cloud: &CloudView<'_>,
        image: &ImageView<'_>,
        occlusion: Option<(&[f32], f32)>,
        out: &mut [u8],
    ) -> Result<usize, ProjectionError> {
        let mut pass = CloudPass::new();
        while !pass.step(self, cloud, image, occlusion, out, usize::MAX)? {}
        Ok(pass.written())
    }

    #[inline]
    fn classify(&self, p: [f32; 3]) -> Result<(usize, f32), Cull> {
        if !p.iter().all(|c| c.is_finite()) {
            return Err(Cull::Invalid);
        }
        let q = self.project_or_cull(p.map(f64::from))?;
        let px = self.pixel_of(&q).ok_or(Cull::Outside)?;
        Ok((px, q.z as f32))
    }
}

/// Why a point was culled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cull {
    Behind,
    Outside,
    Invalid,
}

/// The squared normalised radius at which `r (1 + k1 r² + k2 r⁴ + k3 r⁶)` stops increasing (searched up
/// to r = 10; `100` if it never turns).
fn radial_fold_r2(d: &[f64; 5]) -> f64 {
    let [k1, k2, _, _, k3] = *d;
    let mut r = 0.0f64;
    while r < 10.0 {
        let r2 = r * r;
        let deriv = 1.0 + 3.0 * k1 * r2 + 5.0 * k2 * r2 * r2 + 7.0 * k3 * r2 * r2 * r2;
        if deriv <= 0.0 {
            return r2;
        }
        r += 1e-3;
    }
    100.0
}

/// Converts a float depth image (metres, NaN = none) to 16-bit millimetres (0 = none, saturating at
/// 65535 mm), the other depth encoding of REP 118.
///
/// # Errors
/// [`ProjectionError::BufferTooSmall`] if `out` is shorter than `depth`.
pub fn depth_to_mm(depth: &[f32], out: &mut [u16]) -> Result<(), ProjectionError> {
    if out.len() < depth.len() {
        return Err(ProjectionError::BufferTooSmall {
            what: "u16 depth",
            needed: depth.len(),
            got: out.len(),
        });
    }
    for (d, o) in depth.iter().zip(out.iter_mut()) {
        *o = if d.is_finite() && *d > 0.0 {
            (d * 1000.0).round().min(65535.0) as u16
        } else {
            0
        };
    }
    Ok(())
}

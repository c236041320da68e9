//! Ground truth shared by every synthetic sensor: one trajectory, one scene, and the sensor mounts.
//!
//! # Trajectory
//! A vehicle drives a figure-eight on the floor of a room, with a speed that varies along the path:
//!
//! ```text
//! φ(t) = ω t + ε sin(ν t)          (ω = 2π/40 s, ε = 0.15, ν = 0.5 rad/s, so φ' > 0 always)
//! x(t) = A sin φ,  y(t) = B sin 2φ  (A = 8 m, B = 4 m), z = 0
//! yaw  = atan2(y', x')             (the vehicle points along its velocity: body velocity is (v, 0, 0))
//! ```
//!
//! Everything (position, orientation, linear and angular velocity, linear acceleration) is analytic in `t`
//! (seconds). The motion is planar: roll = pitch = 0. The body frame is REP 103 (x forward, y left, z up) and
//! its origin is on the floor. The speed never reaches zero (it stays in about 0.43 ..= 2.63 m/s).
//!
//! # Scene
//! The room is the box `[-14, 14] × [-9, 9] × [0, 4]` m (floor, ceiling and four walls, seen from inside)
//! holding four coloured boxes that stand on the floor, clear of the path (`|x| ≤ 8`, `|y| ≤ 4`). The floor
//! carries a 1 m checkerboard and the walls 2 m vertical stripes, so images have texture. Colours come from
//! [`surface_colour`]; the camera renders them and the LiDAR reports [`surface_reflectivity`] as intensity, so
//! both see the SAME scene.
//!
//! # Mounts (the one place the extrinsics are defined)
//! [`camera_in_body`] and [`lidar_in_body`] place the sensors on the vehicle; [`lidar_to_camera_optical`]
//! is the extrinsic that LiDAR → camera projection uses.

use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};

/// Standard gravity (m/s²), as robot_localization and the IMU model use it.
pub const GRAVITY: f64 = 9.80665;

/// Figure-eight half-width along x (m).
const A: f64 = 8.0;
/// Figure-eight half-height along y (m).
const B: f64 = 4.0;
/// Mean phase rate (rad/s): one lap in 40 s.
const OMEGA: f64 = std::f64::consts::TAU / 40.0;
/// Amplitude of the phase modulation that varies the speed (rad).
const EPS: f64 = 0.15;
/// Frequency of the phase modulation (rad/s).
const NU: f64 = 0.5;

/// The ground-truth state of the vehicle (body frame `base_link`) at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthState {
    /// Time (s).
    pub t: f64,
    /// Position of the body origin in the world frame (m).
    pub position: Vector3<f64>,
    /// Yaw (rad, in (-π, π]); roll and pitch are zero.
    pub yaw: f64,
    /// Orientation of the body in the world frame.
    pub orientation: UnitQuaternion<f64>,
    /// Linear velocity in the world frame (m/s).
    pub velocity_world: Vector3<f64>,
    /// Linear velocity in the body frame (m/s); y and z are zero (the vehicle does not slip).
    pub velocity_body: Vector3<f64>,
    /// Angular velocity in the body frame (rad/s); only z is non-zero.
    pub angular_velocity_body: Vector3<f64>,
    /// Linear acceleration in the world frame (m/s²), gravity excluded.
    pub accel_world: Vector3<f64>,
    /// Linear acceleration in the body frame (m/s²), gravity excluded.
    pub accel_body: Vector3<f64>,
}

impl TruthState {
    /// The pose of the body in the world frame.
    pub fn pose(&self) -> Isometry3<f64> {
        Isometry3::from_parts(Translation3::from(self.position), self.orientation)
    }
}

/// The ground-truth state at time `t` (seconds). Pure and allocation-free.
///
/// # Examples
/// ```
/// let s = fusion::truth::state(0.0);
/// assert!(s.position.norm() < 1e-12);
/// assert!(s.velocity_body.x > 1.0);
/// ```
pub fn state(t: f64) -> TruthState {
    let phi = OMEGA * t + EPS * (NU * t).sin();
    let dphi = OMEGA + EPS * NU * (NU * t).cos();
    let ddphi = -EPS * NU * NU * (NU * t).sin();
    let (s1, c1) = phi.sin_cos();
    let (s2, c2) = (2.0 * phi).sin_cos();
    let position = Vector3::new(A * s1, B * s2, 0.0);
    let vx = A * c1 * dphi;
    let vy = 2.0 * B * c2 * dphi;
    let ax = -A * s1 * dphi * dphi + A * c1 * ddphi;
    let ay = -4.0 * B * s2 * dphi * dphi + 2.0 * B * c2 * ddphi;
    let speed2 = vx * vx + vy * vy;
    let yaw = vy.atan2(vx);
    let yaw_rate = (vx * ay - vy * ax) / speed2;
    let (sy, cy) = yaw.sin_cos();
    let accel_body = Vector3::new(cy * ax + sy * ay, -sy * ax + cy * ay, 0.0);
    TruthState {
        t,
        position,
        yaw,
        orientation: UnitQuaternion::from_euler_angles(0.0, 0.0, yaw),
        velocity_world: Vector3::new(vx, vy, 0.0),
        velocity_body: Vector3::new(speed2.sqrt(), 0.0, 0.0),
        angular_velocity_body: Vector3::new(0.0, 0.0, yaw_rate),
        accel_world: Vector3::new(ax, ay, 0.0),
        accel_body,
    }
}

/// The camera's mount on the body: the pose of the camera OPTICAL frame (REP 103 `_optical`: x right,
/// y down, z forward) in the body frame. 0.5 m ahead of the body origin, 1.4 m up, looking straight ahead
/// (the optical axis is horizontal: [`crate::synth::camera_frame`] relies on this).
pub fn camera_in_body() -> Isometry3<f64> {
    // Columns are the optical axes expressed in the body frame.
    let r = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    Isometry3::from_parts(
        Translation3::new(0.5, 0.0, 1.4),
        UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(r)),
    )
}

/// The LiDAR's mount on the body: 0.3 m ahead, 1.8 m up, yawed 3° left (so that LiDAR and body axes
/// differ and a frame mix-up shows in the tests).
pub fn lidar_in_body() -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(0.3, 0.0, 1.8),
        UnitQuaternion::from_euler_angles(0.0, 0.0, 3f64.to_radians()),
    )
}

/// The LiDAR → camera extrinsic: maps a point in the LiDAR frame to the camera optical frame.
pub fn lidar_to_camera_optical() -> Isometry3<f64> {
    camera_in_body().inverse() * lidar_in_body()
}

/// An axis-aligned box in the world frame (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aabb {
    /// Minimum corner.
    pub min: [f64; 3],
    /// Maximum corner.
    pub max: [f64; 3],
}

/// The room, seen from inside: floor at z = min.z, ceiling at z = max.z, four walls.
pub const ROOM: Aabb = Aabb {
    min: [-14.0, -9.0, 0.0],
    max: [14.0, 9.0, 4.0],
};

/// A box standing in the room, with its base colour (linear sRGB bytes before shading).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneBox {
    /// Extent; `min[2]` is 0 (it stands on the floor).
    pub aabb: Aabb,
    /// Base colour (RGB).
    pub albedo: [u8; 3],
}

/// The boxes in the room (footprints disjoint, all clear of the path).
pub const BOXES: [SceneBox; 4] = [
    SceneBox {
        aabb: Aabb {
            min: [10.0, -2.0, 0.0],
            max: [12.0, 2.0, 1.5],
        },
        albedo: [220, 40, 40],
    },
    SceneBox {
        aabb: Aabb {
            min: [-12.0, 1.0, 0.0],
            max: [-10.0, 4.0, 2.5],
        },
        albedo: [40, 200, 60],
    },
    SceneBox {
        aabb: Aabb {
            min: [-3.0, 6.0, 0.0],
            max: [3.0, 7.5, 1.0],
        },
        albedo: [50, 80, 220],
    },
    SceneBox {
        aabb: Aabb {
            min: [2.0, -8.0, 0.0],
            max: [5.0, -6.0, 3.0],
        },
        albedo: [230, 210, 40],
    },
];

/// Which surface of the scene a ray hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The floor (z = 0), checkerboard.
    Floor,
    /// The ceiling.
    Ceiling,
    /// A wall: 0 = +x, 1 = -x, 2 = +y, 3 = -y.
    Wall(u8),
    /// A face of box `BOXES[index]`.
    Box(u8),
}

/// A ray hit: distance along the ray, the surface, the world point and the outward unit normal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Ray parameter (m if the direction is a unit vector).
    pub t: f64,
    /// What was hit.
    pub surface: Surface,
    /// The hit point in the world frame.
    pub point: [f64; 3],
    /// The unit normal of the surface at the hit, facing the ray's origin side.
    pub normal: [f64; 3],
}

/// Casts a ray (`origin` inside the room, outside every box) against the scene: the nearest hit.
/// Returns `None` only for a zero direction or an origin outside the room.
pub fn raycast(origin: [f64; 3], dir: [f64; 3]) -> Option<Hit> {
    let (mut best_t, best_axis) = room_exit(origin, dir)?;
    let positive = dir[best_axis] > 0.0;
    let mut surface = room_surface(best_axis, positive);
    let mut normal = [0.0; 3];
    normal[best_axis] = if positive { -1.0 } else { 1.0 };
    for (i, b) in BOXES.iter().enumerate() {
        if let Some((t, _, axis)) = slab(&b.aabb.min, &b.aabb.max, origin, dir) {
            if t < best_t {
                best_t = t;
                surface = Surface::Box(i as u8);
                normal = [0.0; 3];
                normal[axis] = if dir[axis] > 0.0 { -1.0 } else { 1.0 };
            }
        }
    }
    let point = [
        origin[0] + best_t * dir[0],
        origin[1] + best_t * dir[1],
        origin[2] + best_t * dir[2],
    ];
    Some(Hit {
        t: best_t,
        surface,
        point,
        normal,
    })
}

/// Exit of the ray `o + t d` from inside the room through its bounds, in the first `D` axes: the ray
/// parameter and the axis of the face crossed. `None` for a zero direction or an origin outside.
#[inline]
pub(crate) fn room_exit<const D: usize>(o: [f64; D], d: [f64; D]) -> Option<(f64, usize)> {
    let (mut best_t, mut best_axis) = (f64::INFINITY, 0usize);
    for (axis, (&oa, &da)) in o.iter().zip(&d).enumerate() {
        let bound = if da > 0.0 {
            ROOM.max[axis]
        } else if da < 0.0 {
            ROOM.min[axis]
        } else {
            continue;
        };
        let t = (bound - oa) / da;
        if t < best_t {
            best_t = t;
            best_axis = axis;
        }
    }
    (best_t.is_finite() && best_t >= 0.0).then_some((best_t, best_axis))
}

/// The room surface crossed on `axis` moving in the positive (`true`) or negative direction.
#[inline]
pub(crate) fn room_surface(axis: usize, positive: bool) -> Surface {
    match (axis, positive) {
        (2, false) => Surface::Floor,
        (2, true) => Surface::Ceiling,
        (0, true) => Surface::Wall(0),
        (0, false) => Surface::Wall(1),
        (_, true) => Surface::Wall(2),
        (_, false) => Surface::Wall(3),
    }
}

/// Entry of the ray `o + t d` (`t > 0`) into the box `[min, max]` from outside, in `D` dimensions (slab
/// method): entry and exit parameters and the axis of the entry face.
#[inline]
pub(crate) fn slab<const D: usize>(
    min: &[f64; 3],
    max: &[f64; 3],
    o: [f64; D],
    d: [f64; D],
) -> Option<(f64, f64, usize)> {
    let (mut t_near, mut t_far, mut axis_near) = (f64::NEG_INFINITY, f64::INFINITY, 0);
    for axis in 0..D {
        if d[axis] == 0.0 {
            if o[axis] < min[axis] || o[axis] > max[axis] {
                return None;
            }
            continue;
        }
        let inv = 1.0 / d[axis];
        let (mut t0, mut t1) = ((min[axis] - o[axis]) * inv, (max[axis] - o[axis]) * inv);
        if t0 > t1 {
            std::mem::swap(&mut t0, &mut t1);
        }
        if t0 > t_near {
            t_near = t0;
            axis_near = axis;
        }
        t_far = t_far.min(t1);
    }
    (t_near <= t_far && t_near > 0.0).then_some((t_near, t_far, axis_near))
}

/// The base colour (before shading) of `surface` at world point `p`: checkerboard floor (1 m squares),
/// striped walls (2 m stripes), plain ceiling and boxes.
pub fn surface_albedo(surface: Surface, p: [f64; 3]) -> [u8; 3] {
    match surface {
        Surface::Floor => {
            if (fast_floor(p[0]) + fast_floor(p[1])) & 1 == 0 {
                [90, 90, 90]
            } else {
                [170, 170, 170]
            }
        }
        Surface::Ceiling => [230, 230, 230],
        Surface::Wall(w) => {
            let base: [u8; 3] = match w {
                0 => [200, 180, 150],
                1 => [150, 180, 200],
                2 => [180, 200, 150],
                _ => [200, 150, 180],
            };
            // Stripes run along the wall: by y on the ±x walls, by x on the ±y walls.
            let along = if w < 2 { p[1] } else { p[0] };
            if fast_floor(along * 0.5) & 1 == 0 {
                base
            } else {
                [base[0] - 40, base[1] - 40, base[2] - 40]
            }
        }
        Surface::Box(i) => BOXES[usize::from(i) % BOXES.len()].albedo,
    }
}

/// The colour the camera sees for a surface point with outward `normal`: albedo times a fixed
/// directional light (ambient 0.55 plus 0.45 · max(0, n·L)), rounded to bytes.
pub fn surface_colour(surface: Surface, p: [f64; 3], normal: [f64; 3]) -> [u8; 3] {
    shade(surface_albedo(surface, p), normal)
}

/// Applies the scene's fixed light to an albedo (see [`surface_colour`]).
pub fn shade(albedo: [u8; 3], normal: [f64; 3]) -> [u8; 3] {
    // Light from above, a little from +x and +y (unit vector).
    const L: [f64; 3] = [
        0.371_390_676_354_103_7,
        0.557_086_014_531_155_6,
        0.742_781_352_708_207_4,
    ];
    let ndl = (normal[0] * L[0] + normal[1] * L[1] + normal[2] * L[2]).max(0.0);
    let k = 0.55 + 0.45 * ndl;
    albedo.map(|c| (f64::from(c) * k).round().min(255.0) as u8)
}

/// The LiDAR intensity of a surface point: the luminance (0..=255) of its albedo.
pub fn surface_reflectivity(surface: Surface, p: [f64; 3]) -> f32 {
    let [r, g, b] = surface_albedo(surface, p);
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// `floor(x)` as an integer, without a libm call (the hot renderers use this per pixel).
#[inline]
pub(crate) fn fast_floor(x: f64) -> i64 {
    let i = x as i64;
    i - i64::from((i as f64) > x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-5;
        for k in 0..200 {
            let t = k as f64 * 0.37;
            let s = state(t);
            let (a, b) = (state(t - h), state(t + h));
            let v = (b.position - a.position) / (2.0 * h);
            assert!((v - s.velocity_world).norm() < 1e-6, "velocity at t={t}");
            let acc = (b.velocity_world - a.velocity_world) / (2.0 * h);
            assert!((acc - s.accel_world).norm() < 1e-5, "accel at t={t}");
            let dyaw = (b.yaw - a.yaw + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI;
            assert!(
                (dyaw / (2.0 * h) - s.angular_velocity_body.z).abs() < 1e-5,
                "yaw rate at t={t}"
            );
            let vb = s.orientation.inverse() * s.velocity_world;
            assert!((vb - s.velocity_body).norm() < 1e-9);
            let speed = s.velocity_body.x;
            assert!((0.4..2.7).contains(&speed), "speed {speed} at t={t}");
            assert!(s.position.x.abs() <= A + 1e-9 && s.position.y.abs() <= B + 1e-9);
        }
    }

    #[test]
    fn raycast_hits_known_surfaces() {
        let h = raycast([0.0, 0.0, 1.0], [0.0, 0.0, -1.0]).unwrap();
        assert_eq!(h.surface, Surface::Floor);
        assert!((h.t - 1.0).abs() < 1e-12);
        let h = raycast([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]).unwrap();
        assert_eq!(h.surface, Surface::Box(0));
        assert!((h.t - 10.0).abs() < 1e-12);
        assert_eq!(h.normal, [-1.0, 0.0, 0.0]);
        let h = raycast([0.0, 0.0, 2.0], [1.0, 0.0, 0.0]).unwrap();
        assert_eq!(h.surface, Surface::Wall(0));
        assert!((h.t - 14.0).abs() < 1e-12);
        assert_eq!(fast_floor(-0.5), -1);
        assert_eq!(fast_floor(2.0), 2);
    }

    #[test]
    fn extrinsic_maps_lidar_forward_axis_to_camera_z() {
        let e = lidar_to_camera_optical();
        let p = e * nalgebra::Point3::new(10.0, 0.0, 0.0);
        assert!(p.z > 9.0 && p.z < 10.5, "{p}");
        assert!(p.y < 0.0, "LiDAR is above the camera: {p}");
    }
}

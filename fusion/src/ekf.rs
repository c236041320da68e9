//! An extended Kalman filter over IMU and odometry in the manner of robot_localization's `ekf_node`
//! (cra-ros-pkg/robot_localization, `src/ekf.cpp` and `src/filter_base.cpp`).
//!
//! * State: 15-D `(x, y, z, roll, pitch, yaw, vx, vy, vz, vroll, vpitch, vyaw, ax, ay, az)`: pose in the
//!   world (`odom`) frame, velocities and accelerations in the body frame ([`idx`] names the indices).
//! * Motion model: robot_localization's omnidirectional constant-acceleration model
//!   (`Ekf::predict`): position advances by the body velocity (and ½·a·dt²) rotated into the world
//!   frame, orientation by the body rates through the Euler-rate matrix, velocity by the acceleration;
//!   the Jacobian is the same analytic one, except one sign that we found wrong there (see `transfer`).
//! * Process noise scaled by dt: `P = J P Jᵀ + dt · Q`.
//! * Correction on any subset of state variables (a [`Measurement`] lists the indices it observes): gain
//!   `K = P Hᵀ (H P Hᵀ + R)⁻¹`, innovation angles wrapped to (-π, π], Mahalanobis gate
//!   `yᵀ S⁻¹ y < threshold²` (robot_localization's `checkMahalanobisThreshold`), Joseph-form covariance
//!   update `(I − K H) P (I − K H)ᵀ + K R Kᵀ`, state angles wrapped.
//! * Measurement timing as `FilterBase::processMeasurement`: predict from the filter time to the
//!   measurement's stamp, then correct; a stamp equal to the filter time is corrected without
//!   prediction.
//! * Out-of-sequence measurements as robot_localization's `smooth_lagged_data` (`RosFilter::revertTo`):
//!   with a [`LagWindow`] ([`Ekf::with_history`]) the filter keeps its recent states and
//!   measurements; a measurement stamped before the filter time rewinds to the last state before
//!   its stamp, is applied there, and the later measurements are applied again in stamp order. One
//!   older than the window (or any, without a history) is dropped and counted
//!   ([`EkfStats::too_late`]), never applied as if it were current: that would correct the present with
//!   the past, and the gate would reject good data.
//!
//! Everything is fixed-size (`nalgebra::SMatrix`), the history is allocated once: no heap
//! allocation after construction.

use crate::synth::{ImuSample, OdometrySample};
use nalgebra::{SMatrix, SVector, UnitQuaternion, Vector3};

mod history;
pub use history::LagWindow;
use history::{Entry, FixedFn, History, Outcome, Snapshot, Stored};

/// State dimension.
pub const STATE_SIZE: usize = 15;
/// The state vector.
pub type State = SVector<f64, STATE_SIZE>;
/// A state covariance.
pub type Covariance = SMatrix<f64, STATE_SIZE, STATE_SIZE>;

/// Indices into the state (robot_localization's `StateMember*`).
pub mod idx {
    /// Position x (m, world).
    pub const X: usize = 0;
    /// Position y.
    pub const Y: usize = 1;
    /// Position z.
    pub const Z: usize = 2;
    /// Roll (rad).
    pub const ROLL: usize = 3;
    /// Pitch.
    pub const PITCH: usize = 4;
    /// Yaw.
    pub const YAW: usize = 5;
    /// Body velocity x (m/s).
    pub const VX: usize = 6;
    /// Body velocity y.
    pub const VY: usize = 7;
    /// Body velocity z.
    pub const VZ: usize = 8;
    /// Roll rate (rad/s).
    pub const VROLL: usize = 9;
    /// Pitch rate.
    pub const VPITCH: usize = 10;
    /// Yaw rate.
    pub const VYAW: usize = 11;
    /// Body acceleration x (m/s²).
    pub const AX: usize = 12;
    /// Body acceleration y.
    pub const AY: usize = 13;
    /// Body acceleration z.
    pub const AZ: usize = 14;
}

/// Errors of the filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EkfError {
    /// A measurement is unusable (non-finite value or stamp, index out of range or repeated, negative
    /// threshold).
    #[error("invalid measurement: {0}")]
    InvalidMeasurement(&'static str),
    /// `H P Hᵀ + R` could not be inverted.
    #[error("innovation covariance is singular")]
    SingularInnovation,
}

/// What a correction did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Correction {
    /// The measurement passed the gate and updated the state.
    Accepted {
        /// Its squared Mahalanobis distance.
        sq_mahalanobis: f64,
    },
    /// The gate rejected it; state and covariance are unchanged by it.
    Rejected {
        /// Its squared Mahalanobis distance (≥ threshold²).
        sq_mahalanobis: f64,
    },
    /// Stamped before the filter time and older than the history reaches (or no history is kept):
    /// dropped unapplied and counted in [`EkfStats::too_late`].
    TooLate,
}

/// A measurement of `M` state variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement<const M: usize> {
    /// Stamp (s).
    pub t: f64,
    /// Which state variables (see [`idx`]); distinct.
    pub indices: [usize; M],
    /// The measured values, in the order of `indices`.
    pub values: SVector<f64, M>,
    /// Their covariance.
    pub covariance: SMatrix<f64, M, M>,
    /// Mahalanobis gate in standard deviations (robot_localization's `*_rejection_threshold`);
    /// `f64::INFINITY` disables the gate.
    pub mahalanobis_threshold: f64,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EkfStats {
    /// Prediction steps taken.
    pub predictions: u64,
    /// Measurements accepted (after a rewind, a re-applied measurement counts with its new outcome).
    pub accepted: u64,
    /// Measurements rejected by the Mahalanobis gate (likewise).
    pub rejected: u64,
    /// Measurements refused as invalid.
    pub invalid: u64,
    /// Measurements stamped before the filter time and fused at their stamp by rewinding (each is
    /// also counted as accepted or rejected).
    pub late: u64,
    /// Measurements stamped before what the history reaches: dropped, never applied.
    pub too_late: u64,
    /// Later measurements applied again after a rewind.
    pub replayed: u64,
}

/// robot_localization's default process noise diagonal (its `ekf.yaml` / `FilterBase` constructor).
pub const DEFAULT_PROCESS_NOISE: [f64; STATE_SIZE] = [
    0.05, 0.05, 0.06, 0.03, 0.03, 0.06, 0.025, 0.025, 0.04, 0.01, 0.01, 0.02, 0.01, 0.01, 0.015,
];

/// The filter.
#[derive(Debug, Clone)]
pub struct Ekf {
    x: State,
    p: Covariance,
    q: Covariance,
    t: Option<f64>,
    stats: EkfStats,
    /// Recent states and measurements, for out-of-sequence measurements (`None`: none kept).
    history: Option<History>,
}

impl Default for Ekf {
    fn default() -> Self {
        Self::new(Covariance::from_diagonal(&State::from(
            DEFAULT_PROCESS_NOISE,
        )))
    }
}

/// Re-applies a stored measurement (generic over its size, which a closure cannot be).
struct Reapply<'a>(&'a mut Ekf);

impl FixedFn<Result<Correction, EkfError>> for Reapply<'_> {
    fn call<const M: usize>(self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        self.0.advance_and_correct(m)
    }
}

impl Ekf {
    /// A filter at the origin with process noise `q` (per second) and robot_localization's initial
    /// covariance (1e-9 on the diagonal), keeping no history: a measurement stamped before the
    /// filter time is dropped ([`Correction::TooLate`]). With a finite Mahalanobis gate, initialise
    /// it with [`Self::set_state`] near the true pose: a confident wrong start would reject every
    /// measurement.
    pub fn new(q: Covariance) -> Self {
        Self {
            x: State::zeros(),
            p: Covariance::identity() * 1e-9,
            q,
            t: None,
            stats: EkfStats::default(),
            history: None,
        }
    }

    /// As [`Self::new`], keeping the states and measurements of the last `window` so that
    /// out-of-sequence measurements are fused at their stamps (see the module docs). The history is
    /// allocated and written now; processing allocates nothing.
    ///
    /// # Examples
    /// ```
    /// use fusion::ekf::{idx, Correction, Ekf, LagWindow, Measurement};
    /// use nalgebra::{SMatrix, SVector};
    /// let mut ekf = Ekf::with_history(Ekf::default().process_noise(), LagWindow::default());
    /// let x_at = |t: f64, x: f64| Measurement {
    ///     t, indices: [idx::X], values: SVector::from([x]),
    ///     covariance: SMatrix::from([[0.01]]), mahalanobis_threshold: 5.0,
    /// };
    /// ekf.process(&x_at(1.0, 0.0)).unwrap();
    /// ekf.process(&x_at(1.2, 0.0)).unwrap();
    /// // Arrives last, measured in between: fused at t = 1.1, then t = 1.2 is applied again.
    /// assert!(matches!(ekf.process(&x_at(1.1, 0.0)), Ok(Correction::Accepted { .. })));
    /// assert_eq!((ekf.time(), ekf.stats().late, ekf.stats().replayed), (Some(1.2), 1, 1));
    /// ```
    pub fn with_history(q: Covariance, window: LagWindow) -> Self {
        Self {
            history: History::new(window),
            ..Self::new(q)
        }
    }

    /// The process noise (per second).
    pub fn process_noise(&self) -> Covariance {
        self.q
    }

    /// Sets state, covariance and filter time (the initial pose, `set_pose`). The history restarts
    /// here: no measurement older than `t` can be fused afterwards.
    pub fn set_state(&mut self, t: f64, x: State, p: Covariance) {
        self.x = x;
        wrap_state_angles(&mut self.x);
        self.p = p;
        self.t = Some(t);
        self.restart_history();
    }

    /// The state estimate.
    pub fn state(&self) -> &State {
        &self.x
    }

    /// The estimate's covariance.
    pub fn covariance(&self) -> &Covariance {
        &self.p
    }

    /// The filter time (s), once a measurement or [`Self::set_state`] has set it.
    pub fn time(&self) -> Option<f64> {
        self.t
    }

    /// Counters.
    pub fn stats(&self) -> EkfStats {
        self.stats
    }

    fn snapshot(&self) -> Option<Snapshot> {
        self.t.map(|t| Snapshot {
            t,
            x: self.x,
            p: self.p,
        })
    }

    fn restart_history(&mut self) {
        let base = self.snapshot();
        if let Some(h) = self.history.as_mut() {
            h.restart(base);
        }
    }

    /// Predicts `dt` seconds ahead with the omnidirectional model (the filter time does not move).
    /// Non-positive or non-finite `dt` does nothing. This bypasses the history of
    /// [`Self::with_history`]: it restarts at the predicted state.
    pub fn predict(&mut self, dt: f64) {
        self.predict_step(dt);
        self.restart_history();
    }

    fn predict_step(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let (f, j) = transfer(&self.x, dt);
        self.x = f * self.x;
        wrap_state_angles(&mut self.x);
        self.p = j * self.p * j.transpose() + self.q * dt;
        self.stats.predictions += 1;
    }

    /// Processes a measurement as robot_localization does: predict to its stamp (if later than the
    /// filter time), then correct. A measurement stamped before the filter time is fused at its
    /// stamp by rewinding through the history and applying the later measurements again, or, when
    /// the history does not reach back that far, dropped ([`Correction::TooLate`]).
    ///
    /// # Errors
    /// [`EkfError`] for an invalid measurement (the filter is unchanged and the measurement counted
    /// as invalid) or a singular innovation covariance (the filter has predicted to the stamp).
    pub fn process<const M: usize>(&mut self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        if !m.t.is_finite() {
            self.stats.invalid += 1;
            return Err(EkfError::InvalidMeasurement("non-finite stamp"));
        }
        self.validate(m)?;
        match self.t {
            Some(t) if m.t < t => self.process_late(m),
            Some(_) => self.apply_newest(m),
            None => {
                self.t = Some(m.t);
                self.restart_history();
                self.apply_newest(m)
            }
        }
    }

    /// Predicts to the stamp (if later than the filter time) and corrects; no history bookkeeping.
    fn advance_and_correct<const M: usize>(
        &mut self,
        m: &Measurement<M>,
    ) -> Result<Correction, EkfError> {
        match self.t {
            Some(t) if m.t > t => {
                self.predict_step(m.t - t);
                self.t = Some(m.t);
            }
            Some(_) => {}
            None => self.t = Some(m.t),
        }
        self.correct_step(m)
    }

    /// A measurement at or after the filter time: applied and appended to the history.
    fn apply_newest<const M: usize>(&mut self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        let r = self.advance_and_correct(m);
        if let (Some(after), Some(h)) = (self.snapshot(), self.history.as_mut()) {
            h.push(Entry {
                m: Stored::new(m),
                outcome: Outcome::of(&r),
                after,
            });
        }
        r
    }

    /// A measurement before the filter time: rewind, apply, re-apply what came after.
    fn process_late<const M: usize>(&mut self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        let Some(h) = self.history.as_mut() else {
            self.stats.too_late += 1;
            return Ok(Correction::TooLate);
        };
        h.make_room();
        let Some((p, before)) = h.rewind_point(m.t) else {
            self.stats.too_late += 1;
            return Ok(Correction::TooLate);
        };
        (self.x, self.p, self.t) = (before.x, before.p, Some(before.t));
        let r = self.advance_and_correct(m);
        self.stats.late += 1;
        let (Some(after), Some(h)) = (self.snapshot(), self.history.as_mut()) else {
            return r;
        };
        h.insert(
            p,
            Entry {
                m: Stored::new(m),
                outcome: Outcome::of(&r),
                after,
            },
        );
        for i in p + 1..h.len() {
            self.reapply(i);
        }
        r
    }

    /// Applies history entry `i` again from the current state; the counters then count its new
    /// outcome instead of its old one.
    fn reapply(&mut self, i: usize) {
        let Some(h) = self.history.as_ref() else {
            return;
        };
        let Entry { m, outcome, .. } = *h.get(i);
        let r = m.with_fixed(Reapply(self));
        let new = Outcome::of(&r);
        let old = match outcome {
            Outcome::Accepted => &mut self.stats.accepted,
            Outcome::Rejected => &mut self.stats.rejected,
            Outcome::Failed => &mut self.stats.invalid,
        };
        *old = old.saturating_sub(1);
        self.stats.replayed += 1;
        if let (Some(after), Some(h)) = (self.snapshot(), self.history.as_mut()) {
            h.update(i, new, after);
        }
    }

    /// Corrects with a measurement at the filter time (no prediction). See the module docs for the
    /// steps. This bypasses the history of [`Self::with_history`]: it restarts at the corrected
    /// state.
    ///
    /// # Errors
    /// As [`Self::process`].
    pub fn correct<const M: usize>(&mut self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        let r = self.correct_step(m);
        self.restart_history();
        r
    }

    fn correct_step<const M: usize>(&mut self, m: &Measurement<M>) -> Result<Correction, EkfError> {
        let r = self.validate(m)?;
        // P Hᵀ selects columns, H P Hᵀ rows and columns.
        let pht = SMatrix::<f64, STATE_SIZE, M>::from_fn(|row, c| self.p[(row, m.indices[c])]);
        let s = SMatrix::<f64, M, M>::from_fn(|a, b| self.p[(m.indices[a], m.indices[b])]) + r;
        let Some(s_inv) = s.try_inverse() else {
            self.stats.invalid += 1;
            return Err(EkfError::SingularInnovation);
        };
        let k = pht * s_inv;
        let mut y = SVector::<f64, M>::from_fn(|i, _| m.values[i] - self.x[m.indices[i]]);
        for (i, &s_idx) in m.indices.iter().enumerate() {
            if matches!(s_idx, idx::ROLL | idx::PITCH | idx::YAW) {
                y[i] = wrap(y[i]);
            }
        }
        let sq = (y.transpose() * s_inv * y)[(0, 0)];
        if sq >= m.mahalanobis_threshold * m.mahalanobis_threshold {
            self.stats.rejected += 1;
            return Ok(Correction::Rejected { sq_mahalanobis: sq });
        }
        self.x += k * y;
        let mut i_kh = Covariance::identity();
        for (c, &s_idx) in m.indices.iter().enumerate() {
            for row in 0..STATE_SIZE {
                i_kh[(row, s_idx)] -= k[(row, c)];
            }
        }
        self.p = i_kh * self.p * i_kh.transpose() + k * r * k.transpose();
        wrap_state_angles(&mut self.x);
        self.stats.accepted += 1;
        Ok(Correction::Accepted { sq_mahalanobis: sq })
    }

    /// Checks a measurement and returns its covariance with robot_localization's fixes applied
    /// (negative variances made positive, tiny ones raised to 1e-9).
    fn validate<const M: usize>(
        &mut self,
        m: &Measurement<M>,
    ) -> Result<SMatrix<f64, M, M>, EkfError> {
        let bad = |why| Err(EkfError::InvalidMeasurement(why));
        let problem = if m.indices.iter().any(|&i| i >= STATE_SIZE) {
            Some("state index out of range")
        } else if (0..M).any(|a| (a + 1..M).any(|b| m.indices[a] == m.indices[b])) {
            Some("repeated state index")
        } else if !m
            .values
            .iter()
            .chain(m.covariance.iter())
            .all(|v| v.is_finite())
        {
            Some("non-finite value or covariance")
        } else if m.mahalanobis_threshold.is_nan() || m.mahalanobis_threshold < 0.0 {
            Some("negative or NaN Mahalanobis threshold")
        } else {
            None
        };
        if let Some(why) = problem {
            self.stats.invalid += 1;
            return bad(why);
        }
        let mut r = m.covariance;
        for i in 0..M {
            r[(i, i)] = r[(i, i)].abs().max(1e-9);
        }
        Ok(r)
    }
}

/// Wraps an angle to (-π, π].
pub fn wrap(a: f64) -> f64 {
    crate::synth::wrap_angle(a)
}

fn wrap_state_angles(x: &mut State) {
    for i in [idx::ROLL, idx::PITCH, idx::YAW] {
        x[i] = wrap(x[i]);
    }
}

/// robot_localization's transfer function `F` and its Jacobian `J` for a step of `dt`.
fn transfer(x: &State, dt: f64) -> (Covariance, Covariance) {
    use idx::*;
    let (sr, cr) = x[ROLL].sin_cos();
    let (sp, cp) = x[PITCH].sin_cos();
    let (sy, cy) = x[YAW].sin_cos();
    let cpi = 1.0 / cp;
    let tp = sp * cpi;
    let mut f = Covariance::identity();
    // Rotation body -> world (rows x, y, z) times dt.
    let rot = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ];
    for (row, r) in rot.iter().enumerate() {
        for (c, &v) in r.iter().enumerate() {
            f[(X + row, VX + c)] = v * dt;
            f[(X + row, AX + c)] = 0.5 * v * dt * dt;
        }
    }
    f[(ROLL, VROLL)] = dt;
    f[(ROLL, VPITCH)] = sr * tp * dt;
    f[(ROLL, VYAW)] = cr * tp * dt;
    f[(PITCH, VPITCH)] = cr * dt;
    f[(PITCH, VYAW)] = -sr * dt;
    f[(YAW, VPITCH)] = sr * cpi * dt;
    f[(YAW, VYAW)] = cr * cpi * dt;
    f[(VX, AX)] = dt;
    f[(VY, AY)] = dt;
    f[(VZ, AZ)] = dt;

    // Jacobian: F plus the derivatives of the position and orientation rows w.r.t. the angles.
    let (v, a) = ([x[VX], x[VY], x[VZ]], [x[AX], x[AY], x[AZ]]);
    let half = 0.5 * dt * dt;
    let lin = |c: [f64; 3]| {
        (c[0] * v[0] + c[1] * v[1] + c[2] * v[2]) * dt
            + (c[0] * a[0] + c[1] * a[1] + c[2] * a[2]) * half
    };
    let (pv, yv) = (x[VPITCH], x[VYAW]);
    let mut j = f;
    j[(X, ROLL)] = lin([0.0, cy * sp * cr + sy * sr, -cy * sp * sr + sy * cr]);
    j[(X, PITCH)] = lin([-cy * sp, cy * cp * sr, cy * cp * cr]);
    j[(X, YAW)] = lin([-sy * cp, -sy * sp * sr - cy * cr, -sy * sp * cr + cy * sr]);
    j[(Y, ROLL)] = lin([0.0, sy * sp * cr - cy * sr, -sy * sp * sr - cy * cr]);
    j[(Y, PITCH)] = lin([-sy * sp, sy * cp * sr, sy * cp * cr]);
    j[(Y, YAW)] = lin([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr]);
    j[(Z, ROLL)] = lin([0.0, cp * cr, -cp * sr]);
    j[(Z, PITCH)] = lin([-cp, -sp * sr, -sp * cr]);
    j[(ROLL, ROLL)] = 1.0 + (cr * tp * pv - sr * tp * yv) * dt;
    j[(ROLL, PITCH)] = (cpi * cpi * sr * pv + cpi * cpi * cr * yv) * dt;
    j[(PITCH, ROLL)] = (-sr * pv - cr * yv) * dt;
    j[(YAW, ROLL)] = (cr * cpi * pv - sr * cpi * yv) * dt;
    // robot_localization has `- cr·tp·cpi·yv` here; d/dpitch (cr/cp) = +cr·tp·cpi (the finite-difference
    // test below confirms), so we use the correct sign.
    j[(YAW, PITCH)] = (sr * tp * cpi * pv + cr * tp * cpi * yv) * dt;
    (f, j)
}

/// Diagonal covariance from standard deviations.
fn diag<const M: usize>(std: [f64; M]) -> SMatrix<f64, M, M> {
    SMatrix::<f64, M, M>::from_diagonal(&SVector::<f64, M>::from(std.map(|s| s * s)))
}

/// Euler angles (roll, pitch, yaw) of a quaternion given as (x, y, z, w).
fn euler(q: [f64; 4]) -> (f64, f64, f64) {
    UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(q[3], q[0], q[1], q[2]))
        .euler_angles()
}

/// The IMU as robot_localization's `imu0` with `imu0_remove_gravitational_acceleration: true` and
/// `imu0_config` selecting roll, pitch, the three rates and the three accelerations (yaw is left out:
/// an IMU's absolute yaw drifts). `std` = standard deviations of (orientation, rate, acceleration).
pub fn imu_measurement(s: &ImuSample, std: [f64; 3], threshold: f64) -> Measurement<8> {
    let (roll, pitch, yaw) = euler(s.orientation);
    let q = UnitQuaternion::from_euler_angles(roll, pitch, yaw);
    let g = q.inverse() * Vector3::new(0.0, 0.0, crate::truth::GRAVITY);
    let [wx, wy, wz] = s.angular_velocity;
    let [fx, fy, fz] = s.linear_acceleration;
    Measurement {
        t: s.t,
        indices: [
            idx::ROLL,
            idx::PITCH,
            idx::VROLL,
            idx::VPITCH,
            idx::VYAW,
            idx::AX,
            idx::AY,
            idx::AZ,
        ],
        values: SVector::from([roll, pitch, wx, wy, wz, fx - g.x, fy - g.y, fz - g.z]),
        covariance: diag([
            std[0], std[0], std[1], std[1], std[1], std[2], std[2], std[2],
        ]),
        mahalanobis_threshold: threshold,
    }
}

/// Odometry as robot_localization's `odom0` fusing x, y, z, yaw and the body velocities vx, vy, vz and
/// yaw rate. `std` = standard deviations of (position, yaw, velocity, yaw rate).
pub fn odometry_measurement(s: &OdometrySample, std: [f64; 4], threshold: f64) -> Measurement<8> {
    let [x, y, z] = s.position;
    let [vx, vy, vz] = s.linear_velocity;
    Measurement {
        t: s.t,
        indices: [
            idx::X,
            idx::Y,
            idx::Z,
            idx::YAW,
            idx::VX,
            idx::VY,
            idx::VZ,
            idx::VYAW,
        ],
        values: SVector::from([x, y, z, s.yaw, vx, vy, vz, s.angular_velocity[2]]),
        covariance: diag([
            std[0], std[0], std[0], std[1], std[2], std[2], std[2], std[3],
        ]),
        mahalanobis_threshold: threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// The analytic Jacobian equals a finite-difference Jacobian of `F(x) x` at a tilted, moving state.
    #[test]
    fn jacobian_matches_finite_differences() {
        let x = State::from([
            1.0, -2.0, 0.5, 0.2, -0.3, 2.5, 1.5, -0.4, 0.3, 0.1, -0.2, 0.4, 0.5, 0.2, -0.1,
        ]);
        let dt = 0.05;
        let step = |x: &State| transfer(x, dt).0 * x;
        let (_, j) = transfer(&x, dt);
        let h = 1e-6;
        for c in 0..STATE_SIZE {
            let mut a = x;
            let mut b = x;
            a[c] -= h;
            b[c] += h;
            let col = (step(&b) - step(&a)) / (2.0 * h);
            for r in 0..STATE_SIZE {
                assert!(
                    (col[r] - j[(r, c)]).abs() < 1e-6,
                    "J[{r},{c}] = {} vs numeric {}",
                    j[(r, c)],
                    col[r]
                );
            }
        }
        assert!((wrap(3.0 * PI) - PI).abs() < 1e-12);
    }
}

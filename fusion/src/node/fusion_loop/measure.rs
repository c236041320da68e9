//! IMU and odometry on the fusion thread: decoded, checked and fused by the EKF; each accepted
//! measurement's estimate handed out (estimate queue, odometry output channel, MCAP tap).

use shm_transport::Publisher;
use std::sync::Arc;

use super::{Emitter, Held, Step};
use crate::driver::meta::{decode_imu, decode_odometry, MetaError};
use crate::driver::StreamKind;
use crate::ekf::{self, Correction, Covariance, Ekf, State};
use crate::node::outputs::OdometryRecord;
use crate::node::{EkfSpec, Estimate};
use crate::rt::{now_ns, thread_cpu_ns};
use crossbeam_queue::ArrayQueue;

/// The EKF and where its estimates go.
pub(super) struct Measurements {
    pub out: Emitter,
    pub ekf: Option<(Box<Ekf>, EkfSpec)>,
    /// The EKF starts at the first odometry pose (or the first IMU sample without odometry).
    pub ekf_started: bool,
    /// The filter time as a sensor stamp (ns): the newest stamp it has fused. After a late
    /// measurement the estimate is the state at this time, not at the late stamp.
    pub ekf_time_ns: u64,
    pub has_odometry: bool,
    pub odometry_pub: Option<Publisher>,
    pub estimates: Arc<ArrayQueue<Estimate>>,
    pub mcap: Option<crate::node::mcap_worker::McapTap>,
}

impl Measurements {
    /// IMU and odometry: decoded, checked, and processed by the EKF; the sample's record is emitted
    /// and the sample released.
    pub fn on_measurement(&mut self, h: Held, kind: StreamKind) -> Result<(), MetaError> {
        let t0 = now_ns();
        let cpu0 = thread_cpu_ns();
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
        let cpu_ns = thread_cpu_ns().saturating_sub(cpu0);
        let t1 = now_ns();
        match res {
            Ok(()) => self.out.emit(h, Step { t0, t1, cpu_ns }),
            Err(_) => self.out.emit(h, Step::default()),
        }
        res
    }

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
        let node = &self.out.node;
        node.ekf_accepted.set(st.accepted);
        node.ekf_rejected.set(st.rejected);
        node.ekf_late.set(st.late);
        node.ekf_too_late.set(st.too_late);
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
                            node.fuse_errors.inc();
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
            Err(_) => node.fuse_errors.inc(),
        }
    }
}

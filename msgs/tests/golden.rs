//! Golden CDR bytes from an independent implementation: Eclipse Cyclone DDS's Python IDL
//! serializer (`tests/oracle/cdr_oracle.py`, `pip install cyclonedds`).
//!
//! For each type: our bytes == Cyclone's bytes for the same value, Cyclone decodes our bytes to
//! the same value, and we decode Cyclone's bytes to the same value; first on hand-picked values
//! (odd string lengths so that every alignment rule is exercised), then on random ones.

mod common;

use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::geometry_msgs::*;
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::*;
use rtfuse_msgs::std_msgs::Header;
use rtfuse_msgs::{cdr, RosMessage};

fn check<T>(oracle: &mut Oracle, value: &T)
where
    T: RosMessage + PartialEq + std::fmt::Debug,
{
    let ours = cdr::encode(value).expect("encode");
    let theirs = oracle.encode(T::ROS_TYPE, value);
    assert_eq!(
        ours,
        theirs,
        "{}: our CDR differs from Cyclone DDS's for {value:?}",
        T::ROS_TYPE
    );
    let decoded_by_them = oracle.decode(T::ROS_TYPE, &ours);
    assert_eq!(
        decoded_by_them,
        serde_json::to_value(value).expect("json"),
        "{}: Cyclone decodes our bytes differently",
        T::ROS_TYPE
    );
    let decoded_by_us: T = cdr::decode(&theirs).expect("decode Cyclone's bytes");
    assert_eq!(
        &decoded_by_us,
        value,
        "{}: we decode Cyclone's bytes differently",
        T::ROS_TYPE
    );
}

fn check_random<T, S>(oracle: &mut Oracle, strategy: S, cases: usize)
where
    T: RosMessage + PartialEq + std::fmt::Debug,
    S: Strategy<Value = T>,
{
    let mut runner = TestRunner::deterministic();
    for _ in 0..cases {
        let value = strategy.new_tree(&mut runner).expect("value").current();
        check(oracle, &value);
    }
}

fn hdr(frame: &str) -> Header {
    Header {
        stamp: Time {
            sec: 1_700_000_123,
            nanosec: 987_654_321,
        },
        frame_id: frame.to_owned(),
    }
}

fn cov<const N: usize>(scale: f64) -> [f64; N] {
    std::array::from_fn(|i| scale * (i as f64 + 0.25))
}

#[test]
fn hand_picked_values_match_cyclone_dds() {
    let mut o = Oracle::start();
    check(
        &mut o,
        &Time {
            sec: -2,
            nanosec: 300_000_000,
        },
    );
    check(&mut o, &hdr("base_link"));
    check(&mut o, &hdr(""));
    let v = Vector3 {
        x: 1.5,
        y: -2.25,
        z: 1e-9,
    };
    check(&mut o, &v);
    check(
        &mut o,
        &Point {
            x: 3.0,
            y: 4.0,
            z: -5.5,
        },
    );
    check(&mut o, &Quaternion::default());
    let pose = Pose {
        position: Point {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        orientation: Quaternion {
            x: 0.1,
            y: 0.2,
            z: 0.3,
            w: 0.9,
        },
    };
    check(&mut o, &pose);
    check(
        &mut o,
        &PoseWithCovariance {
            pose,
            covariance: cov(0.01),
        },
    );
    let twist = Twist {
        linear: v,
        angular: Vector3 {
            x: 0.0,
            y: 0.0,
            z: 0.5,
        },
    };
    check(&mut o, &twist);
    check(
        &mut o,
        &TwistWithCovariance {
            twist,
            covariance: cov(-0.5),
        },
    );
    check(
        &mut o,
        &Image {
            header: hdr("cam"),
            height: 2,
            width: 3,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: 9,
            data: (0..18).collect(),
        },
    );
    let roi = RegionOfInterest {
        x_offset: 1,
        y_offset: 2,
        height: 3,
        width: 4,
        do_rectify: true,
    };
    check(&mut o, &roi);
    check(
        &mut o,
        &CameraInfo {
            header: hdr("camera_optical"),
            height: 480,
            width: 640,
            distortion_model: "plumb_bob".into(),
            d: vec![-0.28, 0.07, 0.0001, -0.0002, 0.0],
            k: cov(100.0),
            r: cov(1.0),
            p: cov(50.0),
            binning_x: 1,
            binning_y: 2,
            roi,
        },
    );
    let x = PointField {
        name: "x".into(),
        offset: 0,
        datatype: PointField::FLOAT32,
        count: 1,
    };
    check(&mut o, &x);
    check(
        &mut o,
        &PointCloud2 {
            header: hdr("lidar"),
            height: 1,
            width: 2,
            fields: vec![
                x,
                PointField {
                    name: "intensity".into(),
                    offset: 4,
                    datatype: 7,
                    count: 1,
                },
            ],
            is_bigendian: false,
            point_step: 8,
            row_step: 16,
            data: (100..116).collect(),
            is_dense: true,
        },
    );
    check(
        &mut o,
        &Imu {
            header: hdr("imu_link"),
            orientation: Quaternion {
                x: 0.0,
                y: 0.0,
                z: std::f64::consts::FRAC_1_SQRT_2,
                w: std::f64::consts::FRAC_1_SQRT_2,
            },
            orientation_covariance: cov(0.001),
            angular_velocity: Vector3 {
                x: 0.01,
                y: -0.02,
                z: 0.03,
            },
            angular_velocity_covariance: cov(0.002),
            linear_acceleration: Vector3 {
                x: 0.1,
                y: 0.2,
                z: 9.81,
            },
            linear_acceleration_covariance: cov(0.003),
        },
    );
    check(
        &mut o,
        &Odometry {
            header: hdr("odom"),
            child_frame_id: "base_footprint".into(),
            pose: PoseWithCovariance {
                pose,
                covariance: cov(0.1),
            },
            twist: TwistWithCovariance {
                twist,
                covariance: cov(0.2),
            },
        },
    );
}

#[test]
fn random_values_match_cyclone_dds() {
    let mut o = Oracle::start();
    check_random(&mut o, time(), 8);
    check_random(&mut o, header(), 16);
    check_random(&mut o, vector3(), 4);
    check_random(&mut o, point(), 4);
    check_random(&mut o, quaternion(), 4);
    check_random(&mut o, pose(), 4);
    check_random(&mut o, pose_cov(), 4);
    check_random(&mut o, twist(), 4);
    check_random(&mut o, twist_cov(), 4);
    check_random(&mut o, image(), 16);
    check_random(&mut o, roi(), 8);
    check_random(&mut o, camera_info(), 16);
    check_random(&mut o, point_field(), 16);
    check_random(&mut o, point_cloud(), 16);
    check_random(&mut o, imu(), 8);
    check_random(&mut o, odometry(), 16);
}

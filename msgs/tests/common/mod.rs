//! Shared test fixtures: proptest strategies for every message type and the Cyclone DDS oracle.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use proptest::prelude::*;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::geometry_msgs::*;
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::*;
use rtfuse_msgs::std_msgs::Header;

/// Finite floats (JSON, the oracle's transport, has no NaN), including awkward ones.
pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e12..1e12f64,
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(1e-300),
    ]
}

pub fn floats<const N: usize>() -> impl Strategy<Value = [f64; N]> {
    proptest::collection::vec(float(), N).prop_map(|v| v.try_into().expect("N elements"))
}

pub fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_/ äö→]{0,12}"
}

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

pub fn time() -> impl Strategy<Value = Time> {
    (any::<i32>(), 0..1_000_000_000u32).prop_map(|(sec, nanosec)| Time { sec, nanosec })
}

pub fn header() -> impl Strategy<Value = Header> {
    (time(), text()).prop_map(|(stamp, frame_id)| Header { stamp, frame_id })
}

pub fn vector3() -> impl Strategy<Value = Vector3> {
    (float(), float(), float()).prop_map(|(x, y, z)| Vector3 { x, y, z })
}

pub fn point() -> impl Strategy<Value = Point> {
    (float(), float(), float()).prop_map(|(x, y, z)| Point { x, y, z })
}

pub fn quaternion() -> impl Strategy<Value = Quaternion> {
    (float(), float(), float(), float()).prop_map(|(x, y, z, w)| Quaternion { x, y, z, w })
}

pub fn pose() -> impl Strategy<Value = Pose> {
    (point(), quaternion()).prop_map(|(position, orientation)| Pose {
        position,
        orientation,
    })
}

pub fn pose_cov() -> impl Strategy<Value = PoseWithCovariance> {
    (pose(), floats::<36>()).prop_map(|(pose, covariance)| PoseWithCovariance { pose, covariance })
}

pub fn twist() -> impl Strategy<Value = Twist> {
    (vector3(), vector3()).prop_map(|(linear, angular)| Twist { linear, angular })
}

pub fn twist_cov() -> impl Strategy<Value = TwistWithCovariance> {
    (twist(), floats::<36>())
        .prop_map(|(twist, covariance)| TwistWithCovariance { twist, covariance })
}

pub fn image() -> impl Strategy<Value = Image> {
    (
        header(),
        any::<u32>(),
        any::<u32>(),
        text(),
        any::<u8>(),
        any::<u32>(),
        bytes(300),
    )
        .prop_map(
            |(header, height, width, encoding, is_bigendian, step, data)| Image {
                header,
                height,
                width,
                encoding,
                is_bigendian,
                step,
                data,
            },
        )
}

pub fn roi() -> impl Strategy<Value = RegionOfInterest> {
    (any::<[u32; 4]>(), any::<bool>()).prop_map(|(v, do_rectify)| RegionOfInterest {
        x_offset: v[0],
        y_offset: v[1],
        height: v[2],
        width: v[3],
        do_rectify,
    })
}

pub fn camera_info() -> impl Strategy<Value = CameraInfo> {
    (
        header(),
        any::<[u32; 4]>(),
        text(),
        proptest::collection::vec(float(), 0..9),
        (floats::<9>(), floats::<9>(), floats::<12>()),
        roi(),
    )
        .prop_map(
            |(header, n, distortion_model, d, (k, r, p), roi)| CameraInfo {
                header,
                height: n[0],
                width: n[1],
                distortion_model,
                d,
                k,
                r,
                p,
                binning_x: n[2],
                binning_y: n[3],
                roi,
            },
        )
}

pub fn point_field() -> impl Strategy<Value = PointField> {
    (text(), any::<u32>(), any::<u8>(), any::<u32>()).prop_map(|(name, offset, datatype, count)| {
        PointField {
            name,
            offset,
            datatype,
            count,
        }
    })
}

pub fn point_cloud() -> impl Strategy<Value = PointCloud2> {
    (
        header(),
        any::<[u32; 4]>(),
        proptest::collection::vec(point_field(), 0..5),
        any::<[bool; 2]>(),
        bytes(300),
    )
        .prop_map(|(header, n, fields, b, data)| PointCloud2 {
            header,
            height: n[0],
            width: n[1],
            fields,
            is_bigendian: b[0],
            point_step: n[2],
            row_step: n[3],
            data,
            is_dense: b[1],
        })
}

pub fn imu() -> impl Strategy<Value = Imu> {
    (
        header(),
        quaternion(),
        (floats::<9>(), floats::<9>(), floats::<9>()),
        vector3(),
        vector3(),
    )
        .prop_map(
            |(header, orientation, (c0, c1, c2), angular_velocity, linear_acceleration)| Imu {
                header,
                orientation,
                orientation_covariance: c0,
                angular_velocity,
                angular_velocity_covariance: c1,
                linear_acceleration,
                linear_acceleration_covariance: c2,
            },
        )
}

pub fn odometry() -> impl Strategy<Value = Odometry> {
    (header(), text(), pose_cov(), twist_cov()).prop_map(|(header, child_frame_id, pose, twist)| {
        Odometry {
            header,
            child_frame_id,
            pose,
            twist,
        }
    })
}

/// The Cyclone DDS CDR oracle (`tests/oracle/cdr_oracle.py`) as a long-running child process.
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// Starts the oracle; panics with the exact `pip install` line if Cyclone DDS is missing.
    pub fn start() -> Oracle {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/cdr_oracle.py");
        let check = Command::new("python3")
            .args(["-c", "import cyclonedds.idl"])
            .output()
            .expect("python3 must be installed for the CDR oracle tests");
        assert!(
            check.status.success(),
            "the CDR oracle needs the Python package `cyclonedds`: run `pip install cyclonedds` \
             ({})",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 oracle");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Oracle {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, request: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{request}").expect("write to oracle");
        self.stdin.flush().expect("flush oracle");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read oracle");
        assert!(!line.is_empty(), "CDR oracle exited early");
        let reply: serde_json::Value = serde_json::from_str(&line).expect("oracle JSON");
        if let Some(err) = reply.get("error") {
            panic!("oracle failed on {request}: {err}");
        }
        reply
    }

    /// Cyclone's serialization (header + CDR body) of `value` as ROS type `ros_type`.
    pub fn encode<T: serde::Serialize>(&mut self, ros_type: &str, value: &T) -> Vec<u8> {
        let value = serde_json::to_value(value).expect("to JSON");
        let reply = self.ask(serde_json::json!({"op": "encode", "type": ros_type, "value": value}));
        hex_decode(reply["hex"].as_str().expect("hex"))
    }

    /// Cyclone's decoding of `bytes` as ROS type `ros_type`, as JSON.
    pub fn decode(&mut self, ros_type: &str, bytes: &[u8]) -> serde_json::Value {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let reply = self.ask(serde_json::json!({"op": "decode", "type": ros_type, "hex": hex}));
        reply["value"].clone()
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

//! Property tests: every value survives encode → decode, and re-encoding gives the same bytes.

mod common;

use common::*;
use proptest::prelude::*;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::std_msgs::Header;
use rtfuse_msgs::{cdr, definition, RosMessage, ALL_TYPES};

fn round_trip<T: RosMessage + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = cdr::encode(value).expect("encode");
    assert_eq!(&bytes[..4], &cdr::CDR_LE_HEADER);
    let back: T = cdr::decode(&bytes).expect("decode");
    assert_eq!(&back, value);
    assert_eq!(cdr::encode(&back).expect("re-encode"), bytes);
}

proptest! {
    #[test]
    fn time_round_trips(v in time()) { round_trip(&v) }
    #[test]
    fn header_round_trips(v in header()) { round_trip(&v) }
    #[test]
    fn vector3_round_trips(v in vector3()) { round_trip(&v) }
    #[test]
    fn point_round_trips(v in point()) { round_trip(&v) }
    #[test]
    fn quaternion_round_trips(v in quaternion()) { round_trip(&v) }
    #[test]
    fn pose_round_trips(v in pose()) { round_trip(&v) }
    #[test]
    fn pose_cov_round_trips(v in pose_cov()) { round_trip(&v) }
    #[test]
    fn twist_round_trips(v in twist()) { round_trip(&v) }
    #[test]
    fn twist_cov_round_trips(v in twist_cov()) { round_trip(&v) }
    #[test]
    fn image_round_trips(v in image()) { round_trip(&v) }
    #[test]
    fn roi_round_trips(v in roi()) { round_trip(&v) }
    #[test]
    fn camera_info_round_trips(v in camera_info()) { round_trip(&v) }
    #[test]
    fn point_field_round_trips(v in point_field()) { round_trip(&v) }
    #[test]
    fn point_cloud_round_trips(v in point_cloud()) { round_trip(&v) }
    #[test]
    fn imu_round_trips(v in imu()) { round_trip(&v) }
    #[test]
    fn odometry_round_trips(v in odometry()) { round_trip(&v) }

    #[test]
    fn time_nanos_round_trip(ns in (i64::from(i32::MIN) * 1_000_000_000)..(i64::from(i32::MAX) * 1_000_000_000)) {
        prop_assert_eq!(Time::from_nanos(ns).as_nanos(), ns);
    }
}

#[test]
fn header_has_the_documented_layout() {
    // Written by hand from the CDR rules: int32 sec, uint32 nanosec, uint32 length (incl. NUL),
    // "map\0", no padding at the end.
    let h = Header {
        stamp: Time { sec: 1, nanosec: 2 },
        frame_id: "map".into(),
    };
    assert_eq!(
        cdr::encode(&h).unwrap(),
        [0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, b'm', b'a', b'p', 0]
    );
}

#[test]
fn big_endian_payloads_decode() {
    let be = [
        0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, b'm', b'a', b'p', 0,
    ];
    let h: Header = cdr::decode(&be).unwrap();
    assert_eq!(h.stamp, Time { sec: 1, nanosec: 2 });
    assert_eq!(h.frame_id, "map");
}

#[test]
fn every_type_has_names_and_a_complete_definition() {
    for ty in ALL_TYPES {
        let text = definition::full_text(ty).unwrap_or_else(|| panic!("no definition for {ty}"));
        assert!(!text.is_empty());
        // Every dependency mentioned is included exactly once.
        let (pkg, _) = ty.split_once('/').unwrap();
        for dep in definition::dependencies(definition::msg_text(ty).unwrap(), pkg) {
            let marker = format!("\n{}\nMSG: {dep}\n", definition::SEPARATOR);
            assert_eq!(text.matches(&marker).count(), 1, "{ty}: {dep}");
        }
    }
}

#[test]
fn odometry_definition_is_in_rosbag2_layout() {
    use rtfuse_msgs::nav_msgs::Odometry;
    assert_eq!(Odometry::ROS_TYPE, "nav_msgs/msg/Odometry");
    assert_eq!(Odometry::DDS_TYPE, "nav_msgs::msg::dds_::Odometry_");
    let full = Odometry::full_definition();
    assert!(full.starts_with(Odometry::MSG_DEFINITION));
    let sections: Vec<&str> = full
        .split(&format!("\n{}\n", definition::SEPARATOR))
        .skip(1)
        .map(|s| s.lines().next().unwrap())
        .collect();
    // Depth-first, dependencies of each type sorted by name, each once.
    assert_eq!(
        sections,
        [
            "MSG: geometry_msgs/PoseWithCovariance",
            "MSG: geometry_msgs/Pose",
            "MSG: geometry_msgs/Point",
            "MSG: geometry_msgs/Quaternion",
            "MSG: geometry_msgs/TwistWithCovariance",
            "MSG: geometry_msgs/Twist",
            "MSG: geometry_msgs/Vector3",
            "MSG: std_msgs/Header",
            "MSG: builtin_interfaces/Time",
        ]
    );
}

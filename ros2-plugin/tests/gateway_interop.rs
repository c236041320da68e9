//! The gateway against a real, independent ROS 2 peer: Eclipse Cyclone DDS (Python), speaking
//! standard ROS 2 names, types and CDR on its own DDS domain per test.

mod common;

use std::time::Duration;

use common::*;
use ros2_plugin::gateway::{BridgeConfig, Direction, Gateway, GatewayConfig, GatewayError};
use ros2_plugin::qos::{QosConfig, ReliabilityKind};
use ros2_plugin::PluginError;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::cdr;
use rtfuse_msgs::geometry_msgs::*;
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::{Image, Imu, PointCloud2, PointField};
use rtfuse_msgs::std_msgs::Header;
use shm_transport::{ChannelConfig, Publisher};

const LONG: Duration = Duration::from_secs(30);

fn bridge(
    direction: Direction,
    topic: &str,
    ty: &str,
    channel: &str,
    qos: QosConfig,
) -> BridgeConfig {
    BridgeConfig {
        direction,
        ros_topic: topic.into(),
        ros_type: ty.into(),
        channel: channel.into(),
        qos,
        chunk_size: 4 << 20,
        // 16 chunks: rings of 8, so a consumer that reads after a burst of 5 loses nothing.
        chunk_count: 16,
        geometry: None,
    }
}

#[test]
fn cyclone_imu_and_large_image_arrive_in_rtfuse_channels_intact() {
    let _w = watchdog(Duration::from_secs(120), "ingest");
    let domain = unique_domain();
    let (imu_ch, img_ch) = (unique_channel("imu"), unique_channel("img"));
    let reliable = QosConfig::ros_default();
    let gw = Gateway::start(&GatewayConfig {
        domain_id: Some(domain),
        bridges: vec![
            bridge(
                Direction::Ingest,
                "/imu",
                "sensor_msgs/msg/Imu",
                &imu_ch,
                reliable,
            ),
            bridge(
                Direction::Ingest,
                "/camera/image_raw",
                "sensor_msgs/msg/Image",
                &img_ch,
                reliable,
            ),
        ],
    })
    .expect("gateway starts");
    let mut imu_sub = open_channel(&imu_ch, LONG);
    let mut img_sub = open_channel(&img_ch, LONG);
    let mut imu_peer = Peer::cyclone(
        "pub",
        domain,
        "rt/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "5", "--wait-go"],
    );
    const SIZE: usize = 2_500_000;
    let size = SIZE.to_string();
    let mut img_peer = Peer::cyclone(
        "pub",
        domain,
        "rt/camera/image_raw",
        "sensor_msgs/msg/Image",
        &[
            "--count",
            "3",
            "--size",
            &size,
            "--period",
            "0.1",
            "--wait-go",
        ],
    );
    imu_peer.wait_matched(LONG);
    img_peer.wait_matched(LONG);
    go_when_matched(&gw, 0, &mut imu_peer, LONG);
    go_when_matched(&gw, 1, &mut img_peer, LONG);

    // IMU: every field as Cyclone sent it.
    let sent = imu_peer.records(5, LONG);
    assert_eq!(sent.len(), 5, "the Cyclone IMU publisher did not finish");
    for (i, rec) in sent.iter().enumerate() {
        let sample = imu_sub
            .receive_timeout(LONG)
            .expect("receive")
            .unwrap_or_else(|| panic!("IMU {i} never reached the channel"));
        let imu: Imu = cdr::decode(sample.payload()).expect("valid CDR in the channel");
        assert_eq!(serde_json::to_value(&imu).unwrap(), rec["value"], "IMU {i}");
        assert_eq!(
            u64::from(crc32fast::hash(sample.payload())),
            rec["crc32"].as_u64().unwrap(),
            "IMU {i}: the channel holds Cyclone's exact bytes"
        );
    }

    // 2.5 MB images: content regenerated and checksummed.
    let sent = img_peer.records(3, LONG);
    assert_eq!(sent.len(), 3, "the Cyclone image publisher did not finish");
    for (i, rec) in sent.iter().enumerate() {
        let sample = img_sub
            .receive_timeout(LONG)
            .expect("receive")
            .unwrap_or_else(|| panic!("image {i} never reached the channel"));
        let img: Image = cdr::decode(sample.payload()).expect("valid CDR in the channel");
        let (width, height, data) = peer_image_bytes(i, SIZE);
        assert_eq!(
            (img.width, img.height, img.step),
            (width, height, width * 2)
        );
        assert_eq!(img.encoding, "mono16");
        assert_eq!(img.header.frame_id, format!("cyclone_{i}"));
        assert_eq!(
            u64::from(crc32fast::hash(&img.data)),
            rec["crc32"].as_u64().unwrap()
        );
        assert!(img.data == data, "image {i} content differs");
    }
    let stats = gw.stop().expect("clean stop");
    for b in &stats.bridges {
        assert_eq!(b.malformed, 0, "{b:?}");
    }
    assert_eq!(stats.bridges[0].forwarded, 5);
    assert_eq!(stats.bridges[1].forwarded, 3);
}

fn odometry(i: u32) -> Odometry {
    Odometry {
        header: Header {
            stamp: Time {
                sec: 50 + i as i32,
                nanosec: 123 * i,
            },
            frame_id: "odom".into(),
        },
        child_frame_id: format!("base_link_{i}"),
        pose: PoseWithCovariance {
            pose: Pose {
                position: Point {
                    x: 1.0 + f64::from(i),
                    y: -2.5,
                    z: 0.125,
                },
                orientation: Quaternion {
                    x: 0.0,
                    y: 0.0,
                    z: 0.38268343,
                    w: 0.92387953,
                },
            },
            covariance: std::array::from_fn(|k| k as f64 * 0.001),
        },
        twist: TwistWithCovariance {
            twist: Twist {
                linear: Vector3 {
                    x: 0.5,
                    y: 0.0,
                    z: 0.0,
                },
                angular: Vector3 {
                    x: 0.0,
                    y: 0.0,
                    z: -0.1 * f64::from(i),
                },
            },
            covariance: std::array::from_fn(|k| 1.0 - k as f64 * 0.01),
        },
    }
}

fn cloud(i: u32) -> PointCloud2 {
    let fields = ["x", "y", "z", "intensity"]
        .iter()
        .enumerate()
        .map(|(k, name)| PointField {
            name: (*name).into(),
            offset: 4 * k as u32,
            datatype: PointField::FLOAT32,
            count: 1,
        })
        .collect();
    let points = 1000 + i;
    PointCloud2 {
        header: Header {
            stamp: Time { sec: 7, nanosec: i },
            frame_id: "lidar".into(),
        },
        height: 1,
        width: points,
        fields,
        is_bigendian: false,
        point_step: 16,
        row_step: 16 * points,
        data: (0..16 * points).map(|k| (k * 13 + i) as u8).collect(),
        is_dense: true,
    }
}

fn publish_payload(p: &mut Publisher, payload: &[u8]) {
    let mut s = p.loan().expect("free chunk");
    s.payload_mut()[..payload.len()].copy_from_slice(payload);
    s.set_len(payload.len());
    s.publish().map_err(|e| e.to_string()).expect("publish");
}

#[test]
fn egress_odometry_and_cloud_decode_field_by_field_in_cyclone() {
    let _w = watchdog(Duration::from_secs(120), "egress");
    let domain = unique_domain();
    let (odom_ch, cloud_ch) = (unique_channel("odom"), unique_channel("cloud"));
    let cfg = ChannelConfig {
        chunk_size: 1 << 20,
        chunk_count: 8,
        ..ChannelConfig::default()
    };
    let mut odom_pub = Publisher::create(&odom_ch, &cfg).expect("channel");
    let mut cloud_pub = Publisher::create(&cloud_ch, &cfg).expect("channel");
    let reliable = QosConfig::ros_default();
    let gw = Gateway::start(&GatewayConfig {
        domain_id: Some(domain),
        bridges: vec![
            bridge(
                Direction::Egress,
                "/odom",
                "nav_msgs/msg/Odometry",
                &odom_ch,
                reliable,
            ),
            bridge(
                Direction::Egress,
                "/points",
                "sensor_msgs/msg/PointCloud2",
                &cloud_ch,
                reliable,
            ),
        ],
    })
    .expect("gateway starts");
    let odom_peer = Peer::cyclone(
        "sub",
        domain,
        "rt/odom",
        "nav_msgs/msg/Odometry",
        &["--count", "4", "--timeout", "60"],
    );
    let cloud_peer = Peer::cyclone(
        "sub",
        domain,
        "rt/points",
        "sensor_msgs/msg/PointCloud2",
        &["--count", "3", "--timeout", "60"],
    );
    odom_peer.wait_matched(LONG);
    cloud_peer.wait_matched(LONG);
    // Our side matched too, and the bridges are reading the channels.
    wait_for(LONG, || {
        (gw.stats().bridges.iter().all(|b| b.matched >= 1)).then_some(())
    })
    .expect("the gateway's writers never matched the Cyclone readers");
    wait_for(LONG, || {
        (odom_pub.subscriber_count() >= 1 && cloud_pub.subscriber_count() >= 1).then_some(())
    })
    .expect("the bridges never opened their channels");

    for i in 0..4 {
        publish_payload(&mut odom_pub, &cdr::encode(&odometry(i)).unwrap());
    }
    for i in 0..3 {
        publish_payload(&mut cloud_pub, &cdr::encode(&cloud(i)).unwrap());
    }
    let got = odom_peer.records(4, LONG);
    assert_eq!(
        got.len(),
        4,
        "Cyclone received {} of 4 odometry messages",
        got.len()
    );
    for (i, rec) in got.iter().enumerate() {
        assert_eq!(
            rec["value"],
            serde_json::to_value(odometry(i as u32)).unwrap(),
            "odometry {i}"
        );
    }
    let got = cloud_peer.records(3, LONG);
    assert_eq!(got.len(), 3, "Cyclone received {} of 3 clouds", got.len());
    for (i, rec) in got.iter().enumerate() {
        let c = cloud(i as u32);
        assert_eq!(rec["value"], serde_json::to_value(&c).unwrap(), "cloud {i}");
        assert_eq!(
            rec["crc32"].as_u64().unwrap(),
            u64::from(crc32fast::hash(&c.data))
        );
    }
    let stats = gw.stop().expect("clean stop");
    assert_eq!(stats.bridges[0].forwarded, 4);
    assert_eq!(stats.bridges[1].forwarded, 3);
}

#[test]
fn qos_mismatch_is_reported_clearly() {
    let _w = watchdog(Duration::from_secs(90), "qos");
    let domain = unique_domain();
    let ch = unique_channel("qos");
    let _p = Publisher::create(&ch, &ChannelConfig::default()).expect("channel");
    let best_effort = QosConfig {
        reliability: ReliabilityKind::BestEffort,
        ..QosConfig::sensor_data()
    };
    let gw = Gateway::start(&GatewayConfig {
        domain_id: Some(domain),
        bridges: vec![bridge(
            Direction::Egress,
            "/odom",
            "nav_msgs/msg/Odometry",
            &ch,
            best_effort,
        )],
    })
    .expect("gateway starts");
    // A reliable reader cannot match a best-effort writer.
    let _peer = Peer::cyclone(
        "sub",
        domain,
        "rt/odom",
        "nav_msgs/msg/Odometry",
        &["--qos", "reliable", "--timeout", "20"],
    );
    let msg = wait_for(LONG, || {
        gw.stats().bridges[0].qos_mismatches.first().cloned()
    })
    .expect("no QoS mismatch was reported");
    eprintln!("reported: {msg}");
    assert!(msg.contains("QoS mismatch on rt/odom"), "{msg}");
    assert!(msg.contains("Reliability"), "{msg}");
    assert_eq!(gw.stats().bridges[0].matched, 0);
    gw.stop().expect("clean stop");
}

#[test]
fn bad_input_is_counted_and_the_gateway_keeps_going() {
    let _w = watchdog(Duration::from_secs(120), "bad input");
    let domain = unique_domain();
    let (in_ch, out_ch) = (unique_channel("in"), unique_channel("out"));
    let cfg = ChannelConfig {
        chunk_size: 1 << 16,
        chunk_count: 8,
        ..ChannelConfig::default()
    };
    let mut out_pub = Publisher::create(&out_ch, &cfg).expect("channel");
    let reliable = QosConfig::ros_default();
    let gw = Gateway::start(&GatewayConfig {
        domain_id: Some(domain),
        bridges: vec![
            bridge(
                Direction::Ingest,
                "/imu",
                "sensor_msgs/msg/Imu",
                &in_ch,
                reliable,
            ),
            bridge(
                Direction::Egress,
                "/odom",
                "nav_msgs/msg/Odometry",
                &out_ch,
                reliable,
            ),
        ],
    })
    .expect("gateway starts");
    let mut in_sub = open_channel(&in_ch, LONG);

    // Ingest: a hostile peer publishes another layout under the Imu type name, then vanishes.
    let mut bogus = Peer::cyclone(
        "bogus",
        domain,
        "rt/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "3", "--wait-go"],
    );
    bogus.wait_matched(LONG);
    go_when_matched(&gw, 0, &mut bogus, LONG);
    assert_eq!(bogus.records(3, LONG).len(), 3);
    wait_for(LONG, || {
        (gw.stats().bridges[0].malformed >= 3).then_some(())
    })
    .expect("malformed samples were not counted");
    bogus.kill();
    assert!(
        in_sub.receive().expect("receive").is_none(),
        "malformed data reached the channel"
    );
    // A well-behaved peer afterwards is still served.
    let mut good = Peer::cyclone(
        "pub",
        domain,
        "rt/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "2", "--wait-go"],
    );
    good.wait_matched(LONG);
    go_when_matched(&gw, 0, &mut good, LONG);
    assert_eq!(good.records(2, LONG).len(), 2);
    for _ in 0..2 {
        let s = in_sub
            .receive_timeout(LONG)
            .expect("receive")
            .expect("good IMU after bad");
        cdr::decode::<Imu>(s.payload()).expect("valid");
    }

    // Egress: truncated, huge declared length, wrong encapsulation; then a good message.
    let odom_peer = Peer::cyclone(
        "sub",
        domain,
        "rt/odom",
        "nav_msgs/msg/Odometry",
        &["--count", "1", "--timeout", "60"],
    );
    odom_peer.wait_matched(LONG);
    wait_for(LONG, || {
        (out_pub.subscriber_count() >= 1 && gw.stats().bridges[1].matched >= 1).then_some(())
    })
    .expect("egress bridge not ready");
    let good_bytes = cdr::encode(&odometry(9)).unwrap();
    let mut huge = good_bytes.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // frame_id length
    let mut foreign = good_bytes.clone();
    foreign[1] = 0x07; // XCDR2, which we do not carry
    for bad in [
        &good_bytes[..good_bytes.len() / 2],
        &huge[..],
        &foreign[..],
        &[][..],
    ] {
        publish_payload(&mut out_pub, bad);
    }
    publish_payload(&mut out_pub, &good_bytes);
    let got = odom_peer.records(1, LONG);
    assert_eq!(
        got.len(),
        1,
        "the good message after the bad ones did not arrive"
    );
    assert_eq!(got[0]["value"], serde_json::to_value(odometry(9)).unwrap());
    // The channel's publisher vanishes mid-stream; a new one takes over under the same name.
    drop(out_pub);
    wait_for(LONG, || {
        (gw.stats().bridges[1].peer_lost >= 1).then_some(())
    })
    .expect("the vanished channel publisher was not noticed");
    let mut again = Publisher::create(&out_ch, &cfg).expect("re-create channel");
    wait_for(LONG, || (again.subscriber_count() >= 1).then_some(()))
        .expect("the bridge did not re-open the channel");
    publish_payload(&mut again, &good_bytes);
    wait_for(LONG, || {
        (gw.stats().bridges[1].forwarded >= 2).then_some(())
    })
    .expect("nothing forwarded after the publisher came back");

    let stats = gw.stop().expect("clean stop");
    eprintln!("{stats:#?}");
    assert_eq!(stats.bridges[1].malformed, 4);
    assert!(stats.bridges[1].last_error.is_some());
    // The publisher came back: the bridge no longer says it is waiting for one.
    assert_eq!(stats.bridges[1].waiting, None);
}

#[test]
fn unknown_types_and_bad_names_are_rejected_at_start() {
    let mk = |topic: &str, ty: &str, ch: &str| GatewayConfig {
        domain_id: Some(unique_domain()),
        bridges: vec![bridge(
            Direction::Ingest,
            topic,
            ty,
            ch,
            QosConfig::default(),
        )],
    };
    let err = Gateway::start(&mk("/chatter", "std_msgs/msg/String", "c1"))
        .err()
        .expect("rejected");
    assert!(
        matches!(
            &err,
            GatewayError::Bridge {
                source: PluginError::UnknownType(..),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("unknown ROS message type \"std_msgs/msg/String\""),
        "{err}"
    );
    assert!(Gateway::start(&mk("/bad topic", "sensor_msgs/msg/Imu", "c2")).is_err());
    assert!(Gateway::start(&mk("/imu", "Imu", "c3")).is_err());
    assert!(Gateway::start(&mk("/imu", "sensor_msgs/msg/Imu", "bad/channel")).is_err());
    let mut two = mk("/imu", "sensor_msgs/msg/Imu", "same");
    two.bridges.push(bridge(
        Direction::Ingest,
        "/imu2",
        "sensor_msgs/msg/Imu",
        "same",
        QosConfig::default(),
    ));
    assert!(matches!(
        Gateway::start(&two),
        Err(GatewayError::Duplicate(0, 1, _))
    ));
}

#[test]
fn config_deserializes_from_toml_like_json() {
    let cfg: GatewayConfig = serde_json::from_str(
        r#"{"domain_id": 7, "bridges": [{"direction": "ingest", "ros_topic": "/imu",
            "ros_type": "sensor_msgs/msg/Imu", "channel": "imu",
            "qos": {"reliability": "reliable", "depth": 3}}]}"#,
    )
    .unwrap();
    assert_eq!(cfg.domain_id, Some(7));
    let b = &cfg.bridges[0];
    assert_eq!(b.qos.reliability, ReliabilityKind::Reliable);
    assert_eq!(b.qos.depth, 3);
    assert_eq!(b.chunk_size, 4 << 20);
    assert!(
        serde_json::from_str::<GatewayConfig>(r#"{"bridges": [{"direction": "sideways"}]}"#)
            .is_err()
    );
}

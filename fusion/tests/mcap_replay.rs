//! MCAP replay against files written by an independent writer (PyPI `mcap` +
//! `mcap-ros2-support`, tests/oracles/mcap_write.py), and against truncated and corrupted
//! variants of them.

mod mcap_common;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use fusion::mcap_msgs::RosMsg;
use fusion::mcap_replay::{replay_bytes, CollectSink, Pace, ReplayError, ReplayReport};
use mcap_common::python_file;
use serde_json::Value;

static NO_STOP: AtomicBool = AtomicBool::new(false);

fn replay(buf: &[u8]) -> (ReplayReport, CollectSink) {
    let mut sink = CollectSink::default();
    let report =
        replay_bytes(buf, Pace::AsFastAsPossible, &mut sink, &NO_STOP).expect("replay starts");
    (report, sink)
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

/// Checks one delivered message field by field against the writer's manifest entry.
fn check_against(entry: &Value, msg: &RosMsg) {
    let e = &entry["expect"];
    assert_eq!(
        msg.stamp_ns(),
        entry["stamp_ns"].as_i64().unwrap(),
        "{entry}"
    );
    match msg {
        RosMsg::Image(m) => {
            assert_eq!(m.width as u64, e["width"].as_u64().unwrap());
            assert_eq!(m.height as u64, e["height"].as_u64().unwrap());
            assert_eq!(m.step as u64, e["step"].as_u64().unwrap());
            assert_eq!(m.encoding, e["encoding"].as_str().unwrap());
            assert_eq!(m.header.frame_id, "camera");
            assert_eq!(m.data.len() as u64, e["data_len"].as_u64().unwrap());
            let sum: u64 = m.data.iter().map(|b| u64::from(*b)).sum();
            assert_eq!(sum, e["data_sum"].as_u64().unwrap());
        }
        RosMsg::PointCloud2(m) => {
            assert_eq!(m.width as u64, e["width"].as_u64().unwrap());
            let names: Vec<_> = m.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["x", "y", "z", "intensity"]);
            for (i, p) in e["points"].as_array().unwrap().iter().enumerate() {
                let got: Vec<f64> = (0..4)
                    .map(|k| {
                        let at = i * m.point_step as usize + 4 * k;
                        f64::from(f32::from_le_bytes(m.data[at..at + 4].try_into().unwrap()))
                    })
                    .collect();
                assert!(close(&got, &f64s(p)), "point {i}: {got:?} vs {p}");
            }
        }
        RosMsg::Imu(m) => {
            let g = &m.angular_velocity;
            assert!(close(&[g.x, g.y, g.z], &f64s(&e["gyro"])));
            let a = &m.linear_acceleration;
            assert!(close(&[a.x, a.y, a.z], &f64s(&e["accel"])));
            let q = &m.orientation;
            assert!(close(&[q.x, q.y, q.z, q.w], &f64s(&e["orientation"])));
            assert_eq!(m.orientation_covariance[3], 0.03);
        }
        RosMsg::CameraInfo(m) => {
            assert!(close(&m.k, &f64s(&e["k"])));
            assert!(close(&m.d, &f64s(&e["d"])));
            assert_eq!((m.width, m.height), (640, 480));
            assert_eq!(m.distortion_model, "plumb_bob");
        }
        RosMsg::Odometry(m) => {
            let p = &m.pose.pose.position;
            assert!(close(&[p.x, p.y, p.z], &f64s(&e["position"])));
            assert_eq!(m.child_frame_id, e["child_frame_id"].as_str().unwrap());
            assert!((m.twist.twist.angular.z - e["yaw_rate"].as_f64().unwrap()).abs() < 1e-12);
            assert_eq!(m.pose.covariance[35], 0.035);
        }
    }
}

/// Every delivered message matches its manifest entry; returns how many were checked.
fn check_all(manifest: &[Value], sink: &CollectSink) -> usize {
    for (topic, log_time, msg) in &sink.messages {
        let entry = manifest
            .iter()
            .find(|m| m["topic"] == topic.as_str() && m["log_time"].as_u64() == Some(*log_time))
            .unwrap_or_else(|| panic!("delivered {topic} @ {log_time} is not in the manifest"));
        assert!(
            entry["problem"].is_null() || entry["problem"] == "non_monotonic",
            "a message with a problem was delivered: {entry}"
        );
        check_against(entry, msg);
    }
    sink.messages.len()
}

fn deliverable(manifest: &[Value]) -> usize {
    manifest
        .iter()
        .filter(|m| m["problem"].is_null() || m["problem"] == "non_monotonic")
        .count()
}

#[test]
fn clean_file_replays_every_message_field_by_field() {
    for compression in ["zstd", "lz4", "none"] {
        let (buf, manifest) = python_file(&["--compression", compression]);
        let (report, sink) = replay(&buf);
        assert!(
            report.problems.is_empty(),
            "{compression}: {:?}",
            report.problems
        );
        assert_eq!(report.stats.delivered as usize, manifest.len());
        assert_eq!(check_all(&manifest, &sink), manifest.len());
        let times: Vec<u64> = sink.messages.iter().map(|m| m.1).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "delivered in log-time order"
        );
    }
}

#[test]
fn bad_messages_are_counted_reported_and_skipped() {
    let (buf, manifest) = python_file(&["--bad", "--chunk-size", "2000"]);
    let (report, sink) = replay(&buf);
    let s = report.stats;
    assert_eq!(s.unknown_type, 3, "{report:?}");
    assert_eq!(s.bad_layout, 2);
    assert_eq!(s.non_monotonic, 1);
    assert_eq!(s.cdr_errors + s.corrupt + s.sink_errors, 0);
    assert!(!s.truncated);
    assert_eq!(s.messages as usize, manifest.len());
    assert_eq!(s.delivered as usize, deliverable(&manifest));
    assert_eq!(check_all(&manifest, &sink), deliverable(&manifest));
    let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(
        has("topic /chatter: unsupported type") && has("std_msgs/msg/String"),
        "{text:#?}"
    );
    assert!(
        has("cloud data has 640 bytes, row_step 800 × height 1 = 800"),
        "{text:#?}"
    );
    assert!(
        has("field \"intensity\": ends at byte 18, past point_step 16"),
        "{text:#?}"
    );
    assert!(
        has("topic /imu: header stamp") && has("17500000 ns before the previous one"),
        "{text:#?}"
    );
}

fn chunk_offsets(buf: &[u8]) -> Vec<(u64, u64, u64, u64)> {
    let summary = mcap::Summary::read(buf).unwrap().expect("summary");
    let mut v: Vec<_> = summary
        .chunk_indexes
        .iter()
        .map(|c| {
            (
                c.chunk_start_offset,
                c.chunk_length,
                c.message_start_time,
                c.message_end_time,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn truncated_files_deliver_a_clean_prefix() {
    let (buf, manifest) = python_file(&["--chunk-size", "3000"]);
    let (_, full) = replay(&buf);
    let chunks = chunk_offsets(&buf);
    let data_end = chunks.last().map(|c| c.0 + c.1).unwrap() as usize;
    let mut cuts: Vec<usize> = (1..40).map(|k| buf.len() * k / 40).collect();
    cuts.extend([
        8,
        9,
        20,
        data_end - 1,
        data_end,
        data_end + 5,
        buf.len() - 1,
    ]);
    for cut in cuts {
        let (report, sink) = replay(&buf[..cut]);
        let n = sink.messages.len();
        assert_eq!(
            sink.messages[..],
            full.messages[..n],
            "cut at {cut}: not a prefix"
        );
        check_all(&manifest, &sink);
        if cut < data_end {
            assert!(report.stats.truncated, "cut at {cut}: {report:?}");
            assert!(n < manifest.len());
            assert!(report.problems[0]
                .to_string()
                .contains("truncated MCAP at byte"));
            // Nothing complete is lost: every chunk that ends before the cut is delivered.
            let complete = chunks
                .iter()
                .filter(|c| (c.0 + c.1) as usize <= cut)
                .count() as u64;
            assert_eq!(report.stats.chunks, complete, "cut at {cut}");
        } else {
            assert_eq!(n, manifest.len(), "cut at {cut} is past the data");
        }
    }
}

#[test]
fn a_corrupt_chunk_loses_only_its_own_messages() {
    let (buf, manifest) = python_file(&["--chunk-size", "3000"]);
    let chunks = chunk_offsets(&buf);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    for (k, c) in chunks.iter().enumerate() {
        let mut bad = buf.clone();
        let mid = (c.0 + c.1 / 2) as usize;
        bad[mid] ^= 0x5A;
        let (report, sink) = replay(&bad);
        assert_eq!(report.stats.corrupt, 1, "chunk {k}: {report:?}");
        assert!(
            report.problems[0].to_string().contains("chunk skipped"),
            "{:?}",
            report.problems
        );
        // Exactly the messages whose log times lie in the damaged chunk are missing.
        check_all(&manifest, &sink);
        let in_chunk = |t: u64| (c.2..=c.3).contains(&t);
        let want = manifest
            .iter()
            .filter(|m| !in_chunk(m["log_time"].as_u64().unwrap()))
            .count();
        assert_eq!(sink.messages.len(), want, "chunk {k}");
    }
}

#[test]
fn a_damaged_record_length_is_recovered_through_the_summary() {
    let (buf, manifest) = python_file(&["--chunk-size", "3000"]);
    let chunks = chunk_offsets(&buf);
    let victim = chunks[2];
    let mut bad = buf.clone();
    let at = victim.0 as usize + 1;
    bad[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let (report, sink) = replay(&bad);
    assert!(report.stats.truncated, "{report:?}");
    assert_eq!(report.stats.recovered_chunks as usize, chunks.len() - 3);
    check_all(&manifest, &sink);
    let lost = manifest
        .iter()
        .filter(|m| (victim.2..=victim.3).contains(&m["log_time"].as_u64().unwrap()))
        .count();
    assert_eq!(sink.messages.len(), manifest.len() - lost);
}

#[test]
fn random_damage_never_panics() {
    let (buf, manifest) = python_file(&["--bad", "--chunk-size", "1500", "--compression", "none"]);
    let mut lcg = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        lcg = lcg
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (lcg >> 33) as usize
    };
    for _ in 0..300 {
        let mut bad = buf.clone();
        for _ in 0..1 + next() % 8 {
            let at = 8 + next() % (bad.len() - 8);
            bad[at] = next() as u8;
        }
        let (report, sink) = replay(&bad);
        assert!(report.stats.delivered as usize <= manifest.len());
        assert_eq!(report.stats.delivered as usize, sink.messages.len());
    }
}

#[test]
fn not_mcap_and_bad_speed_are_errors() {
    let mut sink = CollectSink::default();
    for bytes in [&b""[..], b"PK\x03\x04 not an mcap", b"\x89MCAP0"] {
        let err = replay_bytes(bytes, Pace::AsFastAsPossible, &mut sink, &NO_STOP).unwrap_err();
        assert!(matches!(err, ReplayError::NotMcap));
        assert!(err.to_string().contains("not an MCAP file"));
    }
    let err = replay_bytes(
        mcap::MAGIC,
        Pace::Recorded { speed: 0.0 },
        &mut sink,
        &NO_STOP,
    )
    .unwrap_err();
    assert!(err.to_string().contains("speed 0"));
    // Only the magic: a truncated file, nothing delivered, no panic.
    let report = replay_bytes(mcap::MAGIC, Pace::AsFastAsPossible, &mut sink, &NO_STOP).unwrap();
    assert!(report.stats.truncated);
}

#[test]
fn recorded_pace_follows_the_log_times() {
    let (buf, manifest) = python_file(&[]);
    let span_ns = manifest
        .iter()
        .map(|m| m["log_time"].as_u64().unwrap())
        .max()
        .unwrap()
        - manifest
            .iter()
            .map(|m| m["log_time"].as_u64().unwrap())
            .min()
            .unwrap();
    let mut sink = CollectSink::default();
    let t = Instant::now();
    let report = replay_bytes(&buf, Pace::Recorded { speed: 2.0 }, &mut sink, &NO_STOP).unwrap();
    let took = t.elapsed();
    assert_eq!(report.stats.delivered as usize, manifest.len());
    // At twice the speed the replay cannot finish before half the recorded span.
    assert!(
        took.as_nanos() as u64 >= span_ns / 2,
        "{took:?} for {span_ns} ns at 2x"
    );
    // A raised stop flag ends a paced replay early.
    let stop = AtomicBool::new(true);
    let report = replay_bytes(&buf, Pace::Recorded { speed: 1.0 }, &mut sink, &stop).unwrap();
    assert!(report.stopped);
}

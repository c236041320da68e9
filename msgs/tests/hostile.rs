//! Hostile input: every malformed payload gives an error, never a panic, and never an
//! allocation the input cannot justify.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rtfuse_msgs::cdr::{self, DecodeError};
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::{CameraInfo, Image, Imu, PointCloud2};
use rtfuse_msgs::std_msgs::Header;

fn sample_cloud() -> PointCloud2 {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut cloud = point_cloud().new_tree(&mut runner).unwrap().current();
    cloud.fields.push(Default::default());
    cloud.data = vec![7; 64];
    cloud
}

#[test]
fn short_or_foreign_headers_are_rejected() {
    assert_eq!(cdr::decode::<Header>(&[]), Err(DecodeError::NoHeader(0)));
    assert_eq!(
        cdr::decode::<Header>(&[0, 1, 0]),
        Err(DecodeError::NoHeader(3))
    );
    assert_eq!(
        cdr::decode::<Header>(&[0, 2, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::UnsupportedEncapsulation(2))
    );
    assert_eq!(
        cdr::decode::<Header>(&[0, 7, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::UnsupportedEncapsulation(7))
    );
}

fn assert_every_cut_fails<T: rtfuse_msgs::RosMessage + std::fmt::Debug>(value: &T) {
    let p = cdr::encode(value).unwrap();
    for cut in 0..p.len() {
        let r = cdr::decode::<T>(&p[..cut]);
        assert!(
            r.is_err(),
            "{}: cut at {cut}/{} decoded: {r:?}",
            T::ROS_TYPE,
            p.len()
        );
    }
    assert!(cdr::decode::<T>(&p).is_ok());
}

#[test]
fn every_truncation_of_every_type_is_an_error() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..4 {
        assert_every_cut_fails(&odometry().new_tree(&mut runner).unwrap().current());
        assert_every_cut_fails(&imu().new_tree(&mut runner).unwrap().current());
        assert_every_cut_fails(&camera_info().new_tree(&mut runner).unwrap().current());
        assert_every_cut_fails(&image().new_tree(&mut runner).unwrap().current());
        assert_every_cut_fails(&point_cloud().new_tree(&mut runner).unwrap().current());
    }
    assert_every_cut_fails(&sample_cloud());
}

#[test]
fn huge_declared_lengths_fail_without_allocating() {
    // An Image whose data claims 4 GiB - 1 bytes but carries 3.
    let mut img = cdr::encode(&Image {
        data: vec![1, 2, 3],
        ..Image::default()
    })
    .unwrap();
    let len_at = img.len() - 3 - 4;
    assert_eq!(&img[len_at..len_at + 4], &3u32.to_le_bytes());
    img[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(cdr::decode::<Image>(&img), Err(DecodeError::Truncated));

    // A PointCloud2 whose fields sequence claims u32::MAX elements: fails at the first missing
    // element, it never reserves u32::MAX * size_of::<PointField>() (which would abort).
    let mut cloud = cdr::encode(&PointCloud2::default()).unwrap();
    // header: 4 + 4 + 4 ("" is length 1 + NUL) -> fields length after height, width at 16..
    let fields_at = 4 + 4 + 4 + 4 + 1 + 3 + 4 + 4;
    assert_eq!(&cloud[fields_at..fields_at + 4], &0u32.to_le_bytes());
    cloud[fields_at..fields_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(cdr::decode::<PointCloud2>(&cloud).is_err());

    // A string claiming 2 GiB.
    let mut h = cdr::encode(&Header::default()).unwrap();
    h[12..16].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    assert_eq!(cdr::decode::<Header>(&h), Err(DecodeError::Truncated));

    // CameraInfo.d claiming 1e9 float64s with a few bytes behind it.
    let mut ci = cdr::encode(&CameraInfo::default()).unwrap();
    let d_at = 4 + 16 + 4 + 4 + 8; // encapsulation, header, height, width, "" + pad
    assert_eq!(&ci[d_at..d_at + 4], &0u32.to_le_bytes());
    ci[d_at..d_at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
    assert!(cdr::decode::<CameraInfo>(&ci).is_err());
}

#[test]
fn invalid_values_are_malformed_not_panics() {
    // A string without its NUL terminator: cdr-encoding accepts it for interoperability with
    // IntercomDDS (the last byte is taken as the terminator). Documented leniency, no panic.
    let bad_nul = [
        0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, b'a', b'b', b'c',
    ];
    assert_eq!(cdr::decode::<Header>(&bad_nul).unwrap().frame_id, "ab");
    // Invalid UTF-8.
    let bad_utf8 = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xff, 0];
    assert!(matches!(
        cdr::decode::<Header>(&bad_utf8),
        Err(DecodeError::Malformed(_))
    ));
    // A boolean that is 2.
    let mut roi = cdr::encode(&rtfuse_msgs::sensor_msgs::RegionOfInterest::default()).unwrap();
    *roi.last_mut().unwrap() = 2;
    assert!(matches!(
        cdr::decode::<rtfuse_msgs::sensor_msgs::RegionOfInterest>(&roi),
        Err(DecodeError::Malformed(_))
    ));
    // Garbage after the message.
    let mut h = cdr::encode(&Header::default()).unwrap();
    h.extend_from_slice(&[0; 8]);
    assert_eq!(
        cdr::decode::<Header>(&h),
        Err(DecodeError::TrailingBytes(8))
    );
}

#[test]
fn trailing_alignment_padding_is_accepted() {
    let mut h = cdr::encode(&Header::default()).unwrap();
    h.extend_from_slice(&[0; 3]);
    assert_eq!(cdr::decode::<Header>(&h), Ok(Header::default()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes after a valid header never panic any decoder.
    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut p = cdr::CDR_LE_HEADER.to_vec();
        p.extend_from_slice(&body);
        let _ = cdr::decode::<Odometry>(&p);
        let _ = cdr::decode::<Imu>(&p);
        let _ = cdr::decode::<CameraInfo>(&p);
        let _ = cdr::decode::<Image>(&p);
        let _ = cdr::decode::<PointCloud2>(&p);
        let _ = cdr::decode::<Header>(&p);
    }

    /// Flipping any byte of a valid cloud never panics, and what decodes re-encodes.
    #[test]
    fn corrupted_clouds_never_panic(at in 4usize..200, value in any::<u8>()) {
        let mut p = cdr::encode(&sample_cloud()).unwrap();
        let at = at % p.len();
        p[at] = value;
        if let Ok(cloud) = cdr::decode::<PointCloud2>(&p) {
            prop_assert!(cdr::encode(&cloud).is_ok());
        }
    }
}

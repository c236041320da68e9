//! `sensor_msgs` messages.

use serde::{Deserialize, Serialize};

use crate::geometry_msgs::{Quaternion, Vector3};
use crate::std_msgs::Header;

/// `sensor_msgs/msg/Image`: an uncompressed image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Acquisition time and camera optical frame.
    pub header: Header,
    /// Number of rows.
    pub height: u32,
    /// Number of columns.
    pub width: u32,
    /// Pixel encoding (`"rgb8"`, `"mono16"`, `"32FC1"`, ...).
    pub encoding: String,
    /// 1 if multi-byte pixel values are big-endian.
    pub is_bigendian: u8,
    /// Row length in bytes.
    pub step: u32,
    /// Pixel bytes, `step * height` of them (a CDR byte string).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A borrowed view of a serialized [`Image`]: the same wire format, decoded with
/// [`cdr::decode_borrowed`](crate::cdr::decode_borrowed) without copying the pixel data (it
/// stays in the input buffer, e.g. a shared-memory chunk).
///
/// # Examples
/// ```
/// use rtfuse_msgs::{cdr, sensor_msgs::{Image, ImageView}};
/// let img = Image { data: vec![1, 2, 3], ..Image::default() };
/// let bytes = cdr::encode(&img).unwrap();
/// let view: ImageView<'_> = cdr::decode_borrowed(&bytes).unwrap();
/// assert_eq!(view.data, &[1, 2, 3]);
/// assert_eq!(view.to_owned(), img);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageView<'a> {
    /// Acquisition time and camera optical frame.
    pub header: Header,
    /// Number of rows.
    pub height: u32,
    /// Number of columns.
    pub width: u32,
    /// Pixel encoding.
    pub encoding: String,
    /// 1 if multi-byte pixel values are big-endian.
    pub is_bigendian: u8,
    /// Row length in bytes.
    pub step: u32,
    /// Pixel bytes, borrowed from the serialized message.
    #[serde(borrow, with = "serde_bytes")]
    pub data: &'a [u8],
}

impl ImageView<'_> {
    /// Copies into an owned [`Image`].
    pub fn to_owned(&self) -> Image {
        Image {
            header: self.header.clone(),
            height: self.height,
            width: self.width,
            encoding: self.encoding.clone(),
            is_bigendian: self.is_bigendian,
            step: self.step,
            data: self.data.to_vec(),
        }
    }
}

/// `sensor_msgs/msg/RegionOfInterest`: a rectangle of an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegionOfInterest {
    /// Leftmost pixel of the region.
    pub x_offset: u32,
    /// Topmost pixel of the region.
    pub y_offset: u32,
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
    /// Whether a rectified image of the region should be computed.
    pub do_rectify: bool,
}

/// `sensor_msgs/msg/CameraInfo`: camera calibration (intrinsics, distortion, projection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    /// Acquisition time and camera optical frame.
    pub header: Header,
    /// Image height the calibration applies to.
    pub height: u32,
    /// Image width the calibration applies to.
    pub width: u32,
    /// Distortion model name (`"plumb_bob"`, `"rational_polynomial"`, ...).
    pub distortion_model: String,
    /// Distortion parameters.
    pub d: Vec<f64>,
    /// Intrinsic matrix K, 3×3 row-major.
    #[serde(with = "crate::fixed")]
    pub k: [f64; 9],
    /// Rectification matrix R, 3×3 row-major.
    #[serde(with = "crate::fixed")]
    pub r: [f64; 9],
    /// Projection matrix P, 3×4 row-major.
    #[serde(with = "crate::fixed")]
    pub p: [f64; 12],
    /// Horizontal binning.
    pub binning_x: u32,
    /// Vertical binning.
    pub binning_y: u32,
    /// Region of interest.
    pub roi: RegionOfInterest,
}

impl Default for CameraInfo {
    fn default() -> Self {
        CameraInfo {
            header: Header::default(),
            height: 0,
            width: 0,
            distortion_model: String::new(),
            d: Vec::new(),
            k: [0.0; 9],
            r: [0.0; 9],
            p: [0.0; 12],
            binning_x: 0,
            binning_y: 0,
            roi: RegionOfInterest::default(),
        }
    }
}

/// `sensor_msgs/msg/PointField`: one field of a point in a [`PointCloud2`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PointField {
    /// Field name (`"x"`, `"intensity"`, ...).
    pub name: String,
    /// Byte offset of the field in a point.
    pub offset: u32,
    /// One of the datatype constants ([`PointField::FLOAT32`], ...).
    pub datatype: u8,
    /// Number of elements.
    pub count: u32,
}

impl PointField {
    /// `int8`.
    pub const INT8: u8 = 1;
    /// `uint8`.
    pub const UINT8: u8 = 2;
    /// `int16`.
    pub const INT16: u8 = 3;
    /// `uint16`.
    pub const UINT16: u8 = 4;
    /// `int32`.
    pub const INT32: u8 = 5;
    /// `uint32`.
    pub const UINT32: u8 = 6;
    /// `float32`.
    pub const FLOAT32: u8 = 7;
    /// `float64`.
    pub const FLOAT64: u8 = 8;
}

/// `sensor_msgs/msg/PointCloud2`: a point cloud with an arbitrary point layout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointCloud2 {
    /// Acquisition time and sensor frame.
    pub header: Header,
    /// Rows (1 for an unordered cloud).
    pub height: u32,
    /// Points per row.
    pub width: u32,
    /// Layout of one point.
    pub fields: Vec<PointField>,
    /// Whether multi-byte values are big-endian.
    pub is_bigendian: bool,
    /// Bytes per point.
    pub point_step: u32,
    /// Bytes per row.
    pub row_step: u32,
    /// Point bytes, `row_step * height` of them (a CDR byte string).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// True if there are no invalid points.
    pub is_dense: bool,
}

/// `sensor_msgs/msg/Imu`: orientation, angular velocity and linear acceleration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imu {
    /// Acquisition time and IMU frame.
    pub header: Header,
    /// Orientation estimate.
    pub orientation: Quaternion,
    /// Row-major 3×3 covariance; element 0 = -1 means "no orientation estimate".
    #[serde(with = "crate::fixed")]
    pub orientation_covariance: [f64; 9],
    /// Angular velocity in rad/s.
    pub angular_velocity: Vector3,
    /// Row-major 3×3 covariance.
    #[serde(with = "crate::fixed")]
    pub angular_velocity_covariance: [f64; 9],
    /// Linear acceleration in m/s².
    pub linear_acceleration: Vector3,
    /// Row-major 3×3 covariance.
    #[serde(with = "crate::fixed")]
    pub linear_acceleration_covariance: [f64; 9],
}

impl Default for Imu {
    fn default() -> Self {
        Imu {
            header: Header::default(),
            orientation: Quaternion::default(),
            orientation_covariance: [0.0; 9],
            angular_velocity: Vector3::default(),
            angular_velocity_covariance: [0.0; 9],
            linear_acceleration: Vector3::default(),
            linear_acceleration_covariance: [0.0; 9],
        }
    }
}

crate::ros_message!(Image, "sensor_msgs", "Image");
crate::ros_message!(RegionOfInterest, "sensor_msgs", "RegionOfInterest");
crate::ros_message!(CameraInfo, "sensor_msgs", "CameraInfo");
crate::ros_message!(PointField, "sensor_msgs", "PointField");
crate::ros_message!(PointCloud2, "sensor_msgs", "PointCloud2");
crate::ros_message!(Imu, "sensor_msgs", "Imu");

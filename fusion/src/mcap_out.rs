//! A non-real-time MCAP writer for fused results, in the rosbag2 layout that Foxglove Studio and
//! the `mcap` tools read: profile `ros2`, one `ros2msg` schema per type holding the complete
//! message definition (from `rtfuse-msgs`), one channel per topic with `cdr` messages.
//!
//! What it writes: depth images as `sensor_msgs/msg/Image` (`32FC1` metres with NaN for "no
//! return", or `16UC1` millimetres with 0), coloured clouds as `sensor_msgs/msg/PointCloud2`
//! (`x, y, z` float32 and `rgb` as a float32 holding the packed `0x00RRGGBB` bits, PCL's and
//! Foxglove's convention), odometry as `nav_msgs/msg/Odometry`, and any other
//! [`RosMessage`] through [`McapOutput::write`].
//!
//! This does file I/O and allocates: run it on a worker thread fed by a bounded queue, never on
//! the fusion thread.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::{Image, PointCloud2, PointField};
use rtfuse_msgs::std_msgs::Header;
use rtfuse_msgs::{cdr, RosMessage};

/// Why output failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum McapOutError {
    /// The file could not be created or written.
    Io(std::io::Error),
    /// The MCAP writer failed.
    Mcap(::mcap::McapError),
    /// A message could not be CDR-encoded.
    Encode(rtfuse_msgs::EncodeError),
    /// The data does not match the declared size.
    Size {
        /// What was expected, in words.
        what: String,
    },
}

impl fmt::Display for McapOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "MCAP output I/O: {e}"),
            Self::Mcap(e) => write!(f, "MCAP output: {e}"),
            Self::Encode(e) => write!(f, "MCAP output: {e}"),
            Self::Size { what } => write!(f, "MCAP output: {what}"),
        }
    }
}

impl std::error::Error for McapOutError {}

impl From<::mcap::McapError> for McapOutError {
    fn from(e: ::mcap::McapError) -> Self {
        Self::Mcap(e)
    }
}

/// One point of a coloured cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ColoredPoint {
    /// Position in metres.
    pub xyz: [f32; 3],
    /// Colour.
    pub rgb: [u8; 3],
}

/// Bytes per point of the coloured cloud: x, y, z, rgb (4 × float32).
pub const COLORED_POINT_STEP: u32 = 16;

/// The PointCloud2 fields of a coloured cloud.
pub fn colored_cloud_fields() -> Vec<PointField> {
    float32_fields(&["x", "y", "z", "rgb"])
}

/// PointCloud2 fields named `names`, float32 one after the other (offsets 0, 4, 8, …).
pub fn float32_fields(names: &[&str]) -> Vec<PointField> {
    names
        .iter()
        .zip((0u32..).step_by(4))
        .map(|(n, offset)| PointField {
            name: (*n).into(),
            offset,
            datatype: PointField::FLOAT32,
            count: 1,
        })
        .collect()
}

fn header(stamp_ns: u64, frame_id: &str) -> Header {
    crate::layout::header(i64::try_from(stamp_ns).unwrap_or(i64::MAX), frame_id)
}

/// Writes fused results into an MCAP file.
pub struct McapOutput<W: Write + Seek> {
    writer: ::mcap::Writer<W>,
    schemas: HashMap<&'static str, u16>,
    channels: HashMap<String, (u16, &'static str)>,
    sequence: HashMap<u16, u32>,
    buf: Vec<u8>,
    written: u64,
}

impl McapOutput<BufWriter<File>> {
    /// Creates (truncates) the file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or the header written.
    ///
    /// # Examples
    /// ```no_run
    /// use fusion::mcap_out::McapOutput;
    /// let mut out = McapOutput::create("fused.mcap")?;
    /// out.write_depth_32f("/depth", 1_000_000_000, "camera", 2, 1, &[1.5, f32::NAN])?;
    /// out.finish()?;
    /// # Ok::<(), fusion::mcap_out::McapOutError>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> Result<Self, McapOutError> {
        let file = File::create(path).map_err(McapOutError::Io)?;
        Self::new(BufWriter::new(file))
    }
}

impl<W: Write + Seek> McapOutput<W> {
    /// Starts an MCAP stream on `w` (zstd-compressed chunks, ros2 profile).
    ///
    /// # Errors
    /// Writing the header failed.
    pub fn new(w: W) -> Result<Self, McapOutError> {
        let writer = ::mcap::WriteOptions::new()
            .profile("ros2")
            .library(concat!("rtfuse-fusion/", env!("CARGO_PKG_VERSION")))
            .create(w)?;
        Ok(Self {
            writer,
            schemas: HashMap::new(),
            channels: HashMap::new(),
            sequence: HashMap::new(),
            buf: Vec::new(),
            written: 0,
        })
    }

    /// Messages written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn channel<T: RosMessage>(&mut self, topic: &str) -> Result<u16, McapOutError> {
        if let Some((id, ty)) = self.channels.get(topic) {
            if *ty != T::ROS_TYPE {
                return Err(McapOutError::Size {
                    what: format!("topic {topic} carries {ty}, not {}", T::ROS_TYPE),
                });
            }
            return Ok(*id);
        }
        let schema = match self.schemas.get(T::ROS_TYPE) {
            Some(id) => *id,
            None => {
                let text = T::full_definition();
                let id = self
                    .writer
                    .add_schema(T::ROS_TYPE, "ros2msg", text.as_bytes())?;
                self.schemas.insert(T::ROS_TYPE, id);
                id
            }
        };
        let id = self
            .writer
            .add_channel(schema, topic, "cdr", &BTreeMap::new())?;
        self.channels.insert(topic.to_owned(), (id, T::ROS_TYPE));
        Ok(id)
    }

    /// Writes any message on `topic` with log time `log_time_ns` (ns since the epoch).
    ///
    /// # Errors
    /// Encoding or writing failed, or `topic` already carries another type.
    pub fn write<T: RosMessage>(
        &mut self,
        topic: &str,
        log_time_ns: u64,
        msg: &T,
    ) -> Result<(), McapOutError> {
        let channel_id = self.channel::<T>(topic)?;
        self.buf.clear();
        cdr::encode_into(msg, &mut self.buf).map_err(McapOutError::Encode)?;
        let seq = self.sequence.entry(channel_id).or_insert(0);
        *seq = seq.wrapping_add(1);
        let header = ::mcap::records::MessageHeader {
            channel_id,
            sequence: *seq,
            log_time: log_time_ns,
            publish_time: log_time_ns,
        };
        self.writer.write_to_known_channel(&header, &self.buf)?;
        self.written += 1;
        Ok(())
    }

    /// Writes a depth image as `32FC1` (metres, NaN where there is no depth).
    ///
    /// # Errors
    /// `depth.len() != width × height`, or writing failed.
    pub fn write_depth_32f(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        frame_id: &str,
        width: u32,
        height: u32,
        depth: &[f32],
    ) -> Result<(), McapOutError> {
        check_len(depth.len(), width, height)?;
        let data = depth.iter().flat_map(|d| d.to_le_bytes()).collect();
        let img = image(header(stamp_ns, frame_id), width, height, "32FC1", 4, data);
        self.write(topic, stamp_ns, &img)
    }

    /// Writes a depth image as `16UC1` millimetres (0 where there is no depth or beyond 65.535 m).
    ///
    /// # Errors
    /// `depth_m.len() != width × height`, or writing failed.
    pub fn write_depth_16u(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        frame_id: &str,
        width: u32,
        height: u32,
        depth_m: &[f32],
    ) -> Result<(), McapOutError> {
        check_len(depth_m.len(), width, height)?;
        let mm = |d: f32| {
            let v = (d * 1000.0).round();
            if d.is_finite() && d > 0.0 && v <= f32::from(u16::MAX) {
                v as u16
            } else {
                0
            }
        };
        let data = depth_m.iter().flat_map(|d| mm(*d).to_le_bytes()).collect();
        let img = image(header(stamp_ns, frame_id), width, height, "16UC1", 2, data);
        self.write(topic, stamp_ns, &img)
    }

    /// Writes a coloured point cloud (unordered, `height` 1).
    ///
    /// # Errors
    /// More than `u32::MAX / 16` points, or writing failed.
    pub fn write_colored_cloud(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        frame_id: &str,
        points: &[ColoredPoint],
    ) -> Result<(), McapOutError> {
        let width = u32::try_from(points.len())
            .ok()
            .filter(|w| w.checked_mul(COLORED_POINT_STEP).is_some())
            .ok_or_else(|| McapOutError::Size {
                what: format!("{} points", points.len()),
            })?;
        let mut data = Vec::with_capacity(points.len() * COLORED_POINT_STEP as usize);
        for p in points {
            for c in p.xyz {
                data.extend_from_slice(&c.to_le_bytes());
            }
            let packed = u32::from_be_bytes([0, p.rgb[0], p.rgb[1], p.rgb[2]]);
            data.extend_from_slice(&packed.to_le_bytes());
        }
        let cloud = PointCloud2 {
            header: header(stamp_ns, frame_id),
            height: 1,
            width,
            fields: colored_cloud_fields(),
            is_bigendian: false,
            point_step: COLORED_POINT_STEP,
            row_step: width * COLORED_POINT_STEP,
            data,
            is_dense: points.iter().all(|p| p.xyz.iter().all(|c| c.is_finite())),
        };
        self.write(topic, stamp_ns, &cloud)
    }

    /// Writes an odometry message, logged at its header stamp.
    ///
    /// # Errors
    /// Writing failed.
    pub fn write_odometry(&mut self, topic: &str, odom: &Odometry) -> Result<(), McapOutError> {
        let t = u64::try_from(odom.header.stamp.as_nanos()).unwrap_or(0);
        self.write(topic, t, odom)
    }

    /// Writes the summary and footer and returns the underlying writer (flushed).
    ///
    /// # Errors
    /// Writing the end of the file failed.
    pub fn finish(mut self) -> Result<W, McapOutError> {
        self.writer.finish()?;
        let mut w = self.writer.into_inner();
        w.flush().map_err(McapOutError::Io)?;
        Ok(w)
    }
}

/// A little-endian image of `bpp` bytes per pixel without row padding.
fn image(
    header: Header,
    width: u32,
    height: u32,
    encoding: &str,
    bpp: u32,
    data: Vec<u8>,
) -> Image {
    Image {
        header,
        height,
        width,
        encoding: encoding.into(),
        is_bigendian: 0,
        step: width.saturating_mul(bpp),
        data,
    }
}

fn check_len(len: usize, width: u32, height: u32) -> Result<(), McapOutError> {
    let want = u64::from(width) * u64::from(height);
    if len as u64 == want {
        Ok(())
    } else {
        Err(McapOutError::Size {
            what: format!("depth image has {len} pixels, width {width} × height {height} = {want}"),
        })
    }
}

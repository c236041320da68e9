//! `.msg` definitions and the rosbag2 `ros2msg` "complete message definition".
//!
//! MCAP files written by rosbag2 carry, per schema, the top-level `.msg` text followed by every
//! dependency (recursively, each once, sorted by name as rosbag2's `std::set` orders them), each
//! preceded by `"\n"`, a line of 80 `=` and a line `MSG: pkg/Type`. [`full_text`] reproduces that.

/// The 80-character separator line of the `ros2msg` format.
pub const SEPARATOR: &str =
    "================================================================================";

/// `.msg` texts by their short name (`pkg/Type`).
const DEFINITIONS: &[(&str, &str)] = &[
    ("builtin_interfaces/Time", "int32 sec\nuint32 nanosec\n"),
    (
        "std_msgs/Header",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
    ),
    ("geometry_msgs/Vector3", "float64 x\nfloat64 y\nfloat64 z\n"),
    ("geometry_msgs/Point", "float64 x\nfloat64 y\nfloat64 z\n"),
    (
        "geometry_msgs/Quaternion",
        "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    ),
    (
        "geometry_msgs/Pose",
        "Point position\nQuaternion orientation\n",
    ),
    (
        "geometry_msgs/PoseWithCovariance",
        "Pose pose\nfloat64[36] covariance\n",
    ),
    ("geometry_msgs/Twist", "Vector3  linear\nVector3  angular\n"),
    (
        "geometry_msgs/TwistWithCovariance",
        "Twist twist\nfloat64[36] covariance\n",
    ),
    (
        "sensor_msgs/Image",
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n\
         uint8 is_bigendian\nuint32 step\nuint8[] data\n",
    ),
    (
        "sensor_msgs/RegionOfInterest",
        "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\nbool do_rectify\n",
    ),
    (
        "sensor_msgs/CameraInfo",
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\n\
         float64[] d\nfloat64[9]  k\nfloat64[9]  r\nfloat64[12] p\nuint32 binning_x\n\
         uint32 binning_y\nRegionOfInterest roi\n",
    ),
    (
        "sensor_msgs/PointField",
        "uint8 INT8    = 1\nuint8 UINT8   = 2\nuint8 INT16   = 3\nuint8 UINT16  = 4\n\
         uint8 INT32   = 5\nuint8 UINT32  = 6\nuint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\n\
         string name\nuint32 offset\nuint8  datatype\nuint32 count\n",
    ),
    (
        "sensor_msgs/PointCloud2",
        "std_msgs/Header header\nuint32 height\nuint32 width\nPointField[] fields\n\
         bool    is_bigendian\nuint32  point_step\nuint32  row_step\nuint8[] data\n\
         bool is_dense\n",
    ),
    (
        "sensor_msgs/Imu",
        "std_msgs/Header header\ngeometry_msgs/Quaternion orientation\n\
         float64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\n\
         float64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\n\
         float64[9] linear_acceleration_covariance\n",
    ),
    (
        "nav_msgs/Odometry",
        "std_msgs/Header header\nstring child_frame_id\n\
         geometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n",
    ),
];

const PRIMITIVES: &[&str] = &[
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring",
];

/// Normalises `pkg/msg/Type` or `pkg/Type` to `pkg/Type`.
fn short_name(type_name: &str) -> Option<String> {
    let parts: Vec<&str> = type_name.split('/').collect();
    match parts.as_slice() {
        [pkg, name] => Some(format!("{pkg}/{name}")),
        [pkg, "msg", name] => Some(format!("{pkg}/{name}")),
        _ => None,
    }
}

/// The `.msg` text of one type (`"sensor_msgs/msg/Imu"` or `"sensor_msgs/Imu"`), or `None` if
/// this crate does not define it.
pub fn msg_text(type_name: &str) -> Option<&'static str> {
    let short = short_name(type_name)?;
    DEFINITIONS
        .iter()
        .find(|(name, _)| *name == short)
        .map(|(_, text)| *text)
}

/// Type names (`pkg/Type`) a `.msg` text refers to, sorted and deduplicated, the way rosbag2
/// parses them: the first word of each non-comment line, array suffix removed, primitives
/// skipped, names without a package qualified with `package`.
pub fn dependencies(text: &str, package: &str) -> Vec<String> {
    let mut deps: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| !word.starts_with('#'))
        .map(|word| word.split('[').next().unwrap_or(word))
        .filter(|word| !PRIMITIVES.contains(word) && !word.starts_with("string<"))
        .map(|word| {
            if word.contains('/') {
                word.to_owned()
            } else {
                format!("{package}/{word}")
            }
        })
        .collect();
    deps.sort();
    deps.dedup();
    deps
}

/// The complete `ros2msg` definition of `type_name` with all dependencies, in rosbag2's layout.
/// `None` if this crate does not know the type or one of its dependencies.
///
/// # Examples
/// ```
/// let text = rtfuse_msgs::definition::full_text("std_msgs/msg/Header").unwrap();
/// assert!(text.starts_with("builtin_interfaces/Time stamp\nstring frame_id\n"));
/// assert!(text.contains("\n================================================================================\nMSG: builtin_interfaces/Time\nint32 sec\n"));
/// ```
pub fn full_text(type_name: &str) -> Option<String> {
    let root = short_name(type_name)?;
    let mut seen = vec![root.clone()];
    let mut out = String::new();
    append(&root, &mut seen, &mut out, 16)?;
    Some(out)
}

fn append(name: &str, seen: &mut Vec<String>, out: &mut String, depth: u32) -> Option<()> {
    let depth = depth.checked_sub(1)?;
    let text = msg_text(name)?;
    let package = name.split('/').next()?;
    out.push_str(text);
    for dep in dependencies(text, package) {
        if !seen.contains(&dep) {
            seen.push(dep.clone());
            out.push('\n');
            out.push_str(SEPARATOR);
            out.push_str("\nMSG: ");
            out.push_str(&dep);
            out.push('\n');
            append(&dep, seen, out, depth)?;
        }
    }
    Some(())
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// [`msg_text`] for a short name (`pkg/Type`), usable in constants.
pub const fn msg_text_const(short_name: &str) -> Option<&'static str> {
    let mut i = 0;
    while i < DEFINITIONS.len() {
        if str_eq(DEFINITIONS[i].0, short_name) {
            return Some(DEFINITIONS[i].1);
        }
        i += 1;
    }
    None
}

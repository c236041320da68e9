"""ROS 2 message definitions (rosbag2 `ros2msg` text with dependencies), written out by hand from
the upstream .msg files (common_interfaces, humble) so the oracle does not share code with the
Rust crate under test."""

SEP = "=" * 80 + "\n"


def _full(own, deps):
    return own + "".join(SEP + "MSG: " + name + "\n" + DEFS[name] for name in deps)


DEFS = {
    "std_msgs/Header": "builtin_interfaces/Time stamp\nstring frame_id\n",
    "geometry_msgs/Vector3": "float64 x\nfloat64 y\nfloat64 z\n",
    "geometry_msgs/Point": "float64 x\nfloat64 y\nfloat64 z\n",
    "geometry_msgs/Quaternion": "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    "geometry_msgs/Pose": "Point position\nQuaternion orientation\n",
    "geometry_msgs/PoseWithCovariance": "Pose pose\nfloat64[36] covariance\n",
    "geometry_msgs/Twist": "Vector3  linear\nVector3  angular\n",
    "geometry_msgs/TwistWithCovariance": "Twist twist\nfloat64[36] covariance\n",
    "sensor_msgs/PointField": (
        "uint8 INT8    = 1\nuint8 UINT8   = 2\nuint8 INT16   = 3\nuint8 UINT16  = 4\n"
        "uint8 INT32   = 5\nuint8 UINT32  = 6\nuint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\n"
        "string name\nuint32 offset\nuint8  datatype\nuint32 count\n"
    ),
    "sensor_msgs/RegionOfInterest": (
        "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\nbool do_rectify\n"
    ),
}

IMAGE = _full(
    "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n"
    "uint8 is_bigendian\nuint32 step\nuint8[] data\n",
    ["std_msgs/Header"],
)
POINTCLOUD2 = _full(
    "std_msgs/Header header\nuint32 height\nuint32 width\nPointField[] fields\n"
    "bool    is_bigendian\nuint32  point_step\nuint32  row_step\nuint8[] data\nbool is_dense\n",
    ["std_msgs/Header", "sensor_msgs/PointField"],
)
IMU = _full(
    "std_msgs/Header header\ngeometry_msgs/Quaternion orientation\n"
    "float64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\n"
    "float64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\n"
    "float64[9] linear_acceleration_covariance\n",
    ["std_msgs/Header", "geometry_msgs/Quaternion", "geometry_msgs/Vector3"],
)
CAMERA_INFO = _full(
    "std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\n"
    "float64[] d\nfloat64[9]  k\nfloat64[9]  r\nfloat64[12] p\nuint32 binning_x\n"
    "uint32 binning_y\nRegionOfInterest roi\n",
    ["std_msgs/Header", "sensor_msgs/RegionOfInterest"],
)
ODOMETRY = _full(
    "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\n"
    "geometry_msgs/TwistWithCovariance twist\n",
    [
        "std_msgs/Header",
        "geometry_msgs/PoseWithCovariance",
        "geometry_msgs/Pose",
        "geometry_msgs/Point",
        "geometry_msgs/Quaternion",
        "geometry_msgs/TwistWithCovariance",
        "geometry_msgs/Twist",
        "geometry_msgs/Vector3",
    ],
)
STRING = "string data\n"

"""Standard ROS 2 message types as Eclipse Cyclone DDS IDL dataclasses (the independent oracle).

Written from the ROS 2 .msg files, not from our Rust code: field order and types follow the .msg,
DDS type names follow rosidl's `pkg::msg::dds_::Type_` convention. Used by rtfuse-msgs' golden
CDR tests and by ros2-plugin's interop tests (Cyclone as an ordinary ROS 2 node).
"""
import dataclasses
import sys
import typing

try:
    from cyclonedds.idl import IdlStruct
    from cyclonedds.idl import types as t
except ImportError as e:  # pragma: no cover - message for CI
    sys.stderr.write(
        "MISSING PYTHON PACKAGE: the oracle needs Eclipse Cyclone DDS for Python: "
        "`pip install cyclonedds` (%s)\n" % e
    )
    sys.exit(3)

from dataclasses import dataclass, field


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0
    w: t.float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose = field(default_factory=Pose)
    covariance: t.array[t.float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist = field(default_factory=Twist)
    covariance: t.array[t.float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    encoding: str = ""
    is_bigendian: t.uint8 = 0
    step: t.uint32 = 0
    data: t.sequence[t.uint8] = field(default_factory=bytes)


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: t.uint32 = 0
    y_offset: t.uint32 = 0
    height: t.uint32 = 0
    width: t.uint32 = 0
    do_rectify: bool = False


@dataclass
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    distortion_model: str = ""
    d: t.sequence[t.float64] = field(default_factory=list)
    k: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: t.array[t.float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: t.uint32 = 0
    binning_y: t.uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


@dataclass
class PointField(IdlStruct, typename="sensor_msgs::msg::dds_::PointField_"):
    name: str = ""
    offset: t.uint32 = 0
    datatype: t.uint8 = 0
    count: t.uint32 = 0


@dataclass
class PointCloud2(IdlStruct, typename="sensor_msgs::msg::dds_::PointCloud2_"):
    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    fields: t.sequence[PointField] = field(default_factory=list)
    is_bigendian: bool = False
    point_step: t.uint32 = 0
    row_step: t.uint32 = 0
    data: t.sequence[t.uint8] = field(default_factory=bytes)
    is_dense: bool = False


@dataclass
class Imu(IdlStruct, typename="sensor_msgs::msg::dds_::Imu_"):
    header: Header = field(default_factory=Header)
    orientation: Quaternion = field(default_factory=Quaternion)
    orientation_covariance: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    angular_velocity: Vector3 = field(default_factory=Vector3)
    angular_velocity_covariance: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    linear_acceleration: Vector3 = field(default_factory=Vector3)
    linear_acceleration_covariance: t.array[t.float64, 9] = field(
        default_factory=lambda: [0.0] * 9
    )


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)
    twist: TwistWithCovariance = field(default_factory=TwistWithCovariance)


BY_ROS_TYPE = {
    "builtin_interfaces/msg/Time": Time,
    "std_msgs/msg/Header": Header,
    "geometry_msgs/msg/Vector3": Vector3,
    "geometry_msgs/msg/Point": Point,
    "geometry_msgs/msg/Quaternion": Quaternion,
    "geometry_msgs/msg/Pose": Pose,
    "geometry_msgs/msg/PoseWithCovariance": PoseWithCovariance,
    "geometry_msgs/msg/Twist": Twist,
    "geometry_msgs/msg/TwistWithCovariance": TwistWithCovariance,
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/RegionOfInterest": RegionOfInterest,
    "sensor_msgs/msg/CameraInfo": CameraInfo,
    "sensor_msgs/msg/PointField": PointField,
    "sensor_msgs/msg/PointCloud2": PointCloud2,
    "sensor_msgs/msg/Imu": Imu,
    "nav_msgs/msg/Odometry": Odometry,
}


def _element_class(hint):
    """The IdlStruct class inside a (possibly Annotated / List) type hint, or None."""
    if isinstance(hint, type) and issubclass(hint, IdlStruct):
        return hint
    for arg in typing.get_args(hint):
        found = _element_class(arg)
        if found is not None:
            return found
    return None


def from_json(cls, value):
    """Builds an instance of `cls` from a JSON-like dict (byte arrays as lists of ints)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for f in dataclasses.fields(cls):
        v = value[f.name]
        nested = _element_class(hints[f.name])
        if isinstance(v, dict):
            v = from_json(nested, v)
        elif isinstance(v, list) and nested is not None:
            v = [from_json(nested, e) for e in v]
        elif isinstance(v, list) and f.name == "data":
            v = bytes(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def to_json(obj):
    """The inverse of `from_json`: a JSON-like dict (byte arrays as lists of ints)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (bytes, bytearray)):
        return list(obj)
    if isinstance(obj, list):
        return [to_json(e) for e in obj]
    return obj

//! `ros2_client::Message` for every message type (feature `ros2`).

use crate::{builtin_interfaces, geometry_msgs, nav_msgs, sensor_msgs, std_msgs};

macro_rules! impl_message {
    ($($ty:ty),* $(,)?) => { $(impl ros2_client::Message for $ty {})* };
}

impl_message!(
    builtin_interfaces::Time,
    std_msgs::Header,
    geometry_msgs::Vector3,
    geometry_msgs::Point,
    geometry_msgs::Quaternion,
    geometry_msgs::Pose,
    geometry_msgs::PoseWithCovariance,
    geometry_msgs::Twist,
    geometry_msgs::TwistWithCovariance,
    sensor_msgs::Image,
    sensor_msgs::RegionOfInterest,
    sensor_msgs::CameraInfo,
    sensor_msgs::PointField,
    sensor_msgs::PointCloud2,
    sensor_msgs::Imu,
    nav_msgs::Odometry,
);

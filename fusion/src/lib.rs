//! # fusion: drivers and the real-time fusion node
//!
//! - Drivers ([`driver`]): synthetic camera, LiDAR, IMU and odometry that follow one ground truth
//!   ([`truth`], [`synth`]); a Velodyne VLP-16 over UDP ([`vlp16`], [`udp`], [`vlp16_driver`]);
//!   rosbag2 MCAP replay ([`mcap_replay`], [`mcap_shm`], [`mcap_driver`]). Each loans a chunk of
//!   its shared-memory channel, fills it in place, stamps "DMA complete" and publishes. Channels
//!   go back into MCAP with [`mcap_record`] ([`layout`] turns samples into ROS 2 messages).
//! - The node ([`node`]): a SCHED_FIFO fusion thread ([`rt`]) that receives, validates, pairs the
//!   streams by time with message_filters semantics ([`sync`]), projects LiDAR into the camera
//!   ([`projection`]), runs an EKF over IMU and odometry ([`ekf`]), and hands statistics ([`stats`]),
//!   traces ([`trace_out`]) and MCAP output ([`mcap_out`]) to non-real-time workers through bounded
//!   queues. Steady state allocates nothing and takes no page fault ([`alloc_check`] proves it).

pub mod alloc_check;
pub mod driver;
pub mod ekf;
pub mod layout;
pub mod mcap_driver;
pub mod mcap_msgs;
pub mod mcap_out;
pub mod mcap_record;
pub mod mcap_replay;
pub mod mcap_shm;
pub mod node;
pub mod projection;
pub mod rt;
pub mod stats;
pub mod sync;
pub mod synth;
pub mod trace_out;
pub mod truth;
pub mod udp;
pub mod vlp16;
pub mod vlp16_driver;

//! ROS 2 transport plugin for rtfuse, on ros2-client (RustDDS).
//!
//! - [`gateway`]: ROS 2 topics into rtfuse shared-memory channels and back, per a
//!   [`gateway::GatewayConfig`]; a channel carries complete CDR payloads unless the bridge has
//!   another [`codec::PayloadCodec`].
//! - [`codec`]: how a bridge writes a message into a chunk and reads one back, and the map
//!   between ROS header stamps (system time) and rtfuse sensor times (`CLOCK_MONOTONIC`).
//! - [`zc`]: [`zc::ZcPublisher`] / [`zc::ZcSubscription`] for Rust ROS 2 nodes: same-host peers
//!   that both use the plugin exchange messages through an rtfuse channel, everyone else gets
//!   the ordinary DDS message.
//! - [`raw`]: untyped DDS readers/writers of CDR payloads with ROS 2 names and QoS.
//!
//! Domain: `ROS_DOMAIN_ID` is honoured ([`context::new_context`]).

pub mod codec;
pub mod context;
pub mod error;
pub mod gateway;
pub mod known;
pub mod names;
pub mod qos;
pub mod raw;
pub mod registry;
pub mod zc;

pub use error::PluginError;
pub use qos::QosConfig;

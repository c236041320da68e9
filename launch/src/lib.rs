//! The rtfuse CLI as a library: the deployment config, host preflight checks, the process
//! supervisor and the commands behind the `rtfuse` binary.

pub mod analysis;
pub mod cli;
pub mod commands;
pub mod config;
pub mod preflight;
pub mod procfs;
pub mod ros2_bridge;
pub mod signals;
pub mod status;
pub mod supervisor;

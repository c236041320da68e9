//! Errors of the plugin.

use crate::names::NameError;

/// What went wrong creating or using a DDS endpoint or a shared-memory channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// `ROS_DOMAIN_ID` is set but not a number in 0..=232.
    #[error("ROS_DOMAIN_ID={0:?} is not a domain id in 0..=232")]
    BadDomainId(String),
    /// A topic or type name that ROS 2 cannot use.
    #[error(transparent)]
    Name(#[from] NameError),
    /// RustDDS / ros2-client refused to create something.
    #[error("DDS error on {0}: {1}")]
    Dds(String, String),
    /// A write failed.
    #[error("DDS write on {0} failed: {1}")]
    Write(String, String),
    /// A read failed.
    #[error("DDS read on {0} failed: {1}")]
    Read(String, String),
    /// Egress of a big-endian payload (we only write `CDR_LE`).
    #[error("egress on {0}: big-endian CDR payloads are not re-labelled; re-encode as CDR_LE")]
    BigEndianEgress(String),
    /// Polling or another OS call failed.
    #[error("I/O error on {0}: {1}")]
    Io(String, std::io::Error),
    /// The shared-memory channel could not be created or opened.
    #[error("shared-memory channel {0}: {1}")]
    Shm(String, String),
    /// The message type is not one this build knows (see `rtfuse_msgs::ALL_TYPES`).
    #[error("unknown ROS message type {0:?} (known: {1})")]
    UnknownType(String, String),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] rtfuse_msgs::EncodeError),
}

impl PluginError {
    pub(crate) fn dds(what: &str, e: impl std::fmt::Debug) -> Self {
        PluginError::Dds(what.to_owned(), format!("{e:?}"))
    }
}

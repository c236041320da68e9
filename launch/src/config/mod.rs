//! The deployment config: a TOML file (or the built-in demo) read into [`Deployment`], checked, with
//! errors that name the file, line and column.
//!
//! # Examples
//! ```
//! let cfg = launch::config::Config::demo().unwrap();
//! assert!(cfg.deployment.channels.iter().any(|c| c.name.get_ref() == "camera"));
//! ```

mod error;
mod memory;
mod schema;
mod size;
mod validate;

pub use error::{line_col, ConfigError, Diagnostic};
pub use memory::{channel_config, channel_footprint, pinned_memory};
pub use schema::*;
pub use size::{parse_size, ByteSize};
pub use validate::bridges::{
    channel_layout, ros_type_of_kind, stream_kind_of_type, ChannelLayout, BRIDGE_TYPES,
};
pub use validate::{bytes_per_pixel, cloud_output_points, payload_bytes, LIDAR_POINT_BYTES};

use std::path::{Path, PathBuf};

/// The built-in demo deployment (`examples/demo.toml`).
pub const DEMO_TOML: &str = include_str!("../../../examples/demo.toml");
/// How the built-in demo is named in messages.
pub const DEMO_NAME: &str = "<built-in demo>";

/// A checked deployment and where it came from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The deployment.
    pub deployment: Deployment,
    /// The file it was read from (`None`: the built-in demo).
    pub path: Option<PathBuf>,
    /// The text it was read from.
    pub text: String,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file was read but is not a valid deployment.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

impl Config {
    /// Parses and checks `text`; `file` names it in errors.
    ///
    /// # Errors
    /// Every syntax, type and semantic problem, each with its line and column.
    pub fn parse(text: &str, file: &str) -> Result<Deployment, ConfigError> {
        let fail = |diagnostics| ConfigError {
            file: file.to_string(),
            text: text.to_string(),
            diagnostics,
        };
        let dep: Deployment = toml::from_str(text).map_err(|e| {
            fail(vec![Diagnostic {
                span: e.span(),
                message: e.message().trim_end().to_string(),
            }])
        })?;
        let diags = validate::check(&dep);
        if diags.is_empty() {
            Ok(dep)
        } else {
            Err(fail(diags))
        }
    }

    /// The built-in demo.
    ///
    /// # Errors
    /// Only if the shipped demo is broken (a test guards against that).
    pub fn demo() -> Result<Config, ConfigError> {
        Ok(Config {
            deployment: Self::parse(DEMO_TOML, DEMO_NAME)?,
            path: None,
            text: DEMO_TOML.to_string(),
        })
    }

    /// Reads and checks `path`, or the built-in demo when `path` is `None`.
    ///
    /// # Errors
    /// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] when it is not valid.
    pub fn load(path: Option<&Path>) -> Result<Config, LoadError> {
        let Some(path) = path else {
            return Ok(Self::demo()?);
        };
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let deployment = Self::parse(&text, &path.display().to_string())?;
        Ok(Config {
            deployment,
            path: Some(path.to_path_buf()),
            text,
        })
    }

    /// How this config is named in messages: its path or `<built-in demo>`.
    pub fn display_name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| DEMO_NAME.to_string(), |p| p.display().to_string())
    }

    /// The channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.deployment
            .channels
            .iter()
            .find(|c| c.name.get_ref() == name)
    }

    /// The driver called `name`.
    pub fn driver(&self, name: &str) -> Option<&Driver> {
        self.deployment
            .drivers
            .iter()
            .find(|d| d.name.get_ref() == name)
    }
}

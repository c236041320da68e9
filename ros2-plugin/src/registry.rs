//! Discovery of same-host plugin peers through names in `/dev/shm`.
//!
//! - A [`crate::zc::ZcPublisher`] creates the rtfuse channel `ros2zc.<topic hash>.<writer GUID>`
//!   (so `/dev/shm/rtfuse.ros2zc.…`): a subscriber finds every plugin publisher of its topic by
//!   listing `/dev/shm`, and maps the DDS writer GUID of a sample to the channel it came by.
//! - A [`crate::zc::ZcSubscription`], once it has opened such a channel, creates the marker file
//!   `/dev/shm/rtfuse-zcatt.<writer GUID>.<reader GUID>` holding its pid. The publisher skips the
//!   DDS copy only while *every* DDS reader it is matched with has such a marker; markers of dead
//!   processes are removed by the publisher.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ros2_client::dds::rustdds::GUID;

use crate::names;

/// Where POSIX shared memory lives on Linux.
pub const SHM_DIR: &str = "/dev/shm";
const CHANNEL_PREFIX: &str = "ros2zc.";
const MARKER_PREFIX: &str = "rtfuse-zcatt.";

/// Hex of a GUID (32 characters).
pub fn guid_hex(guid: GUID) -> String {
    names::hex(&guid.to_bytes())
}

/// The rtfuse channel name of a plugin publisher.
pub fn channel_name(dds_topic: &str, writer: GUID) -> String {
    format!(
        "{CHANNEL_PREFIX}{:016x}.{}",
        names::topic_hash(dds_topic),
        guid_hex(writer)
    )
}

/// Plugin publishers of `dds_topic` on this host: `(writer GUID hex, channel name)`.
pub fn publishers_of(dds_topic: &str) -> Vec<(String, String)> {
    let prefix = format!(
        "{}{CHANNEL_PREFIX}{:016x}.",
        shm_transport::SHM_PREFIX,
        names::topic_hash(dds_topic)
    );
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let guid = name.strip_prefix(&prefix)?;
            (guid.len() == 32 && guid.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
                let channel = name[shm_transport::SHM_PREFIX.len()..].to_owned();
                (guid.to_owned(), channel)
            })
        })
        .collect()
}

fn marker_path(writer_hex: &str, reader_hex: &str) -> PathBuf {
    Path::new(SHM_DIR).join(format!("{MARKER_PREFIX}{writer_hex}.{reader_hex}"))
}

/// A marker saying "reader `reader` receives writer `writer`'s samples by shared memory";
/// removed on drop.
#[derive(Debug)]
pub struct AttachMarker {
    path: PathBuf,
}

impl AttachMarker {
    /// Creates the marker (mode 0600, content: our pid).
    ///
    /// # Errors
    /// If `/dev/shm` is not writable.
    pub fn create(writer_hex: &str, reader: GUID) -> std::io::Result<AttachMarker> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = marker_path(writer_hex, &guid_hex(reader));
        // Write under a temporary name and rename, so a publisher never sees an empty marker.
        let tmp = Path::new(SHM_DIR).join(format!(
            "rtfuse-zcatt-tmp.{}.{}",
            guid_hex(reader),
            std::process::id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        write!(f, "{}", std::process::id())?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        Ok(AttachMarker { path })
    }
}

impl Drop for AttachMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Readers (GUID hex) attached to `writer` by shared memory; markers whose process is gone are
/// deleted.
pub fn attached_readers(writer: GUID) -> HashSet<String> {
    let prefix = format!("{MARKER_PREFIX}{}.", guid_hex(writer));
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return HashSet::new();
    };
    let mut out = HashSet::new();
    for entry in dir.filter_map(|e| e.ok()) {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(reader) = name.strip_prefix(&prefix) else {
            continue;
        };
        // Never trust the file: parse the pid with a bound on what is read.
        let alive = std::fs::read_to_string(entry.path())
            .ok()
            .filter(|s| s.len() <= 16)
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            out.insert(reader.to_owned());
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    out
}

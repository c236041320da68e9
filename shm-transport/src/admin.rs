//! Finding and removing segments: what `rtfuse ls` and `rtfuse clean` use.

use std::os::fd::AsRawFd;

use memmap2::MmapOptions;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{fstat, Mode};

use crate::layout::{HeaderCopy, Layout, SegmentHeader, LAYOUT_VERSION, PAGE, READY};
use crate::segment::{byte_is_locked, shm_name, SHM_PREFIX};

/// What is known about one segment in `/dev/shm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Channel name.
    pub channel: String,
    /// Size of the shared-memory object in bytes.
    pub size: u64,
    /// Owner uid.
    pub uid: u32,
    /// Creator (publisher) pid from the header, 0 if unreadable.
    pub creator_pid: u32,
    /// Creator's process start time in clock ticks since boot (tells a reused pid apart).
    pub creator_start_ticks: u64,
    /// Creation time, ns since the Unix epoch.
    pub created_unix_ns: u64,
    /// Whether the publisher holds its liveness lock (is alive).
    pub publisher_alive: bool,
    /// Live subscribers (slots whose liveness lock is held).
    pub subscribers_alive: u32,
    /// `Ok` for a valid rtfuse segment, else why not.
    pub validity: Result<(), String>,
    /// Chunk size and count when valid.
    pub geometry: Option<(u64, u32)>,
}

/// Inspects the segment of `channel` without attaching to it.
///
/// # Errors
/// When the object cannot be opened or stat'ed.
pub fn probe(channel: &str) -> std::io::Result<SegmentInfo> {
    let fd = shm_open(shm_name(channel).as_str(), OFlag::O_RDWR, Mode::empty())
        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
    let st = fstat(&fd).map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
    let size = st.st_size as u64;
    let publisher_alive = byte_is_locked(&fd, 0);
    let mut info = SegmentInfo {
        channel: channel.to_string(),
        size,
        uid: st.st_uid,
        creator_pid: 0,
        creator_start_ticks: 0,
        created_unix_ns: 0,
        publisher_alive,
        subscribers_alive: 0,
        validity: Err("too small to hold a header".into()),
        geometry: None,
    };
    if size < PAGE {
        return Ok(info);
    }
    let map = MmapOptions::new()
        .len(PAGE as usize)
        .map_raw_read_only(fd.as_raw_fd())?;
    let hp = map.as_ptr() as *const SegmentHeader;
    // SAFETY: one mapped page holds the header; `ready` is atomic.
    let ready = unsafe { &*core::ptr::addr_of!((*hp).ready) };
    if ready.load(crate::sync::Ordering::Acquire) != READY {
        info.validity =
            Err("not initialised (creation in progress or crashed during creation)".into());
        return Ok(info);
    }
    // SAFETY: the page is mapped and readable.
    let copy = unsafe { HeaderCopy::read(hp) };
    info.creator_pid = copy.creator_pid;
    info.creator_start_ticks = copy.creator_start_ticks;
    info.created_unix_ns = copy.created_unix_ns;
    if copy.creator_uid != info.uid {
        info.validity = Err(format!(
            "header names uid {} but the object belongs to uid {}",
            copy.creator_uid, info.uid
        ));
        return Ok(info);
    }
    if copy.layout_version != LAYOUT_VERSION {
        info.validity = Err(format!(
            "layout version {} (this build: {LAYOUT_VERSION})",
            copy.layout_version
        ));
        return Ok(info);
    }
    match Layout::from_header(&copy, size) {
        Ok(l) => {
            info.subscribers_alive = (0..l.max_subscribers)
                .filter(|i| byte_is_locked(&fd, 1 + *i as u64))
                .count() as u32;
            info.geometry = Some((l.chunk_size, l.chunk_count));
            info.validity = Ok(());
        }
        Err(e) => info.validity = Err(e),
    }
    Ok(info)
}

/// Every rtfuse segment in `/dev/shm`.
pub fn list_segments() -> Vec<SegmentInfo> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(channel) = name.strip_prefix(SHM_PREFIX) {
            if let Ok(info) = probe(channel) {
                out.push(info);
            }
        }
    }
    out.sort_by(|a, b| a.channel.cmp(&b.channel));
    out
}

/// Removes every segment whose publisher is dead (never one whose publisher is alive). Subscribers
/// still attached keep their mapping and drain it. Returns the channels removed.
pub fn clean_stale() -> Vec<String> {
    clean_stale_matching(|_| true)
}

/// As [`clean_stale`], limited to channels for which `filter` returns true.
pub fn clean_stale_matching(filter: impl Fn(&str) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    for info in list_segments() {
        if !info.publisher_alive
            && filter(&info.channel)
            && shm_unlink(shm_name(&info.channel).as_str()).is_ok()
        {
            removed.push(info.channel);
        }
    }
    removed
}

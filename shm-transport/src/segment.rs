//! POSIX shared-memory segments: create (O_EXCL, mode 0600), open, map, `mlock`, prefault, and the
//! per-party file locks that tell the other side whether a peer is alive.
//!
//! Liveness uses open-file-description locks (`F_OFD_SETLK`) on one byte per party — byte 0 for the
//! publisher, byte `1 + i` for subscriber slot `i`. The kernel drops them when the holder's last file
//! descriptor closes, which includes every kind of process death (SIGKILL too) and is immune to pid
//! reuse. Checking is one `F_OFD_GETLK`, done by the liveness monitor thread, never on the data path.

use std::os::fd::{AsRawFd, OwnedFd};

use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{fstat, Mode};

use crate::config::{HugePages, MemoryLock};
use crate::layout::{HeaderCopy, Layout, SegmentHeader, SubControl, LAYOUT_VERSION, READY};
use crate::ring::{Ring, RingIndices, Slot};
use crate::{CreateError, OpenError};

/// Prefix of every rtfuse object in `/dev/shm`.
pub const SHM_PREFIX: &str = "rtfuse.";

/// Checks a channel name: 1..=200 bytes of `[A-Za-z0-9_.-]`, not starting with '.'.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 200 {
        return Err(format!(
            "channel name must be 1..=200 bytes, got {}",
            name.len()
        ));
    }
    if name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!(
            "channel name {name:?} may only contain A-Z a-z 0-9 _ . - and must not start with '.'"
        ));
    }
    Ok(())
}

/// The POSIX shm name of a channel (`/rtfuse.<name>`).
pub fn shm_name(channel: &str) -> String {
    format!("/{SHM_PREFIX}{channel}")
}

/// Whether the kernel lets shared memory use transparent huge pages.
pub(crate) fn huge_pages_wanted(p: HugePages) -> bool {
    p != HugePages::Off && shmem_thp_available()
}

fn shmem_thp_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .map(|s| {
            // The active mode is in brackets, e.g. "always within_size advise [never] deny force".
            let active = s
                .split_whitespace()
                .find(|w| w.starts_with('['))
                .unwrap_or("");
            matches!(
                active,
                "[always]" | "[within_size]" | "[advise]" | "[force]"
            )
        })
        .unwrap_or(false)
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`), 0 if unknown.
pub fn process_start_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name (field 2) may contain spaces; fields resume after the last ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

/// One mapped segment.
pub(crate) struct Segment {
    pub channel: String,
    pub fd: OwnedFd,
    map: MmapRaw,
    /// The driver-provided region holding the chunks, when the channel uses one.
    ext: Option<MmapRaw>,
    pub layout: Layout,
    pub locked: bool,
    pub inode: u64,
    pub creator_pid: u32,
}

// SAFETY: the mapping is shared memory accessed only through atomics or through raw pointers whose
// exclusive use is arbitrated by the channel protocol; the raw pointer in MmapRaw is not tied to a
// thread.
unsafe impl Send for Segment {}
// SAFETY: as above: every shared access goes through atomics.
unsafe impl Sync for Segment {}

fn io_err(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn memlock_error(needed: u64, e: std::io::Error) -> CreateError {
    let (soft, _hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        .unwrap_or((0, 0));
    CreateError::MemLock {
        needed,
        limit: soft,
        source: e,
    }
}

/// Tries to take (or, with `F_OFD_GETLK`, test) a write lock on one byte.
fn ofd_lock(fd: &OwnedFd, byte: u64, cmd: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // SAFETY: `fd` is an open descriptor and `fl` a valid, initialised flock for this call.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if r == -1 {
        let e = std::io::Error::last_os_error();
        if cmd == libc::F_OFD_SETLK
            && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES))
        {
            return Ok(false);
        }
        return Err(e);
    }
    if cmd == libc::F_OFD_GETLK {
        // "held by someone else" when the kernel reports a conflicting lock.
        return Ok(fl.l_type != libc::F_UNLCK as libc::c_short);
    }
    Ok(true)
}

/// Takes the liveness lock on `byte`; `Ok(false)` when another open file description holds it.
pub(crate) fn try_lock_byte(fd: &OwnedFd, byte: u64) -> std::io::Result<bool> {
    ofd_lock(fd, byte, libc::F_OFD_SETLK)
}

/// Releases the liveness lock on `byte`.
pub(crate) fn unlock_byte(fd: &OwnedFd, byte: u64) {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = libc::F_UNLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // SAFETY: `fd` is open and `fl` valid; failure only means there was no lock to drop.
    unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_OFD_SETLK,
            &mut fl as *mut libc::flock,
        )
    };
}

/// Whether some other open file description holds the lock on `byte` (its owner is alive).
pub(crate) fn byte_is_locked(fd: &OwnedFd, byte: u64) -> bool {
    // An error (which does not happen on tmpfs) is read as "alive": never reclaim on doubt.
    ofd_lock(fd, byte, libc::F_OFD_GETLK).unwrap_or(true)
}

fn map(
    fd: &OwnedFd,
    len: u64,
    huge: bool,
    lock: MemoryLock,
) -> Result<(MmapRaw, bool), (std::io::Error, bool)> {
    let map = MmapOptions::new()
        .len(len as usize)
        .populate()
        .map_raw(fd)
        .map_err(|e| (e, false))?;
    if huge {
        // Advisory: the kernel may still use 4 KiB pages.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    let locked = match lock {
        MemoryLock::Off => false,
        MemoryLock::BestEffort => map.lock().is_ok(),
        MemoryLock::Required => {
            map.lock().map_err(|e| (e, true))?;
            true
        }
    };
    // Prefault: touch every page so the data path never faults (mlock already did when it
    // succeeded; MAP_POPULATE usually has too — this makes it certain).
    let base = map.as_mut_ptr();
    let mut off = 0u64;
    while off < len {
        // SAFETY: `off < len`, inside the mapping; a volatile read of a byte is valid for any value.
        unsafe { core::ptr::read_volatile(base.add(off as usize)) };
        off += crate::layout::PAGE;
    }
    Ok((map, locked))
}

/// Maps a driver-provided slab region, after checking its owner and size.
fn map_external(
    ext: &crate::config::ExternalSlab,
    len: u64,
    lock: MemoryLock,
) -> Result<(MmapRaw, bool), String> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ext.path)
        .map_err(|e| format!("external slab {}: {e}", ext.path.display()))?;
    let md = file
        .metadata()
        .map_err(|e| format!("external slab {}: {e}", ext.path.display()))?;
    if md.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "external slab {} belongs to uid {}, not us",
            ext.path.display(),
            md.uid()
        ));
    }
    let need = ext.offset.saturating_add(len);
    // Device nodes report size 0; regular files and shm objects must be large enough.
    if md.is_file() && md.len() < need {
        return Err(format!(
            "external slab {} has {} bytes, the channel needs {need} (offset {} + {len})",
            ext.path.display(),
            md.len(),
            ext.offset
        ));
    }
    let map = MmapOptions::new()
        .offset(ext.offset)
        .len(len as usize)
        .populate()
        .map_raw(&file)
        .map_err(|e| format!("external slab {}: map: {e}", ext.path.display()))?;
    let locked = match lock {
        MemoryLock::Off => false,
        MemoryLock::BestEffort => map.lock().is_ok(),
        MemoryLock::Required => {
            map.lock()
                .map_err(|e| format!("external slab {}: mlock: {e}", ext.path.display()))?;
            true
        }
    };
    Ok((map, locked))
}

impl Segment {
    /// Creates the segment of `channel` with O_EXCL, replacing a stale one whose publisher is dead.
    pub fn create(channel: &str, layout: Layout, lock: MemoryLock) -> Result<Segment, CreateError> {
        validate_name(channel).map_err(CreateError::InvalidName)?;
        let name = shm_name(channel);
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match shm_open(name.as_str(), flags, mode) {
            Ok(fd) => fd,
            Err(nix::Error::EEXIST) => {
                // A segment of that name exists: remove it only if its publisher is dead.
                match crate::admin::probe(channel) {
                    Ok(info) if info.publisher_alive => {
                        return Err(CreateError::AlreadyExists {
                            channel: channel.into(),
                            pid: info.creator_pid,
                        })
                    }
                    _ => {
                        let _ = shm_unlink(name.as_str());
                        shm_open(name.as_str(), flags, mode)
                            .map_err(|e| CreateError::Io(io_err(e)))?
                    }
                }
            }
            Err(e) => return Err(CreateError::Io(io_err(e))),
        };
        let result = Self::init_created(channel, fd, layout, lock);
        if result.is_err() {
            let _ = shm_unlink(name.as_str());
        }
        result
    }

    fn init_created(
        channel: &str,
        fd: OwnedFd,
        layout: Layout,
        lock: MemoryLock,
    ) -> Result<Segment, CreateError> {
        if !try_lock_byte(&fd, 0).map_err(CreateError::Io)? {
            return Err(CreateError::AlreadyExists {
                channel: channel.into(),
                pid: 0,
            });
        }
        nix::unistd::ftruncate(&fd, layout.total_size as i64)
            .map_err(|e| CreateError::Io(io_err(e)))?;
        let (map, locked) =
            map(&fd, layout.total_size, layout.huge, lock).map_err(|(e, is_lock)| {
                if is_lock {
                    memlock_error(layout.total_size, e)
                } else {
                    CreateError::Io(e)
                }
            })?;
        let slab_len = layout.chunk_stride * layout.chunk_count as u64;
        let (ext, locked) = match &layout.external {
            None => (None, locked),
            Some(e) => {
                let (m, l) = map_external(e, slab_len, lock).map_err(CreateError::InvalidConfig)?;
                (Some(m), locked && l)
            }
        };
        let st = fstat(&fd).map_err(|e| CreateError::Io(io_err(e)))?;
        let pid = std::process::id();
        let seg = Segment {
            channel: channel.into(),
            fd,
            map,
            ext,
            layout,
            locked,
            inode: st.st_ino,
            creator_pid: pid,
        };
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        // SAFETY: we created the object and nobody can have opened it as a subscriber yet (the
        // `ready` word is still 0, which openers wait for), so this exclusive write is unaliased.
        let h = unsafe { &mut *(seg.map.as_mut_ptr() as *mut SegmentHeader) };
        seg.layout.write_header(
            h,
            pid,
            nix::unistd::geteuid().as_raw(),
            process_start_ticks(pid),
            now_unix,
        );
        h.publisher_state
            .store(crate::layout::PUB_ALIVE, crate::sync::Ordering::Relaxed);
        for i in 0..seg.layout.max_subscribers {
            seg.desc_ring(i).init();
            seg.ret_ring(i).init();
        }
        // SYNC: release the whole initialised segment to openers that acquire `ready == READY`.
        seg.header()
            .ready
            .store(READY, crate::sync::Ordering::Release);
        Ok(seg)
    }

    /// Opens an existing segment, validating everything in its header.
    pub fn open(channel: &str, lock: MemoryLock) -> Result<Segment, OpenError> {
        validate_name(channel).map_err(OpenError::InvalidName)?;
        let name = shm_name(channel);
        let fd = match shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => return Err(OpenError::NotFound(channel.into())),
            Err(nix::Error::EACCES) => {
                return Err(OpenError::ForeignOwner {
                    channel: channel.into(),
                    uid: None,
                })
            }
            Err(e) => return Err(OpenError::Io(io_err(e))),
        };
        let st = fstat(&fd).map_err(|e| OpenError::Io(io_err(e)))?;
        let me = nix::unistd::geteuid().as_raw();
        if st.st_uid != me {
            return Err(OpenError::ForeignOwner {
                channel: channel.into(),
                uid: Some(st.st_uid),
            });
        }
        let size = st.st_size as u64;
        if size < crate::layout::PAGE {
            return Err(OpenError::NotReady(channel.into()));
        }
        // Map only the header page first: the rest of the size is not trusted yet.
        let head = MmapOptions::new()
            .len(crate::layout::PAGE as usize)
            .map_raw(&fd)
            .map_err(OpenError::Io)?;
        let hp = head.as_ptr() as *const SegmentHeader;
        // SAFETY: `hp` points to a mapped page at least as large as the header; `ready` is an
        // atomic field, so a shared reference to it is valid while another process writes it.
        let ready = unsafe { &*core::ptr::addr_of!((*hp).ready) };
        // SYNC: acquire the creator's initialisation (pairs with its Release of READY).
        if ready.load(crate::sync::Ordering::Acquire) != READY {
            return Err(OpenError::NotReady(channel.into()));
        }
        // SAFETY: the page is mapped and readable (see above).
        let copy = unsafe { HeaderCopy::read(hp) };
        drop(head);
        if copy.layout_version != LAYOUT_VERSION {
            return Err(OpenError::Incompatible {
                channel: channel.into(),
                reason: format!(
                    "layout version {} (this build speaks {LAYOUT_VERSION})",
                    copy.layout_version
                ),
            });
        }
        let layout =
            Layout::from_header(&copy, size).map_err(|reason| OpenError::Incompatible {
                channel: channel.into(),
                reason,
            })?;
        let (map, locked) =
            map(&fd, layout.total_size, layout.huge, lock).map_err(|(e, is_lock)| {
                if is_lock {
                    OpenError::MemLock(memlock_error(layout.total_size, e).to_string())
                } else {
                    OpenError::Io(e)
                }
            })?;
        let slab_len = layout.chunk_stride * layout.chunk_count as u64;
        let (ext, locked) = match &layout.external {
            None => (None, locked),
            Some(e) => {
                let (m, l) =
                    map_external(e, slab_len, lock).map_err(|reason| OpenError::Incompatible {
                        channel: channel.into(),
                        reason,
                    })?;
                (Some(m), locked && l)
            }
        };
        Ok(Segment {
            channel: channel.into(),
            fd,
            map,
            ext,
            layout,
            locked,
            inode: st.st_ino,
            creator_pid: copy.creator_pid,
        })
    }

    fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// The header (only its atomic fields are used through this reference after creation).
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: offset 0 holds a SegmentHeader (validated at open); the mapping outlives `self`.
        // Non-atomic fields are plain integers valid for any bit pattern and only read once at open.
        unsafe { &*(self.base() as *const SegmentHeader) }
    }

    fn sub_base(&self, i: u32) -> *mut u8 {
        assert!(i < self.layout.max_subscribers);
        let off = self.layout.subs_offset + self.layout.sub_stride * i as u64;
        // SAFETY: `i < max_subscribers`, so the slot lies inside the validated layout.
        unsafe { self.base().add(off as usize) }
    }

    /// Control words of subscriber slot `i`.
    pub fn control(&self, i: u32) -> &SubControl {
        // SAFETY: in bounds (see `sub_base`); 128-byte aligned because subs_offset is a page and
        // sub_stride a multiple of 128 (256-byte blocks plus 64-byte slots × power-of-two depths
        // ≥ 2); made only of atomics and padding, valid for any bit pattern.
        unsafe { &*(self.sub_base(i) as *const SubControl) }
    }

    fn ring_at(&self, off: u64, depth: u32) -> Ring<'_> {
        // SAFETY: `off` and `depth` come from the validated layout, so the indices and the `depth`
        // slots after them are in the mapping; both types are atomics only, valid for any bits;
        // alignment: the layout keeps every ring at a multiple of 64 from a page boundary, and
        // RingIndices' 128-byte alignment is satisfied because sub_stride and the offsets inside a
        // slot are multiples of 128 (256-byte blocks and 64-byte slots × power-of-two depths ≥ 2).
        unsafe {
            let idx = &*(self.base().add(off as usize) as *const RingIndices);
            let slots = core::slice::from_raw_parts(
                self.base()
                    .add(off as usize + core::mem::size_of::<RingIndices>())
                    as *const Slot,
                depth as usize,
            );
            Ring::new(idx, slots)
        }
    }

    /// Descriptor ring of subscriber slot `i`.
    pub fn desc_ring(&self, i: u32) -> Ring<'_> {
        let off = self.layout.subs_offset + self.layout.sub_stride * i as u64 + 256;
        assert!(i < self.layout.max_subscribers);
        self.ring_at(off, self.layout.ring_depth)
    }

    /// Return ring of subscriber slot `i`.
    pub fn ret_ring(&self, i: u32) -> Ring<'_> {
        assert!(i < self.layout.max_subscribers);
        let off = self.layout.subs_offset
            + self.layout.sub_stride * i as u64
            + 512
            + self.layout.ring_depth as u64 * 64;
        self.ring_at(off, self.layout.return_depth)
    }

    /// Pointer to chunk `c`'s payload.
    pub fn chunk_ptr(&self, c: u32) -> *mut u8 {
        assert!(c < self.layout.chunk_count);
        let off = self.layout.chunk_stride * c as u64;
        // SAFETY: `c < chunk_count`, so `off + chunk_stride` is within the slab (validated layout,
        // and the external mapping was made exactly `chunk_count × chunk_stride` long).
        unsafe { self.slab_base().add(off as usize) }
    }

    fn slab_base(&self) -> *mut u8 {
        match &self.ext {
            Some(m) => m.as_mut_ptr(),
            // SAFETY: chunks_offset is inside the segment mapping (validated layout).
            None => unsafe { self.base().add(self.layout.chunks_offset as usize) },
        }
    }

    /// Pointer to chunk `c`'s user header.
    pub fn user_header_ptr(&self, c: u32) -> *mut u8 {
        assert!(c < self.layout.chunk_count);
        let off = self.layout.uhdr_offset + self.layout.user_header_stride as u64 * c as u64;
        // SAFETY: `c < chunk_count`: in bounds of the validated layout.
        unsafe { self.base().add(off as usize) }
    }

    /// The slab: base and length of the chunk area (for GPU registration and DMA).
    pub fn slab(&self) -> (*mut u8, usize) {
        let len = self.layout.chunk_stride * self.layout.chunk_count as u64;
        (self.slab_base(), len as usize)
    }

    /// Removes the name if it still refers to this segment's object (never someone else's newer one).
    pub fn unlink_if_same(&self) {
        let path = format!("/dev/shm/{SHM_PREFIX}{}", self.channel);
        if let Ok(md) = std::fs::metadata(&path) {
            if std::os::unix::fs::MetadataExt::ino(&md) == self.inode {
                let _ = shm_unlink(shm_name(&self.channel).as_str());
            }
        }
    }
}

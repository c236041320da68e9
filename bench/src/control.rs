//! The control page: one small POSIX shared-memory object per measured pair of peers.
//!
//! The parent creates it (O_EXCL, mode 0600, one page, zero-filled by `ftruncate`), passes its name
//! to both peers on the command line and unlinks it once both have exited. It holds the start
//! barrier and the cache lines of the `floor` and `floor-touch` ping-pongs, each on its own 128-byte
//! line so the adjacent-line prefetcher does not couple them.

use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use memmap2::MmapMut;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;

/// Size of the shared object; one page.
const PAGE: usize = 4096;

/// One value alone on a 128-byte line (two 64-byte lines: the spatial prefetcher pulls pairs).
#[repr(C, align(128))]
pub struct Line<T>(pub T);

/// Layout of the control page. All-zero bytes are a valid value (atomics of zero).
#[repr(C)]
pub struct ControlPage {
    /// Arrival counter of the start barrier (each peer adds one per barrier round).
    pub barrier: Line<AtomicU32>,
    /// `floor`: the word the ping side writes.
    pub ping: Line<AtomicU64>,
    /// `floor`: the word the pong side writes.
    pub pong: Line<AtomicU64>,
    /// `floor-touch`: the ping side's one-byte "payload", on a line of its own.
    pub ping_payload: Line<AtomicU8>,
    /// `floor-touch`: the pong side's one-byte "payload".
    pub pong_payload: Line<AtomicU8>,
}

const _: () = assert!(std::mem::size_of::<ControlPage>() <= PAGE);

/// A mapped control page.
pub struct Control {
    map: MmapMut,
}

impl Control {
    /// Creates the object `name` (which must start with `/`), one zeroed page, mode 0600.
    pub fn create(name: &str) -> Result<Self> {
        let fd = shm_open(
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .with_context(|| format!("shm_open({name}) for the control page"))?;
        let file = File::from(fd);
        file.set_len(PAGE as u64)
            .with_context(|| format!("ftruncate({name})"))?;
        Self::map(&file, name)
    }

    /// Opens the object `name` that the parent created.
    pub fn open(name: &str) -> Result<Self> {
        let fd = shm_open(name, OFlag::O_RDWR, Mode::empty())
            .with_context(|| format!("shm_open({name}) for the control page"))?;
        let file = File::from(fd);
        let len = file.metadata()?.len();
        if len != PAGE as u64 {
            bail!("control page {name} has {len} bytes, expected {PAGE}");
        }
        Self::map(&file, name)
    }

    fn map(file: &File, name: &str) -> Result<Self> {
        // SAFETY: the object is private to this benchmark's process tree (unique name, mode 0600);
        // nobody truncates it while mapped, and we only access it through atomics.
        let map = unsafe { MmapMut::map_mut(file) }.with_context(|| format!("mmap({name})"))?;
        Ok(Self { map })
    }

    /// Removes the name `name`; mappings stay valid.
    pub fn unlink(name: &str) -> Result<()> {
        shm_unlink(name).with_context(|| format!("shm_unlink({name})"))
    }

    /// The page's contents.
    pub fn page(&self) -> &ControlPage {
        debug_assert!(self.map.len() >= std::mem::size_of::<ControlPage>());
        // SAFETY: the mapping is page-aligned (so aligned for ControlPage), at least PAGE bytes
        // long (checked in `open`/set in `create`), lives as long as `self`, and every bit pattern
        // is a valid ControlPage (it holds only atomic integers). Shared mutation goes through
        // the atomics only.
        unsafe { &*self.map.as_ptr().cast::<ControlPage>() }
    }

    /// Start barrier between the two peers, round `round` (1, 2, ...): arrive, then spin until the
    /// other peer has arrived too. Gives up after `timeout` so a failed peer cannot hang us.
    pub fn barrier(&self, round: u32, timeout: Duration) -> Result<()> {
        let b = &self.page().barrier.0;
        b.fetch_add(1, Ordering::AcqRel);
        let target = 2 * round;
        let deadline = Instant::now() + timeout;
        let mut spins = 0u32;
        // SYNC: AcqRel add / Acquire load: everything a peer set up before arriving is visible.
        while b.load(Ordering::Acquire) < target {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 && Instant::now() > deadline {
                bail!("the other peer did not reach barrier round {round} within {timeout:?}");
            }
        }
        Ok(())
    }
}

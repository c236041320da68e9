//! Page-aligned anonymous host memory, optionally `mlock`ed: the staging slots of the host
//! backend, and the slabs that tests, the benchmark and the device check use.

use std::ptr::NonNull;

use crate::error::BridgeError;

/// A page-aligned, zero-filled, prefaulted anonymous mapping.
#[derive(Debug)]
pub struct PageBuffer {
    /// Start of the mapping; page-aligned, valid for `len` bytes until drop.
    ptr: NonNull<u8>,
    /// Length in bytes (> 0).
    len: usize,
    locked: bool,
}

// SAFETY: the buffer exclusively owns its mapping; moving the owner to another thread moves
// that ownership, and `&PageBuffer` only hands out shared byte slices.
unsafe impl Send for PageBuffer {}
// SAFETY: shared references only allow reads of plain bytes.
unsafe impl Sync for PageBuffer {}

impl PageBuffer {
    /// Maps `len` bytes (> 0) and touches every page. With `lock`, also `mlock`s them; a
    /// failed lock is an error (RLIMIT_MEMLOCK), never a silent downgrade.
    ///
    /// # Errors
    /// [`BridgeError::HostMemory`] when `len` is 0 or mmap/mlock fails.
    pub fn new(len: usize, lock: bool) -> Result<Self, BridgeError> {
        if len == 0 {
            return Err(BridgeError::HostMemory("zero-length buffer".into()));
        }
        // SAFETY: an anonymous private mapping with no address hint has no preconditions.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(BridgeError::HostMemory(format!(
                "mmap of {len} bytes: {}",
                std::io::Error::last_os_error()
            )));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| BridgeError::HostMemory("mmap returned null".into()))?;
        let mut buf = PageBuffer {
            ptr,
            len,
            locked: false,
        };
        if lock {
            // SAFETY: the range is exactly our live mapping.
            if unsafe { libc::mlock(p, len) } != 0 {
                return Err(BridgeError::HostMemory(format!(
                    "mlock of {len} bytes: {} (raise RLIMIT_MEMLOCK)",
                    std::io::Error::last_os_error()
                )));
            }
            buf.locked = true;
        }
        Ok(buf)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (a buffer has at least one byte); present for API symmetry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the pages are `mlock`ed.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Base pointer.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Mutable base pointer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised (zero-filled) bytes while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no reference to it outlives `self`; munlock is
        // implied by munmap.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Copies the first `min(dst.len(), src.len())` bytes of `src` into `dst` with the platform
/// `memcpy` (the bounce path's CPU leg).
pub fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
}

//! Helpers shared by the integration tests: a real POSIX shared-memory slab, mapped twice
//! (a producer view and a consumer view), and a watchdog.

#![allow(dead_code)]

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A /dev/shm segment with two independent mappings, unlinked on drop.
pub struct ShmSlab {
    name: CString,
    len: usize,
    producer: *mut u8,
    consumer: *mut u8,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl ShmSlab {
    pub fn new(len: usize) -> Self {
        let name = CString::new(format!(
            "/gpu-bridge-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
        .unwrap();
        // SAFETY: plain libc calls on a fresh, uniquely named object; every result checked.
        unsafe {
            let fd = libc::shm_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600,
            );
            assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            let map = || {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                p.cast::<u8>()
            };
            let producer = map();
            let consumer = map();
            libc::close(fd);
            ShmSlab {
                name,
                len,
                producer,
                consumer,
            }
        }
    }

    /// The POSIX name, e.g. "/gpu-bridge-test-1-0" (the file is /dev/shm/<name without '/'>).
    pub fn name(&self) -> &str {
        self.name.to_str().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The consumer's view: what the bridge registers.
    pub fn consumer_ptr(&self) -> *const u8 {
        self.consumer
    }

    /// Writes through the producer's mapping.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: in bounds of the live producer mapping; tests write only chunks they own.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.producer.add(offset), bytes.len())
        }
    }

    /// Reads through the consumer's mapping.
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        // SAFETY: in bounds of the live consumer mapping.
        unsafe { std::slice::from_raw_parts(self.consumer.add(offset), len) }.to_vec()
    }
}

impl Drop for ShmSlab {
    fn drop(&mut self) {
        // SAFETY: our mappings and our name.
        unsafe {
            libc::munmap(self.producer.cast(), self.len);
            libc::munmap(self.consumer.cast(), self.len);
            libc::shm_unlink(self.name.as_ptr());
        }
    }
}

/// A frame's bytes: a pattern that differs per frame number.
pub fn frame(n: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_add(n * 97) as u8 ^ (i >> 8) as u8)
        .collect()
}

/// Aborts the test process if `f` runs longer than `limit` (a hang, not a slow run).
pub fn with_watchdog<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let dog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: test hung for {limit:?}; aborting");
            std::process::abort();
        }
    });
    let r = f();
    let _ = tx.send(());
    let _ = dog.join();
    r
}

//! Futex wake-ups on words in the shared segment (process-shared futexes: no `FUTEX_PRIVATE_FLAG`).
//!
//! Protocol (a Dekker pair): the sleeper reads the futex word, announces itself in `waiting`, issues
//! a SeqCst fence, re-checks the ring, then sleeps only if the word is unchanged. The publisher
//! pushes, fences, and bumps + wakes only if `waiting != 0`. Either the sleeper sees the item or the
//! publisher sees the sleeper — never neither.

use std::time::Duration;

use crate::sync::AtomicU32;

/// Sleeps while `*word == expected`, at most `timeout`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word` (an AtomicU32 has u32 layout) and
    // sleeps; the timeout pointer is valid for the call. Errors (EAGAIN, EINTR, ETIMEDOUT) just
    // return to the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const AtomicU32 as *const u32,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes every sleeper on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it does not dereference user memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const AtomicU32 as *const u32,
            libc::FUTEX_WAKE,
            i32::MAX,
        );
    }
}

/// Layout of `struct futex_waitv` (linux/futex.h).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

const FUTEX2_SIZE_U32: u32 = 0x02;
/// Most words `futex_waitv` accepts.
pub(crate) const FUTEX_WAITV_MAX: usize = 128;

/// Sleeps until one of `words[i]` differs from `expected[i]` (or is woken), at most `timeout`.
/// Returns `false` when the kernel lacks `futex_waitv` (Linux < 5.16); callers then poll.
pub(crate) fn futex_waitv(words: &[&AtomicU32], expected: &[u32], timeout: Duration) -> bool {
    debug_assert_eq!(words.len(), expected.len());
    let n = words.len().min(FUTEX_WAITV_MAX);
    let mut v: [FutexWaitv; FUTEX_WAITV_MAX] = core::array::from_fn(|_| FutexWaitv {
        val: 0,
        uaddr: 0,
        flags: 0,
        reserved: 0,
    });
    for i in 0..n {
        v[i] = FutexWaitv {
            val: expected[i] as u64,
            uaddr: words[i] as *const AtomicU32 as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        };
    }
    // futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
    let deadline = crate::now_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `v[..n]` is a valid array of futex_waitv entries whose addresses are live, aligned
    // u32 words; `ts` is valid for the call. The kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            v.as_ptr(),
            n as libc::c_uint,
            0 as libc::c_uint,
            &ts as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    !(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Ordering;
    use std::sync::Arc;

    #[test]
    fn wait_returns_on_mismatch_and_wake() {
        let w = Arc::new(AtomicU32::new(5));
        // Value differs: returns at once.
        futex_wait(&w, 4, Duration::from_secs(5));
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.store(6, Ordering::Release);
            futex_wake_all(&w2);
        });
        while w.load(Ordering::Acquire) == 5 {
            futex_wait(&w, 5, Duration::from_secs(5));
        }
        t.join().unwrap();
        assert_eq!(w.load(Ordering::Acquire), 6);
        let a = AtomicU32::new(1);
        let b = AtomicU32::new(2);
        // Mismatch on the second word: returns at once (supported kernels) or reports ENOSYS.
        let _supported = futex_waitv(&[&a, &b], &[1, 3], Duration::from_secs(5));
    }
}

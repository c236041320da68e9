//! A counting global allocator, per thread, to prove that a real-time loop does not allocate.
//!
//! A test (or a node binary) installs it with
//! `#[global_allocator] static A: fusion::alloc_check::CountingAllocator = fusion::alloc_check::CountingAllocator;`.
//! Every allocation, reallocation and free then bumps a counter of the calling thread, read with
//! [`thread_counts`]. The fusion thread samples its own counts after warm-up and again periodically and
//! publishes the difference in its stats; where the allocator is not installed, [`installed`] is false and
//! the counts stay 0.
//!
//! The counters are `const`-initialised thread-locals without destructors, so counting itself never
//! allocates and works during thread start-up and tear-down.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator plus per-thread counters.
pub struct CountingAllocator;

#[inline]
fn bump(c: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = c.try_with(|c| c.set(c.get() + 1));
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counters touch only const-initialised thread-locals (no allocation, no
// re-entrancy into the allocator).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(&FREES);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&ALLOCS);
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocation counts of one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllocCounts {
    /// Allocations and reallocations.
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
}

impl AllocCounts {
    /// Growth from `earlier` to `self`.
    pub fn since(&self, earlier: &AllocCounts) -> AllocCounts {
        AllocCounts {
            allocs: self.allocs.saturating_sub(earlier.allocs),
            frees: self.frees.saturating_sub(earlier.frees),
        }
    }
}

/// The calling thread's counts so far (0 unless [`CountingAllocator`] is the global allocator).
pub fn thread_counts() -> AllocCounts {
    AllocCounts {
        allocs: ALLOCS.try_with(Cell::get).unwrap_or(0),
        frees: FREES.try_with(Cell::get).unwrap_or(0),
    }
}

/// True once any allocation went through [`CountingAllocator`] (it is the global allocator).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

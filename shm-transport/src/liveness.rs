//! Peer liveness: one monitor thread per process checks, every `RTFUSE_LIVENESS_PERIOD_US`
//! microseconds (default 1000), the file locks of the peers of every open channel end, and raises
//! flags that the data path reads with one relaxed atomic load. The data path itself never makes
//! the system call, so spin mode stays system-call free.
//!
//! A subscriber slot's death is reported together with the slot's attach count observed *before* the
//! lock was found free, so a flag raised for a dead occupant can never be mistaken for the next,
//! live occupant of the same slot.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::layout::{MAX_SUBSCRIBERS, SLOT_FREE};
use crate::segment::Segment;

/// What the monitor watches for one open channel end.
pub(crate) struct Watch {
    /// A duplicate of the end's descriptor (its own open file description would be wrong: OFD locks
    /// held by the end itself must conflict, so we use the end's description).
    pub fd: OwnedFd,
    pub kind: WatchKind,
    /// Publisher ends: per slot, `attach_count + 1` of an occupant found dead (0 = none).
    pub dead_slot: [AtomicU64; MAX_SUBSCRIBERS as usize],
    /// Subscriber ends: the publisher's lock was found free.
    pub publisher_dead: AtomicBool,
    /// Any flag raised since the end last looked (cheap check for the data path).
    pub raised: AtomicBool,
}

pub(crate) enum WatchKind {
    /// Watch the subscriber slots of this segment (the watch keeps the mapping alive while the
    /// monitor thread reads the slots' control words).
    Publisher { seg: Arc<Segment> },
    /// Watch the publisher.
    Subscriber,
}

impl Watch {
    pub fn new(fd: OwnedFd, kind: WatchKind) -> Arc<Watch> {
        Arc::new(Watch {
            fd,
            kind,
            dead_slot: core::array::from_fn(|_| AtomicU64::new(0)),
            publisher_dead: AtomicBool::new(false),
            raised: AtomicBool::new(false),
        })
    }

    /// Runs one check now (the monitor calls this; tests and admin tools may too).
    pub fn check(&self) {
        match &self.kind {
            WatchKind::Publisher { seg } => {
                for i in 0..seg.layout.max_subscribers as usize {
                    let ctl = seg.control(i as u32);
                    let attach = ctl.attach_count.load(Ordering::Acquire);
                    if ctl.state.load(Ordering::Acquire) == SLOT_FREE {
                        continue;
                    }
                    if !crate::segment::byte_is_locked(&self.fd, 1 + i as u64) {
                        self.dead_slot[i].store(attach.wrapping_add(1), Ordering::Release);
                        self.raised.store(true, Ordering::Release);
                    }
                }
            }
            WatchKind::Subscriber => {
                if !self.publisher_dead.load(Ordering::Relaxed)
                    && !crate::segment::byte_is_locked(&self.fd, 0)
                {
                    self.publisher_dead.store(true, Ordering::Release);
                    self.raised.store(true, Ordering::Release);
                }
            }
        }
    }
}

struct Monitor {
    watches: Mutex<Vec<Weak<Watch>>>,
}

fn monitor() -> &'static Monitor {
    static M: OnceLock<&'static Monitor> = OnceLock::new();
    M.get_or_init(|| {
        let m: &'static Monitor = Box::leak(Box::new(Monitor {
            watches: Mutex::new(Vec::new()),
        }));
        let period = std::env::var("RTFUSE_LIVENESS_PERIOD_US")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1000)
            .clamp(100, 1_000_000);
        std::thread::Builder::new()
            .name("rtfuse-liveness".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_micros(period));
                let mut list = match m.watches.lock() {
                    Ok(l) => l,
                    Err(p) => p.into_inner(),
                };
                list.retain(|w| match w.upgrade() {
                    Some(watch) => {
                        watch.check();
                        true
                    }
                    None => false,
                });
            })
            .expect("spawn the rtfuse liveness monitor thread");
        m
    })
}

/// Registers a watch with the process's monitor thread (started on first use).
pub(crate) fn register(w: &Arc<Watch>) {
    let m = monitor();
    let mut list = match m.watches.lock() {
        Ok(l) => l,
        Err(p) => p.into_inner(),
    };
    list.push(Arc::downgrade(w));
}

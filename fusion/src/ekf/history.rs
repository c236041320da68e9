//! The bounded history behind out-of-sequence measurements: robot_localization's `smooth_lagged_data`
//! (`RosFilter::revertTo`, `filter_state_history_`, `measurement_history_`), in a fixed-capacity
//! ring allocated once.
//!
//! Every measurement the filter applies is kept with the state it produced, in stamp order. A
//! measurement older than the filter time is inserted at its place; the filter restores the state
//! before that place, applies it, and re-applies the later measurements. The oldest entries leave
//! when the ring is full or older than the window; the state they produced becomes the *base*, the
//! oldest state a rewind can restore. A measurement older than the base is too late.

use super::{Correction, Covariance, EkfError, Measurement, State, STATE_SIZE};

/// How far back the filter takes out-of-sequence measurements (robot_localization's
/// `smooth_lagged_data: true` with `history_length`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagWindow {
    /// Measurements up to this many seconds older than the newest one are fused at their stamp;
    /// older ones are dropped and counted ([`super::EkfStats::too_late`]).
    pub seconds: f64,
    /// Most measurements kept (allocated up front, about 4 KiB each). A late measurement costs a
    /// re-application of every kept measurement after its stamp: this bounds that work too.
    pub capacity: usize,
}

impl Default for LagWindow {
    /// Half a second, at most 512 measurements (the demo's IMU and odometry for 1.1 s).
    fn default() -> Self {
        LagWindow {
            seconds: 0.5,
            capacity: 512,
        }
    }
}

/// The filter at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Snapshot {
    pub t: f64,
    pub x: State,
    pub p: Covariance,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            t: 0.0,
            x: State::zeros(),
            p: Covariance::zeros(),
        }
    }
}

/// A measurement of any dimension, padded to the state size, so one ring holds them all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stored {
    pub t: f64,
    /// Dimension; the first `dim` entries of each array are used. In `0..=STATE_SIZE`.
    pub dim: usize,
    indices: [usize; STATE_SIZE],
    values: State,
    covariance: Covariance,
    threshold: f64,
}

impl Default for Stored {
    fn default() -> Self {
        Stored {
            t: 0.0,
            dim: 0,
            indices: [0; STATE_SIZE],
            values: State::zeros(),
            covariance: Covariance::zeros(),
            threshold: f64::INFINITY,
        }
    }
}

impl Stored {
    /// `m` padded. `M ≤ STATE_SIZE` holds for every validated measurement (distinct indices below
    /// `STATE_SIZE`); larger ones are cut (never stored: the filter validates first).
    pub fn new<const M: usize>(m: &Measurement<M>) -> Stored {
        debug_assert!(M <= STATE_SIZE);
        let mut s = Stored {
            t: m.t,
            dim: M.min(STATE_SIZE),
            threshold: m.mahalanobis_threshold,
            ..Stored::default()
        };
        for a in 0..s.dim {
            s.indices[a] = m.indices[a];
            s.values[a] = m.values[a];
            for b in 0..s.dim {
                s.covariance[(a, b)] = m.covariance[(a, b)];
            }
        }
        s
    }

    /// The measurement back at its own size (`M == self.dim`).
    fn fixed<const M: usize>(&self) -> Measurement<M> {
        debug_assert_eq!(M, self.dim);
        Measurement {
            t: self.t,
            indices: std::array::from_fn(|a| self.indices[a]),
            values: nalgebra::SVector::from_fn(|a, _| self.values[a]),
            covariance: nalgebra::SMatrix::from_fn(|a, b| self.covariance[(a, b)]),
            mahalanobis_threshold: self.threshold,
        }
    }

    /// Calls `f` with the measurement at its own size.
    pub fn with_fixed<R>(&self, f: impl FixedFn<R>) -> R {
        macro_rules! by_dim {
            ($($n:literal)+) => {
                match self.dim {
                    $($n => f.call(&self.fixed::<$n>()),)+
                    _ => unreachable!("stored dimension {} > STATE_SIZE", self.dim),
                }
            };
        }
        by_dim!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    }
}

/// A function generic over the measurement size (what a closure cannot be).
pub(super) trait FixedFn<R> {
    fn call<const M: usize>(self, m: &Measurement<M>) -> R;
}

/// What applying a measurement did, kept so that re-applying it can correct the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Outcome {
    #[default]
    Accepted,
    Rejected,
    Failed,
}

impl Outcome {
    pub fn of(r: &Result<Correction, EkfError>) -> Outcome {
        match r {
            Ok(Correction::Accepted { .. }) => Outcome::Accepted,
            Ok(Correction::Rejected { .. }) => Outcome::Rejected,
            Ok(Correction::TooLate) | Err(_) => Outcome::Failed,
        }
    }
}

/// One applied measurement and the state right after it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Entry {
    pub m: Stored,
    pub outcome: Outcome,
    pub after: Snapshot,
}

/// The ring. Entries are in stamp order (equal stamps in the order they were applied).
#[derive(Clone)]
pub(super) struct History {
    buf: Box<[Entry]>,
    /// Index of the oldest entry: in `0..buf.len()`.
    head: usize,
    /// Entries held: in `0..=buf.len()`.
    len: usize,
    /// The state before the oldest entry; `None` until the filter has a time.
    base: Option<Snapshot>,
    window_s: f64,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("capacity", &self.buf.len())
            .field("len", &self.len)
            .field("base_t", &self.base.map(|b| b.t))
            .field("window_s", &self.window_s)
            .finish()
    }
}

impl History {
    /// Allocates and writes every entry now, so that the pages are resident before the real-time
    /// loop uses them. `None` for a zero capacity.
    pub fn new(w: LagWindow) -> Option<History> {
        (w.capacity > 0).then(|| History {
            buf: vec![Entry::default(); w.capacity].into_boxed_slice(),
            head: 0,
            len: 0,
            base: None,
            window_s: if w.seconds.is_nan() { 0.0 } else { w.seconds },
        })
    }

    fn slot(&self, i: usize) -> usize {
        debug_assert!(i < self.buf.len() && self.head < self.buf.len());
        (self.head + i) % self.buf.len()
    }

    /// Forgets every entry; `base` is what a rewind restores from now on.
    pub fn restart(&mut self, base: Option<Snapshot>) {
        self.len = 0;
        self.base = base;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Entry `i` (0 = oldest).
    pub fn get(&self, i: usize) -> &Entry {
        debug_assert!(i < self.len);
        &self.buf[self.slot(i)]
    }

    fn get_mut(&mut self, i: usize) -> &mut Entry {
        debug_assert!(i < self.len);
        let s = self.slot(i);
        &mut self.buf[s]
    }

    /// Records a re-application of entry `i`.
    pub fn update(&mut self, i: usize, outcome: Outcome, after: Snapshot) {
        let e = self.get_mut(i);
        e.outcome = outcome;
        e.after = after;
    }

    /// Drops the oldest entry; its state becomes the base.
    fn pop_oldest(&mut self) {
        if self.len > 0 {
            self.base = Some(self.buf[self.head].after);
            self.head = (self.head + 1) % self.buf.len();
            self.len -= 1;
        }
    }

    /// Frees a slot if the ring is full (before an insertion, so that the rewind target is chosen
    /// among what will still be kept).
    pub fn make_room(&mut self) {
        if self.len == self.buf.len() {
            self.pop_oldest();
        }
    }

    /// Where a measurement stamped `t` goes (after every entry stamped at or before `t`) and the
    /// state to restore before applying it; `None` if `t` is older than the base.
    pub fn rewind_point(&self, t: f64) -> Option<(usize, Snapshot)> {
        let base = self.base?;
        let mut p = self.len;
        while p > 0 && self.get(p - 1).m.t > t {
            p -= 1;
        }
        if p == 0 {
            (t >= base.t).then_some((0, base))
        } else {
            Some((p, self.get(p - 1).after))
        }
    }

    /// Inserts `e` at position `p`, moving the later entries up. Needs a free slot ([`Self::make_room`]).
    pub fn insert(&mut self, p: usize, e: Entry) {
        debug_assert!(p <= self.len && self.len < self.buf.len());
        for i in (p..self.len).rev() {
            let (from, to) = (self.slot(i), (self.slot(i) + 1) % self.buf.len());
            self.buf[to] = self.buf[from];
        }
        self.len += 1;
        *self.get_mut(p) = e;
    }

    /// Appends the newest entry, then drops what the capacity and the window no longer keep.
    pub fn push(&mut self, e: Entry) {
        self.make_room();
        let t = e.m.t;
        self.insert(self.len, e);
        let cutoff = t - self.window_s;
        while self.len > 0 && self.base.is_some_and(|b| b.t < cutoff) {
            self.pop_oldest();
        }
    }
}

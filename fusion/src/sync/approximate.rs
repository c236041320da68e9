//! The ApproximateTime policy: a line-by-line port of `message_filters::sync_policies::ApproximateTime`
//! (ros2/message_filters, `approximate_time.hpp`), with bounded queues.
//!
//! The algorithm (from the ROS wiki page "message_filters/ApproximateTime"): the *size* of a set is its
//! latest stamp minus its earliest. Among the heads of all queues the latest becomes the *pivot*; every set
//! that can still be formed after the previously published set must contain a message at or after the
//! pivot. The policy walks candidates (moving the earliest head into `past`) and keeps the smallest,
//! comparing a later candidate's growth at the end, scaled by `1 + age_penalty`, against its shrink at
//! the start. It publishes as soon as no later candidate can beat the current one: when the earliest head
//! is the pivot itself, when the growth at the end already exceeds the room before the pivot, or — using
//! the per-stream inter-message lower bounds to predict the earliest possible next stamp on an empty
//! queue ("virtual" moves) — when even the optimistic future cannot do better.
//!
//! Guarantees (wiki), which the tests check: each message is used at most once; sets do not cross (per
//! stream, published stamps increase); sets are contiguous (between two consecutive sets at least one
//! stream drops nothing); with `age_penalty = 0` each set is of minimal size among the sets contiguous to the
//! previously published one; the output depends only on the stamps, not on the arrival interleaving of
//! streams (given queues large enough not to overflow).
//!
//! Differences from the C++ (documented, deliberate): a message whose stamp is older than the newest on
//! its stream is refused with [`AddError::OutOfOrder`] (the C++ only warns and its guarantees then fail);
//! dropped messages are handed back ([`SyncEvent::Dropped`]) instead of being freed by reference counting;
//! the inter-message bound check counts violations ([`ApproximateTime::bound_violations`]) instead of
//! logging once.

use super::{check_sizes, AddError, ConfigError, Stamped, SyncEvent};
use heapless::Deque;

/// The current candidate set (C++: `candidate_start_`, `candidate_end_`, `pivot_`, `pivot_time_`). Its
/// messages are not stored: they are the heads of the queues once `past` is pushed back.
#[derive(Debug, Clone, Copy)]
struct Candidate<const N: usize> {
    start: i64,
    end: i64,
    pivot: usize,
    pivot_time: i64,
    stamps: [i64; N],
}

/// ApproximateTime synchroniser for `N` streams with per-stream capacity `Q` (queue size ≤ `Q - 1`).
///
/// # Examples
/// ```
/// use fusion::sync::{ApproximateTime, SyncEvent};
/// let mut sync = ApproximateTime::<u32, 2, 8>::new(5, 0.1).unwrap();
/// let mut sets = Vec::new();
/// let mut sink = |e: SyncEvent<u32, 2>| if let SyncEvent::Set(s) = e { sets.push(s.map(|m| m.msg)) };
/// sync.add(0, 1_000, 10, &mut sink).unwrap();
/// sync.add(1, 1_010, 20, &mut sink).unwrap();
/// sync.add(0, 2_000, 11, &mut sink).unwrap();
/// sync.add(1, 2_005, 21, &mut sink).unwrap();
/// assert_eq!(sets, vec![[10, 20]]);
/// ```
#[derive(Debug)]
pub struct ApproximateTime<M, const N: usize, const Q: usize> {
    /// Maximum of `deques[i].len() + past[i].len()` after an `add` returns; `1 ..= Q - 1`.
    queue_size: usize,
    deques: [Deque<Stamped<M>, Q>; N],
    /// Messages moved aside while searching candidates for the current pivot, oldest first.
    past: [Deque<Stamped<M>, Q>; N],
    candidate: Option<Candidate<N>>,
    max_interval: i64,
    age_penalty: f64,
    has_dropped: [bool; N],
    lower_bounds: [i64; N],
    newest: [Option<i64>; N],
    bound_violations: [u64; N],
}

impl<M, const N: usize, const Q: usize> ApproximateTime<M, N, Q> {
    /// A synchroniser with the given queue size (per stream, as in the C++ constructor) and age penalty
    /// (the C++ default is 0.1; here it must be chosen). No maximum interval, no inter-message bounds.
    ///
    /// # Errors
    /// [`ConfigError`] for `N < 2`, a queue size outside `1 ..= Q - 1`, or a negative / non-finite penalty.
    pub fn new(queue_size: usize, age_penalty: f64) -> Result<Self, ConfigError> {
        check_sizes(N, Q, queue_size)?;
        let mut s = Self {
            queue_size,
            deques: core::array::from_fn(|_| Deque::new()),
            past: core::array::from_fn(|_| Deque::new()),
            candidate: None,
            // C++: Duration(INT32_MAX s, 999999999 ns).
            max_interval: i64::from(i32::MAX) * 1_000_000_000 + 999_999_999,
            age_penalty: 0.0,
            has_dropped: [false; N],
            lower_bounds: [0; N],
            newest: [None; N],
            bound_violations: [0; N],
        };
        s.set_age_penalty(age_penalty)?;
        Ok(s)
    }

    /// Sets the age penalty (≥ 0): later candidates' growth is scaled by `1 + age_penalty`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidParameter`] if negative or not finite.
    pub fn set_age_penalty(&mut self, age_penalty: f64) -> Result<(), ConfigError> {
        if !(age_penalty.is_finite() && age_penalty >= 0.0) {
            return Err(ConfigError::InvalidParameter(
                "age penalty must be finite and >= 0",
            ));
        }
        self.age_penalty = age_penalty;
        Ok(())
    }

    /// Sets the maximum size (latest minus earliest stamp, ns) of a published set.
    ///
    /// # Errors
    /// [`ConfigError::InvalidParameter`] if negative.
    pub fn set_max_interval(&mut self, ns: i64) -> Result<(), ConfigError> {
        if ns < 0 {
            return Err(ConfigError::InvalidParameter("max interval must be >= 0"));
        }
        self.max_interval = ns;
        Ok(())
    }

    /// Declares that consecutive messages of `stream` are at least `ns` apart, which lets the policy
    /// publish earlier (it never changes which sets are published if the bound is true).
    ///
    /// # Errors
    /// [`ConfigError::InvalidParameter`] if negative or `stream >= N`.
    pub fn set_inter_message_lower_bound(
        &mut self,
        stream: usize,
        ns: i64,
    ) -> Result<(), ConfigError> {
        if ns < 0 || stream >= N {
            return Err(ConfigError::InvalidParameter(
                "lower bound must be >= 0 on an existing stream",
            ));
        }
        self.lower_bounds[stream] = ns;
        Ok(())
    }

    /// How many times each stream's messages came closer together than its declared lower bound.
    pub fn bound_violations(&self) -> [u64; N] {
        self.bound_violations
    }

    /// Messages currently held for `stream` (queued plus set aside); 0 for an unknown stream.
    pub fn held(&self, stream: usize) -> usize {
        self.deques.get(stream).map_or(0, |d| d.len())
            + self.past.get(stream).map_or(0, |p| p.len())
    }

    /// Adds a message of `stream`; every set it completes and every message it makes useless is passed
    /// to `out` before this returns. Allocation-free.
    ///
    /// # Errors
    /// [`AddError`] (with the message handed back) for an unknown stream or a stamp older than the
    /// newest already added on that stream.
    pub fn add(
        &mut self,
        stream: usize,
        stamp: i64,
        msg: M,
        out: &mut impl FnMut(SyncEvent<M, N>),
    ) -> Result<(), AddError<M>> {
        let msg = Stamped { stamp, msg };
        if stream >= N {
            return Err(AddError::NoSuchStream { stream, n: N, msg });
        }
        if let Some(previous) = self.newest[stream] {
            if stamp < previous {
                return Err(AddError::OutOfOrder {
                    stream,
                    stamp,
                    previous,
                    msg,
                });
            }
        }
        self.newest[stream] = Some(stamp);
        if let Err(msg) = self.deques[stream].push_back(msg) {
            // Unreachable while held(stream) <= queue_size < Q; hand it back rather than lose it.
            out(SyncEvent::Dropped { stream, msg });
            return Ok(());
        }
        if self.deques[stream].len() == 1 {
            if self.non_empty() == N {
                self.process(out);
            }
        } else {
            self.check_inter_message_bound(stream);
        }
        if self.held(stream) > self.queue_size {
            // Cancel the ongoing candidate search, drop the oldest message of the offending stream.
            self.recover_all();
            if let Some(msg) = self.deques[stream].pop_front() {
                out(SyncEvent::Dropped { stream, msg });
            }
            self.has_dropped[stream] = true;
            if self.candidate.take().is_some() {
                self.process(out);
            }
        }
        Ok(())
    }

    /// Hands back every held message as [`SyncEvent::Dropped`] (oldest first per stream) and forgets the
    /// candidate; the policy is then as new (parameters and per-stream order check kept).
    pub fn drain(&mut self, out: &mut impl FnMut(SyncEvent<M, N>)) {
        self.recover_all();
        self.candidate = None;
        for (stream, d) in self.deques.iter_mut().enumerate() {
            while let Some(msg) = d.pop_front() {
                out(SyncEvent::Dropped { stream, msg });
            }
        }
        self.has_dropped = [false; N];
    }

    fn head_stamps(&self) -> [i64; N] {
        core::array::from_fn(|i| self.deques[i].front().map_or(i64::MIN, |m| m.stamp))
    }

    fn non_empty(&self) -> usize {
        self.deques.iter().filter(|d| !d.is_empty()).count()
    }

    /// `(d * (1 + age_penalty))` truncated toward zero, as `rclcpp::Duration::operator*(double)` does.
    fn penalised(&self, d: i64) -> i64 {
        (d as f64 * (1.0 + self.age_penalty)) as i64
    }

    fn check_inter_message_bound(&mut self, i: usize) {
        let d = &self.deques[i];
        let (Some(last), Some(prev)) = (d.back(), d.iter().rev().nth(1)) else {
            return;
        };
        if last.stamp.saturating_sub(prev.stamp) < self.lower_bounds[i] {
            self.bound_violations[i] += 1;
        }
    }

    /// Earliest (`end == false`) or latest (`end == true`) head; ties go to the lowest index for the start
    /// and the highest for the end, as in the C++. Assumes all queues are non-empty.
    fn boundary(&self, end: bool) -> (usize, i64) {
        self.pick(end, |i| {
            self.deques[i].front().map_or(i64::MAX, |m| m.stamp)
        })
    }

    /// The same over virtual times: an empty queue's next message is assumed at the earliest instant its
    /// lower bound allows, but not before the pivot.
    fn virtual_boundary(&self, end: bool, pivot_time: i64) -> (usize, i64) {
        self.pick(end, |i| match self.deques[i].front() {
            Some(m) => m.stamp,
            None => self.past[i].back().map_or(pivot_time, |m| {
                m.stamp.saturating_add(self.lower_bounds[i]).max(pivot_time)
            }),
        })
    }

    fn pick(&self, end: bool, time_of: impl Fn(usize) -> i64) -> (usize, i64) {
        let (mut index, mut time) = (0, time_of(0));
        for i in 1..N {
            let t = time_of(i);
            if (t < time) ^ end {
                time = t;
                index = i;
            }
        }
        (index, time)
    }

    fn delete_front(&mut self, stream: usize, out: &mut impl FnMut(SyncEvent<M, N>)) {
        if let Some(msg) = self.deques[stream].pop_front() {
            out(SyncEvent::Dropped { stream, msg });
        }
    }

    fn move_front_to_past(&mut self, stream: usize) {
        if let Some(m) = self.deques[stream].pop_front() {
            // Cannot fail: deque and past of a stream together hold at most queue_size + 1 <= Q.
            let pushed = self.past[stream].push_back(m);
            debug_assert!(pushed.is_ok());
        }
    }

    /// The current heads become the candidate; messages set aside for the previous candidate are dropped.
    fn make_candidate(&mut self, out: &mut impl FnMut(SyncEvent<M, N>)) {
        for (stream, p) in self.past.iter_mut().enumerate() {
            while let Some(msg) = p.pop_front() {
                out(SyncEvent::Dropped { stream, msg });
            }
        }
    }

    fn recover(&mut self, stream: usize, mut count: usize) {
        while count > 0 {
            let Some(m) = self.past[stream].pop_back() else {
                break;
            };
            let pushed = self.deques[stream].push_front(m);
            debug_assert!(pushed.is_ok());
            count -= 1;
        }
    }

    fn recover_all(&mut self) {
        for i in 0..N {
            self.recover(i, usize::MAX);
        }
    }

    /// Publishes the candidate: after recovering the set-aside messages, the heads are its messages.
    fn publish(&mut self, out: &mut impl FnMut(SyncEvent<M, N>)) {
        let cand = self.candidate.take();
        self.recover_all();
        let heads: [Option<Stamped<M>>; N] = core::array::from_fn(|i| self.deques[i].pop_front());
        if heads.iter().all(Option::is_some) {
            let set = heads.map(|h| h.expect("checked: all heads present"));
            debug_assert!(cand.is_none_or(|c| c.stamps == set.each_ref().map(|m| m.stamp)));
            out(SyncEvent::Set(set));
        } else {
            for (stream, h) in heads.into_iter().enumerate() {
                if let Some(msg) = h {
                    out(SyncEvent::Dropped { stream, msg });
                }
            }
        }
    }

    fn process(&mut self, out: &mut impl FnMut(SyncEvent<M, N>)) {
        while self.non_empty() == N {
            let (end_index, end_time) = self.boundary(true);
            let (start_index, start_time) = self.boundary(false);
            for (i, d) in self.has_dropped.iter_mut().enumerate() {
                if i != end_index {
                    // No dropped message could have been better than the ones we have.
                    *d = false;
                }
            }
            match self.candidate {
                None => {
                    if end_time - start_time > self.max_interval || self.has_dropped[end_index] {
                        // Too big to be a candidate, or the pivot stream lost messages: move on.
                        self.delete_front(start_index, out);
                        continue;
                    }
                    let stamps = self.head_stamps();
                    self.make_candidate(out);
                    self.candidate = Some(Candidate {
                        start: start_time,
                        end: end_time,
                        pivot: end_index,
                        pivot_time: end_time,
                        stamps,
                    });
                    self.move_front_to_past(start_index);
                }
                Some(c) => {
                    if self.penalised(end_time - c.end) >= start_time - c.start {
                        // Not better than the current candidate.
                        self.move_front_to_past(start_index);
                    } else {
                        let stamps = self.head_stamps();
                        self.make_candidate(out);
                        self.candidate = Some(Candidate {
                            start: start_time,
                            end: end_time,
                            stamps,
                            ..c
                        });
                        self.move_front_to_past(start_index);
                    }
                }
            }
            let Some(c) = self.candidate else { continue };
            if start_index == c.pivot {
                // All candidates for this pivot have been seen.
                self.publish(out);
            } else if self.penalised(end_time - c.end) >= c.pivot_time - c.start {
                // Any later candidate contains [pivot_time, end_time], which is already too big.
                self.publish(out);
            } else if self.non_empty() < N {
                self.virtual_search(c, out);
            }
        }
    }

    /// Uses the inter-message lower bounds to try to prove the candidate optimal before more data arrive.
    fn virtual_search(&mut self, c: Candidate<N>, out: &mut impl FnMut(SyncEvent<M, N>)) {
        let mut moves = [0usize; N];
        loop {
            let (_, end_time) = self.virtual_boundary(true, c.pivot_time);
            let (start_index, start_time) = self.virtual_boundary(false, c.pivot_time);
            let grow = self.penalised(end_time - c.end);
            if grow >= c.pivot_time - c.start {
                self.publish(out);
                return;
            }
            if grow < start_time - c.start || self.deques[start_index].is_empty() {
                // An optimistic future candidate would be better: undo the virtual moves and wait.
                for (i, &n) in moves.iter().enumerate() {
                    self.recover(i, n);
                }
                return;
            }
            self.move_front_to_past(start_index);
            moves[start_index] += 1;
        }
    }
}

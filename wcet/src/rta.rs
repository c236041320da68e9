//! Response-time analysis for fixed-priority preemptive (SCHED_FIFO) threads on one core.
//!
//! The classic iteration with release jitter and blocking over busy windows that may hold more
//! than one job of the task under analysis (q > 0, needed when R > T):
//!
//! ```text
//! level-i busy window  L   = B_i + Σ_{j ∈ hep(i) ∪ {i}} ⌈(L + J_j)/T_j⌉·C_j
//! jobs in it           Q   = ⌈(L + J_i)/T_i⌉
//! finish of job q      w_q = B_i + (q+1)·C_i + Σ_{j ∈ hep(i)} ⌈(w_q + J_j)/T_j⌉·C_j     (q = 0 … Q-1)
//! response time        R_i = max_q ( w_q − q·T_i + J_i )
//! ```
//! Sources: J. P. Lehoczky, "Fixed priority scheduling of periodic task sets with arbitrary
//! deadlines", RTSS 1990 (busy windows, q > 0); K. Tindell, A. Burns, A. Wellings, "An extendible
//! approach for analysing fixed priority hard real-time tasks", Real-Time Systems 6(2), 1994
//! (release jitter, blocking). Tasks of *equal* priority are counted as interference (SCHED_FIFO
//! runs them in FIFO order; counting them in full is the safe side).
//!
//! A set whose busy window does not close (utilisation above 1, or no fixed point below the
//! iteration bound) has no response time: [`TaskStatus::Unbounded`] carries the reason and
//! `response_ns` is `None` — never a number that looks like a bound but is not one.
//!
//! The sporadic arrival curve with jitter used throughout is [`eta`]: η(Δ) = ⌈(Δ + J)/T⌉ jobs in
//! any half-open window of length Δ > 0.

use serde::{Deserialize, Serialize};

/// Most `per_q` entries kept in a [`BusyWindow`] (the analysis itself visits every q).
pub const MAX_Q_DETAILS: usize = 32;
/// Most jobs of the task under analysis one busy window may hold before the analysis gives up
/// (and reports [`Unbounded::IterationLimit`], never a number).
pub const MAX_JOBS: u64 = 1_000_000;
/// Most steps of one fixed-point iteration before it gives up the same way.
pub const MAX_STEPS: u32 = 1_000_000;

/// One fixed-priority task (or, for the fusion thread, one stream's work). Times in nanoseconds
/// (or any one unit used consistently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Name shown in results.
    #[serde(default)]
    pub name: String,
    /// Worst-case execution time per job.
    pub c: u64,
    /// Period or minimum inter-arrival time.
    pub t: u64,
    /// Release jitter.
    #[serde(default)]
    pub j: u64,
    /// SCHED_FIFO priority: larger runs first (1 … 99).
    #[serde(default)]
    pub priority: i32,
    /// Blocking by lower-priority work (non-preemptive sections, locks).
    #[serde(default)]
    pub b: u64,
    /// Relative deadline; `None` means D = T.
    #[serde(default)]
    pub d: Option<u64>,
}

/// A task as written in a task-set file: signed, so that negative numbers get a clear error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Name (defaults to `task<i>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Worst-case execution time.
    #[serde(alias = "C")]
    pub c: i64,
    /// Period.
    #[serde(alias = "T")]
    pub t: i64,
    /// Release jitter.
    #[serde(default, alias = "J")]
    pub j: i64,
    /// Priority, larger first.
    #[serde(default)]
    pub priority: i32,
    /// Blocking.
    #[serde(default, alias = "B")]
    pub b: i64,
    /// Deadline (default T).
    #[serde(default, alias = "D")]
    pub d: Option<i64>,
}

/// A task-set file: `{"tasks": [...]}` in JSON or `[[tasks]]` tables in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSetSpec {
    /// The tasks.
    pub tasks: Vec<TaskSpec>,
    /// Iteration bound on any busy window (default: see [`default_horizon`]).
    #[serde(default)]
    pub horizon: Option<u64>,
}

/// Errors in a task set (bad input; no analysis was attempted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtaError {
    /// The set has no tasks.
    #[error("the task set is empty")]
    Empty,
    /// A time was negative.
    #[error("task `{task}`: {field} = {value} is negative; times must be ≥ 0")]
    Negative {
        /// Task name.
        task: String,
        /// Field name.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// T was zero.
    #[error("task `{task}`: period T must be > 0")]
    ZeroPeriod {
        /// Task name.
        task: String,
    },
    /// C > T: the task alone needs more than the whole processor.
    #[error("task `{task}`: C = {c} > T = {t}; the task alone overloads the processor")]
    CostExceedsPeriod {
        /// Task name.
        task: String,
        /// Cost.
        c: u64,
        /// Period.
        t: u64,
    },
    /// The file could not be parsed.
    #[error("task set: {0}")]
    Parse(String),
}

impl TaskSetSpec {
    /// Parses JSON (text starting with `{`) or TOML.
    ///
    /// # Errors
    /// [`RtaError::Parse`] with the parser's message (TOML messages carry line and column).
    pub fn parse(text: &str) -> Result<Self, RtaError> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| RtaError::Parse(e.to_string()))
        } else {
            toml::from_str(text).map_err(|e| RtaError::Parse(e.to_string()))
        }
    }

    /// Checks every number and converts to [`Task`]s.
    ///
    /// # Errors
    /// Empty set, negative numbers, T = 0, C > T.
    pub fn validate(&self) -> Result<Vec<Task>, RtaError> {
        if self.tasks.is_empty() {
            return Err(RtaError::Empty);
        }
        let mut out = Vec::with_capacity(self.tasks.len());
        for (i, s) in self.tasks.iter().enumerate() {
            let name = s.name.clone().unwrap_or_else(|| format!("task{i}"));
            let nonneg = |field: &'static str, value: i64| {
                u64::try_from(value).map_err(|_| RtaError::Negative {
                    task: name.clone(),
                    field,
                    value,
                })
            };
            let task = Task {
                c: nonneg("C", s.c)?,
                t: nonneg("T", s.t)?,
                j: nonneg("J", s.j)?,
                b: nonneg("B", s.b)?,
                d: s.d.map(|d| nonneg("D", d)).transpose()?,
                priority: s.priority,
                name: name.clone(),
            };
            check_task(&task)?;
            out.push(task);
        }
        Ok(out)
    }
}

/// Checks T > 0 and C ≤ T.
///
/// # Errors
/// [`RtaError::ZeroPeriod`], [`RtaError::CostExceedsPeriod`].
pub fn check_task(t: &Task) -> Result<(), RtaError> {
    if t.t == 0 {
        return Err(RtaError::ZeroPeriod {
            task: t.name.clone(),
        });
    }
    if t.c > t.t {
        return Err(RtaError::CostExceedsPeriod {
            task: t.name.clone(),
            c: t.c,
            t: t.t,
        });
    }
    Ok(())
}

/// Sporadic arrival curve with jitter: at most η(Δ) = ⌈(Δ + J)/T⌉ jobs in a half-open window of
/// length Δ > 0 (0 for Δ = 0). Saturates instead of overflowing.
pub fn eta(delta: u64, period: u64, jitter: u64) -> u64 {
    if delta == 0 || period == 0 {
        return 0;
    }
    let num = u128::from(delta) + u128::from(jitter);
    u64::try_from(num.div_ceil(u128::from(period))).unwrap_or(u64::MAX)
}

/// Jobs that can arrive in a *closed* window of length Δ: ⌊(Δ + J)/T⌋ + 1.
pub fn eta_closed(delta: u64, period: u64, jitter: u64) -> u64 {
    if period == 0 {
        return u64::MAX;
    }
    let n = (u128::from(delta) + u128::from(jitter)) / u128::from(period) + 1;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Default iteration bound for a set: 1000 × the largest period plus the largest jitter.
pub fn default_horizon(tasks: &[Task]) -> u64 {
    let t = tasks.iter().map(|t| t.t).max().unwrap_or(1);
    let j = tasks.iter().map(|t| t.j).max().unwrap_or(0);
    t.saturating_mul(1000).saturating_add(j)
}

/// One interfering task's share of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interference {
    /// Interfering task.
    pub task: String,
    /// Its jobs counted, η(w).
    pub jobs: u64,
    /// Their time, jobs × C.
    pub time_ns: u64,
}

/// The analysis of one job q of the busy window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QResult {
    /// Job index in the busy window (0-based).
    pub q: u64,
    /// Finish time w_q measured from the start of the busy window.
    pub finish_ns: u64,
    /// Response time of that job from its nominal arrival, w_q − q·T + J.
    pub response_ns: u64,
    /// Response time from its earliest release, w_q − max(0, q·T − J).
    pub response_from_release_ns: u64,
}

/// Details of the level-i busy window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusyWindow {
    /// Length L of the busy window.
    pub length_ns: u64,
    /// Jobs of the task under analysis in it, Q.
    pub jobs: u64,
    /// The job q with the largest response time.
    pub worst_q: u64,
    /// Blocking counted.
    pub blocking_ns: u64,
    /// Interference of each higher-or-equal-priority task at the worst q.
    pub interference: Vec<Interference>,
    /// The first [`MAX_Q_DETAILS`] jobs (and the worst, if later).
    pub per_q: Vec<QResult>,
}

/// Why a task has no response time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unbounded {
    /// Utilisation of the task and everything of higher or equal priority exceeds 1.
    Overload {
        /// That utilisation.
        utilisation: f64,
    },
    /// The iteration passed the bound without reaching a fixed point.
    NoFixedPoint {
        /// The iteration bound.
        horizon_ns: u64,
    },
    /// The busy window holds more than [`MAX_JOBS`] jobs, or an iteration took more than
    /// [`MAX_STEPS`] steps: the analysis stops rather than run for hours.
    IterationLimit {
        /// Jobs in the busy window, where that was the limit hit.
        jobs: u64,
    },
}

/// Verdict for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// R ≤ D.
    Schedulable,
    /// R is a sound bound, but it exceeds the deadline.
    DeadlineMiss,
    /// No bound exists (or none was found below the horizon).
    Unbounded {
        /// Why.
        reason: Unbounded,
    },
}

/// Result for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Task name.
    pub name: String,
    /// Its priority.
    pub priority: i32,
    /// The verdict.
    pub status: TaskStatus,
    /// Worst-case response time from the nominal arrival (includes the task's own jitter,
    /// Tindell's R = J + w); `None` when unbounded.
    pub response_ns: Option<u64>,
    /// Worst-case response time from the job's release (the moment it became ready: for a
    /// stream, "DMA complete"); `None` when unbounded.
    pub response_from_release_ns: Option<u64>,
    /// The deadline used.
    pub deadline_ns: u64,
    /// Busy-window details; `None` when unbounded.
    pub busy_window: Option<BusyWindow>,
}

/// Result for a task set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetResult {
    /// True when every task has a bound within its deadline.
    pub schedulable: bool,
    /// Total utilisation Σ C/T.
    pub utilisation: f64,
    /// Per task, in input order.
    pub tasks: Vec<TaskResult>,
}

/// Analyses every task of a set (validated with [`check_task`] first).
///
/// # Errors
/// Bad tasks ([`RtaError`]); an unschedulable set is *not* an error, it is a result.
///
/// # Examples
/// ```
/// use wcet::rta::{analyze_set, Task};
/// // Lehoczky (1990), example 3: the worst case of the low task is its fifth job (q = 4).
/// let t = |name: &str, c, t, priority| Task { name: name.into(), c, t, j: 0, priority, b: 0, d: None };
/// let r = analyze_set(&[t("hi", 26, 70, 2), t("lo", 62, 100, 1)], None).unwrap();
/// assert_eq!(r.tasks[1].response_ns, Some(118));
/// assert_eq!(r.tasks[1].busy_window.as_ref().unwrap().worst_q, 4);
/// ```
pub fn analyze_set(tasks: &[Task], horizon: Option<u64>) -> Result<SetResult, RtaError> {
    if tasks.is_empty() {
        return Err(RtaError::Empty);
    }
    for t in tasks {
        check_task(t)?;
    }
    let horizon = horizon.unwrap_or_else(|| default_horizon(tasks));
    let results: Vec<TaskResult> = (0..tasks.len())
        .map(|i| {
            let hep: Vec<&Task> = tasks
                .iter()
                .enumerate()
                .filter(|&(k, o)| k != i && o.priority >= tasks[i].priority)
                .map(|(_, o)| o)
                .collect();
            analyze_task(&tasks[i], &hep, horizon)
        })
        .collect();
    Ok(SetResult {
        schedulable: results.iter().all(|r| r.status == TaskStatus::Schedulable),
        utilisation: utilisation(tasks.iter()),
        tasks: results,
    })
}

/// Σ C/T.
pub fn utilisation<'a>(tasks: impl Iterator<Item = &'a Task>) -> f64 {
    tasks.map(|t| t.c as f64 / t.t as f64).sum()
}

/// Least fixed point of `x = f(x)` from `start`: `Ok(None)` past `horizon`, `Err(())` after
/// [`MAX_STEPS`] steps.
fn fixed_point(start: u64, horizon: u64, f: impl Fn(u64) -> u64) -> Result<Option<u64>, ()> {
    let mut x = start;
    for _ in 0..MAX_STEPS {
        let next = f(x);
        if next > horizon {
            return Ok(None);
        }
        if next == x {
            return Ok(Some(x));
        }
        x = next;
    }
    Err(())
}

fn demand(hep: &[&Task], w: u64) -> u64 {
    hep.iter().fold(0u64, |acc, t| {
        acc.saturating_add(eta(w, t.t, t.j).saturating_mul(t.c))
    })
}

/// Analyses `tua` against the higher-or-equal-priority tasks `hep` (the caller chooses them).
/// The response time is measured from the nominal arrival (includes the task's own jitter).
pub fn analyze_task(tua: &Task, hep: &[&Task], horizon: u64) -> TaskResult {
    let deadline = tua.d.unwrap_or(tua.t);
    let unbounded = |reason| TaskResult {
        name: tua.name.clone(),
        priority: tua.priority,
        status: TaskStatus::Unbounded { reason },
        response_ns: None,
        response_from_release_ns: None,
        deadline_ns: deadline,
        busy_window: None,
    };
    let u = utilisation(hep.iter().copied().chain(std::iter::once(tua)));
    if u > 1.0 + 1e-12 {
        return unbounded(Unbounded::Overload { utilisation: u });
    }
    let start = hep
        .iter()
        .map(|t| t.c)
        .sum::<u64>()
        .saturating_add(tua.c)
        .saturating_add(tua.b)
        .max(1);
    let length = fixed_point(start, horizon, |l| {
        tua.b
            .saturating_add(eta(l, tua.t, tua.j).saturating_mul(tua.c))
            .saturating_add(demand(hep, l))
    });
    let length = match length {
        Ok(Some(l)) => l,
        Ok(None) => {
            return unbounded(Unbounded::NoFixedPoint {
                horizon_ns: horizon,
            })
        }
        Err(()) => return unbounded(Unbounded::IterationLimit { jobs: 0 }),
    };
    let jobs = eta(length, tua.t, tua.j).max(1);
    if jobs > MAX_JOBS {
        return unbounded(Unbounded::IterationLimit { jobs });
    }
    let mut per_q = Vec::new();
    let mut worst: Option<QResult> = None;
    let mut w = 0u64;
    let mut worst_release = 0u64;
    for q in 0..jobs {
        let own = tua.b.saturating_add((q + 1).saturating_mul(tua.c));
        let fin = match fixed_point(own.max(w).max(1), horizon, |w| {
            own.saturating_add(demand(hep, w))
        }) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return unbounded(Unbounded::NoFixedPoint {
                    horizon_ns: horizon,
                })
            }
            Err(()) => return unbounded(Unbounded::IterationLimit { jobs }),
        };
        w = fin;
        let response = fin
            .saturating_add(tua.j)
            .saturating_sub(q.saturating_mul(tua.t));
        let released = q.saturating_mul(tua.t).saturating_sub(tua.j);
        let qr = QResult {
            q,
            finish_ns: fin,
            response_ns: response,
            response_from_release_ns: fin - released.min(fin),
        };
        worst_release = worst_release.max(qr.response_from_release_ns);
        if per_q.len() < MAX_Q_DETAILS {
            per_q.push(qr.clone());
        }
        if worst.as_ref().is_none_or(|b| response > b.response_ns) {
            worst = Some(qr);
        }
    }
    let worst = worst.unwrap_or(QResult {
        q: 0,
        finish_ns: 0,
        response_ns: 0,
        response_from_release_ns: 0,
    });
    if worst.q as usize >= MAX_Q_DETAILS {
        per_q.push(worst.clone());
    }
    let interference = hep
        .iter()
        .map(|t| {
            let n = eta(worst.finish_ns, t.t, t.j);
            Interference {
                task: t.name.clone(),
                jobs: n,
                time_ns: n.saturating_mul(t.c),
            }
        })
        .collect();
    TaskResult {
        name: tua.name.clone(),
        priority: tua.priority,
        status: if worst.response_ns <= deadline {
            TaskStatus::Schedulable
        } else {
            TaskStatus::DeadlineMiss
        },
        response_ns: Some(worst.response_ns),
        response_from_release_ns: Some(worst_release),
        deadline_ns: deadline,
        busy_window: Some(BusyWindow {
            length_ns: length,
            jobs,
            worst_q: worst.q,
            blocking_ns: tua.b,
            interference,
            per_q,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, c: u64, t: u64, priority: i32) -> Task {
        Task {
            name: name.into(),
            c,
            t,
            j: 0,
            priority,
            b: 0,
            d: None,
        }
    }

    #[test]
    fn eta_counts_jitter_bursts() {
        assert_eq!(eta(0, 10, 5), 0);
        assert_eq!(eta(10, 10, 0), 1);
        assert_eq!(eta(11, 10, 0), 2);
        assert_eq!(eta(1, 10, 10), 2);
        assert_eq!(eta_closed(10, 10, 0), 2);
    }

    #[test]
    fn overload_is_reported_without_a_number() {
        let r = analyze_set(&[t("a", 6, 10, 2), t("b", 5, 10, 1)], None).unwrap();
        assert!(!r.schedulable);
        assert_eq!(r.tasks[0].response_ns, Some(6));
        assert_eq!(r.tasks[1].response_ns, None);
        assert!(matches!(
            r.tasks[1].status,
            TaskStatus::Unbounded {
                reason: Unbounded::Overload { .. }
            }
        ));
    }

    #[test]
    fn full_utilisation_still_closes_when_harmonic() {
        let r = analyze_set(&[t("a", 5, 10, 2), t("b", 10, 20, 1)], None).unwrap();
        assert_eq!(r.tasks[1].response_ns, Some(20));
        assert!(r.schedulable);
    }

    #[test]
    fn huge_busy_windows_stop_at_the_iteration_limit() {
        // U = 1 − 1e-9 with a 1 ns task: the window closes only after ~1e9 jobs.
        let r = analyze_set(
            &[
                t("fast", 999_999_999, 1_000_000_000, 2),
                t("slow", 1, 1_000_000_000_000, 1),
            ],
            Some(u64::MAX / 4),
        )
        .unwrap();
        assert!(r.tasks.iter().all(|t| t.response_ns.is_some()
            || matches!(
                t.status,
                TaskStatus::Unbounded {
                    reason: Unbounded::IterationLimit { .. }
                }
            )));
        let many = analyze_set(&[t("hi", 1, 3, 2), t("lo", 2, 3, 1)], Some(u64::MAX / 4)).unwrap();
        assert_eq!(many.tasks[1].response_ns, Some(3)); // U = 1, harmonic: closes at once
        let bursty = Task {
            j: 1 << 40,
            ..t("burst", 1, 2, 1)
        };
        let r = analyze_set(&[bursty], Some(u64::MAX / 4)).unwrap();
        assert!(matches!(
            r.tasks[0].status,
            TaskStatus::Unbounded {
                reason: Unbounded::IterationLimit { .. }
            }
        ));
    }

    #[test]
    fn bad_tasks_are_rejected() {
        assert_eq!(analyze_set(&[], None), Err(RtaError::Empty));
        assert!(matches!(
            analyze_set(&[t("x", 11, 10, 1)], None),
            Err(RtaError::CostExceedsPeriod { .. })
        ));
        let spec = TaskSetSpec::parse(r#"{"tasks":[{"c":-1,"t":10}]}"#).unwrap();
        let e = spec.validate().unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
    }
}

//! What `/proc` says about processes: the scheduling policy and priority of every thread, and
//! whether a process is alive.

use serde::Serialize;

/// One thread of a process.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ThreadSched {
    /// Thread id.
    pub tid: i32,
    /// Thread name (`comm`).
    pub name: String,
    /// Policy: "FIFO", "RR", "OTHER", "BATCH", "IDLE", "DEADLINE".
    pub policy: &'static str,
    /// Real-time priority (0 for non-RT policies).
    pub rt_priority: u32,
    /// CPU it last ran on.
    pub cpu: i32,
}

fn policy_name(p: u32) -> &'static str {
    match p {
        0 => "OTHER",
        1 => "FIFO",
        2 => "RR",
        3 => "BATCH",
        5 => "IDLE",
        6 => "DEADLINE",
        _ => "?",
    }
}

/// Parses `/proc/PID/task/TID/stat`. The name is in parentheses and may contain spaces, so fields are
/// counted from the last ')'.
pub fn parse_stat(tid: i32, stat: &str) -> Option<ThreadSched> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    // Fields after ')' start at field 3 (state). cpu is field 39, rt_priority 40, policy 41.
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    Some(ThreadSched {
        tid,
        name,
        cpu: i32::try_from(field(39)?).ok()?,
        rt_priority: u32::try_from(field(40)?).ok()?,
        policy: policy_name(u32::try_from(field(41)?).ok()?),
    })
}

/// Every thread of `pid` (empty when the process is gone).
pub fn threads(pid: i32) -> Vec<ThreadSched> {
    let dir = format!("/proc/{pid}/task");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<ThreadSched> = entries
        .flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            parse_stat(tid, &stat)
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.get(s.rfind(')')? + 1..)?.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let s =
            "1234 (fu sion) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 -51 0 3 0 100 1000 200 \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 80 1 0 0 0 0 0 0 0 0 0 0 0";
        let t = parse_stat(1234, s).unwrap();
        assert_eq!(t.name, "fu sion");
        assert_eq!(t.cpu, 1);
        assert_eq!(t.rt_priority, 80);
        assert_eq!(t.policy, "FIFO");
    }

    #[test]
    fn this_process_is_alive_and_has_threads() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        let ts = threads(me);
        assert!(ts.iter().any(|t| t.tid == me), "{ts:?}");
    }
}

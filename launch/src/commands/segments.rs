//! `rtfuse ls` and `rtfuse clean`: the segments in /dev/shm, through shm-transport's admin API.

use crate::cli::{CleanArgs, LsArgs, EXIT_OK};
use crate::preflight::mib;
use serde::Serialize;
use shm_transport::admin;

#[derive(Serialize)]
struct Row {
    channel: String,
    size: u64,
    chunk_size: Option<u64>,
    chunk_count: Option<u32>,
    publisher_pid: u32,
    publisher_alive: bool,
    subscribers_alive: u32,
    valid: bool,
    problem: Option<String>,
}

/// `rtfuse ls`.
pub fn ls(a: &LsArgs) -> anyhow::Result<u8> {
    let rows: Vec<Row> = admin::list_segments()
        .into_iter()
        .map(|s| Row {
            channel: s.channel,
            size: s.size,
            chunk_size: s.geometry.map(|g| g.0),
            chunk_count: s.geometry.map(|g| g.1),
            publisher_pid: s.creator_pid,
            publisher_alive: s.publisher_alive,
            subscribers_alive: s.subscribers_alive,
            valid: s.validity.is_ok(),
            problem: s.validity.err(),
        })
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        println!("no rtfuse segments in /dev/shm");
        return Ok(EXIT_OK);
    }
    println!(
        "{:<24} {:>10} {:>16} {:>8} {:<9} {:>5}  STATE",
        "CHANNEL", "SIZE", "CHUNKS", "PID", "PUBLISHER", "SUBS"
    );
    for r in rows {
        let chunks = match (r.chunk_count, r.chunk_size) {
            (Some(n), Some(s)) => format!("{n} x {}", mib(s)),
            _ => "-".into(),
        };
        let state = match (&r.problem, r.publisher_alive) {
            (Some(p), _) => format!("invalid: {p}"),
            (None, true) => "live".into(),
            (None, false) => "stale (publisher dead; `rtfuse clean` removes it)".into(),
        };
        println!(
            "{:<24} {:>10} {:>16} {:>8} {:<9} {:>5}  {state}",
            r.channel,
            mib(r.size),
            chunks,
            r.publisher_pid,
            if r.publisher_alive { "alive" } else { "dead" },
            r.subscribers_alive
        );
    }
    Ok(EXIT_OK)
}

/// `rtfuse clean`.
pub fn clean(a: &CleanArgs) -> anyhow::Result<u8> {
    if a.dry_run {
        let stale: Vec<_> = admin::list_segments()
            .into_iter()
            .filter(|s| !s.publisher_alive)
            .collect();
        for s in &stale {
            println!(
                "would remove {} (publisher pid {} is dead)",
                s.channel, s.creator_pid
            );
        }
        println!("{} stale segment(s)", stale.len());
        return Ok(EXIT_OK);
    }
    let removed = admin::clean_stale();
    for c in &removed {
        println!("removed {c}");
    }
    println!(
        "{} stale segment(s) removed; live ones are never touched",
        removed.len()
    );
    Ok(EXIT_OK)
}

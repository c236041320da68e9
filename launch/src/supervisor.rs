//! The process supervisor behind `rtfuse run`.
//!
//! Starts every driver with `process = true` (as `rtfuse driver NAME`, re-executing this binary),
//! waits for their segments, then starts the node (`rtfuse node`) and, where the config has ROS 2
//! bridges, `rtfuse ros2-gateway`. It polls the children, restarts a
//! crashed driver with exponential back-off (unlinking the dead driver's segment first, so the new one
//! can create it while the node keeps its old mapping until it reconnects), and stops everything in
//! reverse start order on Ctrl-C, SIGTERM, `--duration` or a fatal failure: SIGTERM, a grace period,
//! then SIGKILL. Finally it removes the deployment's segments that no process maps any more.
//!
//! Each child is put in its own process group (Ctrl-C on the terminal reaches only the supervisor,
//! which then stops the children in order) and gets `PR_SET_PDEATHSIG(SIGTERM)`, so that if the
//! supervisor is killed the children are told to stop by the kernel. PDEATHSIG fires when the
//! *thread* that forked exits; the supervisor forks only from its main thread, which lives until the
//! end. The race where the parent dies between `fork` and `prctl` is closed by comparing `getppid()`
//! with the pid the parent recorded before forking.

use crate::config::{Config, Restart, RestartPolicy};
use crate::procfs;
use crate::status::{self, NodeSnapshot, ProcessStatus};
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How `run` was asked to behave.
#[derive(Debug, Clone)]
pub struct Options {
    /// The binary to re-execute for children (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    /// Segment-name prefix passed to every child.
    pub prefix: String,
    /// Extra arguments put before the subcommand of every child (verbosity).
    pub child_flags: Vec<String>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Grace period between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// Live status: None (off), Some(true) redraw in place, Some(false) plain lines.
    pub status: Option<bool>,
    /// How long to wait for a driver's segment to appear before starting the node anyway.
    pub segment_wait: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `--duration` ran out; everything stopped cleanly.
    Completed,
    /// A signal (its number) asked to stop; everything stopped cleanly.
    Interrupted(i32),
    /// A process failed for good (the message says which and why).
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Driver,
    Node,
}

struct Proc {
    name: String,
    role: Role,
    args: Vec<String>,
    /// Segment the process publishes (drivers): unlinked when it dies.
    channel: Option<String>,
    restart: Restart,
    child: Option<Child>,
    restarts: u32,
    restart_at: Option<Instant>,
    state: String,
}

/// Full channel name (as shm-transport sees it) of `channel` under `prefix`.
pub fn full_name(prefix: &str, channel: &str) -> String {
    format!("{prefix}{channel}")
}

/// Removes the segment of `channel` if its publisher is dead; returns whether it did.
pub fn remove_if_dead(channel: &str) -> bool {
    !shm_transport::admin::clean_stale_matching(|c| c == channel).is_empty()
}

/// Starts `exe args` as a supervised child with `envs` added to its environment: own process
/// group, PDEATHSIG = SIGTERM.
///
/// # Errors
/// When fork or exec fails, or the parent died before the child could arm PDEATHSIG.
pub fn spawn_child(
    exe: &std::path::Path,
    args: &[String],
    envs: &[(&str, String)],
) -> std::io::Result<Child> {
    let parent = std::process::id();
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null());
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    // SAFETY: the closure runs in the child between fork and exec and calls only async-signal-safe
    // functions (setpgid, prctl, getppid); it allocates nothing (io::Error from a raw errno).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl: then we were re-parented and must not run.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!(
            "was killed by signal {s} ({})",
            nix::sys::signal::Signal::try_from(s).map_or("?", |s| s.as_str())
        ),
        _ => "ended".to_string(),
    }
}

/// Time the parts get to start (read and plan their files, subscribe) before recorded time starts.
const REPLAY_LEAD: Duration = Duration::from_secs(2);

fn backoff(r: &Restart, restarts: u32) -> Duration {
    let ms = r.backoff_initial_ms as f64 * r.backoff_multiplier.powi(restarts.min(64) as i32);
    Duration::from_millis(ms.min(r.backoff_max_ms as f64) as u64)
}

/// The supervisor of one deployment.
pub struct Supervisor {
    opts: Options,
    procs: Vec<Proc>,
    channels: Vec<String>,
    stats_file: PathBuf,
    title: String,
    drawn_lines: usize,
    /// When recorded time starts for replay drivers (`CLOCK_MONOTONIC` ns).
    epoch_ns: u64,
}

impl Supervisor {
    /// Plans the processes of `cfg`: its process drivers in config order, then the node.
    pub fn new(cfg: &Config, opts: Options) -> Supervisor {
        let config_arg: Vec<String> = cfg.path.iter().map(|p| p.display().to_string()).collect();
        let base = |sub: &[&str]| -> Vec<String> {
            let mut a = opts.child_flags.clone();
            a.extend(["--prefix".to_string(), opts.prefix.clone()]);
            a.extend(sub.iter().map(|s| s.to_string()));
            a.extend(config_arg.iter().cloned());
            a
        };
        let stats_file = std::env::temp_dir().join(format!(
            "rtfuse-{}{}-stats.json",
            opts.prefix,
            std::process::id()
        ));
        let mut procs: Vec<Proc> = cfg
            .deployment
            .drivers
            .iter()
            .filter(|d| d.process)
            .map(|d| Proc {
                name: format!("driver {}", d.name.get_ref()),
                role: Role::Driver,
                args: base(&["driver", d.name.get_ref()]),
                channel: Some(d.channel.get_ref().clone()),
                restart: d.restart,
                child: None,
                restarts: 0,
                restart_at: None,
                state: "starting".into(),
            })
            .collect();
        let mut node_args = base(&["node"]);
        node_args.extend(["--stats-file".to_string(), stats_file.display().to_string()]);
        procs.push(Proc {
            name: "node".into(),
            role: Role::Node,
            args: node_args,
            channel: None,
            restart: Restart {
                policy: RestartPolicy::Never,
                ..Restart::default()
            },
            child: None,
            restarts: 0,
            restart_at: None,
            state: "starting".into(),
        });
        if !cfg.deployment.ros2.bridges.is_empty() {
            // After the node: egress bridges open channels the node publishes; the node opens
            // ingest channels whenever they appear.
            procs.push(Proc {
                name: "ros2-gateway".into(),
                role: Role::Driver,
                args: base(&["ros2-gateway"]),
                channel: None,
                restart: Restart::default(),
                child: None,
                restarts: 0,
                restart_at: None,
                state: "starting".into(),
            });
        }
        Supervisor {
            channels: cfg
                .deployment
                .channels
                .iter()
                .map(|c| c.name.get_ref().clone())
                .collect(),
            title: format!("rtfuse — {} ({})", cfg.deployment.name, cfg.display_name()),
            opts,
            procs,
            stats_file,
            drawn_lines: 0,
            epoch_ns: fusion::rt::now_ns() + REPLAY_LEAD.as_nanos() as u64,
        }
    }

    /// Removes segments of this deployment left by a run whose processes are gone; fails when a
    /// live process still maps one (another deployment with the same names: use `--prefix`).
    ///
    /// # Errors
    /// A live process maps one of the deployment's segments.
    pub fn clean_stale(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for ch in &self.channels {
            let name = full_name(&self.opts.prefix, ch);
            let Ok(info) = shm_transport::admin::probe(&name) else {
                continue;
            };
            if info.publisher_alive {
                anyhow::bail!(
                    "channel `{name}` (/dev/shm/{}{name}) is in use by a live publisher (pid {}): another \
                     deployment runs with the same channel names; stop it or pick another --prefix",
                    shm_transport::SHM_PREFIX,
                    info.creator_pid
                );
            }
            if remove_if_dead(&name) {
                tracing::warn!("removed stale segment of channel `{name}` left by an earlier run (pid {} is gone)", info.creator_pid);
                removed.push(name);
            }
        }
        Ok(removed)
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let p = &mut self.procs[i];
        // Every part shares one replay epoch, so MCAP replay drivers in different processes
        // play the file on one clock (a restarted one rejoins it).
        let env = [(fusion::mcap_driver::EPOCH_ENV, self.epoch_ns.to_string())];
        let child = spawn_child(&self.opts.exe, &p.args, &env)
            .with_context(|| format!("cannot start {} ({})", p.name, self.opts.exe.display()))?;
        tracing::info!("started {} (pid {})", p.name, child.id());
        p.child = Some(child);
        p.restart_at = None;
        p.state = "running".into();
        Ok(())
    }

    fn wait_for_segments(&mut self, stop: &AtomicBool) {
        let deadline = Instant::now() + self.opts.segment_wait;
        for i in 0..self.procs.len() {
            let Some(ch) = self.procs[i].channel.clone() else {
                continue;
            };
            let path = std::path::Path::new("/dev/shm").join(format!(
                "{}{}",
                shm_transport::SHM_PREFIX,
                full_name(&self.opts.prefix, &ch)
            ));
            while !path.exists() && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let exited = self.procs[i]
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                if exited.is_some() {
                    break; // the watch loop reports and restarts it
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !path.exists() {
                tracing::warn!(
                    "{} has not created {} yet; starting on",
                    self.procs[i].name,
                    path.display()
                );
            }
        }
    }

    /// Reaps exited children; returns a fatal reason if the deployment must stop.
    fn reap(&mut self) -> Option<String> {
        let now = Instant::now();
        for p in &mut self.procs {
            let Some(child) = p.child.as_mut() else {
                continue;
            };
            let status = match child.try_wait() {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    return Some(format!("cannot wait for {}: {e}", p.name));
                }
            };
            p.child = None;
            let what = describe(status);
            if p.role == Role::Node {
                p.state = "failed".into();
                return Some(format!("the fusion node {what}"));
            }
            if let Some(ch) = &p.channel {
                // The owner is dead: free the name so the restarted driver can create the channel
                // again. The node keeps its mapping until it sees the publisher gone and reconnects.
                remove_if_dead(&full_name(&self.opts.prefix, ch));
            }
            let failed = !status.success();
            let restart = match p.restart.policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Never => false,
            };
            if !restart {
                if failed {
                    p.state = "failed".into();
                    return Some(format!("{} {what} (restart policy: never)", p.name));
                }
                tracing::info!("{} {what}", p.name);
                p.state = "finished".into();
                continue;
            }
            if p.restarts >= p.restart.max_restarts {
                p.state = "failed".into();
                return Some(format!(
                    "{} {what} and was already restarted {} times (max_restarts)",
                    p.name, p.restarts
                ));
            }
            let delay = backoff(&p.restart, p.restarts);
            tracing::warn!("{} {what}; restarting in {} ms", p.name, delay.as_millis());
            p.restarts += 1;
            p.restart_at = Some(now + delay);
            p.state = format!("backoff {}ms", delay.as_millis());
        }
        None
    }

    fn process_status(&self) -> Vec<ProcessStatus> {
        self.procs
            .iter()
            .map(|p| {
                let pid = p.child.as_ref().map(|c| c.id() as i32);
                ProcessStatus {
                    name: p.name.clone(),
                    pid,
                    state: p.state.clone(),
                    restarts: p.restarts,
                    threads: pid.map(procfs::threads).unwrap_or_default(),
                }
            })
            .collect()
    }

    fn draw(&mut self, started: Instant, redraw: bool) {
        let snap = NodeSnapshot::read(&self.stats_file);
        let title = format!(
            "{} — up {:.1} s",
            self.title,
            started.elapsed().as_secs_f64()
        );
        let text = status::render(&title, snap.as_ref(), &self.process_status());
        let mut out = std::io::stdout().lock();
        if redraw && self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        let _ = write!(out, "{text}");
        if !redraw {
            let _ = writeln!(out);
        }
        let _ = out.flush();
        self.drawn_lines = text.lines().count();
    }

    /// Runs the deployment until `stop` is set, `--duration` runs out, or a fatal failure.
    ///
    /// # Errors
    /// Only when the first processes cannot be started at all; later failures are an [`Outcome`].
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Outcome> {
        let started = Instant::now();
        let deadline = self.opts.duration.map(|d| started + d);
        let _ = std::fs::remove_file(&self.stats_file);
        for i in 0..self.procs.len() {
            if self.procs[i].role == Role::Node {
                self.wait_for_segments(stop);
            }
            if let Err(e) = self.start(i) {
                self.stop_all();
                return Err(e);
            }
        }
        let redraw = self.opts.status == Some(true) && std::io::stdout().is_terminal();
        let mut next_draw = Instant::now() + Duration::from_millis(1000);
        let outcome = loop {
            if stop.load(Ordering::Relaxed) {
                break Outcome::Interrupted(crate::signals::received_signal());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Outcome::Completed;
            }
            if let Some(reason) = self.reap() {
                break Outcome::Failed(reason);
            }
            for i in 0..self.procs.len() {
                if self.procs[i]
                    .restart_at
                    .is_some_and(|t| Instant::now() >= t)
                {
                    if let Err(e) = self.start(i) {
                        tracing::error!("{e:#}");
                        self.procs[i].restart_at = Some(
                            Instant::now()
                                + backoff(&self.procs[i].restart, self.procs[i].restarts),
                        );
                    }
                }
            }
            if self.opts.status.is_some() && Instant::now() >= next_draw {
                self.draw(started, redraw);
                next_draw += Duration::from_millis(1000);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Outcome::Failed(reason) = &outcome {
            tracing::error!("{reason}; stopping the deployment");
        }
        self.stop_all();
        if let Some(snap) = NodeSnapshot::read(&self.stats_file) {
            let title = format!(
                "final stats — {} after {:.1} s",
                self.title,
                started.elapsed().as_secs_f64()
            );
            println!(
                "{}",
                status::render(&title, Some(&snap), &self.process_status())
            );
        } else {
            println!("final stats: the node wrote none");
        }
        let _ = std::fs::remove_file(&self.stats_file);
        Ok(outcome)
    }

    /// Stops every child in reverse start order (SIGTERM, grace period, SIGKILL), then removes the
    /// deployment's segments that no process maps.
    pub fn stop_all(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.restart_at = None;
            let Some(mut child) = p.child.take() else {
                continue;
            };
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let until = Instant::now() + self.opts.stop_timeout;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => break None,
                }
            };
            match status {
                Some(s) => tracing::info!("{} stopped ({})", p.name, describe(s)),
                None => {
                    tracing::warn!(
                        "{} did not stop within {:?}; SIGKILL",
                        p.name,
                        self.opts.stop_timeout
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            p.state = "stopped".into();
        }
        for ch in &self.channels {
            let name = full_name(&self.opts.prefix, ch);
            if remove_if_dead(&name) {
                tracing::debug!("removed the segment of channel `{name}`");
            } else if let Ok(info) = shm_transport::admin::probe(&name) {
                tracing::warn!(
                    "channel `{name}` still has a live publisher (pid {}); left in place",
                    info.creator_pid
                );
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Never leave children behind, also on an early error return.
        if self.procs.iter().any(|p| p.child.is_some()) {
            self.stop_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = Restart {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            backoff_multiplier: 2.0,
            ..Restart::default()
        };
        assert_eq!(backoff(&r, 0), Duration::from_millis(100));
        assert_eq!(backoff(&r, 1), Duration::from_millis(200));
        assert_eq!(backoff(&r, 3), Duration::from_millis(800));
        assert_eq!(backoff(&r, 4), Duration::from_millis(1000));
        assert_eq!(backoff(&r, 1000), Duration::from_millis(1000));
    }

    #[test]
    fn child_dies_with_pdeathsig_armed() {
        // A real child: `sleep` started through spawn_child is in its own process group and exits
        // when told to.
        let mut c =
            spawn_child(std::path::Path::new("/bin/sleep"), &["30".to_string()], &[]).unwrap();
        let pid = c.id() as i32;
        assert_eq!(
            nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
                .unwrap()
                .as_raw(),
            pid
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
    }
}

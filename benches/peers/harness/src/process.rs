//! A peer's process: started, watched through /proc while it runs, its CPU time and peak
//! memory read at the end (from /proc, or from `wait4` once it has exited), and stopped.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What a process used, from its start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User and system CPU seconds, its threads and waited-for children included.
    pub cpu_seconds: f64,
    /// Peak resident memory.
    pub peak_rss_bytes: u64,
}

/// A started peer.
pub struct Peer {
    child: Child,
    started: Instant,
    exited: Option<(i32, Usage, Instant)>,
}

impl Peer {
    /// Starts `command` with its output appended to `log`.
    pub fn start(command: &[String], log: &Path) -> anyhow::Result<Peer> {
        let (program, args) = command.split_first().context("an empty peer command")?;
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("sharing the log file")?;
        let started = Instant::now();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        Ok(Peer {
            child,
            started,
            exited: None,
        })
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Its exit code, usage and exit time, once it has exited.
    pub fn exited(&mut self) -> Option<(i32, Usage, Instant)> {
        if self.exited.is_none() {
            self.exited = reap(self.child.id() as libc::pid_t, false);
        }
        self.exited
    }

    /// What it has used so far (or in all, once it has exited).
    pub fn usage(&mut self) -> Usage {
        match self.exited() {
            Some((_, usage, _)) => usage,
            None => live_usage(self.child.id()).unwrap_or_default(),
        }
    }

    /// Stops it: SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; the process has still not been reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = reap(pid, true);
    }
}

/// `wait4` on the child: its exit code and what it used, if it has exited (or, when
/// `block`, once it has).
fn reap(pid: libc::pid_t, block: bool) -> Option<(i32, Usage, Instant)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let options = if block { 0 } else { libc::WNOHANG };
    // SAFETY: the pointers are to locals that outlive the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
    if reaped != pid {
        return None;
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    let usage = Usage {
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // ru_maxrss is in kilobytes on Linux.
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
    };
    Some((code, usage, Instant::now()))
}

/// CPU seconds and peak RSS of a running process, from /proc.
fn live_usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14 to 17 of stat(5), from index 11 here.
    let ticks: f64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })?;
    Some(Usage {
        cpu_seconds: ticks / per_second.max(1.0),
        peak_rss_bytes: peak_kb * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_is_measured_while_running_and_after_it_exits() {
        let log = std::env::temp_dir().join(format!("peers-process-{}.log", std::process::id()));
        let command: Vec<String> = ["python3", "-c", "x = bytearray(64 << 20)\nimport time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\nprint('done')"]
            .iter()
            .map(|part| part.to_string())
            .collect();
        let mut peer = Peer::start(&command, &log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (code, usage, _) = loop {
            if let Some(exited) = peer.exited() {
                break exited;
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(code, 0);
        assert!(usage.cpu_seconds >= 0.5, "{usage:?}");
        assert!(usage.peak_rss_bytes >= 64 << 20, "{usage:?}");
        assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "done");
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn stop_ends_a_process_that_ignores_sigterm() {
        let log = std::env::temp_dir().join(format!("peers-stop-{}.log", std::process::id()));
        let command: Vec<String> = ["bash", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
            .iter()
            .map(|part| part.to_string())
            .collect();
        let mut peer = Peer::start(&command, &log).unwrap();
        let pid = peer.child.id();
        assert!(live_usage(pid).is_some());
        assert!(peer.exited().is_none());
        peer.stop(Duration::from_millis(300));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let _ = std::fs::remove_file(log);
    }
}

//! CPU time and peak resident memory of this process, read from `/proc` (Linux).

/// CPU seconds (user + system) used by this process so far, if `/proc` can tell.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in clock ticks of USER_HZ, which is 100 on every mainstream build.
    Some((user + system) / 100.0)
}

/// Peak resident set size in bytes, if `/proc` can tell.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let spin: u64 = (0..2_000_000u64).fold(0, |acc, x| acc.wrapping_add(x * x));
        assert!(spin > 0);
        assert!(cpu_seconds().is_some_and(|seconds| seconds >= 0.0));
        assert!(peak_rss_bytes().is_some_and(|bytes| bytes > 1024 * 1024));
    }
}

//! Signal mode's process side: find the process by executable name in `/proc` and send it
//! SIGHUP. Needs a shared process namespace (`shareProcessNamespace: true`) and the right to
//! signal the process (same user, or `CAP_KILL`).

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest name the kernel keeps in `/proc/<pid>/comm`.
const COMM_LEN: usize = 15;

/// The lowest pid (other than our own) whose executable name is `name`.
pub fn find_process(name: &str) -> io::Result<Option<i32>> {
    let own = std::process::id() as i32;
    let wanted = &name.as_bytes()[..name.len().min(COMM_LEN)];
    let mut found: Option<i32> = None;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == own || found.is_some_and(|f| f < pid) {
            continue;
        }
        // The process may exit while we look: skip it.
        let Ok(comm) = std::fs::read(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.strip_suffix(b"\n").unwrap_or(&comm) == wanted {
            found = Some(pid);
        }
    }
    Ok(found)
}

/// Sends SIGHUP to `pid`.
pub fn sighup(pid: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time as Prometheus prints it
/// (`2026-11-26T01:02:03Z`, `...03.5+01:00`). `None` for times before 1970 (Prometheus's
/// zero time means "never").
pub fn parse_rfc3339_secs(s: &str) -> Option<i64> {
    let s = s.trim();
    let (local, offset) = if let Some(rest) = s.strip_suffix('Z') {
        (rest, 0)
    } else {
        let split = s.len().checked_sub(6)?;
        let (rest, off) = s.split_at(split);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours: i64 = off.get(1..3)?.parse().ok()?;
        let minutes: i64 = off.get(4..6)?.parse().ok()?;
        (rest, sign * (hours * 3600 + minutes * 60))
    };
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(secs - offset)
}

/// The current Unix time in whole seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_times() {
        assert_eq!(parse_rfc3339_secs("1970-01-01T00:00:10Z"), Some(10));
        assert_eq!(parse_rfc3339_secs("1970-01-01T01:00:10+01:00"), Some(10));
        assert_eq!(
            parse_rfc3339_secs("1970-01-01T00:00:10.75-00:30"),
            Some(1810)
        );
        assert_eq!(parse_rfc3339_secs("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_secs("garbage"), None);
    }

    #[test]
    fn finds_a_process_by_name_but_not_itself() {
        let own = std::fs::read_to_string("/proc/self/comm").unwrap();
        // Another process with our name may exist (parallel tests), never our own pid.
        let found = find_process(own.trim()).unwrap();
        assert_ne!(found, Some(std::process::id() as i32));
        assert_eq!(find_process("no-such-process-name").unwrap(), None);
    }
}

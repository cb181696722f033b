//! Supplementary groups of the process behind a request. FUSE requests carry only uid,
//! gid and pid, so the groups come from /proc/PID/status, cached briefly per pid.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a pid's groups are reused before /proc is read again.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept before the cache is cleared (bounds memory under pid churn).
const MAX_ENTRIES: usize = 4096;

/// What was read for one pid: when, for which uid, and its groups.
struct Entry {
    read_at: Instant,
    uid: u32,
    groups: Vec<u32>,
}

/// Cache of pid -> supplementary groups.
#[derive(Default)]
pub struct GroupCache {
    entries: Mutex<HashMap<u32, Entry>>,
}

impl GroupCache {
    /// The supplementary groups of `pid` (empty when it is gone or unreadable).
    pub fn groups_of(&self, pid: u32, uid: u32) -> Vec<u32> {
        if uid == 0 || pid == 0 {
            return Vec::new();
        }
        let now = Instant::now();
        {
            let cache = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = cache.get(&pid)
                && now.duration_since(entry.read_at) < FRESH_FOR
                && entry.uid == uid
            {
                return entry.groups.clone();
            }
        }
        let groups = read_groups(pid).unwrap_or_default();
        let mut cache = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            pid,
            Entry {
                read_at: now,
                uid,
                groups: groups.clone(),
            },
        );
        groups
    }
}

fn read_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Groups:"))?;
    Some(
        line["Groups:".len()..]
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_groups() {
        let own = read_groups(std::process::id()).expect("own status is readable");
        let cache = GroupCache::default();
        assert_eq!(cache.groups_of(std::process::id(), 1000), own);
        assert!(cache.groups_of(u32::MAX - 1, 1000).is_empty());
    }
}

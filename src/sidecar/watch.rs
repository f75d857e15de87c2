//! Directory watches: the config file's directory and every watched directory.
//!
//! The kubelet updates a Secret volume by swapping the `..data` symlink; no event ever names
//! the key file, and a watch on the file itself dies after the first update. So directories
//! are watched, every event means "maybe changed", and the content hash decides. Read-only
//! access events (our own reads, Prometheus reading rules) are ignored, or every check would
//! trigger the next.
//!
//! A watched directory can vanish and come back (or not exist yet): [`DirWatcher::ensure`]
//! re-establishes a watch whenever a directory's identity (device, inode) changed, and the
//! caller polls while any directory is unwatched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Watches directories and signals "maybe changed" on a [`Notify`].
pub struct DirWatcher {
    watcher: notify::RecommendedWatcher,
    dirs: Vec<Watched>,
    metrics: Metrics,
}

struct Watched {
    path: PathBuf,
    /// (device, inode) of the directory the current watch is on.
    id: Option<(u64, u64)>,
}

impl DirWatcher {
    /// Creates the watcher; call [`DirWatcher::ensure`] to add the watches.
    pub fn new(dirs: Vec<PathBuf>, changed: Arc<Notify>, metrics: Metrics) -> notify::Result<Self> {
        let m = metrics.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            match res {
                Ok(event) if is_read_only(&event.kind) => return,
                Ok(_) => m.watch_events.inc(),
                Err(_) => m.watch_errors.inc(),
            };
            changed.notify_one();
        })?;
        let dirs = dirs
            .into_iter()
            .map(|path| Watched { path, id: None })
            .collect();
        Ok(Self {
            watcher,
            dirs,
            metrics,
        })
    }

    /// Watches every directory whose identity changed since it was last watched. Returns
    /// `true` when every directory is watched.
    pub fn ensure(&mut self) -> bool {
        let mut all = true;
        for dir in &mut self.dirs {
            let current = identity(&dir.path);
            if current.is_some() && current == dir.id {
                continue;
            }
            if dir.id.take().is_some() {
                let _ = self.watcher.unwatch(&dir.path);
            }
            match current {
                Some(id) => match self.watcher.watch(&dir.path, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        tracing::debug!(dir = %dir.path.display(), "watching directory");
                        dir.id = Some(id);
                    }
                    Err(error) => {
                        self.metrics.watch_errors.inc();
                        tracing::warn!(dir = %dir.path.display(), %error, "cannot watch directory; polling");
                        all = false;
                    }
                },
                None => all = false,
            }
        }
        let watched = self.dirs.iter().filter(|d| d.id.is_some()).count();
        self.metrics.watches.set(watched as i64);
        all
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// Opening or reading a file changes nothing; closing a file opened for writing may have.
fn is_read_only(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        EventKind::Access(_) => true,
        _ => false,
    }
}

/// The directories to watch for a config file and watched dirs, without duplicates.
pub fn dirs_to_watch(config_file: Option<&Path>, watched: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(file) = config_file {
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        dirs.push(parent);
    }
    for dir in watched {
        if !dirs.contains(dir) {
            dirs.push(dir.clone());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dir_and_watched_dirs_once_each() {
        let dirs = dirs_to_watch(
            Some(Path::new("/etc/prometheus/config/prometheus.yaml.gz")),
            &[
                PathBuf::from("/rules"),
                PathBuf::from("/etc/prometheus/config"),
            ],
        );
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/etc/prometheus/config"),
                PathBuf::from("/rules")
            ]
        );
        assert_eq!(
            dirs_to_watch(Some(Path::new("x.gz")), &[]),
            vec![PathBuf::from(".")]
        );
    }

    #[test]
    fn reads_are_not_changes() {
        assert!(is_read_only(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_read_only(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_read_only(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_read_only(&EventKind::Any));
    }
}

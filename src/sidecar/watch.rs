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
//! caller polls it (a `stat` per directory, nothing more) while any directory is unwatched.
//! A missing directory is logged once when it goes and once when it is back.
//!
//! A watched path that is a symlink to a directory (git-sync's layout: the link is repointed
//! to a new worktree, the old one kept) produces no event in the old target when repointed, so
//! the directory holding the link is watched too: the repoint is a rename there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::metrics::Metrics;

/// Watches directories and signals "maybe changed" on a [`Notify`].
pub struct DirWatcher {
    watcher: notify::RecommendedWatcher,
    dirs: Vec<Watched>,
    /// Directories holding a watched symlink, and the (device, inode) watched there.
    link_parents: Vec<(PathBuf, (u64, u64))>,
    metrics: Metrics,
}

struct Watched {
    path: PathBuf,
    /// (device, inode) of the directory the current watch is on.
    id: Option<(u64, u64)>,
    /// Logged as missing (so it is logged once, and once again when it is back).
    reported_missing: bool,
}

/// What [`DirWatcher::ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    /// Every directory is watched.
    pub all: bool,
    /// A directory is watched now that was not before (it appeared or was replaced): its
    /// content may have changed without an event.
    pub appeared: bool,
    /// A directory exists but could not be watched (inotify limits): only full checks see
    /// its changes.
    pub unwatchable: bool,
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
            .map(|path| Watched {
                path,
                id: None,
                reported_missing: false,
            })
            .collect();
        Ok(Self {
            watcher,
            dirs,
            link_parents: Vec::new(),
            metrics,
        })
    }

    /// Watches every directory whose identity changed since it was last watched (and the
    /// directory holding each watched symlink). Costs a `stat` per directory when nothing
    /// changed.
    pub fn ensure(&mut self) -> Ensured {
        let mut ensured = Ensured {
            all: true,
            appeared: false,
            unwatchable: false,
        };
        for dir in &mut self.dirs {
            let current = identity(&dir.path);
            if current.is_some() && current == dir.id {
                continue;
            }
            if dir.id.take().is_some() {
                let _ = self.watcher.unwatch(&dir.path);
            }
            let Some(id) = current else {
                ensured.all = false;
                if !dir.reported_missing {
                    dir.reported_missing = true;
                    tracing::warn!(dir = %dir.path.display(), "watched directory is missing (or not a directory); polling until it appears");
                }
                continue;
            };
            match self.watcher.watch(&dir.path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.path.display(), "watching directory");
                    if std::mem::take(&mut dir.reported_missing) {
                        tracing::info!(dir = %dir.path.display(), "watched directory appeared");
                    }
                    dir.id = Some(id);
                    ensured.appeared = true;
                }
                Err(error) => {
                    self.metrics.watch_errors.inc();
                    tracing::warn!(dir = %dir.path.display(), %error, "cannot watch directory; polling");
                    ensured.all = false;
                    ensured.unwatchable = true;
                }
            }
        }
        self.ensure_link_parents();
        let watched = self.dirs.iter().filter(|d| d.id.is_some()).count();
        self.metrics.watches.set(watched as i64);
        ensured
    }

    /// Watches the directory holding each watched path that is a symlink.
    fn ensure_link_parents(&mut self) {
        let wanted: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|d| std::fs::symlink_metadata(&d.path).is_ok_and(|m| m.is_symlink()))
            .map(|d| parent_of(&d.path))
            .filter(|p| !self.dirs.iter().any(|d| d.path == *p))
            .collect();
        self.link_parents.retain(|(path, id)| {
            let keep = wanted.contains(path) && identity(path) == Some(*id);
            if !keep {
                let _ = self.watcher.unwatch(path);
            }
            keep
        });
        for path in wanted {
            if self.link_parents.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let Some(id) = identity(&path) else { continue };
            if self
                .watcher
                .watch(&path, RecursiveMode::NonRecursive)
                .is_ok()
            {
                tracing::debug!(dir = %path.display(), "watching the directory holding a watched symlink");
                self.link_parents.push((path, id));
            }
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
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
        dirs.push(parent_of(file));
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

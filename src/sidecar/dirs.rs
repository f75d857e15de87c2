//! Hashing the watched directories (rule files), whatever users leave in them.
//!
//! Every regular file directly in a watched directory counts: its name and content go into the
//! hash, sorted, skipping the kubelet's `..`-prefixed entries. Subdirectories are not
//! watched and are passed over. Anything else that cannot be hashed (a FIFO, a socket, a
//! device, a symlink loop, a dangling symlink, an unreadable file, or a watched path that is
//! not a directory) is *skipped and reported* by path, never a reason to stop: one odd entry
//! must not block the config and every other rule file from reaching Prometheus.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::input::{open_regular, settling_until, type_name};
use super::render::Hash;

/// An entry that was not hashed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry (or the watched path itself).
    pub path: PathBuf,
    /// Why, for example `a FIFO` or `Permission denied (os error 13)`.
    pub reason: String,
}

/// The hash of the watched directories and what was skipped on the way.
#[derive(Debug, Clone)]
pub struct DirsHash {
    /// Names and contents of every regular file, plus a marker per missing directory.
    pub hash: Hash,
    /// Entries that could not be hashed, in directory order.
    pub skipped: Vec<Skipped>,
}

/// Hashes every regular file directly in `dirs`. A missing directory hashes as a marker, so
/// its disappearance and return are both seen as changes; anything unusable is skipped and
/// reported.
pub fn hash_dirs(dirs: &[PathBuf]) -> DirsHash {
    let mut hasher = Sha256::new();
    let mut skipped = Vec::new();
    for dir in dirs {
        hasher.update(dir.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        let names = match entries(dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                hasher.update(b"\0missing\0");
                continue;
            }
            Err(e) => {
                hasher.update(b"\0unusable\0");
                skipped.push(Skipped {
                    path: dir.clone(),
                    reason: match e.kind() {
                        io::ErrorKind::NotADirectory => "not a directory".to_string(),
                        _ => e.to_string(),
                    },
                });
                continue;
            }
        };
        for name in names {
            let path = dir.join(&name);
            match hash_file(&path) {
                Ok(Some(content)) => {
                    hasher.update(name.as_encoded_bytes());
                    hasher.update([0]);
                    hasher.update(content);
                }
                Ok(None) => {}
                Err(reason) => skipped.push(Skipped { path, reason }),
            }
        }
    }
    DirsHash {
        hash: hasher.finalize().into(),
        skipped,
    }
}

/// The sorted names in `dir`, without the kubelet's `..` entries.
fn entries(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| !n.as_encoded_bytes().starts_with(b".."))
        .collect();
    names.sort();
    Ok(names)
}

/// The content hash of a regular file; `None` for what is passed over silently (a
/// subdirectory, or an entry removed since the listing); `Err` names why it was skipped.
fn hash_file(path: &Path) -> Result<Option<Hash>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Gone since the listing (the next event settles it), or a dangling symlink.
            return match std::fs::symlink_metadata(path) {
                Ok(_) => Err("dangling symbolic link".into()),
                Err(_) => Ok(None),
            };
        }
        Err(e) => return Err(e.to_string()),
    };
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err(type_name(meta.file_type()).to_string());
    }
    let file: File = match open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut content = Sha256::new();
    io::copy(&mut BufReader::new(file), &mut content).map_err(|e| e.to_string())?;
    Ok(Some(content.finalize().into()))
}

/// The latest instant until which a file in `dirs` that was written in place is still
/// settling (see [`settling_until`]); `None` when every file can be read now.
pub fn settling(dirs: &[PathBuf], settle: Duration, now: SystemTime) -> Option<SystemTime> {
    if settle.is_zero() {
        return None;
    }
    dirs.iter()
        .filter_map(|dir| entries(dir).ok().map(|names| (dir, names)))
        .flat_map(|(dir, names)| names.into_iter().map(move |n| dir.join(n)))
        .filter_map(|path| settling_until(&path, settle, now))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn hash_follows_content_not_kubelet_internals() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        fs::create_dir(&rules).unwrap();
        fs::write(rules.join("a.yaml"), "x").unwrap();
        let h1 = hash_dirs(std::slice::from_ref(&rules)).hash;
        fs::create_dir(rules.join("..2026_01_01")).unwrap();
        fs::write(rules.join("..data_tmp"), "y").unwrap();
        assert_eq!(h1, hash_dirs(std::slice::from_ref(&rules)).hash);
        fs::write(rules.join("a.yaml"), "z").unwrap();
        assert_ne!(h1, hash_dirs(std::slice::from_ref(&rules)).hash);
        fs::remove_dir_all(&rules).unwrap();
        let gone = hash_dirs(std::slice::from_ref(&rules));
        assert!(gone.skipped.is_empty());
        assert_ne!(h1, gone.hash);
    }

    #[test]
    fn odd_entries_are_skipped_by_name_and_the_rest_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        fs::create_dir(&rules).unwrap();
        fs::write(rules.join("a.yaml"), "x").unwrap();
        let clean = hash_dirs(std::slice::from_ref(&rules)).hash;
        let fifo = rules.join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let _socket = std::os::unix::net::UnixListener::bind(rules.join("sock")).unwrap();
        symlink("loop", rules.join("loop")).unwrap();
        symlink("nowhere", rules.join("dangling")).unwrap();
        fs::create_dir(rules.join("subdir")).unwrap();
        let odd = hash_dirs(std::slice::from_ref(&rules));
        assert_eq!(odd.hash, clean, "skipped entries do not change the hash");
        let reasons: Vec<(String, String)> = odd
            .skipped
            .iter()
            .map(|s| {
                let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, s.reason.clone())
            })
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert_eq!(
            reasons[0],
            ("dangling".into(), "dangling symbolic link".into())
        );
        assert!(reasons[1].0 == "loop" && reasons[1].1.contains("symbolic links"));
        assert_eq!(reasons[2], ("pipe".into(), "a FIFO".into()));
        assert_eq!(reasons[3], ("sock".into(), "a socket".into()));
        fs::write(rules.join("a.yaml"), "changed").unwrap();
        assert_ne!(hash_dirs(std::slice::from_ref(&rules)).hash, clean);
    }

    #[test]
    fn a_watched_path_that_is_a_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.yaml");
        fs::write(&file, "x").unwrap();
        let h = hash_dirs(std::slice::from_ref(&file));
        assert_eq!(h.skipped.len(), 1);
        assert_eq!(h.skipped[0].path, file);
        assert_eq!(h.skipped[0].reason, "not a directory");
    }
}

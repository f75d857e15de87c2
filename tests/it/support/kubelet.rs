//! The kubelet's AtomicWriter, emulated for tests and benchmarks: std only, so benches can
//! include this file too.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A directory updated exactly as the kubelet's AtomicWriter updates a Secret volume:
/// timestamped payload dir, `..data_tmp` symlink renamed over `..data`, key symlinks into
/// `..data`, old payload dir removed. Identical payloads are not written, as in the kubelet,
/// unless [`KubeletVolume::force_update`] is used.
pub struct KubeletVolume {
    dir: PathBuf,
    current: Option<(String, BTreeMap<String, Vec<u8>>)>,
    last_swap: Option<Instant>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl KubeletVolume {
    /// An empty volume at `dir` (created).
    pub fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("create volume dir");
        Self {
            dir: dir.to_path_buf(),
            current: None,
            last_swap: None,
        }
    }

    /// The volume's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a key as a consumer sees it.
    pub fn key_path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// When the last `..data` rename happened (taken just before it).
    pub fn last_swap(&self) -> Option<Instant> {
        self.last_swap
    }

    /// Projects `files`; returns false (and writes nothing) when the payload is unchanged.
    pub fn update(&mut self, files: &[(&str, &[u8])]) -> bool {
        let payload: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        if self.current.as_ref().map(|(_, p)| p) == Some(&payload) {
            return false;
        }
        self.project(payload);
        true
    }

    /// Projects `files` even if unchanged (a re-projection with the same bytes).
    pub fn force_update(&mut self, files: &[(&str, &[u8])]) {
        let payload = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        self.project(payload);
    }

    fn project(&mut self, payload: BTreeMap<String, Vec<u8>>) {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let ts = format!("..2026_11_26_00_00_00.{:09}", n);
        let ts_dir = self.dir.join(&ts);
        fs::create_dir(&ts_dir).expect("create payload dir");
        for (key, bytes) in &payload {
            fs::write(ts_dir.join(key), bytes).expect("write payload");
        }
        let tmp = self.dir.join("..data_tmp");
        let _ = fs::remove_file(&tmp);
        symlink(&ts, &tmp).expect("symlink ..data_tmp");
        self.last_swap = Some(Instant::now());
        fs::rename(&tmp, self.dir.join("..data")).expect("rename ..data_tmp over ..data");
        for key in payload.keys() {
            let link = self.dir.join(key);
            if fs::symlink_metadata(&link).is_err() {
                symlink(format!("..data/{key}"), &link).expect("key symlink");
            }
        }
        if let Some((old_ts, old)) = self.current.take() {
            for key in old.keys().filter(|k| !payload.contains_key(*k)) {
                let _ = fs::remove_file(self.dir.join(key));
            }
            fs::remove_dir_all(self.dir.join(old_ts)).expect("remove old payload dir");
        }
        self.current = Some((ts, payload));
    }
}

/// The emulation itself: the layout the kubelet leaves, on which every volume test relies.
#[test]
fn updates_leave_the_atomic_writers_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut volume = KubeletVolume::new(&dir.path().join("vol"));
    assert_eq!(volume.last_swap(), None);
    assert!(volume.update(&[("a", b"1"), ("b", b"2")]));
    let first = fs::read_link(volume.dir().join("..data")).unwrap();
    assert!(first.to_str().unwrap().starts_with("..2026_"), "{first:?}");
    assert_eq!(
        fs::read_link(volume.key_path("a")).unwrap(),
        Path::new("..data/a")
    );
    assert_eq!(fs::read(volume.key_path("b")).unwrap(), b"2");
    let swapped = volume.last_swap().unwrap();
    assert!(swapped <= Instant::now());

    assert!(
        !volume.update(&[("a", b"1"), ("b", b"2")]),
        "unchanged: not written"
    );
    assert_eq!(volume.last_swap(), Some(swapped));
    assert!(volume.update(&[("a", b"3")]));
    assert_eq!(fs::read(volume.key_path("a")).unwrap(), b"3");
    assert!(
        !volume.dir().join(&first).exists(),
        "the old payload dir is removed"
    );
    assert!(
        fs::symlink_metadata(volume.key_path("b")).is_err(),
        "a dropped key goes"
    );
    assert!(volume.last_swap().unwrap() > swapped);
}

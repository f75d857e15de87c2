//! Atomic output: a temporary file in the output's directory, fsync, rename, fsync the
//! directory. A reader of the output path sees the old file or the new one, never a partial
//! one, even if the process is killed mid-write. An uncommitted temporary file is removed when
//! dropped; after a crash, the next write truncates it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the output file: Prometheus (another user, maybe) only needs to read it.
pub const OUTPUT_MODE: u32 = 0o644;

/// A file being written next to its final path.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates (or truncates) the temporary file for `target`.
    pub fn create(target: &Path) -> io::Result<Self> {
        let tmp = temp_path(target);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(OUTPUT_MODE)
            .open(&tmp)?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
            file: Some(file),
        })
    }

    /// Makes the written bytes durable and atomically replaces the target.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("file is present until commit");
        file.sync_all()?;
        file.set_permissions(fs::Permissions::from_mode(OUTPUT_MODE))?;
        drop(file);
        fs::rename(&self.tmp, &self.target)?;
        sync_dir(&self.target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `<dir>/.<name>.promreload-tmp`: hidden, in the same directory (so rename is atomic).
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.promreload-tmp"))
}

fn sync_dir(target: &Path) -> io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.yaml");
        fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(
            fs::read(&target).unwrap(),
            b"old",
            "not visible before commit"
        );
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, OUTPUT_MODE);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn drop_without_commit_keeps_old_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.yaml");
        fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

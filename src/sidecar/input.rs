//! Opening what users point paths at, safely: only regular files are ever read, and opening
//! never blocks (a FIFO would block `open()` forever); paths are compared by where they
//! resolve, not by how they are spelled; and files written in place are told apart from
//! files published atomically.

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Opens `path` for reading if it is a regular file. The open itself cannot block: it uses
/// `O_NONBLOCK` (which regular files ignore) and checks the type of what it opened, so a FIFO,
/// a socket or a device swapped in between a check and the open is refused, not waited on.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_regular(kind));
    }
    Ok(file)
}

/// The error for a path that is not a regular file, naming what it is.
pub fn not_regular(kind: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({})", type_name(kind)),
    )
}

/// What kind of file this is, for error messages.
pub fn type_name(kind: FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// The directory entry `path` names, resolved: its parent directory canonicalized (symlinks,
/// `.` and `..` resolved against the current directory) joined with its file name. Where the
/// parent does not exist yet, the path is made absolute and normalized lexically.
pub fn resolved_entry(path: &Path) -> PathBuf {
    let absolute = absolute(path);
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return absolute;
    };
    match std::fs::canonicalize(parent) {
        Ok(dir) => dir.join(name),
        Err(_) => absolute,
    }
}

/// `path` made absolute against the current directory, with `.` and `..` removed lexically.
fn absolute(path: &Path) -> PathBuf {
    let joined = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Why writing `output` would replace or alias `input`, if it would: the output's resolved
/// entry is the input's entry (`rename` would replace the input, or the symlink it is), or
/// the file the input resolves to, or the output already is the same file (same device and
/// inode, through a hard or symbolic link).
pub fn aliases(input: &Path, output: &Path) -> Option<String> {
    let out = resolved_entry(output);
    let entry = resolved_entry(input);
    if out == entry {
        return Some(format!(
            "{} and {} are the same path ({})",
            output.display(),
            input.display(),
            out.display()
        ));
    }
    if let Ok(target) = std::fs::canonicalize(input)
        && out == target
    {
        return Some(format!(
            "{} is where {} resolves ({})",
            output.display(),
            input.display(),
            target.display()
        ));
    }
    if let (Ok(a), Ok(b)) = (std::fs::metadata(input), std::fs::metadata(output))
        && (a.dev(), a.ino()) == (b.dev(), b.ino())
    {
        return Some(format!(
            "{} and {} are the same file (inode {})",
            output.display(),
            input.display(),
            a.ino()
        ));
    }
    None
}

/// For a file that may be written in place, when its last write is recent enough that the
/// writer may not be done: the instant (its mtime plus `settle`) before which it should not be
/// read. `None` when it can be read now: written longer ago, or published atomically, which
/// is how the kubelet updates volumes (the file resolves into one of its `..<timestamp>`
/// directories, never modified after the `..data` swap), so that path never waits.
pub fn settling_until(path: &Path, settle: Duration, now: SystemTime) -> Option<SystemTime> {
    if settle.is_zero() {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    if published_atomically(&target) {
        return None;
    }
    let modified = std::fs::metadata(&target).ok()?.modified().ok()?;
    let until = modified + settle;
    // A clock step or a copied timestamp in the future never holds a file back for longer
    // than one window.
    (until > now && until <= now + settle).then_some(until)
}

/// Whether a resolved path lies in a kubelet AtomicWriter timestamp directory.
fn published_atomically(target: &Path) -> bool {
    target.components().any(|c| match c {
        Component::Normal(name) => {
            let name = name.as_encoded_bytes();
            name.starts_with(b"..") && name.len() > 2
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = open_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        let err = open_regular(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        fs::write(dir.path().join("f"), "x").unwrap();
        assert!(open_regular(&dir.path().join("f")).is_ok());
    }

    #[test]
    fn aliases_are_found_whatever_the_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("in.gz"), "x").unwrap();
        let spelled = d.join("sub/../in.gz");
        assert!(aliases(&d.join("in.gz"), &spelled).is_some());
        assert!(aliases(&d.join("in.gz"), &d.join("./in.gz")).is_some());
        // The kubelet's layout: the key is a symlink; writing to its target is refused too.
        fs::create_dir(d.join("..2026")).unwrap();
        fs::write(d.join("..2026/key"), "x").unwrap();
        symlink("..2026", d.join("..data")).unwrap();
        symlink("..data/key", d.join("key")).unwrap();
        assert!(aliases(&d.join("key"), &d.join("..2026/key")).is_some());
        // A hard link is the same inode.
        fs::hard_link(d.join("in.gz"), d.join("link")).unwrap();
        assert!(aliases(&d.join("in.gz"), &d.join("link")).is_some());
        assert!(aliases(&d.join("in.gz"), &d.join("out.yaml")).is_none());
        // A relative spelling resolves against the current directory.
        let cwd = std::env::current_dir().unwrap();
        let rel = cwd.join("x/../y");
        assert_eq!(absolute(Path::new("x/../y")), absolute(&rel));
    }

    #[test]
    fn recent_in_place_writes_settle_and_kubelet_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("plain"), "x").unwrap();
        let now = SystemTime::now();
        let settle = Duration::from_millis(500);
        assert!(settling_until(&d.join("plain"), settle, now).is_some());
        assert!(settling_until(&d.join("plain"), settle, now + settle * 2).is_none());
        assert!(settling_until(&d.join("plain"), Duration::ZERO, now).is_none());
        fs::create_dir(d.join("..2026_11_26")).unwrap();
        fs::write(d.join("..2026_11_26/key"), "x").unwrap();
        symlink("..2026_11_26", d.join("..data")).unwrap();
        symlink("..data/key", d.join("key")).unwrap();
        assert!(settling_until(&d.join("key"), settle, now).is_none());
        assert!(settling_until(&d.join("missing"), settle, now).is_none());
    }
}

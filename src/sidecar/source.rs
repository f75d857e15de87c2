//! The renderer's input: a file (the mounted Secret volume) or bytes held in memory (one key
//! of a Secret read through the Kubernetes API, kept current by its watch).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::input::open_regular;
use super::render::RenderError;

/// Where the renderer reads its input.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file, opened afresh at each apply.
    File(PathBuf),
    /// The latest bytes a watch delivered.
    Memory(Arc<Memory>),
}

impl Input {
    /// The input as error messages name it.
    pub fn name(&self) -> InputName {
        match self {
            Self::File(path) => InputName(format!("config file {}", path.display())),
            Self::Memory(memory) => InputName(memory.name.clone()),
        }
    }

    /// Opens the input for one read. A file must be a non-empty regular file inside its own
    /// directory (a symlink may not lead out of the mounted volume); bytes held in memory
    /// must have been read and be non-empty.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, RenderError> {
        match self {
            Self::File(path) => Ok(Box::new(self.open_file(path)?)),
            Self::Memory(memory) => match memory.get() {
                Latest::Bytes(bytes) if bytes.is_empty() => Err(RenderError::Empty(self.name())),
                Latest::Bytes(bytes) => Ok(Box::new(io::Cursor::new(bytes))),
                Latest::Pending => Err(RenderError::Pending(self.name())),
                Latest::Unavailable { kind, reason } => Err(RenderError::Unavailable {
                    name: self.name(),
                    kind,
                    reason,
                }),
            },
        }
    }

    fn open_file(&self, input: &Path) -> Result<File, RenderError> {
        let read_error = |source| RenderError::Read {
            path: self.name(),
            source,
        };
        let not_found = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => RenderError::Missing(self.name()),
            _ => read_error(e),
        };
        let target = std::fs::canonicalize(input).map_err(not_found)?;
        let dir = match input.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(dir).map_err(not_found)?;
        if !target.starts_with(&dir) {
            return Err(RenderError::Escape {
                path: input.to_path_buf(),
                target,
                dir,
            });
        }
        // Never blocks (a FIFO is refused, not waited on) and reads only regular files.
        let file = open_regular(&target).map_err(not_found)?;
        let meta = file.metadata().map_err(read_error)?;
        if meta.len() == 0 {
            return Err(RenderError::Empty(self.name()));
        }
        Ok(file)
    }
}

/// An input as error messages name it: `config file /etc/...` or `Secret ns/name key k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputName(String);

impl fmt::Display for InputName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The latest state of an input held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    /// Not read yet.
    Pending,
    /// The input's bytes.
    Bytes(Arc<[u8]>),
    /// There is nothing to read: `kind` is a short metric label, `reason` says why.
    Unavailable {
        /// Label for `reloader_apply_errors_total{kind}`.
        kind: &'static str,
        /// What is wrong, for logs and `/status`.
        reason: String,
    },
}

/// An input held in memory: written by its watch, read by the renderer.
#[derive(Debug)]
pub struct Memory {
    name: String,
    latest: Mutex<Latest>,
}

impl Memory {
    /// An input named `name` (in messages), not read yet.
    pub fn new(name: String) -> Self {
        Self {
            name,
            latest: Mutex::new(Latest::Pending),
        }
    }

    /// Replaces the latest state; returns whether it changed.
    pub fn set(&self, latest: Latest) -> bool {
        let mut current = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *current != latest;
        *current = latest;
        changed
    }

    /// The latest state.
    pub fn get(&self) -> Latest {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

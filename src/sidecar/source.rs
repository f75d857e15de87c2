//! The renderer's input: a file (the mounted Secret volume) or bytes held in memory (one key
//! of a Secret read through the Kubernetes API, kept current by its watch).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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

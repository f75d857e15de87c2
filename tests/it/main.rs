//! The integration tests, in one binary (ripgrep's layout): each module is one area, run
//! black-box against the built binaries and real parts; `support` holds what they share.
//! `cargo test --test it MODULE::` runs one area, for example `cargo test --test it node::`.

mod support;

mod docs;
mod drop_in;
mod hostile;
mod reliability;
mod sidecar;
mod soak;

#[cfg(feature = "reconciler")]
mod alerts;
#[cfg(all(feature = "reconciler", feature = "api"))]
mod api_mode;
#[cfg(feature = "reconciler")]
mod deploy;
#[cfg(feature = "reconciler")]
mod e2e;
#[cfg(feature = "reconciler")]
mod node;
#[cfg(feature = "reconciler")]
mod oracle;
#[cfg(feature = "reconciler")]
mod reconciler;
#[cfg(feature = "reconciler")]
mod render;
#[cfg(feature = "reconciler")]
mod workload;

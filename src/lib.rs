//! promreload keeps Prometheus's configuration in sync inside Kubernetes.
//!
//! **The sidecar** ([`sidecar`]) runs next to Prometheus. It watches the directory where the
//! kubelet mounts the operator-generated Secret (and any rule directories), renders the config
//! as a stream (gunzip, expand `$(VAR)` from its environment, hash), writes it atomically, and
//! tells Prometheus to reload, once per real change, with backoff while Prometheus is not
//! ready. A bad input never replaces the last good config.
//!
//! Modules, in the order a config travels: [`config`] (settings), [`sidecar::watch`],
//! [`sidecar::render`] and [`sidecar::expand`], [`sidecar::output`], [`sidecar::reload`];
//! around them [`admin`] (probes, metrics, status), [`metrics`] and [`telemetry`].

pub mod admin;
pub mod config;
pub mod metrics;
pub mod sidecar;
pub mod telemetry;
pub mod webconfig;

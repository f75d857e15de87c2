//! The sidecar's settings: every `RELOADER_*` variable and Go reloader flag, declared once in
//! [`Settings`] (type, flag, variable, default, help), then checked together into the
//! [`Config`] the sidecar runs on.
//!
//! Precedence is flag, then variable, then default ([`crate::settings`]). Values are checked
//! here, at start; a bad one is reported with the name the user wrote, so `main` exits with
//! code 2 before anything runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use reqwest::Url;

use crate::admin;
use crate::settings::{
    Names, OrEmpty, Parsed, SettingsError, or_empty, parse_bool, parse_duration,
    parse_listen_address, parse_ratio, parse_size, parse_url, path, positive_duration, text,
};
use crate::telemetry::{LogFormat, parse_format, parse_level};

/// Every setting promreload understands. Flags are spelled as prometheus-config-reloader
/// spells them; each also has a `RELOADER_*` variable.
#[derive(Debug, Parser)]
#[command(
    name = "promreload",
    version,
    about = "promreload: keeps Prometheus's configuration in sync with a mounted Secret.",
    after_help = "Flags win over variables, variables over defaults."
)]
pub struct Settings {
    /// input config file, gzip (sniffed by magic bytes) or plain
    #[arg(long, env = "RELOADER_CONFIG_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub config_file: OrEmpty<PathBuf>,

    /// API mode: read the input from this Secret through the Kubernetes API (watched), instead of a file
    #[arg(long, env = "RELOADER_CONFIG_SECRET", value_name = "NAME", default_value = "",
          hide_default_value = true, value_parser = or_empty(object_name))]
    pub config_secret: OrEmpty<String>,

    /// namespace of the Secret; empty = the Pod's own (service-account namespace) or the kubeconfig's
    #[arg(long, env = "RELOADER_CONFIG_SECRET_NAMESPACE", value_name = "NAMESPACE",
          default_value = "", hide_default_value = true, value_parser = or_empty(namespace_name))]
    pub config_secret_namespace: OrEmpty<String>,

    /// key of the Secret that holds the config (gzip or plain)
    #[arg(long, env = "RELOADER_CONFIG_SECRET_KEY", value_name = "KEY",
          default_value = "prometheus.yaml.gz", value_parser = secret_key)]
    pub config_secret_key: String,

    /// output file with $(VAR) expanded; empty = no output, only watch and reload
    #[arg(long, env = "RELOADER_CONFIG_ENVSUBST_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub config_envsubst_file: OrEmpty<PathBuf>,

    /// directory whose files also trigger reloads (flag repeatable, variable comma-separated)
    #[arg(long = "watched-dir", env = "RELOADER_WATCHED_DIRS", value_name = "DIR",
          value_parser = path)]
    pub watched_dirs: Vec<PathBuf>,

    /// URL that receives the reload POST
    #[arg(long, env = "RELOADER_RELOAD_URL", value_name = "URL",
          default_value = "http://127.0.0.1:9090/-/reload", value_parser = parse_url)]
    pub reload_url: Url,

    /// full re-check interval as a safety net; 0 = init mode (write once and exit)
    #[arg(long, env = "RELOADER_WATCH_INTERVAL", value_name = "DURATION", default_value = "3m",
          value_parser = parse_duration)]
    pub watch_interval: Duration,

    /// minimum spacing between reloads; changes inside it coalesce into one reload
    #[arg(long, env = "RELOADER_DELAY_INTERVAL", value_name = "DURATION", default_value = "1s",
          value_parser = parse_duration)]
    pub delay_interval: Duration,

    /// first retry delay after a failed reload (then exponential backoff with jitter)
    #[arg(long, env = "RELOADER_RETRY_INTERVAL", value_name = "DURATION", default_value = "1s",
          value_parser = positive_duration)]
    pub retry_interval: Duration,

    /// cap of the retry backoff
    #[arg(long, env = "RELOADER_RETRY_MAX_INTERVAL", value_name = "DURATION",
          default_value = "60s", value_parser = positive_duration)]
    pub retry_max_interval: Duration,

    /// timeout of one reload request
    #[arg(long, env = "RELOADER_RELOAD_TIMEOUT", value_name = "DURATION", default_value = "30s",
          value_parser = positive_duration)]
    pub reload_timeout: Duration,

    /// address of /healthz, /readyz, /metrics and /status; empty = no server
    #[arg(long, env = "RELOADER_LISTEN_ADDRESS", value_name = "ADDRESS", default_value = ":8080",
          value_parser = or_empty(parse_listen_address))]
    pub listen_address: OrEmpty<String>,

    /// cap on the rendered output (protects against gzip bombs)
    #[arg(long, env = "RELOADER_MAX_CONFIG_BYTES", value_name = "SIZE", default_value = "64MiB",
          value_parser = parse_size)]
    pub max_config_bytes: u64,

    /// refuse a config that references an unset $(VAR) instead of leaving it as text
    #[arg(long, env = "RELOADER_STRICT_ENV", value_name = "BOOL", default_value = "false",
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = parse_bool, overrides_with = "no_strict_env")]
    pub strict_env: bool,

    /// `--no-strict-env`
    #[arg(long, hide = true, overrides_with = "strict_env")]
    pub no_strict_env: bool,

    /// log level: error, warn, info or debug
    #[arg(long, env = "RELOADER_LOG_LEVEL", value_name = "LEVEL", default_value = "info",
          value_parser = parse_level)]
    pub log_level: tracing::Level,

    /// log format: logfmt or json
    #[arg(long, env = "RELOADER_LOG_FORMAT", value_name = "FORMAT", default_value = "logfmt",
          value_parser = parse_format)]
    pub log_format: LogFormat,

    /// http (POST to the reload URL) or signal (SIGHUP, confirmed through runtimeinfo)
    #[arg(long, env = "RELOADER_RELOAD_METHOD", value_name = "METHOD", default_value = "http",
          value_parser = parse_method)]
    pub reload_method: Method,

    /// URL of Prometheus's runtimeinfo, to confirm a signal reload
    #[arg(long, env = "RELOADER_RUNTIMEINFO_URL", value_name = "URL",
          default_value = "http://127.0.0.1:9090/api/v1/status/runtimeinfo",
          value_parser = parse_url)]
    pub runtimeinfo_url: Url,

    /// executable name of the process that receives SIGHUP in signal mode
    #[arg(long, env = "RELOADER_PROCESS_EXECUTABLE_NAME", value_name = "NAME",
          default_value = "prometheus", value_parser = text)]
    pub process_executable_name: String,

    /// variable whose trailing digits become $(STATEFULSET_ORDINAL_NUMBER)
    #[arg(long, env = "RELOADER_STATEFULSET_ORDINAL_FROM_ENVVAR", value_name = "VAR",
          default_value = "POD_NAME", value_parser = or_empty(text))]
    pub statefulset_ordinal_from_envvar: OrEmpty<String>,

    /// PEM CA bundle trusted for HTTPS reload/runtimeinfo URLs, besides the system roots
    #[arg(long, env = "RELOADER_RELOAD_CA_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub reload_ca_file: OrEmpty<PathBuf>,

    /// PEM client certificate for HTTPS reloads (with the key file)
    #[arg(long, env = "RELOADER_RELOAD_CERT_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub reload_cert_file: OrEmpty<PathBuf>,

    /// PEM private key of the client certificate
    #[arg(long, env = "RELOADER_RELOAD_KEY_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub reload_key_file: OrEmpty<PathBuf>,

    /// basic-auth user for reload/runtimeinfo requests (with the password file)
    #[arg(long, env = "RELOADER_RELOAD_USERNAME", value_name = "USER", default_value = "",
          hide_default_value = true, value_parser = or_empty(text))]
    pub reload_username: OrEmpty<String>,

    /// file holding the basic-auth password, re-read at each reload
    #[arg(long, env = "RELOADER_RELOAD_PASSWORD_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub reload_password_file: OrEmpty<PathBuf>,

    /// file holding a bearer token, re-read at each reload
    #[arg(long, env = "RELOADER_RELOAD_BEARER_TOKEN_FILE", value_name = "FILE",
          default_value = "", hide_default_value = true, value_parser = or_empty(path))]
    pub reload_bearer_token_file: OrEmpty<PathBuf>,

    /// do not verify the reload URL's certificate (the Go reloader never does; avoid)
    #[arg(long, env = "RELOADER_RELOAD_INSECURE_SKIP_VERIFY", value_name = "BOOL",
          default_value = "false", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_bool,
          overrides_with = "no_reload_insecure_skip_verify")]
    pub reload_insecure_skip_verify: bool,

    /// `--no-reload-insecure-skip-verify`
    #[arg(long, hide = true, overrides_with = "reload_insecure_skip_verify")]
    pub no_reload_insecure_skip_verify: bool,

    /// PEM certificate: serve the admin endpoints over HTTPS (with the key file)
    #[arg(long, env = "RELOADER_WEB_TLS_CERT_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub web_tls_cert_file: OrEmpty<PathBuf>,

    /// PEM private key of the admin server's certificate
    #[arg(long, env = "RELOADER_WEB_TLS_KEY_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub web_tls_key_file: OrEmpty<PathBuf>,

    /// exporter-toolkit web config for the admin server (TLS, client certificates, basic auth, headers; below)
    #[arg(long, env = "RELOADER_WEB_CONFIG_FILE", value_name = "FILE", default_value = "",
          hide_default_value = true, value_parser = or_empty(path))]
    pub web_config_file: OrEmpty<PathBuf>,

    /// a file written in place (not swapped in atomically like the kubelet's) is read only once unchanged this long; 0 = at once
    #[arg(long, env = "RELOADER_SETTLE_INTERVAL", value_name = "DURATION",
          default_value = "500ms", value_parser = parse_duration)]
    pub settle_interval: Duration,

    /// /healthz fails while one config check has been running longer than this (a hung filesystem)
    #[arg(long, env = "RELOADER_LIVENESS_TIMEOUT", value_name = "DURATION", default_value = "2m",
          value_parser = positive_duration)]
    pub liveness_timeout: Duration,

    /// accepted for compatibility with the Go reloader; no effect (no garbage collector here)
    #[arg(long, env = "RELOADER_AUTO_GOMEMLIMIT_RATIO", value_name = "RATIO",
          default_value = "0.9", value_parser = parse_ratio)]
    pub auto_gomemlimit_ratio: f64,
}

/// `--reload-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST to the reload URL.
    Http,
    /// SIGHUP to the Prometheus process.
    Signal,
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s.trim() {
        "http" => Ok(Method::Http),
        "signal" => Ok(Method::Signal),
        _ => Err("expected http or signal".into()),
    }
}

/// A Kubernetes object name (DNS subdomain).
fn object_name(s: &str) -> Result<String, String> {
    dns_name(s, 253)
}

/// A namespace name (DNS label).
fn namespace_name(s: &str) -> Result<String, String> {
    let s = dns_name(s, 63)?;
    if s.contains('.') {
        return Err("a namespace has no '.'".into());
    }
    Ok(s)
}

fn dns_name(s: &str, max: usize) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then(|| s.to_string()).ok_or_else(|| {
        format!("not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most {max} characters)")
    })
}

fn secret_key(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && s != "."
        && s != "..";
    ok.then(|| s.to_string())
        .ok_or_else(|| "not a Secret key (letters, digits, '-', '_' and '.')".to_string())
}

/// How Prometheus is told to reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMethod {
    /// `POST` to the reload URL.
    Http,
    /// SIGHUP to the process with this executable name, confirmed through runtimeinfo.
    Signal {
        /// Executable name to look for in `/proc`.
        process_name: String,
    },
}

/// Credentials sent with reload and runtimeinfo requests; files are re-read at each reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// File holding the password.
        password_file: PathBuf,
    },
    /// `Authorization: Bearer` with the token in this file.
    Bearer {
        /// File holding the token.
        token_file: PathBuf,
    },
}

/// TLS settings of the reload client; files are re-read when they change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Extra CA bundle (PEM), trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// The certificate the admin server serves (the web config's `cert_file`), trusted as
    /// Prometheus's own when the reload URL is on the loopback: prometheus-operator hands the
    /// reloader the same web config as the server beside it. See [`ClientTls::pin_for`].
    pub pinned_cert_file: Option<PathBuf>,
}

impl ClientTls {
    /// The certificate to trust as the server's own at `url`: the admin server's certificate
    /// (from the web config or the `--web-tls-*` flags), when `url` is HTTPS on the loopback
    /// and verification is not switched off.
    ///
    /// Why this is safe: only a process holding that certificate's private key can complete
    /// the handshake with it, and that key is the one the web config gives this Pod's server;
    /// the check is that the presented certificate is byte for byte the one in the file, not
    /// only one some CA signed. The name in it does not matter, as the loopback of the Pod's
    /// own network namespace is not a name anyone else can answer for. A URL off the loopback
    /// is verified against the CAs only, as before.
    pub fn pin_for(url: &Url, tls: &ClientTls, web: &super::webconfig::Web) -> Option<PathBuf> {
        if url.scheme() != "https" || tls.insecure_skip_verify || !is_loopback(url) {
            return None;
        }
        web.tls.as_ref().map(|t| t.cert_file.clone())
    }
}

/// Whether the URL's host is this machine's loopback: `localhost` (RFC 6761), 127.0.0.0/8
/// or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Everything about reaching Prometheus.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// HTTP or signal.
    pub method: ReloadMethod,
    /// Where the reload `POST` goes.
    pub url: Url,
    /// Prometheus's runtimeinfo endpoint (signal mode).
    pub runtimeinfo_url: Url,
    /// Timeout of one reload (request, or signal plus confirmation).
    pub timeout: Duration,
    /// Credentials, if any.
    pub auth: Option<Auth>,
    /// TLS settings.
    pub tls: ClientTls,
}

/// API mode: the input is one key of one Secret, read and watched through the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInput {
    /// The Secret's name.
    pub name: String,
    /// Its namespace; `None` = the client's default (the Pod's own in a cluster).
    pub namespace: Option<String>,
    /// The key holding the config.
    pub key: String,
}

/// The validated configuration of the sidecar.
#[derive(Debug, Clone)]
pub struct Config {
    /// Input config file (gzip or plain); `None` = only watched dirs (or a Secret).
    pub config_file: Option<PathBuf>,
    /// Input Secret (API mode), instead of `config_file`.
    pub config_secret: Option<SecretInput>,
    /// Rendered output file; `None` = render for hashing only.
    pub output_file: Option<PathBuf>,
    /// Directories whose regular files are hashed and trigger reloads.
    pub watched_dirs: Vec<PathBuf>,
    /// How and where to reload.
    pub reload: ReloadConfig,
    /// Full re-check interval; zero means init mode.
    pub watch_interval: Duration,
    /// Minimum spacing between reloads.
    pub delay_interval: Duration,
    /// First retry delay.
    pub retry_interval: Duration,
    /// Backoff cap.
    pub retry_max_interval: Duration,
    /// Admin server address as written (`:8080`, `127.0.0.1:0`); `None` = no server.
    pub listen_address: Option<String>,
    /// How the admin server protects itself (HTTPS, basic auth, headers).
    pub web: super::webconfig::Web,
    /// Cap on the rendered output, in bytes.
    pub max_config_bytes: u64,
    /// How long a file written in place must stay unchanged before it is read.
    pub settle_interval: Duration,
    /// `/healthz` fails while one check has been running longer than this.
    pub liveness_timeout: Duration,
    /// Refuse configs that reference unset variables.
    pub strict_env: bool,
    /// Variable whose trailing digits become `STATEFULSET_ORDINAL_NUMBER`.
    pub ordinal_from: Option<String>,
    /// Maximum log level.
    pub log_level: tracing::Level,
    /// Log format.
    pub log_format: LogFormat,
}

impl Config {
    /// Init mode: render and write once, then exit (`watch-interval` of zero).
    pub fn init_mode(&self) -> bool {
        self.watch_interval.is_zero()
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run with this configuration.
    Run {
        /// The configuration.
        config: Box<Config>,
        /// `RELOADER_*` variables that name no setting (warned about, not fatal: Kubernetes
        /// service links can inject such names).
        ignored_env: Vec<String>,
    },
    /// Print this text (help or version) and exit 0.
    Print(String),
}

/// Parses the process's arguments and `RELOADER_*` variables.
pub fn from_process() -> Result<Command, SettingsError> {
    let env = crate::settings::environment("RELOADER_")?;
    parse(std::env::args_os().skip(1), &env)
}

/// Parses `args` (without the program name) over `env` (variable name, value).
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: &[(String, String)],
) -> Result<Command, SettingsError> {
    match crate::settings::parse::<Settings>(args, env, "RELOADER_")? {
        Parsed::Print(text) => Ok(Command::Print(text)),
        Parsed::Run {
            settings,
            names,
            unknown_env,
        } => Ok(Command::Run {
            config: Box::new(settings.check(&names)?),
            ignored_env: unknown_env,
        }),
    }
}

impl Settings {
    /// Checks the settings together and builds the configuration.
    pub fn check(self, names: &Names) -> Result<Config, SettingsError> {
        let mut reload = self.reload_config(names)?;
        let config_secret = self.secret_input(names)?;
        let web = self.web(names)?;
        let target = match reload.method {
            ReloadMethod::Http => &reload.url,
            ReloadMethod::Signal { .. } => &reload.runtimeinfo_url,
        };
        reload.tls.pinned_cert_file = ClientTls::pin_for(target, &reload.tls, &web);
        let config = Config {
            config_file: self.config_file.0,
            config_secret,
            output_file: self.config_envsubst_file.0,
            watched_dirs: self.watched_dirs,
            reload,
            watch_interval: self.watch_interval,
            delay_interval: self.delay_interval,
            retry_interval: self.retry_interval,
            retry_max_interval: self.retry_max_interval,
            listen_address: self.listen_address.0,
            web,
            max_config_bytes: self.max_config_bytes,
            settle_interval: self.settle_interval,
            liveness_timeout: self.liveness_timeout,
            strict_env: self.strict_env && !self.no_strict_env,
            ordinal_from: self.statefulset_ordinal_from_envvar.0,
            log_level: self.log_level,
            log_format: self.log_format,
        };
        validate(&config, names)?;
        Ok(config)
    }

    fn reload_config(&self, names: &Names) -> Result<ReloadConfig, SettingsError> {
        let method = match self.reload_method {
            Method::Http => ReloadMethod::Http,
            Method::Signal if self.process_executable_name.trim().is_empty() => {
                return Err(SettingsError::Invalid {
                    name: names.of("process-executable-name"),
                    value: self.process_executable_name.clone(),
                    reason: "must not be empty".into(),
                });
            }
            Method::Signal => ReloadMethod::Signal {
                process_name: self.process_executable_name.trim().to_string(),
            },
        };
        let auth = match (
            &self.reload_username.0,
            &self.reload_password_file.0,
            &self.reload_bearer_token_file.0,
        ) {
            (None, None, None) => None,
            (Some(username), Some(password_file), None) => Some(Auth::Basic {
                username: username.clone(),
                password_file: password_file.clone(),
            }),
            (None, None, Some(token_file)) => Some(Auth::Bearer {
                token_file: token_file.clone(),
            }),
            (_, _, Some(_)) => {
                return Err(SettingsError::Conflict(format!(
                    "choose basic auth ({} + {}) or a bearer token ({}), not both",
                    names.spelled("reload-username"),
                    names.spelled("reload-password-file"),
                    names.spelled("reload-bearer-token-file"),
                )));
            }
            _ => {
                return Err(SettingsError::Conflict(format!(
                    "basic auth needs both {} and {}",
                    names.spelled("reload-username"),
                    names.spelled("reload-password-file"),
                )));
            }
        };
        let cert_and_key = pair(
            names,
            (&self.reload_cert_file, "reload-cert-file"),
            (&self.reload_key_file, "reload-key-file"),
        )?;
        Ok(ReloadConfig {
            method,
            url: self.reload_url.clone(),
            runtimeinfo_url: self.runtimeinfo_url.clone(),
            timeout: self.reload_timeout,
            auth,
            tls: ClientTls {
                ca_file: self.reload_ca_file.0.clone(),
                cert_and_key,
                insecure_skip_verify: self.reload_insecure_skip_verify
                    && !self.no_reload_insecure_skip_verify,
                pinned_cert_file: None,
            },
        })
    }

    fn secret_input(&self, names: &Names) -> Result<Option<SecretInput>, SettingsError> {
        let Some(name) = &self.config_secret.0 else {
            return Ok(None);
        };
        if !cfg!(feature = "api") {
            return Err(SettingsError::Invalid {
                name: names.of("config-secret"),
                value: name.clone(),
                reason: format!(
                    "this build has no API mode (cargo feature `api`); mount the Secret and set {}",
                    names.spelled("config-file")
                ),
            });
        }
        Ok(Some(SecretInput {
            name: name.clone(),
            namespace: self.config_secret_namespace.0.clone(),
            key: self.config_secret_key.clone(),
        }))
    }

    fn web(&self, names: &Names) -> Result<super::webconfig::Web, SettingsError> {
        let direct = pair(
            names,
            (&self.web_tls_cert_file, "web-tls-cert-file"),
            (&self.web_tls_key_file, "web-tls-key-file"),
        )?;
        let from_file = match &self.web_config_file.0 {
            Some(path) => super::webconfig::load(path).map_err(|e| SettingsError::Invalid {
                name: names.of("web-config-file"),
                value: path.display().to_string(),
                reason: e.to_string(),
            })?,
            None => super::webconfig::Web::default(),
        };
        match (direct, from_file) {
            (Some(_), web) if web != super::webconfig::Web::default() => {
                Err(SettingsError::Conflict(format!(
                    "set the admin server's TLS through {} + {} or {}, not both",
                    names.spelled("web-tls-cert-file"),
                    names.spelled("web-tls-key-file"),
                    names.spelled("web-config-file"),
                )))
            }
            (Some((cert_file, key_file)), _) => Ok(super::webconfig::Web::tls(admin::Tls::new(
                cert_file, key_file,
            ))),
            (None, web) => Ok(web),
        }
    }
}

/// Two files that go together (certificate and key): both or neither. Each side is the
/// value and its flag.
fn pair(
    names: &Names,
    a: (&OrEmpty<PathBuf>, &str),
    b: (&OrEmpty<PathBuf>, &str),
) -> Result<Option<(PathBuf, PathBuf)>, SettingsError> {
    match (&a.0.0, &b.0.0) {
        (None, None) => Ok(None),
        (Some(x), Some(y)) => Ok(Some((x.clone(), y.clone()))),
        _ => Err(SettingsError::Conflict(format!(
            "{} and {} go together: set both or neither",
            names.spelled(a.1),
            names.spelled(b.1),
        ))),
    }
}

fn validate(c: &Config, names: &Names) -> Result<(), SettingsError> {
    if c.retry_max_interval < c.retry_interval {
        return Err(SettingsError::Invalid {
            name: names.of("retry-max-interval"),
            value: humantime::format_duration(c.retry_max_interval).to_string(),
            reason: "must not be shorter than the retry interval".into(),
        });
    }
    if c.config_file.is_some() && c.config_secret.is_some() {
        return Err(SettingsError::Conflict(format!(
            "choose one input: {} or {}, not both",
            names.spelled("config-file"),
            names.spelled("config-secret"),
        )));
    }
    let has_input = c.config_file.is_some() || c.config_secret.is_some();
    if !has_input && c.watched_dirs.is_empty() {
        return Err(SettingsError::Conflict(format!(
            "nothing to do: set {}, {} or {}",
            names.spelled("config-file"),
            names.spelled("config-secret"),
            names.spelled("watched-dir"),
        )));
    }
    if c.output_file.is_some() && !has_input {
        return Err(SettingsError::Conflict(format!(
            "{} needs {} or {}",
            names.spelled("config-envsubst-file"),
            names.spelled("config-file"),
            names.spelled("config-secret"),
        )));
    }
    if let (Some(input), Some(output)) = (&c.config_file, &c.output_file)
        && let Some(why) = super::input::aliases(input, output)
    {
        return Err(SettingsError::Conflict(format!(
            "the output file ({}) must differ from the input config file ({}): {why}",
            names.spelled("config-envsubst-file"),
            names.spelled("config-file"),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::redacted_url;

    /// The variables as `RELOADER_` plus the upper-cased key.
    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    format!("RELOADER_{}", k.to_ascii_uppercase()),
                    v.to_string(),
                )
            })
            .collect()
    }

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, SettingsError> {
        match parse(args.iter().map(OsString::from), &env(vars))? {
            Command::Run { config, .. } => Ok(*config),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply() {
        let c = run(&[], &[("config_file", "/in.gz")]).unwrap();
        assert_eq!(c.reload.url.as_str(), "http://127.0.0.1:9090/-/reload");
        assert_eq!(c.reload.method, ReloadMethod::Http);
        assert_eq!(c.ordinal_from.as_deref(), Some("POD_NAME"));
        assert!(c.web.tls.is_none() && c.reload.auth.is_none());
        assert_eq!(c.watch_interval, Duration::from_secs(180));
        assert_eq!(c.delay_interval, Duration::from_secs(1));
        assert_eq!(c.retry_max_interval, Duration::from_secs(60));
        assert_eq!(c.max_config_bytes, 64 * 1024 * 1024);
        assert_eq!(c.listen_address.as_deref(), Some(":8080"));
        assert!(!c.strict_env);
        assert_eq!(c.log_format, LogFormat::Logfmt);
    }

    #[test]
    fn flags_win_over_variables() {
        let c = run(
            &["--watch-interval=10s", "--delay-interval", "0"],
            &[("config_file", "/in.gz"), ("watch_interval", "1m")],
        )
        .unwrap();
        assert_eq!(c.watch_interval, Duration::from_secs(10));
        assert_eq!(c.delay_interval, Duration::ZERO);
    }

    #[test]
    fn watched_dirs_from_both_sources() {
        let c = run(&[], &[("watched_dirs", "/a, /b,,")]).unwrap();
        assert_eq!(
            c.watched_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        let c = run(
            &["--watched-dir=/x", "--watched-dir", "/y"],
            &[("watched_dirs", "/a")],
        )
        .unwrap();
        assert_eq!(
            c.watched_dirs,
            vec![PathBuf::from("/x"), PathBuf::from("/y")]
        );
    }

    #[test]
    fn bad_value_names_the_variable() {
        let err = run(&[], &[("config_file", "/in"), ("watch_interval", "soon")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("RELOADER_WATCH_INTERVAL"), "{msg}");
        assert!(msg.contains("soon"), "{msg}");
        let err = run(&["--max-config-bytes=lots"], &[("config_file", "/in")]).unwrap_err();
        assert!(err.to_string().contains("--max-config-bytes"), "{err}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn empty_listen_address_means_no_server() {
        let c = run(&["--listen-address="], &[("config_file", "/in")]).unwrap();
        assert_eq!(c.listen_address, None);
    }

    #[test]
    fn booleans_accept_bare_and_negated_flags() {
        assert!(
            run(&["--strict-env"], &[("config_file", "/in")])
                .unwrap()
                .strict_env
        );
        let c = run(
            &["--no-strict-env"],
            &[("config_file", "/in"), ("strict_env", "true")],
        );
        assert!(!c.unwrap().strict_env);
    }

    #[test]
    fn unknown_flag_is_an_error_and_unknown_variable_is_not() {
        assert!(matches!(
            run(&["--frobnicate=1"], &[("config_file", "/in")]),
            Err(SettingsError::UnknownFlag(f)) if f == "--frobnicate"
        ));
        let cmd = parse(
            Vec::<OsString>::new(),
            &env(&[("config_file", "/in"), ("port_8080_tcp", "x")]),
        )
        .unwrap();
        match cmd {
            Command::Run { ignored_env, .. } => {
                assert_eq!(ignored_env, vec!["RELOADER_PORT_8080_TCP".to_string()])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn listen_addresses_are_checked_and_name_the_setting() {
        for good in [
            ":8080",
            "127.0.0.1:0",
            "[::1]:9",
            "localhost:8080",
            "[::]:80",
        ] {
            let c = run(
                &[&format!("--listen-address={good}")],
                &[("config_file", "/in")],
            );
            assert_eq!(c.unwrap().listen_address.as_deref(), Some(good));
        }
        for bad in ["8080", ":abc", ":99999", "::1:80", "host:"] {
            let err = run(
                &[&format!("--listen-address={bad}")],
                &[("config_file", "/in")],
            )
            .unwrap_err();
            assert!(err.to_string().contains("--listen-address"), "{err}");
        }
        let err = run(&[], &[("config_file", "/in"), ("listen_address", "8080")]).unwrap_err();
        assert!(err.to_string().contains("RELOADER_LISTEN_ADDRESS"), "{err}");
    }

    #[test]
    fn url_credentials_never_show() {
        let c = run(
            &["--reload-url=http://admin:hunter2@127.0.0.1:9090/-/reload"],
            &[("config_file", "/in")],
        )
        .unwrap();
        assert_eq!(
            redacted_url(&c.reload.url),
            "http://admin:xxxxx@127.0.0.1:9090/-/reload"
        );
        for bad in ["http://admin:hunter2@[bad/-/reload", "ftp://u:hunter2@h/x"] {
            let err = run(&[&format!("--reload-url={bad}")], &[("config_file", "/in")])
                .unwrap_err()
                .to_string();
            assert!(!err.contains("hunter2") && err.contains("xxxxx"), "{err}");
        }
    }

    #[test]
    fn an_output_spelled_differently_from_the_input_is_still_caught() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.gz");
        std::fs::write(&input, "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let output = dir.path().join("sub/../in.gz");
        let err = run(
            &[],
            &[
                ("config_file", input.to_str().unwrap()),
                ("config_envsubst_file", output.to_str().unwrap()),
            ],
        )
        .unwrap_err();
        assert!(matches!(err, SettingsError::Conflict(_)), "{err}");
    }

    #[test]
    fn nothing_to_watch_is_refused() {
        assert_eq!(
            run(&[], &[]).unwrap_err().to_string(),
            "nothing to do: set RELOADER_CONFIG_FILE (--config-file), RELOADER_CONFIG_SECRET \
             (--config-secret) or RELOADER_WATCHED_DIRS (--watched-dir)"
        );
    }

    #[test]
    fn a_conflict_names_each_setting_as_it_was_set() {
        let from_env = run(
            &[],
            &[("config_file", "/in"), ("reload_cert_file", "/c.pem")],
        )
        .unwrap_err();
        assert_eq!(
            from_env.to_string(),
            "RELOADER_RELOAD_CERT_FILE and RELOADER_RELOAD_KEY_FILE (--reload-key-file) go \
             together: set both or neither"
        );
        let from_flag = run(&["--config-file=/in", "--reload-cert-file=/c.pem"], &[]).unwrap_err();
        assert_eq!(
            from_flag.to_string(),
            "--reload-cert-file and RELOADER_RELOAD_KEY_FILE (--reload-key-file) go together: \
             set both or neither"
        );
        if cfg!(feature = "api") {
            let both = run(&["--config-secret=s"], &[("config_file", "/in")]).unwrap_err();
            assert_eq!(
                both.to_string(),
                "choose one input: RELOADER_CONFIG_FILE or --config-secret, not both"
            );
        }
    }

    #[test]
    fn help_lists_every_setting_and_no_variable_value() {
        let Command::Print(help) = parse(
            [OsString::from("--help")],
            &env(&[("reload_url", "http://u:hunter2@h/")]),
        )
        .unwrap() else {
            panic!("--help prints")
        };
        let documented = crate::settings::documented::<Settings>();
        assert_eq!(documented.len(), 34);
        for s in documented {
            assert!(
                help.contains(&format!("--{}", s.flag)) && help.contains(&s.env),
                "{}",
                s.flag
            );
        }
        assert!(
            !help.contains("hunter2") && !help.contains("no-strict-env"),
            "{help}"
        );
    }

    #[test]
    fn version_prints() {
        let Command::Print(text) = parse([OsString::from("--version")], &[]).unwrap() else {
            panic!("--version prints")
        };
        assert_eq!(
            text.trim(),
            format!("promreload {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn the_servers_own_certificate_is_trusted_on_the_loopback_only() {
        let tls = [
            "--web-tls-cert-file=/web/tls.crt",
            "--web-tls-key-file=/web/tls.key",
        ];
        let pin = |url: &str, extra: &[&str]| {
            let args: Vec<&str> = tls.iter().chain(extra).copied().collect();
            run(&args, &[("config_file", "/in.gz"), ("reload_url", url)])
                .unwrap()
                .reload
                .tls
                .pinned_cert_file
        };
        let own = Some(PathBuf::from("/web/tls.crt"));
        for url in [
            "https://localhost:9090/-/reload",
            "https://LOCALHOST:9090/-/reload",
            "https://127.0.0.2:9090/-/reload",
            "https://[::1]:9090/-/reload",
        ] {
            assert_eq!(pin(url, &[]), own, "{url}");
        }
        for url in [
            "http://localhost:9090/-/reload",
            "https://prometheus.monitoring.svc:9090/-/reload",
            "https://10.0.0.1:9090/-/reload",
            "https://localhost.example.com:9090/-/reload",
        ] {
            assert_eq!(pin(url, &[]), None, "{url}");
        }
        let skip = ["--reload-insecure-skip-verify"];
        assert_eq!(pin("https://localhost:9090/-/reload", &skip), None);
        let c = run(
            &[],
            &[
                ("config_file", "/in.gz"),
                ("reload_url", "https://localhost/"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.reload.tls.pinned_cert_file, None,
            "no web TLS, nothing to pin"
        );
    }
}

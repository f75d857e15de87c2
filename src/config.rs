//! Configuration: `RELOADER_*` environment variables (read with `envy`) and the Go
//! reloader's command-line flags, merged into one typed [`Config`].
//!
//! Every setting is declared once in [`SETTINGS`]: its flag, its variable, its default and its
//! help text. Precedence is flag, then variable, then default. Values are validated here, at
//! start, and a bad one is reported with the name the user wrote (`--watch-interval` or
//! `RELOADER_WATCH_INTERVAL`), so `main` can exit with code 2 before anything runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

/// One setting: how it is named on the command line and in the environment, its default and
/// what it means. The single source of truth for `--help`, the README and parsing.
#[derive(Debug)]
pub struct Setting {
    /// Flag name without the leading `--`, as prometheus-config-reloader spells it.
    pub flag: &'static str,
    /// Environment variable name.
    pub env: &'static str,
    /// Default value, in the same syntax a user would write.
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

const fn setting(
    flag: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        flag,
        env,
        default,
        help,
    }
}

/// Every setting promreload understands.
pub const SETTINGS: &[Setting] = &[
    setting(
        "config-file",
        "RELOADER_CONFIG_FILE",
        "",
        "input config file, gzip (sniffed by magic bytes) or plain",
    ),
    setting(
        "config-secret",
        "RELOADER_CONFIG_SECRET",
        "",
        "API mode: read the input from this Secret through the Kubernetes API (watched), instead of a file",
    ),
    setting(
        "config-secret-namespace",
        "RELOADER_CONFIG_SECRET_NAMESPACE",
        "",
        "namespace of the Secret; empty = the Pod's own (service-account namespace) or the kubeconfig's",
    ),
    setting(
        "config-secret-key",
        "RELOADER_CONFIG_SECRET_KEY",
        "prometheus.yaml.gz",
        "key of the Secret that holds the config (gzip or plain)",
    ),
    setting(
        "config-envsubst-file",
        "RELOADER_CONFIG_ENVSUBST_FILE",
        "",
        "output file with $(VAR) expanded; empty = no output, only watch and reload",
    ),
    setting(
        "watched-dir",
        "RELOADER_WATCHED_DIRS",
        "",
        "directory whose files also trigger reloads (flag repeatable, variable comma-separated)",
    ),
    setting(
        "reload-url",
        "RELOADER_RELOAD_URL",
        "http://127.0.0.1:9090/-/reload",
        "URL that receives the reload POST",
    ),
    setting(
        "watch-interval",
        "RELOADER_WATCH_INTERVAL",
        "3m",
        "full re-check interval as a safety net; 0 = init mode (write once and exit)",
    ),
    setting(
        "delay-interval",
        "RELOADER_DELAY_INTERVAL",
        "1s",
        "minimum spacing between reloads; changes inside it coalesce into one reload",
    ),
    setting(
        "retry-interval",
        "RELOADER_RETRY_INTERVAL",
        "1s",
        "first retry delay after a failed reload (then exponential backoff with jitter)",
    ),
    setting(
        "retry-max-interval",
        "RELOADER_RETRY_MAX_INTERVAL",
        "60s",
        "cap of the retry backoff",
    ),
    setting(
        "reload-timeout",
        "RELOADER_RELOAD_TIMEOUT",
        "30s",
        "timeout of one reload request",
    ),
    setting(
        "listen-address",
        "RELOADER_LISTEN_ADDRESS",
        ":8080",
        "address of /healthz, /readyz, /metrics and /status; empty = no server",
    ),
    setting(
        "max-config-bytes",
        "RELOADER_MAX_CONFIG_BYTES",
        "64MiB",
        "cap on the rendered output (protects against gzip bombs)",
    ),
    setting(
        "strict-env",
        "RELOADER_STRICT_ENV",
        "false",
        "refuse a config that references an unset $(VAR) instead of leaving it as text",
    ),
    setting(
        "log-level",
        "RELOADER_LOG_LEVEL",
        "info",
        "log level: error, warn, info or debug",
    ),
    setting(
        "log-format",
        "RELOADER_LOG_FORMAT",
        "logfmt",
        "log format: logfmt or json",
    ),
    setting(
        "reload-method",
        "RELOADER_RELOAD_METHOD",
        "http",
        "http (POST to the reload URL) or signal (SIGHUP, confirmed through runtimeinfo)",
    ),
    setting(
        "runtimeinfo-url",
        "RELOADER_RUNTIMEINFO_URL",
        "http://127.0.0.1:9090/api/v1/status/runtimeinfo",
        "URL of Prometheus's runtimeinfo, to confirm a signal reload",
    ),
    setting(
        "process-executable-name",
        "RELOADER_PROCESS_EXECUTABLE_NAME",
        "prometheus",
        "executable name of the process that receives SIGHUP in signal mode",
    ),
    setting(
        "statefulset-ordinal-from-envvar",
        "RELOADER_STATEFULSET_ORDINAL_FROM_ENVVAR",
        "POD_NAME",
        "variable whose trailing digits become $(STATEFULSET_ORDINAL_NUMBER)",
    ),
    setting(
        "reload-ca-file",
        "RELOADER_RELOAD_CA_FILE",
        "",
        "PEM CA bundle trusted for HTTPS reload/runtimeinfo URLs, besides the system roots",
    ),
    setting(
        "reload-cert-file",
        "RELOADER_RELOAD_CERT_FILE",
        "",
        "PEM client certificate for HTTPS reloads (with the key file)",
    ),
    setting(
        "reload-key-file",
        "RELOADER_RELOAD_KEY_FILE",
        "",
        "PEM private key of the client certificate",
    ),
    setting(
        "reload-username",
        "RELOADER_RELOAD_USERNAME",
        "",
        "basic-auth user for reload/runtimeinfo requests (with the password file)",
    ),
    setting(
        "reload-password-file",
        "RELOADER_RELOAD_PASSWORD_FILE",
        "",
        "file holding the basic-auth password, re-read at each reload",
    ),
    setting(
        "reload-bearer-token-file",
        "RELOADER_RELOAD_BEARER_TOKEN_FILE",
        "",
        "file holding a bearer token, re-read at each reload",
    ),
    setting(
        "reload-insecure-skip-verify",
        "RELOADER_RELOAD_INSECURE_SKIP_VERIFY",
        "false",
        "do not verify the reload URL's certificate (the Go reloader never does; avoid)",
    ),
    setting(
        "web-tls-cert-file",
        "RELOADER_WEB_TLS_CERT_FILE",
        "",
        "PEM certificate: serve the admin endpoints over HTTPS (with the key file)",
    ),
    setting(
        "web-tls-key-file",
        "RELOADER_WEB_TLS_KEY_FILE",
        "",
        "PEM private key of the admin server's certificate",
    ),
    setting(
        "web-config-file",
        "RELOADER_WEB_CONFIG_FILE",
        "",
        "exporter-toolkit web config for the admin server (tls_server_config subset)",
    ),
    setting(
        "settle-interval",
        "RELOADER_SETTLE_INTERVAL",
        "500ms",
        "a file written in place (not swapped in atomically like the kubelet's) is read only once unchanged this long; 0 = at once",
    ),
    setting(
        "liveness-timeout",
        "RELOADER_LIVENESS_TIMEOUT",
        "2m",
        "/healthz fails while one config check has been running longer than this (a hung filesystem)",
    ),
    setting(
        "auto-gomemlimit-ratio",
        "RELOADER_AUTO_GOMEMLIMIT_RATIO",
        "0.9",
        "accepted for compatibility with the Go reloader; no effect (no garbage collector here)",
    ),
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line (the Go reloader's default).
    Logfmt,
    /// One JSON object per line.
    Json,
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

/// TLS for the admin server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// Require client certificates signed by this CA (PEM).
    pub client_ca_file: Option<PathBuf>,
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
    /// Admin server TLS, if any.
    pub web_tls: Option<ServerTls>,
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
    /// Run with this configuration; `ignored_env` lists unknown `RELOADER_*` variables.
    Run {
        /// The configuration.
        config: Box<Config>,
        /// `RELOADER_*` variables that name no setting (warned about, not fatal: Kubernetes
        /// service links can inject such names).
        ignored_env: Vec<String>,
    },
    /// Print this help text and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version,
}

/// A configuration error; `main` prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {name}: {reason}")]
    Invalid {
        /// The flag or variable the user wrote.
        name: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A flag nobody knows.
    #[error("unknown flag {0}; see --help")]
    UnknownFlag(String),
    /// A flag without its value, or another command-line syntax error.
    #[error("command line: {0}")]
    Syntax(String),
    /// Settings that cannot work together.
    #[error("{0}")]
    Conflict(String),
    /// The environment could not be read.
    #[error("reading RELOADER_* variables: {0}")]
    Env(String),
}

/// Where a raw value came from: the name reported in errors.
#[derive(Debug, Clone)]
struct Raw {
    origin: String,
    values: Vec<String>,
}

/// Parses the process's arguments and environment.
pub fn from_process() -> Result<Command, ConfigError> {
    let env: HashMap<String, String> = envy::prefixed("RELOADER_")
        .from_env()
        .map_err(|e| ConfigError::Env(e.to_string()))?;
    parse(std::env::args_os().skip(1), env)
}

/// Parses `args` (without the program name) over `env` (the `RELOADER_*` variables with the
/// prefix removed and lower-cased, as `envy` yields them).
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: HashMap<String, String>,
) -> Result<Command, ConfigError> {
    let mut raw: HashMap<&'static str, Raw> = HashMap::new();
    let mut ignored_env = Vec::new();
    for (key, value) in env {
        let var = format!("RELOADER_{}", key.to_ascii_uppercase());
        match SETTINGS.iter().find(|s| s.env == var) {
            Some(s) => {
                let values = split_list(s, &value);
                raw.insert(
                    s.flag,
                    Raw {
                        origin: var,
                        values,
                    },
                );
            }
            None => ignored_env.push(var),
        }
    }
    ignored_env.sort();
    if let Some(command) = parse_flags(args, &mut raw)? {
        return Ok(command);
    }
    let config = build(&raw)?;
    Ok(Command::Run {
        config: Box::new(config),
        ignored_env,
    })
}

fn split_list(s: &Setting, value: &str) -> Vec<String> {
    if s.flag == "watched-dir" {
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    } else {
        vec![value.to_string()]
    }
}

fn parse_flags(
    args: impl IntoIterator<Item = OsString>,
    raw: &mut HashMap<&'static str, Raw>,
) -> Result<Option<Command>, ConfigError> {
    use lexopt::Arg;
    let mut parser = lexopt::Parser::from_args(args);
    let mut from_flags: HashMap<&'static str, Raw> = HashMap::new();
    let syntax = |e: lexopt::Error| ConfigError::Syntax(e.to_string());
    while let Some(arg) = parser.next().map_err(syntax)? {
        let name = match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(Some(Command::Help(help_text()))),
            Arg::Long("version") => return Ok(Some(Command::Version)),
            Arg::Long(name) => name.to_string(),
            Arg::Short(c) => return Err(ConfigError::UnknownFlag(format!("-{c}"))),
            Arg::Value(v) => {
                return Err(ConfigError::Syntax(format!(
                    "unexpected argument {:?}",
                    v.to_string_lossy()
                )));
            }
        };
        let (setting, value) = flag_value(&name, &mut parser)?;
        let entry = from_flags.entry(setting.flag).or_insert_with(|| Raw {
            origin: format!("--{}", setting.flag),
            values: Vec::new(),
        });
        if setting.flag == "watched-dir" {
            entry.values.push(value);
        } else {
            entry.values = vec![value];
        }
    }
    raw.extend(from_flags);
    Ok(None)
}

/// Resolves one long flag to its setting and value; booleans accept `--x`, `--x=false`, `--no-x`.
fn flag_value(
    name: &str,
    parser: &mut lexopt::Parser,
) -> Result<(&'static Setting, String), ConfigError> {
    let find = |n: &str| SETTINGS.iter().find(|s| s.flag == n);
    if let Some(s) = find(name) {
        if is_bool(s) {
            let value = parser.optional_value();
            return Ok((
                s,
                value.map_or("true".into(), |v| v.to_string_lossy().into()),
            ));
        }
        let value = parser
            .value()
            .map_err(|_| ConfigError::Syntax(format!("--{name} needs a value")))?;
        let value = value
            .into_string()
            .map_err(|v| ConfigError::Syntax(format!("--{name}: value {v:?} is not UTF-8")))?;
        return Ok((s, value));
    }
    if let Some(s) = name
        .strip_prefix("no-")
        .and_then(find)
        .filter(|s| is_bool(s))
    {
        return Ok((s, "false".into()));
    }
    Err(ConfigError::UnknownFlag(format!("--{name}")))
}

fn is_bool(s: &Setting) -> bool {
    matches!(s.default, "true" | "false")
}

/// The `--help` text, generated from [`SETTINGS`].
pub fn help_text() -> String {
    let mut out = String::from(
        "promreload: keeps Prometheus's configuration in sync with a mounted Secret.\n\n\
         Usage: promreload [--flag=value | --flag value]...\n\n\
         Flags win over variables, variables over defaults.\n\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!(" (default {})", s.default)
        };
        out.push_str(&format!(
            "  --{:<24} {}\n      {}{}\n",
            s.flag, s.env, s.help, default
        ));
    }
    out.push_str("  --help                    print this help\n  --version                 print the version\n");
    out
}

/// Looks up a value: the raw one if given, else the default.
struct Values<'a> {
    raw: &'a HashMap<&'static str, Raw>,
}

impl Values<'_> {
    fn get(&self, flag: &str) -> (String, String) {
        let s = SETTINGS
            .iter()
            .find(|s| s.flag == flag)
            .expect("every looked-up flag is declared in SETTINGS");
        match self.raw.get(s.flag) {
            Some(r) => (
                r.origin.clone(),
                r.values.last().cloned().unwrap_or_default(),
            ),
            None => (format!("--{} (default)", s.flag), s.default.to_string()),
        }
    }

    fn list(&self, flag: &str) -> Vec<String> {
        self.raw
            .get(flag)
            .map(|r| r.values.clone())
            .unwrap_or_default()
    }

    fn parsed<T>(
        &self,
        flag: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (name, value) = self.get(flag);
        f(&value).map_err(|reason| ConfigError::Invalid {
            name,
            value: redacted_value(flag, &value),
            reason,
        })
    }

    fn path(&self, flag: &str) -> Option<PathBuf> {
        self.string(flag).map(PathBuf::from)
    }

    /// The value, `None` when empty.
    fn string(&self, flag: &str) -> Option<String> {
        let (_, value) = self.get(flag);
        (!value.is_empty()).then_some(value)
    }

    fn invalid(&self, flag: &str, reason: &str) -> ConfigError {
        let (name, value) = self.get(flag);
        ConfigError::Invalid {
            name,
            value: redacted_value(flag, &value),
            reason: reason.into(),
        }
    }
}

fn build(raw: &HashMap<&'static str, Raw>) -> Result<Config, ConfigError> {
    let v = Values { raw };
    v.parsed("auto-gomemlimit-ratio", parse_ratio)?;
    let config = Config {
        config_file: v.path("config-file"),
        config_secret: secret_input(&v)?,
        output_file: v.path("config-envsubst-file"),
        watched_dirs: v
            .list("watched-dir")
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        reload: reload_config(&v)?,
        watch_interval: v.parsed("watch-interval", parse_duration)?,
        delay_interval: v.parsed("delay-interval", parse_duration)?,
        retry_interval: v.parsed("retry-interval", positive_duration)?,
        retry_max_interval: v.parsed("retry-max-interval", positive_duration)?,
        listen_address: match v.string("listen-address") {
            Some(_) => Some(v.parsed("listen-address", parse_listen_address)?),
            None => None,
        },
        web_tls: web_tls(&v)?,
        max_config_bytes: v.parsed("max-config-bytes", parse_size)?,
        settle_interval: v.parsed("settle-interval", parse_duration)?,
        liveness_timeout: v.parsed("liveness-timeout", positive_duration)?,
        strict_env: v.parsed("strict-env", parse_bool)?,
        ordinal_from: v.string("statefulset-ordinal-from-envvar"),
        log_level: v.parsed("log-level", parse_level)?,
        log_format: v.parsed("log-format", parse_format)?,
    };
    validate(&config, &v)?;
    Ok(config)
}

fn reload_config(v: &Values) -> Result<ReloadConfig, ConfigError> {
    let method = match v.get("reload-method").1.trim() {
        "http" => ReloadMethod::Http,
        "signal" => ReloadMethod::Signal {
            process_name: v.parsed("process-executable-name", non_empty)?,
        },
        _ => return Err(v.invalid("reload-method", "expected http or signal")),
    };
    let auth = match (
        v.string("reload-username"),
        v.path("reload-password-file"),
        v.path("reload-bearer-token-file"),
    ) {
        (None, None, None) => None,
        (Some(username), Some(password_file), None) => Some(Auth::Basic {
            username,
            password_file,
        }),
        (None, None, Some(token_file)) => Some(Auth::Bearer { token_file }),
        (_, _, Some(_)) => {
            return Err(ConfigError::Conflict(
                "choose basic auth (RELOADER_RELOAD_USERNAME + RELOADER_RELOAD_PASSWORD_FILE) or a bearer token (RELOADER_RELOAD_BEARER_TOKEN_FILE), not both".into(),
            ));
        }
        _ => {
            return Err(ConfigError::Conflict(
                "basic auth needs both RELOADER_RELOAD_USERNAME and RELOADER_RELOAD_PASSWORD_FILE"
                    .into(),
            ));
        }
    };
    let cert_and_key = pair(v, "reload-cert-file", "reload-key-file")?;
    Ok(ReloadConfig {
        method,
        url: v.parsed("reload-url", parse_url)?,
        runtimeinfo_url: v.parsed("runtimeinfo-url", parse_url)?,
        timeout: v.parsed("reload-timeout", positive_duration)?,
        auth,
        tls: ClientTls {
            ca_file: v.path("reload-ca-file"),
            cert_and_key,
            insecure_skip_verify: v.parsed("reload-insecure-skip-verify", parse_bool)?,
        },
    })
}

fn secret_input(v: &Values) -> Result<Option<SecretInput>, ConfigError> {
    let Some(name) = v.string("config-secret") else {
        return Ok(None);
    };
    if !cfg!(feature = "api") {
        return Err(v.invalid(
            "config-secret",
            "this build has no API mode (cargo feature `api`); mount the Secret and set RELOADER_CONFIG_FILE",
        ));
    }
    let dns = |s: &str, max: usize| {
        let ok = !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric());
        ok.then_some(()).ok_or_else(|| {
            format!("not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most {max} characters)")
        })
    };
    v.parsed("config-secret", |s| dns(s, 253))?;
    let namespace = match v.string("config-secret-namespace") {
        Some(ns) => {
            v.parsed("config-secret-namespace", |s| {
                dns(s, 63)?;
                if s.contains('.') {
                    return Err("a namespace has no '.'".into());
                }
                Ok(())
            })?;
            Some(ns)
        }
        None => None,
    };
    let key = v.parsed("config-secret-key", |s| {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            && s != "."
            && s != "..";
        ok.then(|| s.to_string())
            .ok_or_else(|| "not a Secret key (letters, digits, '-', '_' and '.')".to_string())
    })?;
    Ok(Some(SecretInput {
        name,
        namespace,
        key,
    }))
}

/// Two files that go together (certificate and key): both or neither.
fn pair(v: &Values, a: &str, b: &str) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    match (v.path(a), v.path(b)) {
        (None, None) => Ok(None),
        (Some(x), Some(y)) => Ok(Some((x, y))),
        _ => Err(ConfigError::Conflict(format!(
            "--{a} and --{b} ({} and {}) go together: set both or neither",
            env_name(a),
            env_name(b)
        ))),
    }
}

fn env_name(flag: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|s| s.flag == flag)
        .map_or("", |s| s.env)
}

fn web_tls(v: &Values) -> Result<Option<ServerTls>, ConfigError> {
    let direct = pair(v, "web-tls-cert-file", "web-tls-key-file")?;
    let from_file = match v.path("web-config-file") {
        Some(path) => crate::webconfig::load(&path).map_err(|reason| ConfigError::Invalid {
            name: v.get("web-config-file").0,
            value: path.display().to_string(),
            reason,
        })?,
        None => None,
    };
    match (direct, from_file) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict(
            "set the admin server's TLS through RELOADER_WEB_TLS_CERT_FILE/_KEY_FILE or --web-config-file, not both".into(),
        )),
        (Some((cert_file, key_file)), None) => Ok(Some(ServerTls {
            cert_file,
            key_file,
            client_ca_file: None,
        })),
        (None, tls) => Ok(tls),
    }
}

fn validate(c: &Config, v: &Values) -> Result<(), ConfigError> {
    if c.retry_max_interval < c.retry_interval {
        let (name, value) = v.get("retry-max-interval");
        return Err(ConfigError::Invalid {
            name,
            value,
            reason: "must not be shorter than the retry interval".into(),
        });
    }
    if c.config_file.is_some() && c.config_secret.is_some() {
        return Err(ConfigError::Conflict(
            "choose one input: RELOADER_CONFIG_FILE (--config-file) or RELOADER_CONFIG_SECRET (--config-secret), not both".into(),
        ));
    }
    let has_input = c.config_file.is_some() || c.config_secret.is_some();
    if !has_input && c.watched_dirs.is_empty() {
        return Err(ConfigError::Conflict(
            "nothing to do: set RELOADER_CONFIG_FILE (--config-file), RELOADER_CONFIG_SECRET (--config-secret) or RELOADER_WATCHED_DIRS (--watched-dir)".into(),
        ));
    }
    if c.output_file.is_some() && !has_input {
        return Err(ConfigError::Conflict(
            "RELOADER_CONFIG_ENVSUBST_FILE (--config-envsubst-file) needs RELOADER_CONFIG_FILE (--config-file) or RELOADER_CONFIG_SECRET (--config-secret)".into(),
        ));
    }
    if let (Some(input), Some(output)) = (&c.config_file, &c.output_file)
        && let Some(why) = crate::sidecar::input::aliases(input, output)
    {
        return Err(ConfigError::Conflict(format!(
            "the output file (RELOADER_CONFIG_ENVSUBST_FILE) must differ from the input config file: {why}"
        )));
    }
    Ok(())
}

/// Parses a duration such as `500ms`, `3m`, `1m30s` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected a duration such as 500ms, 3m)"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// Parses a size such as `64MiB`, `512KiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("{e} (expected a size such as 64MiB, 512KiB or bytes)"))?;
    if size.as_u64() == 0 {
        return Err("must be greater than zero".into());
    }
    Ok(size.as_u64())
}

fn non_empty(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err("expected a number greater than 0 and at most 1".into()),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("scheme {other:?} is not http or https")),
    }
}

/// A URL for logs, errors and `/status`: a password in it is replaced by `xxxxx` (as Go's
/// `URL.Redacted` does).
pub fn redacted_url(url: &Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(Some("xxxxx"));
    shown.to_string()
}

/// A value as written, for an error message: for a URL setting, anything between `://` and
/// the last `@` before the path (credentials) is replaced by `xxxxx`, even when the URL does
/// not parse.
fn redacted_value(flag: &str, value: &str) -> String {
    if !flag.ends_with("-url") {
        return value.to_string();
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://xxxxx{}", &rest[at..]),
        None => value.to_string(),
    }
}

/// `:port`, `host:port` or `[v6]:port`, as `net.Listen` takes it.
fn parse_listen_address(s: &str) -> Result<String, String> {
    let s = s.trim();
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("expected host:port or :port (for example :8080)".into());
    };
    port.parse::<u16>().map_err(|_| {
        format!("bad port {port:?} (expected host:port or :port, for example :8080)")
    })?;
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_err() => {
            return Err(format!("bad IPv6 address {v6:?}"));
        }
        None if host.contains(':') => {
            return Err(format!(
                "bad host {host:?} (an IPv6 address goes in brackets: [::1]:8080)"
            ));
        }
        _ => {}
    }
    if host.contains(['/', ' ', '@']) {
        return Err(format!("bad host {host:?}"));
    }
    Ok(s.to_string())
}

pub(crate) fn parse_level(s: &str) -> Result<tracing::Level, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(tracing::Level::ERROR),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "info" => Ok(tracing::Level::INFO),
        "debug" => Ok(tracing::Level::DEBUG),
        "trace" => Ok(tracing::Level::TRACE),
        _ => Err("expected error, warn, info or debug".into()),
    }
}

pub(crate) fn parse_format(s: &str) -> Result<LogFormat, String> {
    match s.trim() {
        "logfmt" => Ok(LogFormat::Logfmt),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected logfmt or json".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        match parse(args.iter().map(OsString::from), env(vars))? {
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
        assert!(c.web_tls.is_none() && c.reload.auth.is_none());
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
            Err(ConfigError::UnknownFlag(f)) if f == "--frobnicate"
        ));
        let cmd = parse(
            Vec::<OsString>::new(),
            env(&[("config_file", "/in"), ("port_8080_tcp", "x")]),
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
        assert!(matches!(err, ConfigError::Conflict(_)), "{err}");
    }

    #[test]
    fn nothing_to_watch_is_refused() {
        assert!(matches!(run(&[], &[]), Err(ConfigError::Conflict(_))));
    }

    #[test]
    fn help_lists_every_setting() {
        let help = help_text();
        for s in SETTINGS {
            assert!(help.contains(s.flag) && help.contains(s.env), "{}", s.flag);
        }
    }
}

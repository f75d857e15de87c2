//! Settings from flags and environment variables, for both binaries.
//!
//! Each binary declares its settings once, with clap's derive API: the type, the flag, the
//! variable, the default and the help line of every setting sit on one field (the sidecar's
//! in [`crate::sidecar::settings`], the reconciler's in `reconciler::settings`). This module
//! does what clap leaves open:
//!
//! - the variables come from a map the caller passes (the process's, or a test's), so parsing is
//!   a pure function; a variable applies only when its flag is not on the command line (flags
//!   win over variables, variables over defaults);
//! - a bad value is reported with the name the user wrote (`--watch-interval` or
//!   `RELOADER_WATCH_INTERVAL`), and a URL's credentials never appear in the message;
//! - variables with the binary's prefix that name no setting are listed (Kubernetes service
//!   links inject such names, so they are warned about, not fatal).
//!
//! It also holds the value parsers both binaries use (durations, sizes, URLs, booleans).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory};
use reqwest::Url;

/// A configuration error; `main` prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {name}: {reason}")]
    Invalid {
        /// The flag or variable the user wrote.
        name: String,
        /// The value as given (a URL's credentials replaced by `xxxxx`).
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
    #[error("environment: {0}")]
    Env(String),
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Run with these settings.
    Run {
        /// The settings.
        settings: T,
        /// Where each value came from, to name it in later errors.
        names: Names,
        /// Variables with the binary's prefix that name no setting.
        unknown_env: Vec<String>,
    },
    /// Print this text (help or version) and exit 0.
    Print(String),
}

/// Where each setting's value came from: the name a later error reports.
#[derive(Debug, Default)]
pub struct Names {
    from_env: HashMap<String, String>,
    on_command_line: HashSet<String>,
    /// Each declared flag's variable.
    declared: HashMap<String, String>,
}

impl Names {
    /// How a message about several settings names one: as the user set it (the variable or
    /// `--flag`), or, when it is not set, as both `VARIABLE (--flag)`, from the declarations.
    pub fn spelled(&self, flag: &str) -> String {
        self.set_as(flag).unwrap_or_else(|| {
            debug_assert!(self.declared.contains_key(flag), "--{flag} is not declared");
            match self.declared.get(flag) {
                Some(var) => format!("{var} (--{flag})"),
                None => format!("--{flag}"),
            }
        })
    }

    /// `--flag` if the value was on the command line, the variable if it came from there,
    /// `--flag (default)` otherwise. `flag` is the long name without dashes.
    pub fn of(&self, flag: &str) -> String {
        self.set_as(flag)
            .unwrap_or_else(|| format!("--{flag} (default)"))
    }

    /// The variable or `--flag` the user set `flag` with, if any.
    fn set_as(&self, flag: &str) -> Option<String> {
        if let Some(var) = self.from_env.get(flag) {
            Some(var.clone())
        } else if self.on_command_line.contains(flag) {
            Some(format!("--{flag}"))
        } else {
            None
        }
    }
}

/// The process's variables that start with `prefix`; a value that is not UTF-8 is an error
/// naming the variable.
pub fn environment(prefix: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with(prefix)) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| SettingsError::Env(format!("{name} is not UTF-8")))?;
        vars.push((name.to_string(), value));
    }
    Ok(vars)
}

/// Parses `args` (without the program name) over `env` for the settings `T` declares. Only
/// variables starting with `prefix` are considered. When the command line starts with a
/// subcommand, the variables are not applied (they configure the command itself).
pub fn parse<T: clap::Parser>(
    args: impl IntoIterator<Item = OsString>,
    env: &[(String, String)],
    prefix: &str,
) -> Result<Parsed<T>, SettingsError> {
    let args: Vec<OsString> = args.into_iter().collect();
    let declared = T::command();
    let mut names = Names {
        on_command_line: on_command_line(&declared, &args),
        declared: declared
            .get_arguments()
            .filter_map(|a| {
                Some((
                    a.get_long()?.to_string(),
                    a.get_env()?.to_str()?.to_string(),
                ))
            })
            .collect(),
        ..Names::default()
    };
    let subcommand = args.first().is_some_and(|a| {
        declared
            .get_subcommands()
            .any(|s| a.to_str() == Some(s.get_name()))
    });
    let mut argv = vec![OsString::from(declared.get_name())];
    let mut unknown_env = Vec::new();
    let mut env: Vec<_> = env.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
    env.sort();
    for (var, value) in env {
        let arg = declared
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == var.as_str()));
        let Some(flag) = arg.and_then(|a| a.get_long()) else {
            unknown_env.push(var.clone());
            continue;
        };
        if subcommand || names.on_command_line.contains(flag) {
            continue;
        }
        names.from_env.insert(flag.to_string(), var.clone());
        if matches!(arg.map(|a| a.get_action()), Some(ArgAction::Append)) {
            // A list in a variable is comma-separated; a flag is repeated.
            let items = value.split(',').map(str::trim).filter(|v| !v.is_empty());
            argv.extend(items.map(|v| OsString::from(format!("--{flag}={v}"))));
        } else {
            argv.push(format!("--{flag}={value}").into());
        }
    }
    argv.extend(args.iter().cloned());
    // The values were applied above; clap must not read the process's variables itself.
    let parser = declared.clone().mut_args(|a| a.env(None));
    let matches = match parser.try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Rendered by the declared command, so the help lists each setting's variable
            // (never its value), and from the command line alone.
            let shown = declared.mut_args(|a| a.hide_env_values(true));
            let argv = std::iter::once(argv[0].clone()).chain(args);
            let text = match shown.try_get_matches_from(argv) {
                Err(help) => help.render().to_string(),
                Ok(_) => e.render().to_string(),
            };
            return Ok(Parsed::Print(text));
        }
        Err(e) => return Err(from_clap(e, &names)),
    };
    let settings = T::from_arg_matches(&matches)
        .map_err(|e| SettingsError::Syntax(first_line(&e.to_string())))?;
    Ok(Parsed::Run {
        settings,
        names,
        unknown_env,
    })
}

/// The long names the user gave on the command line (`--no-x` counts as `x`).
fn on_command_line(cmd: &clap::Command, args: &[OsString]) -> HashSet<String> {
    let longs: HashSet<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    args.iter()
        .filter_map(|a| a.to_str()?.strip_prefix("--"))
        .map(|a| a.split_once('=').map_or(a, |(name, _)| name))
        .map(|name| match name.strip_prefix("no-") {
            Some(positive) if longs.contains(positive) && !longs.contains(name) => positive,
            _ => name,
        })
        .filter(|name| longs.contains(name))
        .map(String::from)
        .collect()
}

/// A clap error as ours, naming the flag or variable the bad value came from.
fn from_clap(e: clap::Error, names: &Names) -> SettingsError {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg);
            match arg.strip_prefix('-') {
                Some(_) => {
                    let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
                    SettingsError::UnknownFlag(name.to_string())
                }
                None => SettingsError::Syntax(format!("unexpected argument {arg:?}")),
            }
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(ContextKind::InvalidArg);
            let flag: String = arg
                .trim_start_matches('-')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let value = context(ContextKind::InvalidValue);
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                return SettingsError::Syntax(format!("--{flag} needs a value"));
            }
            let reason = match (
                std::error::Error::source(&e),
                e.get(ContextKind::ValidValue),
            ) {
                (Some(source), _) => source.to_string(),
                (None, Some(ContextValue::Strings(valid))) => {
                    format!("expected one of: {}", valid.join(", "))
                }
                _ => first_line(&e.to_string()),
            };
            SettingsError::Invalid {
                name: names.of(&flag),
                value: redacted_value(&flag, &value),
                reason,
            }
        }
        _ => SettingsError::Syntax(first_line(&e.to_string())),
    }
}

/// clap's message on one line, without its `error: ` prefix and the usage it appends.
fn first_line(s: &str) -> String {
    let text = s.strip_prefix("error: ").unwrap_or(s);
    let text = text.split("\n\n").next().unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One documented setting, as the README's tables list it.
#[derive(Debug)]
pub struct Documented {
    /// Long flag without dashes.
    pub flag: String,
    /// Environment variable.
    pub env: String,
    /// Default value as written; empty when there is none.
    pub default: String,
}

/// Every setting of `T` that has a variable, for the README check.
pub fn documented<T: CommandFactory>() -> Vec<Documented> {
    T::command()
        .get_arguments()
        .filter_map(|a| {
            Some(Documented {
                flag: a.get_long()?.to_string(),
                env: a.get_env()?.to_str()?.to_string(),
                default: a
                    .get_default_values()
                    .first()
                    .and_then(|d| d.to_str())
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect()
}

/// A setting where an empty value means "none": `--listen-address=` turns the server off,
/// `RELOADER_CONFIG_ENVSUBST_FILE=` writes no output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrEmpty<T>(pub Option<T>);

/// Wraps a value parser so that an empty (or blank) value is [`OrEmpty`]`(None)`.
pub fn or_empty<T: 'static>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<OrEmpty<T>, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim() {
        "" => Ok(OrEmpty(None)),
        _ => parse(s).map(|v| OrEmpty(Some(v))),
    }
}

/// Any text, as given.
pub fn text(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

/// A path, as given.
pub fn path(s: &str) -> Result<std::path::PathBuf, String> {
    Ok(s.into())
}

/// Parses a duration such as `500ms`, `3m`, `1m30s` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected a duration such as 500ms, 3m)"))
}

/// A duration greater than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
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

/// A ratio in (0, 1].
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err("expected a number greater than 0 and at most 1".into()),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`; empty is false).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// An `http` or `https` URL.
pub fn parse_url(s: &str) -> Result<Url, String> {
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
pub fn parse_listen_address(s: &str) -> Result<String, String> {
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

//! Where the API server is and how to authenticate to it: `KUBECONFIG` (or `~/.kube/config`)
//! when there is one, else the Pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and
//! the files under `/var/run/secrets/kubernetes.io/serviceaccount/`), in that order, as
//! client-go and kube infer it.
//!
//! This is read with the YAML parser the sidecar already has rather than through kube's
//! config loader, whose YAML stack alone was 1 MiB of the binary's code (measured with
//! `cargo bloat`): the sidecar runs in every Prometheus Pod, in file mode too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The service account's files in a Pod.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What the client needs to reach and authenticate to the API server.
#[derive(Debug, Default)]
pub struct ClientConfig {
    /// `https://host:port`.
    pub server: String,
    /// PEM bundle of the CAs to trust; `None` = the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Skip certificate verification (the kubeconfig's `insecure-skip-tls-verify`).
    pub insecure: bool,
    /// Client certificate and key, as one PEM.
    pub identity_pem: Option<Vec<u8>>,
    /// How requests authenticate besides a client certificate.
    pub credentials: Credentials,
    /// The namespace of the context, or of the Pod.
    pub namespace: String,
    /// A proxy for all requests.
    pub proxy: Option<String>,
}

/// Request authentication.
#[derive(Debug, Default)]
pub enum Credentials {
    /// None (a client certificate, or nothing).
    #[default]
    None,
    /// A fixed bearer token.
    Token(String),
    /// A bearer token read from this file for every request.
    TokenFile(PathBuf),
    /// Basic auth.
    Basic(String, String),
}

/// Why no configuration could be found or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither a kubeconfig nor a service account.
    #[error(
        "no Kubernetes client configuration: no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a Pod (KUBERNETES_SERVICE_HOST unset)"
    )]
    Nothing,
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The kubeconfig is not valid YAML of the expected shape.
    #[error("kubeconfig {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The kubeconfig asks for something this client does not do, or lacks something.
    #[error("kubeconfig: {0}")]
    Unsupported(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct File {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<Context>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    proxy_url: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(alias = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml_ng::Value>,
    auth_provider: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Context {
    cluster: String,
    user: Option<String>,
    namespace: Option<String>,
}

/// The configuration the environment describes.
pub fn infer() -> Result<ClientConfig, ConfigError> {
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".kube/config"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect(),
    };
    if paths.is_empty() {
        return in_cluster();
    }
    from_kubeconfig(&paths)
}

/// The Pod's service account.
fn in_cluster() -> Result<ClientConfig, ConfigError> {
    let (Ok(host), Ok(port)) = (
        std::env::var("KUBERNETES_SERVICE_HOST"),
        std::env::var("KUBERNETES_SERVICE_PORT"),
    ) else {
        return Err(ConfigError::Nothing);
    };
    let dir = Path::new(SERVICE_ACCOUNT_DIR);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(ClientConfig {
        server: format!("https://{host}:{port}"),
        ca_pem: Some(read(&dir.join("ca.crt"))?),
        credentials: Credentials::TokenFile(dir.join("token")),
        namespace: String::from_utf8_lossy(&read(&dir.join("namespace"))?)
            .trim()
            .to_string(),
        ..ClientConfig::default()
    })
}

/// The current context of the kubeconfig files `paths`, merged as kubectl merges them: the
/// first file to name a cluster, user or context, or the current context, wins.
fn from_kubeconfig(paths: &[PathBuf]) -> Result<ClientConfig, ConfigError> {
    let mut current = None;
    let mut clusters = HashMap::new();
    let mut users = HashMap::new();
    let mut contexts = HashMap::new();
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // A listed file that does not exist is skipped, as kubectl skips it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        let file: File = serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        current = current.or(file.current_context);
        for c in file.clusters {
            clusters
                .entry(c.name)
                .or_insert((c.value.unwrap_or_default(), base.clone()));
        }
        for u in file.users {
            users
                .entry(u.name)
                .or_insert((u.value.unwrap_or_default(), base.clone()));
        }
        for c in file.contexts {
            contexts
                .entry(c.name)
                .or_insert(c.value.unwrap_or_default());
        }
    }
    let name = current
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ConfigError::Unsupported("no current-context".into()))?;
    let context = contexts.get(&name).ok_or_else(|| {
        ConfigError::Unsupported(format!("current-context {name:?} is not defined"))
    })?;
    let (cluster, cluster_dir) = clusters.get(&context.cluster).ok_or_else(|| {
        ConfigError::Unsupported(format!("cluster {:?} is not defined", context.cluster))
    })?;
    let (user, user_dir) = match &context.user {
        Some(u) => users
            .get(u)
            .cloned()
            .ok_or_else(|| ConfigError::Unsupported(format!("user {u:?} is not defined")))?,
        None => (User::default(), PathBuf::new()),
    };
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(ConfigError::Unsupported(
            "the user authenticates through an exec plugin or an auth provider, which promreload does not run; use a token, a token file or a client certificate".into(),
        ));
    }
    let server = cluster.server.clone().ok_or_else(|| {
        ConfigError::Unsupported(format!("cluster {:?} has no server", context.cluster))
    })?;
    let ca_pem = data_or_file(
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
        cluster_dir,
        "certificate-authority",
    )?;
    let cert = data_or_file(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        &user_dir,
        "client-certificate",
    )?;
    let key = data_or_file(
        user.client_key_data.as_deref(),
        user.client_key.as_deref(),
        &user_dir,
        "client-key",
    )?;
    let identity_pem = match (cert, key) {
        (Some(mut cert), Some(key)) => {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            Some(cert)
        }
        (None, None) => None,
        _ => {
            return Err(ConfigError::Unsupported(
                "a client certificate needs its key, and a key its certificate".into(),
            ));
        }
    };
    let credentials = match (user.token, user.token_file, user.username, user.password) {
        (Some(token), _, _, _) => Credentials::Token(token.trim().to_string()),
        (None, Some(file), _, _) => Credentials::TokenFile(user_dir.join(file)),
        (None, None, Some(name), Some(password)) => Credentials::Basic(name, password),
        _ => Credentials::None,
    };
    Ok(ClientConfig {
        server,
        ca_pem,
        insecure: cluster.insecure_skip_tls_verify,
        identity_pem,
        credentials,
        namespace: context
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
        proxy: cluster.proxy_url.clone(),
    })
}

/// Base64 `data`, or else the file `file` (relative to the kubeconfig's directory).
fn data_or_file(
    data: Option<&str>,
    file: Option<&str>,
    dir: &Path,
    what: &str,
) -> Result<Option<Vec<u8>>, ConfigError> {
    use base64::Engine;
    match (data, file) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| ConfigError::Unsupported(format!("{what}-data: {e}"))),
        (None, Some(file)) => read(&dir.join(file)).map(Some),
        (None, None) => Ok(None),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_context_of_merged_files_is_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        let first = dir.path().join("a");
        std::fs::write(
            &first,
            "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u, namespace: ns}\nusers:\n- name: u\n  user: {tokenFile: token}\n",
        )
        .unwrap();
        let second = dir.path().join("b");
        std::fs::write(
            &second,
            "current-context: other\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}\nusers:\n- name: u\n  user: {token: ignored}\n",
        )
        .unwrap();
        let config = from_kubeconfig(&[first, dir.path().join("absent"), second]).unwrap();
        assert_eq!(config.server, "https://127.0.0.1:6443");
        assert_eq!(config.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(config.namespace, "ns");
        assert!(
            matches!(&config.credentials, Credentials::TokenFile(p) if *p == dir.path().join("token"))
        );
    }

    #[test]
    fn exec_plugins_and_dangling_names_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        write(
            "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {exec: {command: aws}}\n",
        );
        let error = from_kubeconfig(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(error.contains("exec plugin"), "{error}");
        write("current-context: c\ncontexts:\n- name: c\n  context: {cluster: nowhere}\n");
        let error = from_kubeconfig(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cluster \"nowhere\" is not defined"),
            "{error}"
        );
        write("clusters: [");
        assert!(matches!(
            from_kubeconfig(std::slice::from_ref(&path)),
            Err(ConfigError::Parse { .. })
        ));
    }
}

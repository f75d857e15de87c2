//! The web config's `basic_auth_users`: every endpoint asks for HTTP basic auth, checked
//! against bcrypt hashes as exporter-toolkit does.
//!
//! bcrypt is slow on purpose, so: one check runs at a time (on a blocking thread, never on
//! the server's own), and outcomes are remembered by a SHA-256 of user, hash and password
//! (never the password itself), for at most [`CACHE_ENTRIES`] answers. An unknown user is
//! checked against a hash of the same cost, so timing does not tell which users exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hyper::header::{AUTHORIZATION, HeaderMap};
use sha2::{Digest, Sha256};

/// How many check outcomes are remembered before the memory starts over.
pub const CACHE_ENTRIES: usize = 256;

/// Users and their bcrypt hashes, with the memory of recent checks.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Checked for a user that does not exist.
    decoy: String,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    gate: tokio::sync::Mutex<()>,
}

/// A `basic_auth_users` value that is not a bcrypt hash.
#[derive(Debug, thiserror::Error)]
#[error(
    "basic_auth_users: the password of {user:?} is not a bcrypt hash ($2a$, $2b$ or $2y$, a cost, 53 characters)"
)]
pub struct HashError {
    /// The user (the value is never repeated: it may be a password written in by mistake).
    pub user: String,
}

impl BasicAuth {
    /// Checks that every hash is a bcrypt hash; returns the first one's cost (`None` for no
    /// users).
    pub fn check(users: &BTreeMap<String, String>) -> Result<Option<u32>, HashError> {
        let mut cost = None;
        for (user, hash) in users {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|_: bcrypt::BcryptError| HashError { user: user.clone() })?;
            cost = cost.or(Some(parts.get_cost()));
        }
        Ok(cost)
    }

    /// The users' checks (see [`BasicAuth::check`]); `None` for no users.
    pub fn new(users: BTreeMap<String, String>) -> Result<Option<Arc<Self>>, HashError> {
        let Some(cost) = Self::check(&users)? else {
            return Ok(None);
        };
        let decoy = bcrypt::hash("promreload: no such user", cost).map_err(|_| HashError {
            user: String::new(),
        })?;
        Ok(Some(Arc::new(Self {
            users,
            decoy,
            cache: Mutex::new(HashMap::new()),
            gate: tokio::sync::Mutex::new(()),
        })))
    }

    /// Whether the request's `Authorization` header names a user with the right password.
    pub async fn allows(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let known = self.users.get(&user);
        let hash = known.unwrap_or(&self.decoy).clone();
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.len().to_le_bytes())
            .chain_update(&user)
            .chain_update(hash.len().to_le_bytes())
            .chain_update(&hash)
            .chain_update(&password)
            .finalize()
            .into();
        if let Some(ok) = self.lock_cache().get(&key) {
            return *ok && known.is_some();
        }
        let _one_at_a_time = self.gate.lock().await;
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        ok && known.is_some()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// User and password of a `Basic` authorization header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn only_a_known_user_with_the_right_password_passes() {
        let users = BTreeMap::from([("admin".to_string(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = BasicAuth::new(users).unwrap().unwrap();
        assert!(auth.allows(&basic("admin", "s3cret")).await);
        assert!(auth.allows(&basic("admin", "s3cret")).await, "cached");
        assert!(!auth.allows(&basic("admin", "wrong")).await);
        assert!(!auth.allows(&basic("nobody", "s3cret")).await);
        assert!(!auth.allows(&HeaderMap::new()).await);
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert!(!auth.allows(&bearer).await);
    }

    #[test]
    fn a_password_that_is_not_a_hash_is_refused_and_not_shown() {
        let users = BTreeMap::from([("admin".to_string(), "plain-password".to_string())]);
        let err = BasicAuth::new(users).err().unwrap().to_string();
        assert!(
            err.contains("admin") && !err.contains("plain-password"),
            "{err}"
        );
        assert!(BasicAuth::new(BTreeMap::new()).unwrap().is_none());
    }
}

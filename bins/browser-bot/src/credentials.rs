//! Portal credentials per account, resolved when a task runs: from a JSON secrets file
//! (`{"acct-1": {"username": ..., "password": ..., "otp_seed": ...}}`, read at each resolve so
//! rotated secrets apply without a restart) or from `BANK_CREDENTIALS_<ACCOUNT>` variables
//! holding the same object (collected by the binary at start). Tasks carry only the account id;
//! credentials never reach payloads, results, logs or the dashboard (their `Debug` is redacted).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Prefix of the per-account environment variables.
pub const ENV_PREFIX: &str = "BANK_CREDENTIALS_";

/// A string that never prints.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for typing it into the portal.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One account's portal login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// TOTP secret, for accounts the portal asks for a one-time code.
    #[serde(default)]
    pub otp_seed: Option<Secret>,
}

/// Why credentials could not be resolved (messages name the account and the source, never a
/// value).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials for bank account {account:?}: add it to the secrets file or set {var}")]
    Missing { account: String, var: String },
    #[error("cannot read the secrets file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{source_name} for bank account {account:?} is not a credentials object: {reason}")]
    Malformed {
        account: String,
        source_name: String,
        reason: String,
    },
}

/// Where credentials come from.
#[derive(Clone, Default)]
pub struct CredentialStore {
    file: Option<PathBuf>,
    env: HashMap<String, String>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut vars: Vec<&String> = self.env.keys().collect();
        vars.sort();
        f.debug_struct("CredentialStore")
            .field("file", &self.file)
            .field("env_vars", &vars)
            .finish()
    }
}

/// The variable that holds an account's credentials: `BANK_CREDENTIALS_` + the id in upper case
/// with `-` as `_`.
pub fn env_var(account: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.extend(account.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    name
}

impl CredentialStore {
    /// A store reading `file` (if any) and the given `BANK_CREDENTIALS_*` variables (name →
    /// value; other names are ignored).
    pub fn new(file: Option<PathBuf>, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            file,
            env: vars
                .into_iter()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }

    /// The account's credentials: the secrets file first, then its variable.
    pub fn resolve(&self, account: &str) -> Result<Credentials, CredentialError> {
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).map_err(|e| CredentialError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            // Parse to values first so a syntax error never echoes file content.
            let all: HashMap<String, serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| CredentialError::File {
                    path: path.clone(),
                    reason: format!(
                        "not a JSON object of account id to credentials (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                })?;
            if let Some(v) = all.get(account) {
                return parse(account, "the secrets file entry", v.clone());
            }
        }
        let var = env_var(account);
        match self.env.get(&var) {
            Some(raw) => {
                let v: serde_json::Value =
                    serde_json::from_str(raw).map_err(|_| CredentialError::Malformed {
                        account: account.to_owned(),
                        source_name: var.clone(),
                        reason: "not JSON".into(),
                    })?;
                parse(account, &var, v)
            }
            None => Err(CredentialError::Missing {
                account: account.to_owned(),
                var,
            }),
        }
    }
}

fn parse(
    account: &str,
    source_name: &str,
    v: serde_json::Value,
) -> Result<Credentials, CredentialError> {
    serde_json::from_value(v).map_err(|e| {
        // serde's message names fields and types, never values of strings it did not expect.
        let reason = e.to_string();
        let reason = reason.split(" at line").next().unwrap_or("").to_owned();
        CredentialError::Malformed {
            account: account.to_owned(),
            source_name: source_name.to_owned(),
            reason,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_first_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.json");
        std::fs::write(
            &path,
            r#"{"acct-1": {"username": "u1", "password": "p1", "otp_seed": "s1"}}"#,
        )
        .expect("write");
        let store = CredentialStore::new(
            Some(path),
            [(
                "BANK_CREDENTIALS_ACCT_2".to_owned(),
                r#"{"username": "u2", "password": "p2"}"#.to_owned(),
            )],
        );
        let c1 = store.resolve("acct-1").expect("from file");
        assert_eq!((c1.username.as_str(), c1.password.expose()), ("u1", "p1"));
        assert_eq!(c1.otp_seed.as_ref().map(Secret::expose), Some("s1"));
        let c2 = store.resolve("acct-2").expect("from env");
        assert_eq!(c2.password.expose(), "p2");
        let e = store.resolve("acct-3").expect_err("missing");
        assert!(e.to_string().contains("BANK_CREDENTIALS_ACCT_3"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            username: "u".into(),
            password: Secret::new("hunter2"),
            otp_seed: Some(Secret::new("seed")),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("seed\""),
            "{shown}"
        );
        let store = CredentialStore::new(
            None,
            [(
                "BANK_CREDENTIALS_X".to_owned(),
                r#"{"username":"u","password":"hunter2"}"#.to_owned(),
            )],
        );
        assert!(!format!("{store:?}").contains("hunter2"));
        let bad = CredentialStore::new(
            None,
            [(
                "BANK_CREDENTIALS_X".to_owned(),
                r#"{"password": 5, "user": "hunter2"}"#.to_owned(),
            )],
        );
        let e = bad.resolve("x").expect_err("malformed").to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

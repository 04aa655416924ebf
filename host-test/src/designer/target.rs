//! Where the designer sends, decided when it starts and never by the page:
//! by default the fake API embedded in this process, with a sandbox
//! account seeded from `examples/seed.json`, so that a newcomer sees a
//! batch apply without an account or a network (even with
//! `$CLOUDFLARE_API_TOKEN` set); Cloudflare itself only with `--live`.
//!
//! The live credentials come from the environment or from the page, once;
//! they are kept in this process's memory only, added to each task's
//! config on the way to the component, and kept out of everything
//! printed or answered.

use std::fmt;
use std::sync::RwLock;

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use crate::fake_api::{FakeApi, FakeApiOptions};
use crate::outbound::allow::AllowedHost;
use crate::printing::keep_secret;

use super::access::random_hex;

/// The seed of the sandbox account: the policies `examples/batch.json`
/// refers to, in the account `examples/config.json` and
/// `examples/sync.json` name.
pub const SANDBOX_SEED: &str = include_str!("../../../examples/seed.json");

/// Cloudflare's API, where `--live` sends.
pub const CLOUDFLARE_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// The token a preview is given when live credentials are missing (and a
/// snippet's preview, always): a preview sends nothing, and the component
/// shows no credential.
pub const PLACEHOLDER_TOKEN: &str = "placeholder-token-of-a-preview-never-sent";

/// Credentials for the API, as the config names them.
#[derive(Clone)]
pub enum Credentials {
    Token(String),
    Legacy { email: String, key: String },
}

/// Never shows the secret.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token([redacted])"),
            Credentials::Legacy { .. } => f.write_str("Legacy([redacted])"),
        }
    }
}

impl Credentials {
    /// Sets the config members that carry these credentials.
    fn put_into(&self, config: &mut Map<String, Value>) {
        match self {
            Credentials::Token(token) => {
                config.insert("api_token".into(), json!(token));
            }
            Credentials::Legacy { email, key } => {
                config.insert("api_email".into(), json!(email));
                config.insert("api_key".into(), json!(key));
            }
        }
    }

    fn secret(&self) -> &str {
        match self {
            Credentials::Token(token) => token,
            Credentials::Legacy { key, .. } => key,
        }
    }
}

/// Where the live credentials came from, as `/api/session` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Environment,
    Form,
}

/// Whether a task is to reach the API: a preview of a batch sends
/// nothing and can go without credentials; sending, a sync's preview
/// (which reads the account) and an export cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Offline,
    Online,
}

/// Live credentials are needed and there are none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingCredentials;

/// The fake does not take credentials from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLive;

pub enum Target {
    /// The embedded fake API: its token is the sandbox's, made at start.
    Fake {
        fake: FakeApi,
        token: String,
        account: String,
    },
    /// Cloudflare, with the credentials known so far.
    Live {
        credentials: RwLock<Option<(Credentials, CredentialSource)>>,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mode())
    }
}

impl Target {
    /// The embedded fake API on a free loopback port, seeded with the
    /// sandbox account, taking only a token made for it now.
    pub async fn fake() -> anyhow::Result<Target> {
        let seed: Value =
            serde_json::from_str(SANDBOX_SEED).context("examples/seed.json is not JSON")?;
        let account = seed
            .as_object()
            .and_then(|accounts| accounts.keys().next())
            .context("examples/seed.json names no account")?
            .clone();
        let token = random_hex();
        keep_secret(&token);
        let fake = FakeApi::start(FakeApiOptions {
            listen: "127.0.0.1:0".parse()?,
            token: Some(token.clone()),
            seed: Some(seed),
            ..FakeApiOptions::default()
        })
        .await?;
        Ok(Target::Fake {
            fake,
            token,
            account,
        })
    }

    /// Cloudflare, with `$CLOUDFLARE_API_TOKEN`'s value when it was set.
    pub fn live(environment_token: Option<String>) -> Target {
        let credentials = environment_token
            .filter(|token| !token.is_empty())
            .map(|token| {
                keep_secret(&token);
                (Credentials::Token(token), CredentialSource::Environment)
            });
        Target::Live {
            credentials: RwLock::new(credentials),
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Target::Fake { .. } => "fake",
            Target::Live { .. } => "live",
        }
    }

    /// The fake, when the designer sends to it.
    pub fn fake_api(&self) -> Option<&FakeApi> {
        match self {
            Target::Fake { fake, .. } => Some(fake),
            Target::Live { .. } => None,
        }
    }

    /// The sandbox account, when the designer sends to the fake.
    pub fn sandbox_account(&self) -> Option<&str> {
        match self {
            Target::Fake { account, .. } => Some(account),
            Target::Live { .. } => None,
        }
    }

    pub fn base_url(&self) -> String {
        match self {
            Target::Fake { fake, .. } => fake.base_url(),
            Target::Live { .. } => CLOUDFLARE_BASE_URL.into(),
        }
    }

    /// The only destination a task may reach: the fake's loopback port,
    /// or Cloudflare's API on 443.
    pub fn allowed_hosts(&self) -> Vec<AllowedHost> {
        match self {
            Target::Fake { fake, .. } => AllowedHost::with_port("127.0.0.1", fake.addr().port())
                .map(|host| vec![host])
                .unwrap_or_default(),
            Target::Live { .. } => AllowedHost::defaults(),
        }
    }

    /// `"sandbox"`, `"from-environment"`, `"from-form"` or `"missing"`.
    pub fn credentials_state(&self) -> &'static str {
        match self {
            Target::Fake { .. } => "sandbox",
            Target::Live { credentials } => match &*read(credentials) {
                Some((_, CredentialSource::Environment)) => "from-environment",
                Some((_, CredentialSource::Form)) => "from-form",
                None => "missing",
            },
        }
    }

    /// A person's words for where tasks go.
    pub fn describe(&self) -> String {
        match self {
            Target::Fake { fake, .. } => {
                format!("embedded fake Cloudflare API at {}", fake.base_url())
            }
            Target::Live { .. } => format!("Cloudflare ({CLOUDFLARE_BASE_URL})"),
        }
    }

    /// Keeps the page's credentials for every later task (replacing any
    /// earlier ones). Only live: the fake has its own.
    pub fn set_credentials(&self, given: Credentials) -> Result<(), NotLive> {
        match self {
            Target::Fake { .. } => Err(NotLive),
            Target::Live { credentials } => {
                keep_secret(given.secret());
                *credentials.write().unwrap_or_else(|e| e.into_inner()) =
                    Some((given, CredentialSource::Form));
                Ok(())
            }
        }
    }

    /// Puts this target's base URL and credentials into `config`. A
    /// preview without live credentials gets a placeholder token.
    pub fn complete(
        &self,
        config: &mut Map<String, Value>,
        purpose: Use,
    ) -> Result<(), MissingCredentials> {
        config.insert("base_url".into(), json!(self.base_url()));
        match self {
            Target::Fake { token, .. } => {
                Credentials::Token(token.clone()).put_into(config);
            }
            Target::Live { credentials } => match (&*read(credentials), purpose) {
                (Some((credentials, _)), _) => credentials.put_into(config),
                (None, Use::Offline) => {
                    Credentials::Token(PLACEHOLDER_TOKEN.into()).put_into(config)
                }
                (None, Use::Online) => return Err(MissingCredentials),
            },
        }
        Ok(())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

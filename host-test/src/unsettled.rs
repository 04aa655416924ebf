//! Batches that `task-host run` sent and that may have applied: when each
//! was first sent, kept on disk so that running the same command again
//! reads the account before sending instead of creating its policies twice.
//!
//! A record is keyed by a SHA-256 digest of the batch request's URL (the
//! base URL and the account) and its body, and holds nothing else but the
//! moment the batch first left: no credential, no policy. It lives in the
//! user's state directory, trusted only when no other user can write there
//! ([`crate::private_dir`]). A record is dropped once a run of its batch
//! settles, and one older than [`RECORD_LIFETIME_MS`] is not believed:
//! after a day the account has long shown whatever the request did.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::private_dir::{create_private_dir, Untrusted};

/// Overrides where the records are kept.
pub const STATE_DIR_ENV: &str = "TASK_HOST_STATE_DIR";

/// The folder under `$XDG_STATE_HOME` or `~/.local/state`.
const APP_DIR: &str = "allow-policies-batch";

/// The folder of the records, inside the state directory.
const RECORDS_DIR: &str = "unsettled";

/// How long a record is believed: a day.
pub const RECORD_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// Which batch a record is about: the digest of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchKey(String);

impl BatchKey {
    /// The key of the batch request sent to `url` with `body` (the request
    /// a dry run shows), so that two inputs that build the same request,
    /// differing only in spacing or member order, share one record.
    pub fn of_request(url: &str, body: &str) -> Self {
        let mut digest = Sha256::new();
        digest.update(b"allow-policies-batch unsettled batch 1\n");
        digest.update(url.as_bytes());
        digest.update(b"\n");
        digest.update(body.as_bytes());
        let hex: String = digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        BatchKey(hex)
    }

    fn file_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

/// What a record file holds.
#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    first_sent_unix_ms: u64,
}

/// What is known of an earlier run of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recalled {
    /// No record: the batch is not known to be in doubt.
    Nothing,
    /// A run may have applied the batch; it was first sent at this moment
    /// (milliseconds since the Unix epoch).
    InDoubt {
        /// When the batch first left.
        first_sent_unix_ms: u64,
    },
    /// A record older than [`RECORD_LIFETIME_MS`], now deleted and not
    /// believed.
    Expired {
        /// When the batch first left.
        first_sent_unix_ms: u64,
    },
}

/// The records of one user, in one directory.
#[derive(Debug)]
pub struct UnsettledBatches {
    dir: PathBuf,
}

impl UnsettledBatches {
    /// The records in the folder `unsettled` of the user's state
    /// directory: `$TASK_HOST_STATE_DIR`, else
    /// `$XDG_STATE_HOME/allow-policies-batch`, else
    /// `$HOME/.local/state/allow-policies-batch`. Created if needed;
    /// refused when another user could write there.
    pub fn open_default() -> Result<Self, UnsettledError> {
        let dir = user_state_dir(|name| std::env::var_os(name)).ok_or(UnsettledError::NoHome)?;
        Self::open(&dir.join(RECORDS_DIR))
    }

    /// The records in `dir`, created private to the user if needed.
    pub fn open(dir: &Path) -> Result<Self, UnsettledError> {
        create_private_dir(dir).map_err(UnsettledError::Untrusted)?;
        Ok(UnsettledBatches {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the records are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What is recorded of `key` as of `now_unix_ms`. An expired record is
    /// deleted; an unreadable one counts as none (and is replaced by the
    /// next record).
    pub fn recall(&self, key: &BatchKey, now_unix_ms: u64) -> Recalled {
        let path = self.dir.join(key.file_name());
        let Ok(text) = fs::read(&path) else {
            return Recalled::Nothing;
        };
        let Ok(record) = serde_json::from_slice::<RecordFile>(&text) else {
            return Recalled::Nothing;
        };
        let first_sent_unix_ms = record.first_sent_unix_ms;
        if now_unix_ms.saturating_sub(first_sent_unix_ms) > RECORD_LIFETIME_MS {
            let _ = fs::remove_file(&path);
            return Recalled::Expired { first_sent_unix_ms };
        }
        Recalled::InDoubt { first_sent_unix_ms }
    }

    /// Records that the batch may have applied, having first left at
    /// `first_sent_unix_ms`. An earlier moment already recorded is kept:
    /// earlier is the safe error.
    pub fn remember(&self, key: &BatchKey, first_sent_unix_ms: u64) -> std::io::Result<()> {
        let path = self.dir.join(key.file_name());
        let earliest = match fs::read(&path)
            .ok()
            .and_then(|text| serde_json::from_slice::<RecordFile>(&text).ok())
        {
            Some(old) => old.first_sent_unix_ms.min(first_sent_unix_ms),
            None => first_sent_unix_ms,
        };
        let text = serde_json::to_vec(&RecordFile {
            first_sent_unix_ms: earliest,
        })
        .map_err(std::io::Error::other)?;
        // Written beside and renamed, so a reader sees a whole record or
        // the one before.
        let partial = self
            .dir
            .join(format!(".{}.{}", key.file_name(), std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(&text)?;
        drop(file);
        fs::rename(&partial, &path)
    }

    /// Drops the record of `key`: a run of the batch settled it.
    pub fn forget(&self, key: &BatchKey) -> std::io::Result<()> {
        match fs::remove_file(self.dir.join(key.file_name())) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// Why the records cannot be kept.
#[derive(Debug)]
pub enum UnsettledError {
    /// Neither `$TASK_HOST_STATE_DIR`, `$XDG_STATE_HOME` nor `$HOME` is set.
    NoHome,
    /// The directory is not private to the user.
    Untrusted(Untrusted),
}

impl std::fmt::Display for UnsettledError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsettledError::NoHome => write!(
                f,
                "no state directory: set ${STATE_DIR_ENV}, $XDG_STATE_HOME or $HOME"
            ),
            UnsettledError::Untrusted(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for UnsettledError {}

/// `$TASK_HOST_STATE_DIR` as it is, else the XDG state directory's folder
/// for this project. Empty variables count as unset, and a relative
/// `XDG_STATE_HOME` is ignored, as the XDG base directory specification
/// asks.
fn user_state_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(STATE_DIR_ENV) {
        return Some(dir);
    }
    if let Some(xdg) = set("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join(APP_DIR));
    }
    set("HOME").map(|home| home.join(".local").join("state").join(APP_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = RECORD_LIFETIME_MS;

    fn records(name: &str) -> UnsettledBatches {
        let dir =
            std::env::temp_dir().join(format!("task-host-unsettled-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        UnsettledBatches::open(&dir).unwrap()
    }

    #[test]
    fn the_key_is_the_request_and_nothing_else() {
        let url = "https://api.cloudflare.com/client/v4/accounts/a/email-security/settings/allow_policies/batch";
        let key = BatchKey::of_request(url, r#"{"posts":[]}"#);
        assert_eq!(key, BatchKey::of_request(url, r#"{"posts":[]}"#));
        assert_ne!(key, BatchKey::of_request(url, r#"{"posts":[1]}"#));
        assert_ne!(
            key,
            BatchKey::of_request(&url.replace("/a/", "/b/"), r#"{"posts":[]}"#)
        );
        assert_eq!(key.0.len(), 64);
    }

    #[test]
    fn a_record_is_recalled_until_forgotten_and_keeps_the_earliest_moment() {
        let records = records("recall");
        let key = BatchKey::of_request("u", "b");
        assert_eq!(records.recall(&key, 10 * DAY), Recalled::Nothing);
        records.remember(&key, 10 * DAY).unwrap();
        records.remember(&key, 10 * DAY + 5).unwrap();
        assert_eq!(
            records.recall(&key, 10 * DAY + 9),
            Recalled::InDoubt {
                first_sent_unix_ms: 10 * DAY
            }
        );
        // Nothing but the moment is kept.
        let text = fs::read_to_string(records.dir().join(key.file_name())).unwrap();
        assert_eq!(text, format!(r#"{{"first_sent_unix_ms":{}}}"#, 10 * DAY));
        records.forget(&key).unwrap();
        records.forget(&key).unwrap();
        assert_eq!(records.recall(&key, 10 * DAY + 9), Recalled::Nothing);
        fs::remove_dir_all(records.dir()).unwrap();
    }

    #[test]
    fn a_record_older_than_a_day_is_dropped() {
        let records = records("expired");
        let key = BatchKey::of_request("u", "b");
        records.remember(&key, DAY).unwrap();
        assert_eq!(
            records.recall(&key, 2 * DAY),
            Recalled::InDoubt {
                first_sent_unix_ms: DAY
            }
        );
        assert_eq!(
            records.recall(&key, 2 * DAY + 1),
            Recalled::Expired {
                first_sent_unix_ms: DAY
            }
        );
        assert_eq!(records.recall(&key, 2 * DAY + 1), Recalled::Nothing);
        fs::remove_dir_all(records.dir()).unwrap();
    }

    #[test]
    fn a_damaged_record_counts_as_none_and_is_replaced() {
        let records = records("damaged");
        let key = BatchKey::of_request("u", "b");
        fs::write(records.dir().join(key.file_name()), b"{not json").unwrap();
        assert_eq!(records.recall(&key, DAY), Recalled::Nothing);
        records.remember(&key, DAY).unwrap();
        assert_eq!(
            records.recall(&key, DAY),
            Recalled::InDoubt {
                first_sent_unix_ms: DAY
            }
        );
        fs::remove_dir_all(records.dir()).unwrap();
    }

    #[test]
    fn the_state_directory_follows_xdg() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(
            user_state_dir(vars(&[(STATE_DIR_ENV, "/s"), ("HOME", "/h")])),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(
            user_state_dir(vars(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/allow-policies-batch"))
        );
        assert_eq!(
            user_state_dir(vars(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/state/allow-policies-batch"))
        );
        assert_eq!(user_state_dir(vars(&[])), None);
    }
}

//! Running the same batch again at the terminal: `task-host run` records a
//! batch that may have applied ([`host_test::unsettled`]), and the next run
//! of it reads the account before sending, saying so on stderr.

use allow_policies_batch::api::retry_after::format_rfc3339_ms;
use host_test::attempts::Delivery;
use host_test::unsettled::{BatchKey, Recalled, UnsettledBatches};
use host_test::{now_unix_ms, say, EarlierAttempt, TaskError};
use serde_json::Value;

/// Whether the input is in sync mode, which plans from the account on
/// every run and so keeps no record. Text that is not a JSON object is
/// not: the component will say what is wrong with it.
pub fn is_sync(input: &str) -> bool {
    serde_json::from_str::<Value>(input).is_ok_and(|v| v.get("sync").is_some())
}

/// Whether the run a preview shows would send anything: a batch request,
/// or a sync plan with batches.
pub fn preview_sends_anything(preview: &str) -> bool {
    let Ok(preview) = serde_json::from_str::<Value>(preview) else {
        return false;
    };
    let request = !preview["request"].is_null();
    let batches = preview["plan"]["batches"]
        .as_array()
        .is_some_and(|batches| !batches.is_empty());
    request || batches
}

/// The record of one batch, and what it said when the run began.
pub struct BatchRecord {
    records: UnsettledBatches,
    key: BatchKey,
    /// What was recorded of the batch before this run.
    pub recalled: Recalled,
}

impl BatchRecord {
    /// The record of the batch a preview (`prepare`'s document) shows;
    /// `None` when it sends no batch request (an empty batch, sync mode)
    /// or the records cannot be kept, which stderr then says.
    pub fn of_preview(preview: &str) -> Option<BatchRecord> {
        let preview = serde_json::from_str::<Value>(preview).ok()?;
        let request = preview.get("request").filter(|r| !r.is_null())?;
        let url = request["url"].as_str()?;
        let key = BatchKey::of_request(url, &request["body"].to_string());
        let records = match UnsettledBatches::open_default() {
            Ok(records) => records,
            Err(why) => {
                say!(
                    "task-host: batches that may have applied cannot be recorded ({why}); running this command again after such a failure needs --again-since"
                );
                return None;
            }
        };
        let recalled = records.recall(&key, now_unix_ms());
        if let Recalled::Expired { first_sent_unix_ms } = recalled {
            say!(
                "task-host: warning: a record says this batch was sent at {} and may have applied; it is more than a day old and is ignored",
                format_rfc3339_ms(first_sent_unix_ms)
            );
        }
        Some(BatchRecord {
            records,
            key,
            recalled,
        })
    }

    /// How to run the batch: again from when it was first sent, when a
    /// run of it may have applied (said on stderr), else as new.
    pub fn delivery(&self) -> Delivery {
        match self.recalled {
            Recalled::InDoubt { first_sent_unix_ms } => {
                say!(
                    "task-host: this batch was sent at {} and may have applied; running it again: the account is read first, and the batch is sent only if none of it shows (--fresh sends it as new)",
                    format_rfc3339_ms(first_sent_unix_ms)
                );
                Delivery::Again(EarlierAttempt {
                    first_started_unix_ms: first_sent_unix_ms,
                })
            }
            Recalled::Nothing | Recalled::Expired { .. } => Delivery::First,
        }
    }

    /// For a dry run: says that a run would read the account first.
    pub fn note_in_preview(&self) {
        if let Recalled::InDoubt { first_sent_unix_ms } = self.recalled {
            say!(
                "task-host: a run of this batch sent at {} may have applied; `run` reads the account first (--fresh sends it as new)",
                format_rfc3339_ms(first_sent_unix_ms)
            );
        }
    }

    /// Keeps or drops the record after a run. A failure that may have
    /// applied is recorded with its `first_sent_unix_ms`; a success, or a
    /// terminal failure that cannot have applied, settles the batch and
    /// drops the record. A retryable failure that cannot have applied
    /// leaves any record as it was: an earlier request may still land.
    pub fn settle(&self, outcome: &Result<String, TaskError>) {
        let failure = match outcome {
            Ok(_) => None,
            Err(
                TaskError::Denied(f)
                | TaskError::Transport(f)
                | TaskError::Api(f)
                | TaskError::BadResponse(f)
                | TaskError::Unconfirmed(f),
            ) => Some(f),
            Err(TaskError::InvalidConfig(_) | TaskError::InvalidInput(_)) => return,
        };
        let written = match failure {
            None => self.records.forget(&self.key),
            Some(f) => match (f.may_have_applied, f.first_sent_unix_ms) {
                (true, Some(first_sent_unix_ms)) => {
                    let written = self.records.remember(&self.key, first_sent_unix_ms);
                    if written.is_ok() {
                        say!(
                            "task-host: the batch may have applied; running this command again reads the account first and sends only if none of it shows (recorded in {})",
                            self.records.dir().display()
                        );
                    }
                    written
                }
                (false, _) if !f.retryable => self.records.forget(&self.key),
                _ => Ok(()),
            },
        };
        if let Err(e) = written {
            say!(
                "task-host: the record of this batch in {} could not be updated: {e}",
                self.records.dir().display()
            );
        }
    }
}

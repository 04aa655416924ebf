//! Reading an account's policies: every page of
//! `GET {base}/accounts/{account_id}/email-security/settings/allow_policies`.
//!
//! The reader goes through the same [`Transport`] as the batch, so the
//! host's allow-list, the credentials, `max_response_bytes` and the task's
//! deadline hold for it alike. It only reads; verification
//! ([`crate::run::read_back`]) is what uses it.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::outcome::{
    classify_fault, classify_request_fault, classify_response, Failure, FailureKind, TransportFault,
};
use crate::api::request::{build_read, ApiRequest};
use crate::api::stored::{Snapshot, StoredFields, StoredPolicy};
use crate::api::transport::{AttemptLimits, Transport};
use crate::config::Config;

/// Policies asked for per page. Reads count against the API's rate limit
/// (1,200 requests per 5 minutes), so pages are large; the schema gives no
/// maximum, and 100 is the most Cloudflare's list endpoints commonly serve.
pub const PER_PAGE: u32 = 100;

/// The most pages one read follows: 10,000 policies. An account with more
/// is not read back in full, and verification says so instead of guessing.
pub const MAX_PAGES: u32 = 100;

/// The URL of one page, oldest policies first, so that policies created
/// while the pages are read land on later pages instead of shifting the
/// ones not yet read.
pub fn page_url(config: &Config, account_id: &str, page: u32) -> String {
    format!(
        "{}/accounts/{account_id}/email-security/settings/allow_policies?page={page}&per_page={PER_PAGE}&order=created_at&direction=asc",
        config.base_url.as_str()
    )
}

/// The request for one page.
pub fn page_request(config: &Config, account_id: &str, page: u32) -> ApiRequest {
    build_read(config, page_url(config, account_id, page))
}

/// One page as read: its policies, and how many the account has in all
/// when the API said.
#[derive(Debug)]
pub struct Page {
    /// The page's policies in the API's order (oldest first, as
    /// [`page_url`] asks), each with a readable id.
    pub policies: Vec<StoredPolicy>,
    /// `result_info.total_count`: the number of policies the account has;
    /// `None` when the API did not give it, or not as an integer.
    pub total_count: Option<u64>,
}

#[derive(Deserialize)]
struct WirePolicy<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
}

#[derive(Deserialize)]
struct WireResultInfo {
    #[serde(default)]
    total_count: Option<u64>,
}

/// Reads a page from the `result` and `result_info` of a successful
/// answer. A policy without a readable id makes the page unreadable: it
/// could not be matched, so no verdict may rest on the page.
pub fn parse_page(
    result: Option<&RawValue>,
    result_info: Option<&RawValue>,
) -> Result<Page, String> {
    let result = result.ok_or("the answer has no result")?;
    let items: Vec<Box<RawValue>> = serde_json::from_str(result.get())
        .map_err(|_| "the result is not a list of policies".to_string())?;
    let mut policies = Vec::with_capacity(items.len());
    for (i, raw) in items.into_iter().enumerate() {
        let unreadable = || format!("policy {i} of the page has no readable id and fields");
        let wire: WirePolicy<'_> = serde_json::from_str(raw.get()).map_err(|_| unreadable())?;
        let id = identity(wire.id).ok_or_else(unreadable)?;
        let fields: StoredFields = serde_json::from_str(raw.get()).map_err(|_| unreadable())?;
        policies.push(StoredPolicy { id, fields, raw });
    }
    let total_count = result_info
        .and_then(|info| serde_json::from_str::<WireResultInfo>(info.get()).ok())
        .and_then(|info| info.total_count);
    Ok(Page {
        policies,
        total_count,
    })
}

/// A stored id as [`crate::api::policy::PolicyId::identity`] spells a requested
/// one: a UUID in lower case, an integer in decimal.
fn identity(raw: &RawValue) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.to_ascii_lowercase()),
        serde_json::Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// Why a read did not give the whole list: the failure as the task would
/// report it. A read changes nothing, so it never may have applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError(pub Failure);

impl ReadError {
    /// The API answered 429: reading on would only prolong the lockout.
    pub fn is_rate_limited(&self) -> bool {
        self.0.status == Some(429)
    }

    fn new(kind: FailureKind, message: String, retryable: bool) -> Self {
        let mut failure = classify_fault(&TransportFault::Unsendable(String::new()));
        failure.kind = kind;
        failure.message = message;
        failure.retryable = retryable;
        ReadError(failure)
    }

    /// `failure`, said to be about reading page `page`.
    fn of(mut failure: Failure, page: u32) -> Self {
        failure.may_have_applied = false;
        failure.message = format!(
            "reading the account's policies (page {page}) failed: {}",
            failure.message
        );
        ReadError(failure)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

/// How many requests a read made, whether or not it finished.
#[derive(Debug)]
pub struct Read {
    /// Requests sent, the one that failed included; verification reports
    /// them as its `reads`, and each counts against the API's rate limit.
    pub requests: u32,
    /// Every policy of the account, each id once; or why the read stopped,
    /// in which case no verdict may rest on what was read.
    pub result: Result<Snapshot, ReadError>,
}

/// Reads every page, in order, until as many distinct policies as the
/// account's `total_count` were read (or, without a total, a page comes
/// back empty), all before `deadline_ms`. A total that moves between pages,
/// or pages that end short of it, fail the read: the list changed while it
/// was read, and a policy missed would look deleted. A read
/// is never retried: it runs in the time left after a failure, and an
/// unfinished read only leaves that failure as it was.
pub fn read_all(
    config: &Config,
    account_id: &str,
    transport: &mut impl Transport,
    deadline_ms: u64,
) -> Read {
    let mut requests = 0;
    let mut policies = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut total: Option<u64> = None;
    let result = (|| {
        for page in 1..=MAX_PAGES {
            let now = transport.monotonic_ms();
            if now >= deadline_ms {
                return Err(ReadError::new(
                    FailureKind::Transport,
                    "timeout_ms passed before the account's policies were read".into(),
                    true,
                ));
            }
            let remaining = deadline_ms - now;
            let limits = AttemptLimits {
                connect_timeout_ms: config.connect_timeout_ms.min(remaining),
                first_byte_timeout_ms: remaining,
                between_bytes_timeout_ms: remaining,
                deadline_ms,
                max_response_bytes: config.max_response_bytes,
            };
            let request = page_request(config, account_id, page);
            requests += 1;
            let response = transport
                .send(&request, &limits)
                .map_err(|fault| ReadError::of(read_fault(&fault, &request.url), page))?;
            let success = classify_response(&response, transport.unix_ms())
                .map_err(|failure| ReadError::of(failure, page))?;
            let parsed = parse_page(success.result.as_deref(), success.result_info.as_deref())
                .map_err(|why| {
                    let mut e = ReadError::new(FailureKind::BadResponse, why, false);
                    e.0.status = Some(success.status);
                    ReadError::of(e.0, page)
                })?;
            let count = parsed.policies.len();
            for policy in parsed.policies {
                if seen.insert(policy.id.clone()) {
                    policies.push(policy);
                }
            }
            // The list must not change while it is read: a policy deleted
            // or added meanwhile shifts the pages, and one that slipped
            // between two of them would look deleted.
            match (total, parsed.total_count) {
                (Some(before), Some(now)) if before != now => return Err(changed_while_read(page)),
                (None, now) => total = now,
                _ => {}
            }
            // A short page is not the end: the API may serve fewer per
            // page than asked. Only the total, counted in distinct
            // policies, is; or, without a total, an empty page.
            let distinct = policies.len() as u64;
            match total {
                Some(total) if distinct >= total => return Ok(()),
                Some(_) if count == 0 => return Err(changed_while_read(page)),
                None if count == 0 => return Ok(()),
                _ => {}
            }
        }
        Err(ReadError::new(
            FailureKind::Api,
            format!(
                "the account has more than {} policies, more than this task reads",
                MAX_PAGES * PER_PAGE
            ),
            false,
        ))
    })();
    Read {
        requests,
        result: result.map(|()| Snapshot::new(policies)),
    }
}

/// The pages disagree: the account changed while it was read. Reading
/// again later may succeed.
fn changed_while_read(page: u32) -> ReadError {
    ReadError::new(
        FailureKind::Api,
        format!(
            "reading the account's policies (page {page}) failed: the list changed while it was read (its total moved, or a policy slipped between pages)"
        ),
        true,
    )
}

/// A failed read of `url` as the batch's classification words it, but
/// without the batch's "may have been applied": a read applies nothing.
fn read_fault(fault: &TransportFault, url: &str) -> Failure {
    let mut failure = classify_request_fault(fault, url);
    if let TransportFault::AfterSend(detail) = fault {
        failure.message = format!("no complete answer ({detail})");
    }
    failure
}

#[cfg(test)]
mod tests;

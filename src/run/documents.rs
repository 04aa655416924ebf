//! Every output document, written here and only here.
//!
//! Two shapes, each one struct:
//! - `ResultDocument`, what `run-task` returns: a batch's result
//!   ([`success_json`]) and a sync's ([`sync_result_json`]).
//! - `PreviewDocument`, what `prepare` returns: a batch's exact request
//!   ([`preview_json`]) and a sync's plan ([`sync_preview_json`]).
//!
//! The output schema (`schema.json`) describes these two structs; its
//! tests hold it to what they write.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::api::policy::{BatchBody, Counts, Policy, PolicyId};
use crate::api::request::{ApiRequest, RequestView};
use crate::api::retry_after::format_rfc3339_ms;
use crate::params::problems::Problem;
use crate::run::prepare::Prepared;
use crate::run::read_back::RebuiltResult;
use crate::run::send::Completed;
use crate::run::sync_plan::{FieldChange, Plan};

/// What `run-task` returns on success.
#[derive(Serialize)]
struct ResultDocument<'a> {
    success: bool,
    /// Nothing was sent and nothing needed to be.
    skipped: bool,
    /// The HTTP status of the last answer, when one came.
    status: Option<u16>,
    /// Batch requests sent.
    attempts: u32,
    /// Requests sent, batches and reads alike.
    api_calls: u32,
    result: Option<ResultView<'a>>,
    messages: ListOrEmpty<'a>,
    errors: ListOrEmpty<'a>,
    warnings: &'a [Problem],
    counts: Counts,
    verification: Option<VerificationView<'a>>,
    /// Sync mode's summary.
    sync: Option<SyncView<'a>>,
}

/// What `prepare` returns: the dry run.
#[derive(Serialize)]
struct PreviewDocument<'a> {
    dry_run: bool,
    /// Nothing would be sent.
    skipped: bool,
    /// The exact request, credentials redacted; `None` in sync mode and
    /// for an empty batch.
    request: Option<RequestView<'a>>,
    warnings: &'a [Problem],
    counts: Counts,
    /// Sync mode's plan.
    plan: Option<PlanView<'a>>,
}

/// The `result` member: the API's own, or one rebuilt by reading back.
enum ResultView<'a> {
    Api(&'a RawValue),
    Rebuilt(&'a RebuiltResult),
}

impl Serialize for ResultView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResultView::Api(raw) => raw.serialize(s),
            ResultView::Rebuilt(rebuilt) => rebuilt.serialize(s),
        }
    }
}

/// The API's list verbatim, or `[]` when it sent none.
struct ListOrEmpty<'a>(Option<&'a RawValue>);

impl Serialize for ListOrEmpty<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(list) => list.serialize(s),
            None => s.collect_seq(std::iter::empty::<()>()),
        }
    }
}

#[derive(Serialize)]
struct VerificationView<'a> {
    outcome: &'static str,
    after: AfterView<'a>,
    reads: u32,
}

#[derive(Serialize)]
struct AfterView<'a> {
    kind: &'static str,
    message: &'a str,
    status: Option<u16>,
}

#[derive(Serialize)]
struct SyncView<'a> {
    created: usize,
    changed: usize,
    deleted: usize,
    unchanged: usize,
    kept_unlisted: usize,
    reads: u32,
    batches: Vec<BatchView<'a>>,
}

#[derive(Serialize)]
struct BatchView<'a> {
    counts: Counts,
    status: Option<u16>,
    attempts: u32,
    result: Option<ResultView<'a>>,
    verification: Option<&'static str>,
}

#[derive(Serialize)]
struct PlanView<'a> {
    reads: u32,
    create: &'a [Policy],
    change: Vec<ChangeView<'a>>,
    delete: Vec<DeleteView<'a>>,
    unchanged: usize,
    kept_unlisted: usize,
    duplicates: Vec<DuplicateView<'a>>,
    batches: Vec<RequestView<'a>>,
}

#[derive(Serialize)]
struct ChangeView<'a> {
    id: &'a PolicyId,
    fields: &'a [FieldChange],
}

#[derive(Serialize)]
struct DeleteView<'a> {
    id: &'a PolicyId,
    pattern: Option<&'a str>,
    /// A second policy of an identity, not merely unlisted.
    duplicate: bool,
}

#[derive(Serialize)]
struct DuplicateView<'a> {
    id: &'a str,
    same_as: &'a str,
}

/// Serialises a document of plain data: strings, numbers and JSON already
/// checked, which cannot fail.
fn to_json(document: &impl Serialize) -> String {
    serde_json::to_string(document).unwrap_or_default()
}

/// The dry run of a batch: the exact request, or `skipped` when the batch
/// is empty and would not be sent.
pub fn preview_json(prepared: &Prepared) -> String {
    let request = prepared.request.as_ref();
    let document = to_json(&PreviewDocument {
        dry_run: true,
        skipped: request.is_none(),
        request: request.map(ApiRequest::view_without_body),
        warnings: &prepared.warnings,
        counts: prepared.counts,
        plan: None,
    });
    match request {
        Some(request) => with_body(&document, &request.body),
        None => document,
    }
}

/// `document` with the request's body in the place of the `null` that
/// [`ApiRequest::view_without_body`] left. The body is JSON this component
/// wrote; copying it in as it is saves parsing it again, which for a batch
/// of 4000 items would cost a fifth of preparing it.
///
/// The first `,"body":null}` is the request's: the body is the request
/// view's last member, only `dry_run` and `skipped` come before the
/// request, and no string holds an unescaped quote.
fn with_body(document: &str, body: &str) -> String {
    const EMPTY_BODY: &str = ",\"body\":null}";
    let Some(at) = document.find(EMPTY_BODY) else {
        return document.to_string();
    };
    let value_at = at + EMPTY_BODY.len() - "null}".len();
    let mut out = String::with_capacity(document.len() + body.len());
    out.push_str(&document[..value_at]);
    out.push_str(body);
    out.push_str(&document[value_at + "null".len()..]);
    out
}

/// The result of a batch (`skipped` when the batch was empty).
pub fn success_json(prepared: &Prepared, completed: &Completed, api_calls: u32) -> String {
    let success = completed.success.as_ref();
    let verified = completed.verified.as_ref();
    let rechecked = completed.rechecked.as_ref();
    let earlier_message = rechecked.map(|r| {
        let started = format_rfc3339_ms(r.earlier.first_started_unix_ms);
        match r.applied {
            Some(_) => format!("an earlier attempt of this task, started at {started} or later, applied the batch; nothing was sent"),
            None => format!("an earlier attempt of this task started at {started} or later; the account showed none of the batch's effects, so the batch was sent"),
        }
    });
    let verification = match (verified, rechecked, &earlier_message) {
        (Some(v), _, _) => Some(VerificationView {
            outcome: "applied",
            after: AfterView {
                kind: v.after.kind.name(),
                message: &v.after.message,
                status: v.after.status,
            },
            reads: v.reads,
        }),
        (None, Some(r), Some(message)) => Some(VerificationView {
            outcome: if r.applied.is_some() {
                "applied"
            } else {
                "not_visible"
            },
            after: AfterView {
                kind: "earlier_attempt",
                message,
                status: None,
            },
            reads: r.reads,
        }),
        _ => None,
    };
    to_json(&ResultDocument {
        success: true,
        skipped: success.is_none()
            && verified.is_none()
            && rechecked.is_none_or(|r| r.applied.is_none()),
        status: success.map(|s| s.status),
        attempts: completed.attempts,
        api_calls,
        result: result_of(completed),
        messages: ListOrEmpty(success.and_then(|s| s.messages.as_deref())),
        errors: ListOrEmpty(success.and_then(|s| s.errors.as_deref())),
        warnings: &prepared.warnings,
        counts: prepared.counts,
        verification,
        sync: None,
    })
}

/// A finished batch's result: rebuilt by reading back when that is how it
/// was found applied, else the API's own.
fn result_of(completed: &Completed) -> Option<ResultView<'_>> {
    let rebuilt = match (&completed.verified, &completed.rechecked) {
        (Some(verified), _) => Some(&verified.result),
        (None, Some(rechecked)) => rechecked.applied.as_ref(),
        (None, None) => None,
    };
    match rebuilt {
        Some(rebuilt) => Some(ResultView::Rebuilt(rebuilt)),
        None => completed
            .success
            .as_ref()
            .and_then(|s| s.result.as_deref())
            .map(ResultView::Api),
    }
}

/// The dry run of a sync: what would change, read from the account in
/// `reads` requests, and the `requests` that would carry it out,
/// credentials redacted.
pub fn sync_preview_json(
    plan: &Plan,
    reads: u32,
    warnings: &[Problem],
    requests: &[ApiRequest],
) -> String {
    to_json(&PreviewDocument {
        dry_run: true,
        skipped: plan.is_empty(),
        request: None,
        warnings,
        counts: plan.counts(),
        plan: Some(PlanView {
            reads,
            create: &plan.posts,
            change: plan
                .changes
                .iter()
                .map(|c| ChangeView {
                    id: &c.patch.id,
                    fields: &c.fields,
                })
                .collect(),
            delete: plan
                .deletes
                .iter()
                .map(|d| DeleteView {
                    id: &d.id,
                    pattern: d.pattern.as_deref(),
                    duplicate: d.duplicate,
                })
                .collect(),
            unchanged: plan.unchanged,
            kept_unlisted: plan.kept_unlisted,
            duplicates: plan
                .duplicates
                .iter()
                .map(|(id, same_as)| DuplicateView { id, same_as })
                .collect(),
            batches: requests.iter().map(ApiRequest::view).collect(),
        }),
    })
}

/// The result of a sync whose `batches` were all sent, each as `sent`
/// says.
pub fn sync_result_json(
    plan: &Plan,
    reads: u32,
    warnings: &[Problem],
    sent: &[Completed],
    batches: &[BatchBody],
    api_calls: u32,
) -> String {
    let views: Vec<BatchView<'_>> = sent
        .iter()
        .zip(batches)
        .map(|(done, batch)| BatchView {
            counts: batch.counts(),
            status: done.success.as_ref().map(|s| s.status),
            attempts: done.attempts,
            result: result_of(done),
            verification: done.verified.as_ref().map(|_| "applied"),
        })
        .collect();
    to_json(&ResultDocument {
        success: true,
        skipped: plan.is_empty(),
        status: views.last().and_then(|v| v.status),
        attempts: sent.iter().map(|c| c.attempts).sum(),
        api_calls,
        result: None,
        messages: ListOrEmpty(None),
        errors: ListOrEmpty(None),
        warnings,
        counts: plan.counts(),
        verification: None,
        sync: Some(SyncView {
            created: plan.posts.len(),
            changed: plan.changes.len(),
            deleted: plan.deletes.len(),
            unchanged: plan.unchanged,
            kept_unlisted: plan.kept_unlisted,
            reads,
            batches: views,
        }),
    })
}

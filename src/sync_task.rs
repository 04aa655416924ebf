//! Sync mode from checked parameters to a document: read the account,
//! plan ([`crate::sync`]), then show the plan (`prepare`) or send it batch
//! by batch (`run-task`). Both read, neither writes before the plan is
//! complete and within its limits.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::outcome::{classify_fault, Failure, TransportFault};
use crate::verify::reserve_ms;

/// The least time, after verification's reserve, in which a batch after
/// the first is started.
pub const MIN_BATCH_WINDOW_MS: u64 = 1_000;
use crate::policy::{Counts, Policy, PolicyId};
use crate::policy_list::read_all;
use crate::problems::{Document, Problem};
use crate::request::{build_request, RequestView};
use crate::sync::{plan, FieldChange, Plan, SyncSpec};
use crate::task::{send_batch, Completed, Prepared, TaskError, Transport};

/// A plan made from the account as it was just read.
struct Planned {
    plan: Plan,
    /// List requests the read took.
    reads: u32,
    /// The input's warnings, and the second copies kept in the account.
    warnings: Vec<Problem>,
    /// The task's deadline, which the batches share with the read.
    deadline_ms: u64,
}

/// The plan for `spec` against the account as it is now. A read that
/// fails is the task's failure; a plan past the safety limits is an input
/// problem.
fn plan_now(
    prepared: &Prepared,
    spec: &SyncSpec,
    transport: &mut impl Transport,
) -> Result<Planned, TaskError> {
    let deadline_ms = transport
        .monotonic_ms()
        .saturating_add(prepared.config.timeout_ms);
    let read = read_all(
        &prepared.config,
        &prepared.account_id,
        transport,
        deadline_ms,
    );
    let account = read.result.map_err(|e| TaskError::Call(e.0))?;
    let plan = plan(spec, &account).map_err(|e| {
        TaskError::InvalidInput(vec![Problem {
            document: Document::Input,
            pointer: e.member(),
            message: e.message(),
        }])
    })?;
    let mut warnings = prepared.warnings.clone();
    for (id, kept) in &plan.duplicates {
        warnings.push(Problem {
            document: Document::Input,
            pointer: "/sync".into(),
            message: format!(
                "the account's policy {id} has the same pattern_type, is_regex and pattern as {kept}; it is kept because delete_unlisted is false"
            ),
        });
    }
    Ok(Planned {
        plan,
        reads: read.requests,
        warnings,
        deadline_ms,
    })
}

fn counts(plan: &Plan) -> Counts {
    Counts {
        deletes: plan.deletes.len(),
        patches: plan.changes.len(),
        puts: 0,
        posts: plan.posts.len(),
    }
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

/// The preview of a sync: what would change, and the batches that would
/// be sent, credentials redacted.
pub fn preview(
    prepared: &Prepared,
    spec: &SyncSpec,
    transport: &mut impl Transport,
) -> Result<String, TaskError> {
    let Planned {
        plan,
        reads,
        warnings,
        ..
    } = plan_now(prepared, spec, transport)?;
    let requests: Vec<_> = plan
        .batches()
        .iter()
        .map(|batch| build_request(&prepared.config, &prepared.account_id, batch))
        .collect();

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
    struct Preview<'a> {
        dry_run: bool,
        skipped: bool,
        request: Option<RequestView<'a>>,
        warnings: &'a [Problem],
        counts: Counts,
        plan: PlanView<'a>,
    }
    let view = Preview {
        dry_run: true,
        skipped: plan.is_empty(),
        request: None,
        warnings: &warnings,
        counts: counts(&plan),
        plan: PlanView {
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
            batches: requests.iter().map(|r| r.view()).collect(),
        },
    };
    // Strings, numbers and JSON already checked: serialising cannot fail.
    Ok(serde_json::to_string(&view).unwrap_or_default())
}

/// Reads, plans, and sends the plan batch by batch, stopping at the first
/// batch that fails. Each batch is sent as a batch of the four arrays is,
/// with the same safe retries and verification, so none is applied twice;
/// a run after a failure plans again from the account as it then is.
pub fn run(
    prepared: &Prepared,
    spec: &SyncSpec,
    transport: &mut impl Transport,
) -> Result<String, TaskError> {
    let Planned {
        plan,
        reads,
        warnings,
        deadline_ms,
    } = plan_now(prepared, spec, transport)?;
    let batches = plan.batches();
    let mut sent: Vec<Completed> = Vec::with_capacity(batches.len());
    for (k, batch) in batches.iter().enumerate() {
        // A batch started with almost no time left would go out only to
        // be cut off, leaving its outcome in doubt: it is not started.
        let now = transport.monotonic_ms();
        let left = deadline_ms.saturating_sub(now);
        if k > 0 && left.saturating_sub(reserve_ms(left)) < MIN_BATCH_WINDOW_MS {
            let mut failure = classify_fault(&TransportFault::BeforeSend(String::new()));
            failure.message = format!(
                "batch {} of {} was not sent: less than {MIN_BATCH_WINDOW_MS} ms of timeout_ms was left for it; {k} applied before it, and running the sync again plans from what is there",
                k + 1,
                batches.len()
            );
            return Err(TaskError::Call(failure));
        }
        let request = build_request(&prepared.config, &prepared.account_id, batch);
        match send_batch(
            &prepared.config,
            &prepared.account_id,
            &|| batch,
            &request,
            transport,
            deadline_ms,
        ) {
            Ok(completed) => sent.push(completed),
            Err(failure) => return Err(TaskError::Call(stopped_at(failure, k, batches.len()))),
        }
    }
    Ok(result_json(&plan, reads, &warnings, &sent, &batches))
}

/// The failure of batch `k` (from 0) of `total`, saying what was applied.
fn stopped_at(mut failure: Failure, k: usize, total: usize) -> Failure {
    if total > 1 {
        failure.message = format!(
            "batch {} of {total} failed, after {k} applied; the rest were not sent, and running the sync again plans from what is there: {}",
            k + 1,
            failure.message
        );
    }
    failure
}

fn result_json(
    plan: &Plan,
    reads: u32,
    warnings: &[Problem],
    sent: &[Completed],
    batches: &[crate::policy::BatchBody],
) -> String {
    #[derive(Serialize)]
    struct BatchView<'a> {
        counts: Counts,
        status: Option<u16>,
        attempts: u32,
        result: Option<&'a RawValue>,
        verification: Option<&'static str>,
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
    struct Output<'a> {
        success: bool,
        skipped: bool,
        status: Option<u16>,
        attempts: u32,
        result: Option<&'a RawValue>,
        messages: [(); 0],
        errors: [(); 0],
        warnings: &'a [Problem],
        counts: Counts,
        verification: Option<()>,
        sync: SyncView<'a>,
    }
    let views: Vec<BatchView<'_>> = sent
        .iter()
        .zip(batches)
        .map(|(done, batch)| BatchView {
            counts: batch.counts(),
            status: done.success.as_ref().map(|s| s.status),
            attempts: done.attempts,
            result: match &done.verified {
                Some(v) => Some(&*v.result),
                None => done.success.as_ref().and_then(|s| s.result.as_deref()),
            },
            verification: done.verified.as_ref().map(|_| "applied"),
        })
        .collect();
    // Strings, numbers and JSON already checked: serialising cannot fail.
    serde_json::to_string(&Output {
        success: true,
        skipped: plan.is_empty(),
        status: views.last().and_then(|v| v.status),
        attempts: sent.iter().map(|c| c.attempts).sum(),
        result: None,
        messages: [],
        errors: [],
        warnings,
        counts: counts(plan),
        verification: None,
        sync: SyncView {
            created: plan.posts.len(),
            changed: plan.changes.len(),
            deleted: plan.deletes.len(),
            unchanged: plan.unchanged,
            kept_unlisted: plan.kept_unlisted,
            reads,
            batches: views,
        },
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;

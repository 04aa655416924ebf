//! Sync mode from checked parameters to a document: read the account,
//! plan ([`crate::run::sync_plan`]), then show the plan (`prepare`) or
//! send it batch by batch (`run-task`). Both read, neither writes before the plan is
//! complete and within its limits.

use crate::api::outcome::{classify_fault, Failure, TransportFault};
use crate::api::policy::BatchBody;
use crate::api::policy_list::read_all;
use crate::api::request::build_request;
use crate::api::transport::{Counted, Transport};
use crate::params::problems::{Document, Problem};
use crate::params::sync_spec::SyncSpec;
use crate::run::documents::{sync_preview_json, sync_result_json};
use crate::run::prepare::{Prepared, TaskError};
use crate::run::read_back::reserve_ms;
use crate::run::send::{send_batch, Completed};
use crate::run::sync_plan::{plan, Plan};

/// The least time, after verification's reserve, in which a batch after
/// the first is started.
pub const MIN_BATCH_WINDOW_MS: u64 = 1_000;

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
        TaskError::InvalidInput(vec![Problem::new(Document::Input, e.member(), e.message())])
    })?;
    let mut warnings = prepared.warnings.clone();
    for (id, kept) in &plan.duplicates {
        warnings.push(Problem::new(
            Document::Input,
            "/sync",
            format!(
                "the account's policy {id} has the same pattern_type, is_regex and pattern as {kept}; it is kept because delete_unlisted is false"
            ),
        ));
    }
    Ok(Planned {
        plan,
        reads: read.requests,
        warnings,
        deadline_ms,
    })
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
    Ok(sync_preview_json(&plan, reads, &warnings, &requests))
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
    let mut transport = Counted::new(transport);
    let outcome = read_plan_send(prepared, spec, &mut transport);
    let api_calls = transport.calls();
    match outcome {
        Ok(done) => Ok(done.document(api_calls)),
        Err(TaskError::Call(mut failure)) => {
            failure.api_calls = api_calls;
            Err(TaskError::Call(failure))
        }
        Err(other) => Err(other),
    }
}

/// What a sync that ran to the end leaves for its document.
struct Synced {
    plan: Plan,
    reads: u32,
    warnings: Vec<Problem>,
    sent: Vec<Completed>,
    batches: Vec<BatchBody>,
}

impl Synced {
    fn document(&self, api_calls: u32) -> String {
        sync_result_json(
            &self.plan,
            self.reads,
            &self.warnings,
            &self.sent,
            &self.batches,
            api_calls,
        )
    }
}

/// [`run`]'s work, on a transport that counts it.
fn read_plan_send(
    prepared: &Prepared,
    spec: &SyncSpec,
    transport: &mut impl Transport,
) -> Result<Synced, TaskError> {
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
    Ok(Synced {
        plan,
        reads,
        warnings,
        sent,
        batches,
    })
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

#[cfg(test)]
mod tests;

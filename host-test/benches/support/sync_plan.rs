//! Figure 7 of `make bench`: sync mode's plan for 10,000 desired policies
//! against an account of 10,000, half of them to change or to create.
//! The account's pages come from memory (an interceptor in the host, a
//! [`Transport`] natively), so the figure is the component's own work:
//! validating the list, parsing 100 pages, planning and writing the
//! preview. The plan alone is timed natively as well.

use allow_policies_batch::api::outcome::{RawResponse, TransportFault};
use allow_policies_batch::api::policy_list::{parse_page, PER_PAGE};
use allow_policies_batch::api::request::ApiRequest;
use allow_policies_batch::api::stored::Snapshot;
use allow_policies_batch::api::transport::{AttemptLimits, Transport};
use allow_policies_batch::run::prepare::prepare;
use allow_policies_batch::run::sync_plan::plan;
use allow_policies_batch::run::sync_run;
use host_test::{CannedResponse, CapturedRequest, Intercepted, TaskOptions};
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub const POLICIES: usize = 10_000;
const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";

fn policy(i: usize) -> Value {
    json!({"pattern": format!("sender{i:05}@example.com"), "pattern_type": "EMAIL", "is_regex": false,
           "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
           "verify_sender": true})
}

/// The account: policies 0..10,000, each with an id and times.
fn stored(i: usize) -> Value {
    let mut p = policy(i);
    p["id"] = json!(format!("00000000-0000-4000-8000-{i:012x}"));
    p["comments"] = Value::Null;
    p["created_at"] = json!("2026-01-01T00:00:00Z");
    p["modified_at"] = json!("2026-01-01T00:00:00Z");
    p
}

/// The desired list: 5,000 as they are, 2,500 changed, 2,500 new.
pub fn input() -> String {
    let policies: Vec<Value> = (0..POLICIES)
        .map(|i| match i % 4 {
            0 | 1 => policy(i),
            2 => {
                let mut p = policy(i);
                p["verify_sender"] = json!(false);
                p
            }
            _ => policy(i + POLICIES),
        })
        .collect();
    json!({"account_id": ACCOUNT, "sync": {"policies": policies}}).to_string()
}

pub fn config() -> String {
    json!({"api_token": "bench-token-0123456789", "base_url": "https://api.cloudflare.com/client/v4",
           "timeout_ms": 60_000})
    .to_string()
}

/// Page `page` (from 1) of the account's list, as the API answers it.
fn page_body(page: usize) -> String {
    let start = (page - 1) * PER_PAGE as usize;
    let items: Vec<Value> = (start..(start + PER_PAGE as usize).min(POLICIES))
        .map(stored)
        .collect();
    json!({"success": true, "errors": [], "messages": [], "result": items,
           "result_info": {"page": page, "per_page": PER_PAGE, "count": items.len(), "total_count": POLICIES}})
    .to_string()
}

fn pages() -> Vec<String> {
    (1..=POLICIES.div_ceil(PER_PAGE as usize))
        .map(page_body)
        .collect()
}

fn page_of(url: &str) -> usize {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Options under which the host answers every list read from memory.
pub fn options() -> TaskOptions {
    let pages = pages();
    TaskOptions::default().with_interceptor(move |request: CapturedRequest| {
        let body = pages
            .get(page_of(&request.url) - 1)
            .cloned()
            .unwrap_or_default();
        Intercepted::Respond(
            CannedResponse::new(200)
                .with_header("content-type", "application/json")
                .with_body(body),
        )
    })
}

/// The same pages for the native run.
pub struct FromMemory {
    pages: Vec<String>,
    now_ms: u64,
}

impl FromMemory {
    pub fn new() -> Self {
        FromMemory {
            pages: pages(),
            now_ms: 0,
        }
    }
}

impl Transport for FromMemory {
    fn monotonic_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn unix_ms(&mut self) -> u64 {
        1_800_000_000_000
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now_ms += ms;
    }
    fn entropy(&mut self) -> u64 {
        0
    }
    fn send(
        &mut self,
        request: &ApiRequest,
        _: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        let body = self
            .pages
            .get(page_of(&request.url) - 1)
            .cloned()
            .unwrap_or_default();
        Ok(RawResponse {
            status: 200,
            retry_after: None,
            body: body.into_bytes(),
            truncated: false,
            body_error: None,
        })
    }
}

/// Native: the whole preview, as the component makes it.
pub fn native_preview(config: &str, input: &str, transport: &mut FromMemory) -> String {
    let prepared = prepare(config, input).expect("a valid sync");
    let spec = prepared.sync.as_ref().expect("sync mode");
    sync_run::preview(&prepared, spec, transport).expect("a plan")
}

/// Native: the account as read, and the checked list, for timing the
/// plan alone.
pub fn parsed(
    config: &str,
    input: &str,
) -> (allow_policies_batch::params::sync_spec::SyncSpec, Snapshot) {
    let prepared = prepare(config, input).expect("a valid sync");
    let policies = pages().into_iter().flat_map(|body| {
        let v: Value = serde_json::from_str(&body).unwrap();
        let raw = RawValue::from_string(v["result"].to_string()).unwrap();
        parse_page(Some(&raw), None).unwrap().policies
    });
    (prepared.sync.expect("sync mode"), Snapshot::new(policies))
}

/// The plan alone; its size, so that nothing is optimised away.
pub fn plan_only(
    spec: &allow_policies_batch::params::sync_spec::SyncSpec,
    account: &Snapshot,
) -> usize {
    let plan = plan(spec, account).expect("within the limits");
    plan.posts.len() + plan.changes.len() + plan.deletes.len()
}

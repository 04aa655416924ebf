//! "Take it elsewhere": the task the page designed, as each engine the
//! project documents runs it (docs/conductor.md, docs/temporal.md,
//! docs/simworkflow.md, and `task-host run`), each built on the files of
//! `examples/` those pages describe.
//!
//! No snippet holds a credential: the engines' workers take the token from
//! `$CLOUDFLARE_API_TOKEN`, SimWorkflow from its secret store, as their
//! docs say; `base_url` is left to its default, Cloudflare. The config and
//! input given here have had their credential members and `base_url`
//! removed already.

use serde_json::{json, Map, Value};

/// The Conductor workflows of `examples/conductor/`: one for the four
/// lists, one for a sync.
const CONDUCTOR_WORKFLOW: &str = include_str!("../../../examples/conductor/workflow.json");
const CONDUCTOR_WORKFLOW_SYNC: &str =
    include_str!("../../../examples/conductor/workflow-sync.json");

/// SimWorkflow's one-task definition, whose request is replaced by the
/// batch's.
const SIMWORKFLOW_DEFINITION: &str =
    include_str!("../../../examples/simworkflow/allow-policies-sync.json");

/// The activity's (and the Conductor task's) name, and the task queue
/// docs/temporal.md starts the worker on.
const TASK_NAME: &str = "allow_policies_batch";
const TASK_QUEUE: &str = "allow-policies";

/// The component's default `timeout_ms` and `connect_timeout_ms`.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// The request a batch sends, from its preview (`prepare` against
/// Cloudflare's default base URL), for the engines that send it
/// themselves; or why there is none.
pub enum Request {
    Batch {
        method: Value,
        url: Value,
        body: Value,
    },
    /// A sync's batches depend on the account when it runs.
    Sync,
    /// An empty batch sends nothing.
    Empty,
    /// The component refused the task: the preview names the problems.
    Invalid,
}

/// The snippets for `config` (no credentials, no `base_url`) and `input`.
pub fn snippets(config: &Map<String, Value>, input: &Value, request: &Request) -> Vec<Value> {
    let timeouts = Timeouts::of(config);
    vec![
        conductor(config, input),
        temporal_python(config, input, &timeouts),
        temporal_go(config, input, &timeouts),
        simworkflow(request, &timeouts),
        task_host(config, input),
    ]
}

/// The config's deadlines, which the engines' own timeouts must cover.
struct Timeouts {
    timeout_ms: u64,
    connect_timeout_ms: u64,
}

impl Timeouts {
    fn of(config: &Map<String, Value>) -> Timeouts {
        let ms =
            |key: &str, default: u64| config.get(key).and_then(Value::as_u64).unwrap_or(default);
        Timeouts {
            timeout_ms: ms("timeout_ms", DEFAULT_TIMEOUT_MS),
            connect_timeout_ms: ms("connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS),
        }
    }

    /// A Temporal activity's `start_to_close_timeout` in seconds:
    /// `timeout_ms` plus 10 s (the host ends a run 5 s past it), as
    /// docs/temporal.md advises.
    fn activity_seconds(&self) -> u64 {
        self.timeout_ms.div_ceil(1000) + 10
    }
}

fn is_sync(input: &Value) -> bool {
    input.get("sync").is_some()
}

/// The workflow of `examples/conductor/` for this kind of task, the body
/// that starts it with this input, and the worker's config.
fn conductor(config: &Map<String, Value>, input: &Value) -> Value {
    let workflow_text = if is_sync(input) {
        CONDUCTOR_WORKFLOW_SYNC
    } else {
        CONDUCTOR_WORKFLOW
    };
    let workflow: Value = serde_json::from_str(workflow_text).unwrap_or(Value::Null);
    let document = json!({
        "workflow_definition": workflow,
        "start_workflow": {
            "name": workflow["name"],
            "version": workflow["version"],
            "input": input,
        },
        "worker_config": config,
        "worker": "CLOUDFLARE_API_TOKEN must be set for: task-host worker --server \"$CONDUCTOR\" --task-type allow_policies_batch --config worker_config.json",
    });
    json!({
        "id": "conductor",
        "title": "Conductor task and workflow",
        "language": "json",
        "text": pretty(&document),
    })
}

/// A Python workflow calling the activity with this input, as
/// docs/temporal.md's snippet and `examples/temporal/workflows.py` do.
fn temporal_python(config: &Map<String, Value>, input: &Value, timeouts: &Timeouts) -> Value {
    let mut text = String::new();
    text.push_str("from datetime import timedelta\n\n");
    text.push_str("from temporalio import workflow\n");
    text.push_str("from temporalio.common import RetryPolicy\n\n");
    text.push_str(
        "# The activity runs in task-host-temporal, started with this config\n\
         # (--config; the token comes from its $CLOUDFLARE_API_TOKEN):\n",
    );
    for line in pretty(&Value::Object(config.clone())).lines() {
        text.push_str("#   ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("\nINPUT = ");
    text.push_str(&python_literal(input, 0));
    text.push_str("\n\n\n@workflow.defn\nclass ApplyAllowPolicies:\n");
    text.push_str("    @workflow.run\n    async def run(self) -> dict:\n");
    text.push_str("        return await workflow.execute_activity(\n");
    text.push_str(&format!("            {},\n", python_string(TASK_NAME)));
    text.push_str("            INPUT,\n");
    text.push_str(&format!(
        "            task_queue={},\n",
        python_string(TASK_QUEUE)
    ));
    text.push_str(&format!(
        "            start_to_close_timeout=timedelta(seconds={}),\n",
        timeouts.activity_seconds()
    ));
    text.push_str("            heartbeat_timeout=timedelta(seconds=5),\n");
    text.push_str("            retry_policy=RetryPolicy(maximum_attempts=4),\n");
    text.push_str("        )\n");
    json!({
        "id": "temporal-python",
        "title": "Temporal workflow (Python)",
        "language": "python",
        "text": text,
    })
}

/// The same workflow in Go.
fn temporal_go(config: &Map<String, Value>, input: &Value, timeouts: &Timeouts) -> Value {
    let mut text = String::from(
        "package workflows\n\nimport (\n\t\"encoding/json\"\n\t\"time\"\n\n\t\"go.temporal.io/sdk/temporal\"\n\t\"go.temporal.io/sdk/workflow\"\n)\n\n",
    );
    text.push_str(
        "// The activity runs in task-host-temporal, started with this config\n\
         // (--config; the token comes from its $CLOUDFLARE_API_TOKEN):\n",
    );
    for line in pretty(&Value::Object(config.clone())).lines() {
        text.push_str("//   ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "const allowPoliciesInput = {}\n\n",
        go_string(&pretty(input))
    ));
    text.push_str(&format!(
        "func ApplyAllowPolicies(ctx workflow.Context) (map[string]any, error) {{\n\
         \tvar input map[string]any\n\
         \tif err := json.Unmarshal([]byte(allowPoliciesInput), &input); err != nil {{\n\
         \t\treturn nil, err\n\
         \t}}\n\
         \tctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{{\n\
         \t\tTaskQueue:           {queue},\n\
         \t\tStartToCloseTimeout: {seconds} * time.Second,\n\
         \t\tHeartbeatTimeout:    5 * time.Second,\n\
         \t\tRetryPolicy:         &temporal.RetryPolicy{{MaximumAttempts: 4}},\n\
         \t}})\n\
         \tvar result map[string]any\n\
         \terr := workflow.ExecuteActivity(ctx, {name}, input).Get(ctx, &result)\n\
         \treturn result, err\n\
         }}\n",
        queue = python_string(TASK_QUEUE),
        seconds = timeouts.activity_seconds(),
        name = python_string(TASK_NAME),
    ));
    json!({
        "id": "temporal-go",
        "title": "Temporal workflow (Go)",
        "language": "go",
        "text": text,
    })
}

/// `examples/simworkflow/`'s definition with this batch's request; the
/// token stays a `${secrets...}` reference. A sync, an empty batch and a
/// refused one have no such definition; the text says why.
fn simworkflow(request: &Request, timeouts: &Timeouts) -> Value {
    let (language, text) = match request {
        Request::Batch { method, url, body } => {
            let mut definition: Value =
                serde_json::from_str(SIMWORKFLOW_DEFINITION).unwrap_or(Value::Null);
            let task = &mut definition["tasks"]["apply_allow_policies"];
            task["httpRequest"]["url"] = url.clone();
            task["httpRequest"]["method"] = method.clone();
            task["httpRequest"]["body"] = body.clone();
            task["connectionTimeoutSeconds"] = json!(timeouts.connect_timeout_ms.div_ceil(1000));
            task["readTimeoutSeconds"] = json!(timeouts.timeout_ms.div_ceil(1000));
            ("json", pretty(&definition))
        }
        Request::Sync => (
            "text",
            "A sync has no SimWorkflow definition: its batches depend on the account when it runs, which a fixed Http request cannot read. Run it where the component runs (task-host run, Conductor, Temporal), or take the batches of the moment from the preview's plan.".to_string(),
        ),
        Request::Empty => (
            "text",
            "An empty batch sends nothing, so there is no request to put into a SimWorkflow definition.".to_string(),
        ),
        Request::Invalid => (
            "text",
            "The task does not validate: fix the problems the preview names, and the definition appears here.".to_string(),
        ),
    };
    json!({
        "id": "simworkflow",
        "title": "SimWorkflow definition",
        "language": language,
        "text": text,
    })
}

/// A `task-host run` command line, the documents written beside it.
fn task_host(config: &Map<String, Value>, input: &Value) -> Value {
    let text = format!(
        "# The token comes from the environment: export CLOUDFLARE_API_TOKEN first.\n\
         cat > config.json <<'JSON'\n{}\nJSON\n\
         cat > input.json <<'JSON'\n{}\nJSON\n\
         task-host run --dry-run --config config.json --input input.json\n\
         task-host run --config config.json --input input.json\n",
        pretty(&Value::Object(config.clone())),
        pretty(input)
    );
    json!({
        "id": "task-host",
        "title": "task-host run",
        "language": "sh",
        "text": text,
    })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `value` as a Python literal (`True`, `None`, dicts and lists), laid
/// out one member a line from `indent` spaces.
fn python_literal(value: &Value, indent: usize) -> String {
    let inner = " ".repeat(indent + 4);
    let outer = " ".repeat(indent);
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => python_string(s),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| format!("{inner}{},\n", python_literal(item, indent + 4)))
                .collect();
            format!("[\n{}{outer}]", items.concat())
        }
        Value::Object(members) if members.is_empty() => "{}".into(),
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|(key, item)| {
                    format!(
                        "{inner}{}: {},\n",
                        python_string(key),
                        python_literal(item, indent + 4)
                    )
                })
                .collect();
            format!("{{\n{}{outer}}}", members.concat())
        }
    }
}

/// A Python (or Go) string literal: JSON's escapes (`\"`, `\\`, `\n`,
/// `\u001b`) mean the same in Python and in Go, and serde_json writes
/// nothing else.
fn python_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A Go string literal: a raw string when the text has no backquote,
/// else an interpreted one (JSON's escapes mean the same in Go).
fn go_string(text: &str) -> String {
    if text.contains('`') || text.contains('\r') {
        serde_json::to_string(text).unwrap_or_default()
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_literal_says_true_false_and_none() {
        let value = json!({"a": [true, false, null, 1.5, "x\"y\\z\n"], "b": {}});
        assert_eq!(
            python_literal(&value, 0),
            "{\n    \"a\": [\n        True,\n        False,\n        None,\n        1.5,\n        \"x\\\"y\\\\z\\n\",\n    ],\n    \"b\": {},\n}"
        );
    }

    #[test]
    fn a_go_string_is_raw_unless_it_holds_a_backquote() {
        assert_eq!(go_string("{\"a\": 1}"), "`{\"a\": 1}`");
        assert_eq!(go_string("a`b"), "\"a`b\"");
    }

    #[test]
    fn the_activity_has_ten_seconds_past_the_task_deadline() {
        let config = json!({"timeout_ms": 1500});
        assert_eq!(
            Timeouts::of(config.as_object().unwrap()).activity_seconds(),
            12
        );
        assert_eq!(Timeouts::of(&Map::new()).activity_seconds(), 40);
    }
}

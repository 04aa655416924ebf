//! "Take it elsewhere": the task the page designed, as each engine the
//! project supports runs it. No snippet holds a credential: each takes
//! the token where that engine's docs say (the environment, the worker's
//! config, the engine's secrets), and leaves `base_url` to its default.

use serde_json::{json, Map, Value};

/// The snippets for `config` (credentials and `base_url` already removed)
/// and `input`.
pub fn snippets(config: &Map<String, Value>, input: &Value) -> Vec<Value> {
    vec![task_host(config, input)]
}

/// A `task-host run` command line, the documents written beside it.
fn task_host(config: &Map<String, Value>, input: &Value) -> Value {
    let text = format!(
        "# The token comes from the environment: export CLOUDFLARE_API_TOKEN first.\ncat > config.json <<'EOF'\n{}\nEOF\ncat > input.json <<'EOF'\n{}\nEOF\ntask-host run --dry-run --config config.json --input input.json\ntask-host run --config config.json --input input.json\n",
        pretty(&Value::Object(config.clone())),
        pretty(input)
    );
    json!({ "id": "task-host", "title": "task-host run", "language": "sh", "text": text })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

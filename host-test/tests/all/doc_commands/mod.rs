//! The command lines of README.md and docs/*.md, run as a reader runs
//! them, so that an example cannot break unnoticed.
//!
//! Every block fenced as ```` ```sh ```` (or `bash`, `shell`, `zsh`) is run
//! whole by `bash -eu -o pipefail` ([`runner`]), and must exit 0 and print
//! only JSON documents, none of them `{"error": ...}`; some blocks are
//! checked further below. A block that needs more than loopback (a
//! Cloudflare account, a Conductor or Temporal server, npm, a build) says
//! so right above its fence, and is then listed as not run:
//!
//! ```text
//! <!-- doc-test: not run: REASON -->
//! ```
//!
//! A block is run unless it says so, and one that could reach beyond
//! loopback without saying so fails the test ([`blocks::leaves_loopback`]),
//! so a new block is never skipped silently nor sent anywhere. A file that
//! a block reads but the repository does not hold is given the same way
//! (`<!-- doc-test: my-batch.json is examples/batch.json -->`).

mod blocks;
mod runner;

use std::path::{Path, PathBuf};

use blocks::{leaves_loopback, shell_blocks, Block, DocProblem, Run};
use runner::Ran;
use serde_json::Value;

/// README.md and every docs/*.md, as paths from the repository's root.
fn documents() -> Vec<String> {
    let root = repository();
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every shell block of the documents; a document the rules refuse fails
/// the test with every problem.
fn all_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(repository().join(&file)).unwrap();
        match shell_blocks(&file, &text) {
            Ok(found) => blocks.extend(found),
            Err(found) => problems.extend(found),
        }
    }
    let problems: Vec<String> = problems.iter().map(DocProblem::to_string).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    blocks
}

/// The one block of `file` that holds `text`.
fn block_holding(file: &str, text: &str) -> Block {
    let found: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.file == file && b.text.contains(text))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "blocks of {file} holding {text:?}: {found:?}"
    );
    found.into_iter().next().unwrap()
}

/// A block that must run: it exits 0, and what it prints is JSON
/// documents, none of them an error.
fn run_ok(block: &Block) -> Ran {
    let ran = runner::run(block);
    assert!(ran.status.success(), "{block}: {}", ran.report());
    for document in ran.documents() {
        assert!(
            document.get("error").is_none(),
            "{block} printed an error: {document}"
        );
    }
    ran
}

/// Checks beyond the exit status, for the blocks whose output says whether
/// they did what the page says: `(file, text the block holds, check)`.
type Check = fn(&Block, &Ran);

const CHECKS: [(&str, &str, Check); 3] = [
    ("README.md", "--dry-run", check_readme_dry_run),
    ("README.md", "fake-api", check_readme_fake_api),
    ("docs/simworkflow.md", "my-workflow.json", check_simworkflow),
];

#[test]
fn every_shell_block_of_the_docs_runs_or_says_why_not() {
    let blocks = all_blocks();
    let (run, not_run): (Vec<&Block>, Vec<&Block>) = blocks.iter().partition(|b| b.run == Run::Yes);
    for block in &not_run {
        if let Run::NotRun(reason) = &block.run {
            eprintln!("not run: {block}: {reason}");
        }
    }
    assert!(run.len() >= 3, "too few blocks run: {run:?}");
    for (file, text, _) in CHECKS {
        assert!(
            run.iter().any(|b| b.file == file && b.text.contains(text)),
            "no block of {file} that is run holds {text:?}: a check checks nothing"
        );
    }
    for block in run {
        let ran = run_ok(block);
        eprintln!("ran: {block}");
        for (file, text, check) in CHECKS {
            if block.file == file && block.text.contains(text) {
                check(block, &ran);
            }
        }
    }
}

/// The README's example against the fake API, end to end: the seeded
/// policies are deleted, patched and replaced, the new ones created.
#[test]
fn the_readme_example_against_the_fake_api_applies_the_example_batch() {
    let block = block_holding("README.md", "fake-api");
    assert!(
        block.text.contains("--seed examples/seed.json"),
        "{}",
        block.text
    );
    let ran = run_ok(&block);
    check_readme_fake_api(&block, &ran);
}

fn check_readme_dry_run(block: &Block, ran: &Ran) {
    let documents = ran.documents();
    assert_eq!(documents.len(), 2, "{block}: {}", ran.report());
    let preview = &documents[0];
    assert_eq!(preview["dry_run"], true, "{block}: {preview}");
    assert_eq!(preview["request"]["headers"]["Authorization"], "[redacted]");
    assert_eq!(preview["counts"]["posts"], 3);
    let schemas = &documents[1];
    for key in ["config", "input", "output"] {
        assert!(schemas[key].is_object(), "{block}: describe lacks {key}");
    }
}

fn check_readme_fake_api(block: &Block, ran: &Ran) {
    let documents = ran.documents();
    // The fake's base URL, then the run's result.
    assert_eq!(documents.len(), 2, "{block}: {}", ran.report());
    assert!(
        documents[0]["base_url"].is_string(),
        "{block}: {}",
        ran.report()
    );
    let result = &documents[1];
    assert_eq!(result["success"], true, "{block}: {result}");
    assert_eq!(result["status"], 200, "{block}: {result}");
    let seed = read_repository_json("examples/seed.json");
    let seeded = seed["023e105f4ecef8ad9ca31a8372d0c353"].as_array().unwrap();
    let batch = read_repository_json("examples/batch.json");
    for array in ["deletes", "patches", "puts"] {
        let sent: Vec<&Value> = batch[array]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["id"])
            .collect();
        let answered: Vec<&Value> = result["result"][array]
            .as_array()
            .unwrap_or_else(|| panic!("{block}: no {array} in {result}"))
            .iter()
            .map(|p| &p["id"])
            .collect();
        assert_eq!(answered, sent, "{block}: {array}");
        for id in sent {
            assert!(
                seeded.iter().any(|p| &p["id"] == id),
                "examples/seed.json lacks {id}, which examples/batch.json {array}"
            );
        }
    }
    assert_eq!(result["result"]["posts"].as_array().map(Vec::len), Some(3));
}

fn check_simworkflow(block: &Block, ran: &Ran) {
    // Given the example batch, the request comes out as committed: the
    // definition holds exactly the request the component builds for it.
    // (The rest is jq's copy, which may spell a number such as 2.0 anew.)
    let written = std::fs::read_to_string(ran.dir.join("my-workflow.json"))
        .unwrap_or_else(|e| panic!("{block} wrote no my-workflow.json: {e}"));
    let written: Value = serde_json::from_str(&written).unwrap();
    let committed = read_repository_json("examples/simworkflow/allow-policies-sync.json");
    let request = "/tasks/apply_allow_policies/httpRequest";
    assert!(committed.pointer(request).is_some_and(Value::is_object));
    assert_eq!(
        written.pointer(request),
        committed.pointer(request),
        "{block}"
    );
}

fn read_repository_json(path: &str) -> Value {
    let text = std::fs::read_to_string(repository().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The rules themselves: a marker applies to the block right below it,
/// and a block that is run may not leave loopback.
#[test]
fn markers_and_the_loopback_rule_are_enforced() {
    let markdown = "\
# Page

<!-- doc-test: not run: needs an account -->
```sh
task-host run --config c.json --input i.json
```

<!-- doc-test: given.json is examples/batch.json -->
```sh
task-host run --config c.json --input given.json --dry-run
curl -sS http://127.0.0.1:8787/__fake/requests
```
";
    let blocks = shell_blocks("page.md", markdown).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].run, Run::NotRun("needs an account".into()));
    assert_eq!(blocks[0].line, 4);
    assert_eq!(blocks[1].run, Run::Yes);
    assert_eq!(
        blocks[1].given,
        [("given.json".to_string(), "examples/batch.json".to_string())]
    );

    for (text, leaves) in [
        ("task-host run --config c --input i\n", true),
        (
            "CLOUDFLARE_API_TOKEN=... task-host run \\\n  --config c --input i\n",
            true,
        ),
        (
            "task-host run --config c --input i --allow-host 127.0.0.1:1\n",
            false,
        ),
        // A dry run reads nothing only for an input of the four lists.
        ("task-host run --config c --input i --dry-run\n", true),
        (
            "task-host run --config c --input examples/batch.json --dry-run\n",
            false,
        ),
        (
            "task-host run --config c --input examples/sync.json --dry-run\n",
            true,
        ),
        ("task-host export --config c\n", true),
        (
            "task-host export --config c --allow-host 127.0.0.1:8787\n",
            false,
        ),
        (
            "task-host worker --server http://127.0.0.1:8080 --task-type t\n",
            true,
        ),
        ("curl -fsS \"$SERVER/api\"\n", true),
        ("curl -fsS https://api.cloudflare.com/client/v4\n", true),
        ("curl -fsS http://127.0.0.1:8787/__fake/requests\n", false),
        (
            "# task-host run, in a comment\njq . examples/batch.json\n",
            false,
        ),
    ] {
        assert_eq!(leaves_loopback(text, &[]).is_some(), leaves, "{text}");
    }

    let given = [("mine.json".to_string(), "examples/batch.json".to_string())];
    assert_eq!(
        leaves_loopback(
            "task-host run --config c --input mine.json --dry-run\n",
            &given
        ),
        None
    );

    let refused = |markdown: &str| shell_blocks("page.md", markdown).unwrap_err();
    assert!(matches!(
        refused("```sh\ntask-host run --config c --input i\n```\n")[..],
        [DocProblem::LeavesLoopback { .. }]
    ));
    assert!(matches!(
        refused("<!-- doc-test: not run: why -->\n\n```sh\ntrue\n```\n")[..],
        [DocProblem::StrayMarker { .. }]
    ));
    assert!(matches!(
        refused("<!-- doc-test: skip -->\n```sh\ntrue\n```\n")[..],
        [DocProblem::UnknownMarker { .. }]
    ));
    assert!(matches!(
        refused("```\ntarget/release/task-host describe\n```\n")[..],
        [DocProblem::UnlabelledCommands { .. }]
    ));
    assert!(shell_blocks("page.md", "```json\n{\"curl\": 1}\n```\n").is_ok());
    assert!(shell_blocks("page.md", "Say `<!-- doc-test: not run: WHY -->` above.\n").is_ok());
}

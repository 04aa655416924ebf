//! "Take it elsewhere": the snippets for each engine hold the task and no
//! credential, and the Python one compiles and holds the input exactly.

use std::process::Command;

use serde_json::{json, Value};

use super::{assert_no_hex_secret, example_task, start, start_fake, Browser};
use crate::support::{assert_no_secret, read_example, TempDir};
use host_test::designer::Mode;

const PAGE_TOKEN: &str = "Pg4Wt8Zk2Qm7Xv5Rn9Jc";
const ENVIRONMENT_TOKEN: &str = "Es6Nq3Vh9Kz2Wm7Tx4Bd";

async fn snippets(browser: &Browser, task: &Value) -> Vec<Value> {
    let answer = browser.post("/api/snippets", task).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["snippets"].as_array().unwrap().clone()
}

fn text_of<'a>(snippets: &'a [Value], id: &str) -> &'a str {
    snippets
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no {id} snippet"))["text"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn every_engine_gets_a_snippet_without_credentials() {
    let designer = start(Mode::Live {
        environment_token: Some(ENVIRONMENT_TOKEN.into()),
    })
    .await;
    let browser = Browser::open(&designer).await;
    let mut task = example_task("batch.json");
    task["config"]["api_token"] = json!(PAGE_TOKEN);
    let all = snippets(&browser, &task).await;
    let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "conductor",
            "temporal-python",
            "temporal-go",
            "simworkflow",
            "task-host"
        ]
    );
    for snippet in &all {
        for member in ["title", "language", "text"] {
            assert!(snippet[member].is_string(), "{member} of {snippet}");
        }
        let text = snippet["text"].as_str().unwrap();
        assert_no_secret(text, &[PAGE_TOKEN, ENVIRONMENT_TOKEN]);
        assert!(!text.contains("api_token"), "{text}");
        assert!(!text.contains("base_url"), "{text}");
        assert!(text.contains("payroll-provider.example"), "{text}");
    }
    // SimWorkflow sends the request itself: Cloudflare's URL, the token
    // from its secret store.
    let simworkflow: Value = serde_json::from_str(text_of(&all, "simworkflow")).unwrap();
    let request = &simworkflow["tasks"]["apply_allow_policies"]["httpRequest"];
    assert_eq!(
        request["headers"]["Authorization"],
        "Bearer ${secrets.CLOUDFLARE_API_TOKEN}"
    );
    assert_eq!(request["body"]["posts"].as_array().unwrap().len(), 3);
    assert!(request["url"]
        .as_str()
        .unwrap()
        .starts_with("https://api.cloudflare.com/client/v4/accounts/"));
    let conductor: Value = serde_json::from_str(text_of(&all, "conductor")).unwrap();
    assert_eq!(
        conductor["start_workflow"]["input"],
        read_example("batch.json")
    );
    assert!(text_of(&all, "task-host")
        .contains("task-host run --config config.json --input input.json"));
    assert!(text_of(&all, "temporal-go")
        .contains("workflow.ExecuteActivity(ctx, \"allow_policies_batch\", input)"));
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}

/// `python3 -m py_compile`, then the `INPUT` literal read back with
/// `ast.literal_eval`: it is the input the page gave, value for value.
#[tokio::test]
async fn the_python_snippet_compiles_and_holds_the_input() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let dir = TempDir::new("designer-python");
    let mut awkward = example_task("batch.json");
    awkward["input"]["posts"][0]["comments"] =
        json!("quotes ' \" ''' \"\"\", a backslash \\ and \\n, a tab\t, é, 🚀, \u{1b}[31m");
    awkward["input"]["patches"][0]["comments"] = Value::Null;
    for (name, task) in [
        ("batch", example_task("batch.json")),
        ("sync", example_task("sync.json")),
        ("awkward", awkward),
        ("empty", json!({"config": {}, "input": {}})),
    ] {
        let all = snippets(&browser, &task).await;
        let source = dir.path().join(format!("{name}.py"));
        std::fs::write(&source, text_of(&all, "temporal-python")).unwrap();
        let compiled = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&source)
            .output()
            .expect("python3 runs");
        assert!(
            compiled.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&compiled.stderr),
            text_of(&all, "temporal-python")
        );
        let read_back = Command::new("python3")
            .arg("-c")
            .arg(
                "import ast, json, sys\n\
                 tree = ast.parse(open(sys.argv[1], encoding='utf-8').read())\n\
                 value = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == 'INPUT')\n\
                 print(json.dumps(ast.literal_eval(value)))",
            )
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            read_back.status.success(),
            "{}",
            String::from_utf8_lossy(&read_back.stderr)
        );
        let value: Value = serde_json::from_slice(&read_back.stdout).unwrap();
        assert_eq!(value, task["input"], "{name}");
    }
    designer.shutdown().await;
}

//! Running the same `task-host run` command again after a failure that may
//! have applied its batch: the second run reads the account first instead
//! of creating the batch's policies twice; `--fresh` opts out; a record
//! older than a day is ignored with a warning.

use crate::support::{fake_api, post, TempDir, ACCOUNT};
use host_test::fake_api::{FakeApi, Fault};
use host_test::unsettled::BatchKey;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;

const TOKEN: &str = "cf-RERUN-TOKEN-never-shown-8e21";

/// A fake API, the files of one batch with one post, and a state
/// directory of the test's own.
struct Setup {
    runtime: tokio::runtime::Runtime,
    fake: Option<FakeApi>,
    dir: TempDir,
    config: PathBuf,
    input: PathBuf,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(fake_api(None));
        let dir = TempDir::new(label);
        let config = dir.join("config.json");
        let input = dir.join("input.json");
        std::fs::write(
            &config,
            json!({"base_url": fake.base_url(), "account_id": ACCOUNT, "api_token": TOKEN})
                .to_string(),
        )
        .unwrap();
        std::fs::write(
            &input,
            json!({"posts": [post("alerts@monitoring.example.com")]}).to_string(),
        )
        .unwrap();
        Setup {
            runtime,
            fake: Some(fake),
            dir,
            config,
            input,
        }
    }

    fn fake(&self) -> &FakeApi {
        self.fake.as_ref().unwrap()
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn records(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.state().join("unsettled")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn run(&self, extra: &[&str]) -> (Option<i32>, Value, String) {
        let allow = self.fake().addr().to_string();
        let out: Output = crate::support::task_host_command()
            .args(["run", "--config"])
            .arg(&self.config)
            .arg("--input")
            .arg(&self.input)
            .args(["--allow-host", &allow])
            .args(extra)
            .env("TASK_HOST_STATE_DIR", self.state())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
        let document = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        crate::support::documents::check_printed(&document);
        (out.status.code(), document, stderr)
    }

    /// The batch is applied, then the answer is a proxy's 502, and the
    /// read back fails: the first run cannot tell, and ends "may have
    /// applied".
    fn fail_in_doubt(&self) -> Value {
        self.fake()
            .push_fault(Fault::AfterApplying(Box::new(Fault::status(502, vec![]))));
        self.fake().push_list_fault(Fault::status(500, vec![]));
        let before = now_ms();
        let (code, document, stderr) = self.run(&[]);
        let after = now_ms();
        let error = &document["error"];
        assert_eq!(code, Some(75), "{document}");
        assert_eq!(error["may_have_applied"], true, "{document}");
        assert_eq!(error["verification"], "incomplete", "{document}");
        // The batch and the read back that failed both left.
        assert_eq!(error["api_calls"], 2, "{document}");
        let first_sent = error["first_sent_unix_ms"].as_u64().unwrap();
        assert!((before..=after).contains(&first_sent), "{document}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&format!("first_sent_unix_ms {first_sent}")),
            "{document}"
        );
        assert!(
            stderr.contains("running this command again reads the account first"),
            "{stderr}"
        );
        assert_eq!(self.records().len(), 1);
        assert_eq!(self.fake().policies(ACCOUNT).len(), 1);
        document
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(fake) = self.fake.take() {
            self.runtime.block_on(fake.shutdown());
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The issue a user met: the same command run twice after "may have
/// applied" must not leave the policy twice in the account.
#[test]
fn the_same_command_again_reads_first_and_creates_nothing_twice() {
    let setup = Setup::new("rerun-same");
    setup.fail_in_doubt();

    let (code, document, stderr) = setup.run(&[]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert!(
        stderr.contains("may have applied; running it again"),
        "{stderr}"
    );
    assert_eq!(document["attempts"], 0, "{document}");
    // One read of the account, and nothing sent.
    assert_eq!(document["api_calls"], 1, "{document}");
    assert_eq!(document["verification"]["outcome"], "applied", "{document}");
    assert_eq!(document["verification"]["after"]["kind"], "earlier_attempt");
    assert_eq!(setup.fake().policies(ACCOUNT).len(), 1);
    // Settled: the record is gone, and a third run is a new batch.
    assert!(setup.records().is_empty(), "{:?}", setup.records());
    let (code, document, stderr) = setup.run(&[]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert!(!stderr.contains("running it again"), "{stderr}");
    assert_eq!(setup.fake().policies(ACCOUNT).len(), 2);
}

/// `--fresh` sends the batch as new although a run of it may have applied.
#[test]
fn fresh_sends_the_batch_as_new() {
    let setup = Setup::new("rerun-fresh");
    setup.fail_in_doubt();
    let (code, document, stderr) = setup.run(&["--fresh"]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert!(!stderr.contains("running it again"), "{stderr}");
    assert_eq!(document["attempts"], 1, "{document}");
    assert_eq!(document["verification"], Value::Null, "{document}");
    assert_eq!(setup.fake().policies(ACCOUNT).len(), 2);
    assert!(setup.records().is_empty());
}

/// A record older than a day is not believed: the batch is sent as new,
/// with a warning.
#[test]
fn a_record_older_than_a_day_is_ignored_with_a_warning() {
    let setup = Setup::new("rerun-expired");
    let preview = preview(&setup);
    let key = BatchKey::of_request(
        preview["request"]["url"].as_str().unwrap(),
        &preview["request"]["body"].to_string(),
    );
    let records =
        host_test::unsettled::UnsettledBatches::open(&setup.state().join("unsettled")).unwrap();
    let two_days_ago = now_ms() - 2 * host_test::unsettled::RECORD_LIFETIME_MS;
    records.remember(&key, two_days_ago).unwrap();
    assert_eq!(setup.records().len(), 1);

    let (code, document, stderr) = setup.run(&[]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert!(
        stderr.contains("more than a day old and is ignored"),
        "{stderr}"
    );
    assert_eq!(document["attempts"], 1, "{document}");
    assert_eq!(setup.fake().policies(ACCOUNT).len(), 1);
    assert!(setup.records().is_empty());
}

/// A state directory other users may write to is not used: a planted
/// record could otherwise decide what is sent.
#[test]
fn a_state_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let setup = Setup::new("rerun-untrusted");
    std::fs::create_dir_all(setup.state()).unwrap();
    std::fs::set_permissions(setup.state(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, document, stderr) = setup.run(&[]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert!(stderr.contains("cannot be recorded"), "{stderr}");
    assert!(stderr.contains("may be written by other users"), "{stderr}");
}

fn preview(setup: &Setup) -> Value {
    let (code, document, stderr) = setup.run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    document
}

//! Runs one shell block as a reader would, from the repository's root, but
//! in a fresh directory of its own, and ends every process it leaves
//! behind.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::blocks::Block;
use crate::support::{examples_dir, unused_port, TempDir, TASK_HOST};

/// The loopback address the docs give the fake API; each run gets a free
/// port in its place, so that blocks run beside each other and beside
/// anything a person left on 8787.
const DOC_ADDRESS: &str = "127.0.0.1:8787";

/// A block that has not ended by then is stuck (a wait that never ends):
/// it is ended and fails, rather than holding up the whole run.
const STUCK_AFTER: Duration = Duration::from_secs(300);

/// How a block ended.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The directory it ran in, kept until this is dropped, so that a
    /// check can read the files the block wrote.
    pub dir: TempDir,
}

impl Ran {
    /// The JSON documents the block printed on stdout, in order; a line
    /// that is not JSON fails the test.
    pub fn documents(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON documents ({e}):\n{}", self.stdout))
    }

    /// Status, stdout and stderr, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The whole process group of a block's shell, killed when dropped: the
/// shell has ended by then, and whatever it started in the background
/// (a fake API) must not outlive the test, passed or failed.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // The group's id is the shell's process id; `kill` takes a
        // negative id as the group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `block` with `bash -eu -o pipefail` in a fresh directory holding
/// `examples/` and `target/release/task-host` (links to the repository's)
/// and the files the block's markers give, with 127.0.0.1:8787 moved to
/// a free port.
pub fn run(block: &Block) -> Ran {
    let dir = TempDir::new("doc-block");
    let output = TempDir::new("doc-block-output");
    std::os::unix::fs::symlink(examples_dir(), dir.join("examples")).unwrap();
    std::fs::create_dir_all(dir.join("target/release")).unwrap();
    std::os::unix::fs::symlink(TASK_HOST, dir.join("target/release/task-host")).unwrap();
    let repository = examples_dir().join("..");
    for (name, path) in &block.given {
        std::fs::copy(repository.join(path), dir.join(name))
            .unwrap_or_else(|e| panic!("{block}: cannot give {name} from {path}: {e}"));
    }
    let port = unused_port();
    let script = format!(
        "set -eu -o pipefail\n{}",
        block
            .text
            .replace(DOC_ADDRESS, &format!("127.0.0.1:{port}"))
    );
    let stdout = std::fs::File::create(output.join("stdout")).unwrap();
    let stderr = std::fs::File::create(output.join("stderr")).unwrap();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        // A dry run and the fake need no token: a block that does names
        // it itself, as a reader would.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("TASK_HOST_STATE_DIR", output.join("state"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // Where the reader's programs and the compiled-code cache are.
    for name in ["PATH", "HOME", "XDG_CACHE_HOME", "TASK_HOST_CACHE_DIR"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    // Its own process group, so that everything it starts can be ended.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().expect("bash runs");
    let group = ProcessGroup(child.id());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > STUCK_AFTER {
            drop(group);
            let _ = child.wait();
            panic!(
                "{block} did not end within {STUCK_AFTER:?}:\n{}",
                read(&output.join("stderr"))
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(group);
    Ran {
        status,
        stdout: read(&output.join("stdout")),
        stderr: read(&output.join("stderr")),
        dir,
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

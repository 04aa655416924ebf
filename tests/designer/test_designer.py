"""The designer page in a real browser: Debian's Chromium driven by
Playwright, against the real `task-host designer` and its embedded fake
Cloudflare API, everything on 127.0.0.1. The cases work the page as a
person would (labels, keyboard, clicks) and check what the fake's account
holds afterwards, that no credential reaches the page, and that the
designer refuses requests from elsewhere. A screenshot of each state goes
to target/designer-screenshots/.

    python tests/designer/test_designer.py --task-host target/release/task-host \
        --chromium /usr/bin/chromium --axe tests/designer/node_modules/axe-core/axe.min.js
"""

import argparse
import http.client
import json
import os
import py_compile
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/\?token=\S+")
SHOTS = os.path.join("target", "designer-screenshots")
# How long the page and the designer may take for any one step; nothing
# waits longer, and no case asserts a timing.
STEP_MS = 30_000
# A credential that must never show anywhere the page can see.
MARKER = "cf-DESIGNER-MARKER-" + secrets.token_hex(12)

expect.set_options(timeout=STEP_MS)


class Designer:
    """`task-host designer` as a process; its first stdout line gives the address."""

    def __init__(self, command, scratch, name, live=False):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
        env["TASK_HOST_STATE_DIR"] = os.path.join(scratch, f"{name}-state")
        args = command + (["--live"] if live else [])
        self.log_path = os.path.join(scratch, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, start_new_session=True
        )
        self.lines = []
        first = threading.Event()

        def drain():
            for line in self.process.stdout:
                self.lines.append(line)
                first.set()
            first.set()

        threading.Thread(target=drain, daemon=True).start()
        if not first.wait(120) or not self.lines:
            self.stop()
            raise RuntimeError(f"{name}: the designer printed nothing; log: {self.output()}")
        found = ADDRESS.search(self.lines[0])
        if not found:
            self.stop()
            raise RuntimeError(f"{name}: no address in the first line: {self.lines[0]!r}")
        self.address = found.group(0)
        parts = urllib.parse.urlsplit(self.address)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.netloc = parts.netloc
        self.token = urllib.parse.parse_qs(parts.query)["token"][0]

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return "".join(self.lines) + f.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def http_call(netloc, method, path, headers=None, body=None):
    """One request on a fresh connection, with exactly the headers given (Host included)."""
    host, port = netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = dict(headers or {})
        headers.setdefault("Host", netloc)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Length"] = str(len(data))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(data)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read().decode("utf-8", "replace")
    finally:
        connection.close()


class Harness:
    def __init__(self, args, playwright, scratch):
        self.args = args
        self.scratch = scratch
        self.command = shlex.split(args.designer) if args.designer else [args.task_host, "designer"]
        self.browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        self.fake = Designer(self.command, scratch, "fake")
        self.designers = [self.fake]
        self.session = None
        self.bodies = []  # (url, text) of every response the pages got
        self.console_errors = []
        self.failed_loads = []
        self.foreign_requests = []
        shutil.rmtree(SHOTS, ignore_errors=True)
        os.makedirs(SHOTS)

    # ---- pages ----

    def new_page(self, designer, **context_options):
        context = self.browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        context.set_default_timeout(STEP_MS)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))

        def on_request(request):
            if not request.url.startswith(designer.origin + "/"):
                self.foreign_requests.append(request.url)

        def on_response(response):
            if response.status >= 400:
                self.failed_loads.append(f"{response.status} {response.url}")
            try:
                self.bodies.append((response.url, response.body().decode("utf-8", "replace")))
            except Exception:  # a redirect has no body
                self.bodies.append((response.url, ""))

        page.on("request", on_request)
        page.on("response", on_response)
        page.goto(designer.address)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        return page

    def screenshot(self, page, name):
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))

    def screenshot_of(self, locator, name):
        locator.screenshot(path=os.path.join(SHOTS, f"{name}.png"))

    # ---- the fake, read directly ----

    def fake_root(self):
        return self.session["fake_base_url"].rsplit("/client/v4", 1)[0]

    def fake_call(self, method, path, body=None):
        netloc = urllib.parse.urlsplit(self.fake_root()).netloc
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, text = http_call(netloc, method, path, headers, body)
        return status, text

    def batches_applied(self):
        status, text = self.fake_call("GET", "/__fake/requests")
        assert status == 200, (status, text)
        return json.loads(text)["result"]["batches_applied"]

    def seed(self, account, policies):
        status, text = self.fake_call("POST", "/__fake/seed", {account: policies})
        assert status in (200, 204), (status, text)

    def policies(self, page, account):
        """The account's policies, read through the designer's export with the
        page's session: those a sync input can list, and those it left out."""
        answer = api(page, "POST", "/api/export", {"config": {"account_id": account}, "input": {}})
        assert answer["ok"], answer
        sync = answer["document"]["sync"]
        return sync["policies"], sync.get("left_out", [])


def api(page, method, path, body=None):
    """A call to the designer from inside the page (its cookie, its Origin), as the page makes them."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const init = {method, headers: body ? {"Content-Type": "application/json"} : {}};
            if (body) init.body = JSON.stringify(body);
            const r = await fetch(path, init);
            return await r.json();
        }""",
        [method, path, body],
    )


def label(title, member, required=False):
    """The accessible name the form gives a member's control."""
    return f"{title} {member}" + (" (required)" if required else "")


def policy(pattern, pattern_type="DOMAIN", **flags):
    value = {
        "id": str(uuid.uuid4()),
        "pattern": pattern,
        "pattern_type": pattern_type,
        "is_regex": False,
        "is_exempt_recipient": False,
        "is_trusted_sender": False,
        "is_acceptable_sender": True,
        "verify_sender": True,
    }
    value.update(flags)
    return value


def input_json(page):
    return json.loads(page.get_by_label("Input (JSON)").input_value())


def set_input_json(page, document):
    area = page.get_by_label("Input (JSON)")
    area.fill(json.dumps(document, indent=2))
    area.blur()  # as a person leaves the text area: the form follows at once


def test_request(page):
    page.get_by_role("button", name="Test request").click()
    expect(page.locator("#announce")).not_to_contain_text("Testing")


# ---- the cases ----


def case_page_says_where_it_sends(h):
    page = h.new_page(h.fake)
    h.session = api(page, "GET", "/api/session")
    assert h.session["mode"] == "fake", h.session
    banner = page.locator("#target")
    expect(banner).to_contain_text("Fake sandbox")
    expect(banner).to_contain_text(h.session["fake_base_url"])
    expect(banner).to_contain_text(h.session["sandbox_account"])
    expect(page.locator("#credentials")).to_contain_text("sandbox credentials are used")
    assert page.locator("input[type=password]").count() == 0
    # The config's credential members are not in the form; its title and descriptions are.
    expect(page.get_by_role("group", name="Cloudflare connection")).to_be_visible()
    assert page.get_by_label(label("API token", "api_token")).count() == 0
    expect(page.get_by_label(label("Timeout (ms)", "timeout_ms"))).to_have_attribute("placeholder", "default 30000")
    expect(page.get_by_text("Time for the whole task, retries and waits included.")).to_be_visible()
    # The examples are offered by title, never by file.
    options = page.locator("#example option").all_text_contents()
    assert len(options) >= 2 and not any(".json" in o for o in options), options
    h.screenshot(page, "start")
    page.context.close()


def case_fill_the_form_and_test_request(h):
    page = h.new_page(h.fake)
    account = h.session["sandbox_account"]
    page.get_by_role("button", name="Add to Create").click()
    item = page.get_by_role("group", name="New policy 1")
    pattern = item.get_by_label(label("Pattern", "pattern", True), exact=True)
    expect(pattern).to_be_focused()
    pattern.fill("alerts@monitoring.example.com")
    item.get_by_label(label("Pattern type", "pattern_type", True), exact=True).select_option("EMAIL")
    item.get_by_label(label("Trusted sender", "is_trusted_sender", True), exact=True).check()
    item.get_by_label(label("Verify sender", "verify_sender", True), exact=True).check()
    item.get_by_label(label("Comments", "comments"), exact=True).fill("On-call paging")
    # The form is in the JSON view at once.
    document = input_json(page)
    assert document["posts"][0]["pattern"] == "alerts@monitoring.example.com", document
    assert document["posts"][0]["is_trusted_sender"] is True, document
    # And the JSON view is in the form: edit the comment there.
    document["posts"][0]["comments"] = "Edited in the JSON view"
    set_input_json(page, document)
    expect(item.get_by_label(label("Comments", "comments"), exact=True)).to_have_value("Edited in the JSON view")

    test_request(page)
    outcome = page.locator("#outcome")
    expect(outcome).to_contain_text("Nothing was written")
    expect(outcome).to_contain_text("POST")
    expect(outcome).to_contain_text(f"/accounts/{account}/email-security/settings/allow_policies/batch")
    headers = page.locator("table.headers")
    expect(headers).to_contain_text("[redacted]")
    expect(page.locator("pre.json").first).to_contain_text("Edited in the JSON view")
    h.screenshot(page, "test-request")
    page.context.close()


def case_problem_is_shown_at_its_field(h):
    page = h.new_page(h.fake)
    page.get_by_role("button", name="Add to Create").click()
    item = page.get_by_role("group", name="New policy 1")
    pattern = item.get_by_label(label("Pattern", "pattern", True), exact=True)
    pattern.fill("(unclosed")
    item.get_by_label(label("Pattern type", "pattern_type", True), exact=True).select_option("EMAIL")
    item.get_by_label(label("Regular expression", "is_regex", True), exact=True).check()
    item.get_by_label(label("Acceptable sender", "is_acceptable_sender", True), exact=True).check()
    # A member the form has no control for, typed into the JSON view.
    document = input_json(page)
    document["posts"][0]["bogus"] = 1
    set_input_json(page, document)
    expect(pattern).to_have_value("(unclosed")
    test_request(page)
    expect(pattern).to_have_attribute("aria-invalid", "true")
    expect(pattern).to_be_focused()
    field = page.locator('.field[data-doc="input"][data-pointer="/posts/0/pattern"]')
    expect(field.locator(".problem")).to_contain_text("not a well-formed regular expression")
    # The control's description carries the message, for screen readers.
    described = pattern.get_attribute("aria-describedby").split()
    texts = [page.locator(f"#{i}").text_content() for i in described]
    assert any("regular expression" in t for t in texts), texts
    # The summary is a live region; the member with no control is listed there.
    problems = page.locator("#problems")
    assert problems.get_attribute("aria-live") == "assertive"
    expect(problems).to_contain_text("not a well-formed regular expression")
    expect(problems.locator("ul.unplaced")).to_contain_text("/posts/0/bogus")
    expect(page.locator("#outcome")).to_contain_text("Nothing was written")
    h.screenshot(page, "problem-at-field")
    h.screenshot_of(field, "problem-field")
    page.context.close()


def case_deprecated_fields_only_when_present(h):
    page = h.new_page(h.fake)
    page.get_by_role("button", name="Add to Update").click()
    item = page.get_by_role("group", name="Update 1")
    assert item.get_by_text("is_spoof").count() == 0
    document = input_json(page)
    document["patches"][0].update({"id": str(uuid.uuid4()), "is_spoof": True, "is_acceptable_sender": True})
    set_input_json(page, document)
    spoof = item.get_by_label("is_spoof is_spoof deprecated", exact=True)
    expect(spoof).to_be_visible()
    h.screenshot_of(item, "deprecated-present")
    page.context.close()


def case_id_one_of(h):
    page = h.new_page(h.fake)
    page.get_by_role("button", name="Add to Delete").click()
    item = page.get_by_role("group", name="Delete 1")
    kind = item.get_by_label("Policy ID: kind", exact=True)
    options = kind.locator("option").all_text_contents()
    assert options == ["integer 1–2147483647", "UUID"], options
    kind.select_option(label="integer 1–2147483647")
    item.get_by_label(label("Policy ID", "id", True), exact=True).fill("42")
    assert input_json(page)["deletes"] == [{"id": 42}], input_json(page)
    test_request(page)
    # An integer id is sent unchanged, with a warning.
    expect(page.locator("#outcome")).to_contain_text("Warnings")
    h.screenshot(page, "integer-id-warning")
    page.context.close()


def sync_setup(h, page):
    """A fresh account seeded so that the sync example changes, creates and deletes."""
    account = uuid.uuid4().hex
    h.seed(
        account,
        [
            policy(
                "alerts@monitoring.example.com",
                "EMAIL",
                is_trusted_sender=True,
                is_acceptable_sender=False,
                comments="On-call paging; must never be quarantined",
            ),
            policy("payroll-provider.example", verify_sender=False, comments="Payroll notices; spam scoring only"),
            policy("old-partner.example"),
            policy(
                "ALERTS@monitoring.example.com",
                "EMAIL",
                is_trusted_sender=True,
                is_acceptable_sender=False,
            ),
        ],
    )
    page.get_by_label("Example").select_option("sync")
    page.get_by_role("button", name="Load example").click()
    expect(page.get_by_role("group", name="Sync sync")).to_be_visible()
    accounts = page.get_by_label(label("Account ID", "account_id"), exact=True)
    accounts.last.fill(account)
    assert input_json(page)["account_id"] == account
    return account


def case_sync_plan_shows_old_and_new(h):
    page = h.new_page(h.fake)
    account = sync_setup(h, page)
    before = h.batches_applied()
    test_request(page)
    plan = page.locator("section.panel", has_text="The plan")
    expect(plan).to_contain_text("Change (1)")
    change = plan.locator("ul.plan-change li.change", has_text="verify_sender")
    expect(change).to_have_text("verify_sender: false → true")
    expect(plan.locator("ul.plan-create")).to_contain_text("8.8.8.0/24")
    deletes = plan.locator("ul.plan-delete li")
    expect(deletes).to_have_count(2)
    expect(deletes.filter(has_text="duplicate")).to_have_count(1)
    expect(plan).to_contain_text("Batches (1)")
    expect(page.locator("#outcome")).to_contain_text("Nothing was written")
    assert h.batches_applied() == before, "a preview wrote"
    listed, left_out = h.policies(page, account)
    assert len(listed) + len(left_out) == 4, (listed, left_out)
    h.screenshot(page, "sync-plan")
    h.screenshot_of(plan, "plan")
    page.context.close()


def case_sync_guard_is_shown_at_its_field(h):
    # The sandbox's sync example would delete every seeded policy: the
    # component's guard names /sync/allow_deleting_most, and the page puts
    # that at the control, which then lets the plan through.
    page = h.new_page(h.fake)
    page.get_by_label("Example").select_option("sync")
    page.get_by_role("button", name="Load example").click()
    test_request(page)
    guard = page.get_by_label(label("Allow deleting most", "allow_deleting_most"), exact=True)
    expect(guard).to_have_attribute("aria-invalid", "true")
    expect(guard).to_be_focused()
    field = page.locator('.field[data-doc="input"][data-pointer="/sync/allow_deleting_most"]')
    expect(field.locator(".problem")).not_to_be_empty()
    h.screenshot(page, "sync-guard")
    guard.select_option("true")
    test_request(page)
    expect(page.locator("section.panel", has_text="The plan")).to_be_visible()
    expect(guard).not_to_have_attribute("aria-invalid", "true")
    page.context.close()


def case_send_asks_then_changes_the_account_once(h):
    page = h.new_page(h.fake)
    account = sync_setup(h, page)
    before = h.batches_applied()

    page.get_by_role("button", name="Send…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Send to account {account}?")
    expect(dialog).to_contain_text("2 deletes, 1 update, 0 replaces, 1 create")
    h.screenshot(page, "confirm")
    h.screenshot_of(dialog, "confirm-dialog")
    # Cancel sends nothing.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#announce")).to_contain_text("Not sent")
    assert h.batches_applied() == before

    page.get_by_role("button", name="Send…").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Send", exact=True).click()
    expect(dialog).to_be_hidden()
    sent = page.locator("section.panel", has_text="Sent")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text("Attempts")
    expect(sent).to_contain_text("API calls made")
    expect(sent).to_contain_text("Verification")
    expect(page.locator("#outcome")).to_contain_text("The account was changed")
    h.screenshot(page, "sent")
    h.screenshot_of(sent, "result")

    assert h.batches_applied() == before + 1, "not exactly one batch applied"
    listed, left_out = h.policies(page, account)
    assert left_out == [], left_out
    stored = {p["pattern"]: p for p in listed}
    assert sorted(stored) == ["8.8.8.0/24", "alerts@monitoring.example.com", "payroll-provider.example"], stored
    assert stored["payroll-provider.example"]["verify_sender"] is True
    page.context.close()


def case_start_from_the_account(h):
    page = h.new_page(h.fake)
    account = uuid.uuid4().hex
    h.seed(account, [policy("partner.example"), policy("8.8.4.0/24", "IP")])
    page.get_by_label(label("Account ID", "account_id"), exact=True).first.fill(account)
    page.get_by_role("button", name="Start from the account").click()
    expect(page.locator("#announce")).to_contain_text("Loaded the account's 2 policies as a sync list")
    document = input_json(page)
    assert sorted(p["pattern"] for p in document["sync"]["policies"]) == ["8.8.4.0/24", "partner.example"]
    expect(page.get_by_role("group", name="Desired policy 2")).to_be_visible()
    h.screenshot(page, "from-account")
    page.context.close()


def case_snippets_copy_and_python_compiles(h):
    page = h.new_page(h.fake)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=h.fake.origin)
    page.get_by_label("Example").select_option("batch")
    page.get_by_role("button", name="Load example").click()
    ids = page.locator("[data-snippet]").evaluate_all("nodes => nodes.map(n => n.dataset.snippet)")
    assert ids == ["conductor", "temporal-python", "temporal-go", "simworkflow", "task-host"], ids
    python = page.locator('[data-snippet="temporal-python"]')
    python.get_by_role("button").click()
    expect(python.locator(".copy-status")).to_contain_text("Copied")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.strip(), "nothing copied"
    source = os.path.join(h.scratch, "snippet.py")
    with open(source, "w") as f:
        f.write(text)
    py_compile.compile(source, doraise=True)
    h.screenshot_of(page.locator("#snippets"), "snippets")
    page.context.close()


def case_keyboard_reaches_test_request(h):
    page = h.new_page(h.fake)
    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "test-request":
            break
    else:
        raise AssertionError("Tab never reached Test request")
    page.keyboard.press("Enter")
    expect(page.locator("#announce")).to_contain_text("Nothing was written")
    h.screenshot(page, "keyboard-test-request")
    # Every control has a name a screen reader reads.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !(e.tagName === 'BUTTON' && e.textContent.trim()))
            .map(e => e.outerHTML)"""
    )
    assert unnamed == [], unnamed
    page.context.close()


def case_axe_finds_no_violations(h):
    # axe-core is injected from a file, so this context alone bypasses the CSP.
    page = h.new_page(h.fake, bypass_csp=True)
    page.get_by_label("Example").select_option("batch")
    page.get_by_role("button", name="Load example").click()
    test_request(page)
    page.add_script_tag(path=h.args.axe)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]
    ]
    assert found == [], "\n".join(found)
    page.context.close()


def case_no_credential_reaches_the_page(h):
    live = Designer(h.command, h.scratch, "live", live=True)
    h.designers.append(live)
    page = h.new_page(live)
    banner = page.locator("#target")
    expect(banner).to_contain_text("Live")
    expect(banner).to_contain_text("Cloudflare")
    token = page.get_by_label(label("API token", "api_token"), exact=True)
    expect(token).to_have_attribute("type", "password")
    token.fill(MARKER)
    page.get_by_role("button", name="Give these credentials to the designer").click()
    expect(page.locator("#credentials-status")).to_contain_text("The designer has them now")
    expect(token).to_have_value("")
    expect(banner).to_contain_text("entered here")
    # A preview of the four lists reads nothing, so nothing leaves the machine.
    page.get_by_label("Example").select_option("batch")
    page.get_by_role("button", name="Load example").click()
    test_request(page)
    expect(page.locator("table.headers")).to_contain_text("[redacted]")
    h.screenshot(page, "live-credentials")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(banner).to_contain_text("entered here")
    seen = {
        "html": page.content(),
        "globals": page.evaluate(
            """() => {
                const out = [];
                for (const k of Object.getOwnPropertyNames(window)) {
                    try { const v = window[k]; if (typeof v !== 'function') out.push(k + '=' + JSON.stringify(v)); }
                    catch { out.push(k); }
                }
                return out.join('\\n');
            }"""
        ),
        "storage": page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
        ),
        "inputs": page.evaluate("JSON.stringify([...document.querySelectorAll('input, textarea')].map(e => e.value))"),
    }
    assert page.evaluate("document.cookie") == "", "the session cookie is readable by scripts"
    for where, text in seen.items():
        assert MARKER not in text, f"the credential is in the page's {where}"
    assert h.bodies, "no response was recorded"
    for url, text in h.bodies:
        assert MARKER not in text, f"the credential is in the answer to {url}"
    cookies = page.context.cookies()
    assert cookies and all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies), cookies
    assert MARKER not in live.output(), "the designer printed the credential"
    page.context.close()


def case_requests_from_elsewhere_are_refused(h):
    d = h.fake
    # No cookie, no token: refused.
    status, _, _ = http_call(d.netloc, "GET", "/api/session")
    assert status == 401, status
    status, _, _ = http_call(d.netloc, "GET", "/?token=" + "0" * len(d.token))
    assert status == 401, status
    # A real session, by the token exchange.
    status, headers, _ = http_call(d.netloc, "GET", "/?token=" + d.token)
    assert status == 303, status
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, headers, body = http_call(d.netloc, "GET", "/api/session", {"Cookie": cookie})
    assert status == 200, (status, body)
    assert "script-src 'self'" in headers.get("content-security-policy", ""), headers
    # The same cookie with a foreign Host, or a foreign Origin: refused.
    port = d.netloc.rsplit(":", 1)[1]
    status, _, _ = http_call(d.netloc, "GET", "/api/session", {"Cookie": cookie, "Host": f"evil.example:{port}"})
    assert status in (403, 421), status
    body = {"config": {}, "input": {}}
    json_post = {"Cookie": cookie, "Content-Type": "application/json"}
    status, _, _ = http_call(d.netloc, "POST", "/api/prepare", {**json_post, "Origin": "http://evil.example"}, body)
    assert status == 403, status
    status, _, _ = http_call(d.netloc, "POST", "/api/prepare", {**json_post, "Origin": f"http://127.0.0.1:{port}"}, body)
    assert status == 200, status
    # A send the person did not confirm is refused before anything is sent.
    before = h.batches_applied()
    status, _, text = http_call(
        d.netloc,
        "POST",
        "/api/send",
        {**json_post, "Origin": f"http://127.0.0.1:{port}"},
        {"config": {}, "input": {"account_id": uuid.uuid4().hex, "posts": []}, "confirm_account": "0" * 32},
    )
    assert status == 400 and "not-confirmed" in text, (status, text)
    assert h.batches_applied() == before


def case_the_page_stayed_within_its_policy(h):
    assert h.foreign_requests == [], h.foreign_requests
    csp = [m for m in h.console_errors if "Content Security Policy" in m]
    assert csp == [], csp
    assert h.failed_loads == [], h.failed_loads
    assert [m for m in h.console_errors if not m.startswith("Failed to load resource")] == [], h.console_errors
    for url, text in h.bodies:
        if url.endswith(".js"):
            assert "eval(" not in text and "new Function" not in text and "innerHTML" not in text, url
        if url.endswith("/") or url.endswith(".html"):
            assert "style=" not in text and "<script>" not in text and not re.search(r"\son\w+=", text), url


CASES = [
    case_page_says_where_it_sends,
    case_fill_the_form_and_test_request,
    case_problem_is_shown_at_its_field,
    case_deprecated_fields_only_when_present,
    case_id_one_of,
    case_sync_plan_shows_old_and_new,
    case_sync_guard_is_shown_at_its_field,
    case_send_asks_then_changes_the_account_once,
    case_start_from_the_account,
    case_snippets_copy_and_python_compiles,
    case_keyboard_reaches_test_request,
    case_axe_finds_no_violations,
    case_no_credential_reaches_the_page,
    case_requests_from_elsewhere_are_refused,
    case_the_page_stayed_within_its_policy,
]


def main(args):
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="designer-test-") as scratch, sync_playwright() as p:
        h = Harness(args, p, scratch)
        try:
            for case in CASES:
                name = case.__name__.removeprefix("case_")
                if args.only and not any(word in name for word in args.only):
                    continue
                try:
                    case(h)
                    passed += 1
                    print(f"ok    {name}", flush=True)
                except Exception:
                    failed += 1
                    print(f"FAIL  {name}\n{traceback.format_exc()}", flush=True)
                    if h.session is None:
                        break  # nothing else can run without the session
        finally:
            h.browser.close()
            for d in h.designers:
                d.stop()
            if failed:
                for d in h.designers:
                    print(f"--- designer output ---\n{d.output()}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--task-host", default="target/release/task-host")
    parser.add_argument("--designer", help="the designer command, instead of TASK_HOST designer")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--axe", default="tests/designer/node_modules/axe-core/axe.min.js")
    parser.add_argument("--only", nargs="*", help="run only the cases whose names contain one of these words")
    sys.exit(main(parser.parse_args()))

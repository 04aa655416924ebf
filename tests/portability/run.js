// Runs one task of the allow-policies-batch component in Node, from the
// output of `jco transpile --instantiation async`: the counterpart of
// `task-host run`.
//
//   node run.js --component DIR --config FILE --input FILE [--dry-run | --again-since UNIX_MS] [--allow-host HOST[:PORT]]...
//
// With --again-since it calls `run-task-again`, as an engine does for a task
// it runs again after an attempt that started then: the account is read
// before anything is sent. Prints exactly one JSON document: the result, the dry-run preview, or
// {"error": {...}}. Exit status 0 success, 1 terminal failure, 75 retryable
// failure, 2 when the task could not run at all (the reason goes to stderr).
//
// The component imports wasi:http, wasi:io, wasi:clocks and (for Rust's
// standard library) wasi:cli, and nothing else: no wasi:random, files or
// sockets. preview2-shim provides them all; as under task-host the guest gets
// no environment variables and no arguments, its stdout goes to stderr (so
// stdout holds only the document), and outgoing HTTP goes only to
// api.cloudflare.com and the hosts named with --allow-host: anything else fails as
// `HTTP-request-denied` without being sent. While `prepare` runs (the dry
// run) only GET requests leave, so a preview may read (sync mode reads the
// account) but never write. The guest's connect timeout is not passed on
// to the shim (see withoutConnectTimeout).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { errorPayload, exitStatus, taskErrorToJson } from './task-error.js';

const EXIT_USAGE = 2;

const USAGE = `Usage: node run.js --component DIR --config FILE --input FILE [--dry-run | --again-since UNIX_MS] [--allow-host HOST[:PORT]]...

Runs one task of the allow-policies-batch component in Node, from the output
of \`jco transpile --instantiation async\`, as \`task-host run\` does.

  --component DIR          the folder jco wrote
  --config FILE            the config document
  --input FILE             the input document
  --dry-run                validate and print the request instead of sending it
  --again-since UNIX_MS    run the task again after an attempt that started
                           then (milliseconds since the Unix epoch): the
                           account is read before anything is sent
  --allow-host HOST[:PORT] allow requests to HOST besides api.cloudflare.com;
                           repeatable
  -h, --help               print this and exit

Prints one JSON document: the result, the dry-run preview, or {"error": ...}.
Exit status: 0 success, 1 terminal failure, 75 retryable failure, 2 when the
task could not run (the reason goes to stderr).
`;

/** A mistake in the command line: said with the usage, not a stack. */
class UsageError extends Error {}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        component: { type: 'string' },
        config: { type: 'string' },
        input: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'again-since': { type: 'string' },
        'allow-host': { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    throw new UsageError(e.message);
  }
}

async function main() {
  const values = parseCommandLine();
  if (values.help) {
    process.stdout.write(USAGE);
    process.exitCode = 0;
    return;
  }
  for (const required of ['component', 'config', 'input']) {
    if (values[required] === undefined) throw new UsageError(`--${required} is required`);
  }
  const config = await readFile(values.config, 'utf8');
  const input = await readFile(values.input, 'utf8');
  const policy = { allowHosts: ['api.cloudflare.com', ...values['allow-host']], readsOnly: false };
  const task = await load(values.component, policy);

  try {
    policy.readsOnly = values['dry-run'];
    const since = values['again-since'];
    let document;
    if (values['dry-run']) {
      document = task.prepare(config, input);
    } else if (since !== undefined) {
      if (!/^\d+$/.test(since)) throw new Error('--again-since takes milliseconds since the Unix epoch');
      document = task.runTaskAgain(config, input, { firstStartedUnixMs: BigInt(since) });
    } else {
      document = task.runTask(config, input);
    }
    process.stdout.write(`${document}\n`);
    process.exitCode = 0;
  } catch (thrown) {
    const error = taskErrorToJson(errorPayload(thrown));
    process.stdout.write(`${JSON.stringify({ error })}\n`);
    process.exitCode = exitStatus(error);
  }
}

/**
 * The component's `task` export, instantiated with sandboxed WASI imports;
 * `policy` ({ allowHosts, readsOnly }) is read on every request.
 */
async function load(directory, policy) {
  const { instantiate } = await import(pathToFileURL(join(directory, 'allow_policies_batch.js')).href);
  const compile = async (file) => WebAssembly.compile(await readFile(join(directory, file)));
  const root = await instantiate(compile, imports(policy));
  return root.task;
}

function imports(policy) {
  const wasi = new WASIShim({ sandbox: { env: {}, args: [] } }).getImportObject();
  const outgoing = wasi['wasi:http/outgoing-handler'];
  const { RequestOptions } = wasi['wasi:http/types'];
  return {
    ...wasi,
    'wasi:cli/stdout': { getStdout: wasi['wasi:cli/stderr'].getStderr },
    'wasi:http/outgoing-handler': {
      handle(request, options) {
        // A thrown plain object is the `error-code` the guest receives.
        if (!allowed(request.authority(), policy.allowHosts)) throw { tag: 'HTTP-request-denied' };
        if (policy.readsOnly && request.method().tag !== 'get') throw { tag: 'HTTP-request-denied' };
        return outgoing.handle(request, withoutConnectTimeout(options, RequestOptions));
      },
    },
  };
}

// preview2-shim (0.26.1) turns `connect-timeout` into Node's socket
// inactivity timeout, which stays armed while the request waits for its
// answer, and reports it as `connection-timeout`. An API slower to answer
// than connect_timeout_ms would then look unsent: the task would be retried
// and the batch applied twice. So the request goes out with the shim's
// default connect timeout (600 s) and the guest's other two timeouts; the
// component's own deadline (timeout_ms) still ends the call, and a connect
// that hangs is reported as a failure that may have applied, which is
// never retried.
function withoutConnectTimeout(options, RequestOptions) {
  if (options === undefined) return options;
  const forwarded = new RequestOptions();
  forwarded.setFirstByteTimeout(options.firstByteTimeout());
  forwarded.setBetweenBytesTimeout(options.betweenBytesTimeout());
  return forwarded;
}

/** HOST allows every port of HOST; HOST:PORT only that authority. */
function allowed(authority, allowHosts) {
  if (typeof authority !== 'string') return false;
  const wanted = authority.toLowerCase();
  const host = wanted.replace(/:\d+$/, '');
  return allowHosts.some((entry) => [host, wanted].includes(entry.toLowerCase()));
}

main().catch((e) => {
  if (e instanceof UsageError) {
    process.stderr.write(`run.js: ${e.message}\n\n${USAGE}`);
  } else {
    process.stderr.write(`run.js: ${e?.stack ?? e}\n`);
  }
  process.exitCode = EXIT_USAGE;
});

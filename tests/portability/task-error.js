// The contract's JSON form of a failed task, from the `task-error` variant
// that a jco-transpiled component hands to JavaScript: the same object that
// `task-host run` prints under "error".
//
// jco throws a `ComponentError` when an exported function returns `err`; its
// `payload` is the variant as `{ tag, val }`, with tags in kebab-case
// ("invalid-input"), record fields in camelCase (`mayHaveApplied`), an absent
// `option` as `undefined` and a `u64` as a BigInt.

const KINDS = {
  'invalid-config': 'invalid_config',
  'invalid-input': 'invalid_input',
  denied: 'denied',
  transport: 'transport',
  api: 'api',
  'bad-response': 'bad_response',
  unconfirmed: 'unconfirmed',
};

/**
 * The `task-error` a call threw, or the thrown value itself rethrown when it
 * is anything else (a trap, a bug in the caller).
 */
export function errorPayload(thrown) {
  const payload = Object.hasOwn(Object(thrown), 'payload') ? thrown.payload : undefined;
  if (!Object.hasOwn(KINDS, payload?.tag)) throw thrown;
  return payload;
}

/**
 * `{ kind, message, retryable, may_have_applied, status, retry_after_ms,
 * errors, attempts, verification, first_sent_unix_ms, api_calls }`.
 */
export function taskErrorToJson({ tag, val }) {
  const kind = KINDS[tag];
  if (tag === 'invalid-config' || tag === 'invalid-input') {
    return {
      kind,
      message: problemsMessage(val),
      retryable: false,
      may_have_applied: false,
      status: null,
      retry_after_ms: null,
      errors: val.map(({ pointer, message, document }) => ({ pointer, message, document })),
      attempts: 0,
      verification: 'not_needed',
      first_sent_unix_ms: null,
      api_calls: 0,
    };
  }
  return {
    kind,
    message: val.message,
    retryable: val.retryable,
    may_have_applied: val.mayHaveApplied,
    status: val.status ?? null,
    // Milliseconds; a BigInt is not JSON, and no wait comes near 2^53 ms.
    retry_after_ms: val.retryAfterMs === undefined ? null : Number(val.retryAfterMs),
    errors: val.apiErrors.map(apiErrorToJson),
    attempts: val.attempts,
    // jco gives an enum case as its WIT name, "not-visible".
    verification: val.verification.replaceAll('-', '_'),
    // Milliseconds since the epoch: well below 2^53 for millennia.
    first_sent_unix_ms: val.firstSentUnixMs === undefined ? null : Number(val.firstSentUnixMs),
    api_calls: val.apiCalls,
  };
}

/** The exit status `task-host run` gives a failure: 75 to try again later, else 1. */
export function exitStatus(errorJson) {
  return errorJson.retryable ? 75 : 1;
}

// The keys the API did not give are left out rather than set to null.
function apiErrorToJson({ code, message, pointer, documentationUrl }) {
  const entry = {};
  if (code !== undefined) entry.code = code;
  entry.message = message;
  if (pointer !== undefined) entry.pointer = pointer;
  if (documentationUrl !== undefined) entry.documentation_url = documentationUrl;
  return entry;
}

// "the input has 1 problem", "the config has 2 problems and the input 1 problem".
// The entry that closes a list cut short counts for the problems it stands for.
function problemsMessage(problems) {
  const count = (document) =>
    problems.filter((p) => p.document === document).reduce((n, p) => n + Math.max(p.unlisted, 1), 0);
  const phrase = (n) => (n === 1 ? '1 problem' : `${n} problems`);
  const config = count('config');
  const input = count('input');
  if (config === 0) return `the input has ${phrase(input)}`;
  if (input === 0) return `the config has ${phrase(config)}`;
  return `the config has ${phrase(config)} and the input ${phrase(input)}`;
}

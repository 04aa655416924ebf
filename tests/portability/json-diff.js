// Field-by-field comparison of two parsed JSON documents.

/**
 * Every place where `actual` differs from `expected`, as
 * `{ pointer, expected, actual, why }` with an RFC 6901 JSON Pointer
 * (`undefined` stands for a member or item that is missing on that side).
 *
 * `formats` names the values that are compared by format instead of by value
 * (values a server generates, such as ids and timestamps): a list of
 * `{ at: RegExp over the pointer, format: name, test(value) -> boolean }`.
 * At a pointer one of them matches, both values must pass its test.
 */
export function jsonDifferences(expected, actual, formats = [], pointer = '') {
  const rule = formats.find(({ at }) => at.test(pointer));
  if (rule) {
    if (rule.test(expected) && rule.test(actual)) return [];
    return [{ pointer, expected, actual, why: `both must be ${rule.format}` }];
  }
  const kind = kindOf(expected);
  if (kind !== kindOf(actual)) {
    return [{ pointer, expected, actual, why: `${kind} against ${kindOf(actual)}` }];
  }
  if (kind === 'array') {
    const out = [];
    for (let i = 0; i < Math.max(expected.length, actual.length); i += 1) {
      const at = `${pointer}/${i}`;
      if (i >= actual.length) out.push({ pointer: at, expected: expected[i], actual: undefined, why: 'missing' });
      else if (i >= expected.length) out.push({ pointer: at, expected: undefined, actual: actual[i], why: 'extra' });
      else out.push(...jsonDifferences(expected[i], actual[i], formats, at));
    }
    return out;
  }
  if (kind === 'object') {
    const out = [];
    for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      const at = `${pointer}/${escapeToken(key)}`;
      if (!Object.hasOwn(actual, key)) out.push({ pointer: at, expected: expected[key], actual: undefined, why: 'missing' });
      else if (!Object.hasOwn(expected, key)) out.push({ pointer: at, expected: undefined, actual: actual[key], why: 'extra' });
      else out.push(...jsonDifferences(expected[key], actual[key], formats, at));
    }
    return out;
  }
  return expected === actual ? [] : [{ pointer, expected, actual, why: 'different values' }];
}

/** One line per difference, for an assertion message. */
export function describeDifferences(differences, expectedName, actualName) {
  const show = (value) => (value === undefined ? '(absent)' : JSON.stringify(value));
  return differences
    .map((d) => `  ${d.pointer === '' ? '(the document)' : d.pointer}: ${d.why}; ` +
      `${expectedName} ${show(d.expected)}, ${actualName} ${show(d.actual)}`)
    .join('\n');
}

function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value; // object, string, number, boolean
}

function escapeToken(key) {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

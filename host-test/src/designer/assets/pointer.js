// JSON Pointers (RFC 6901): the component names every problem by one, and
// the form names every control by the pointer of the value it edits, so a
// problem finds its control by plain string comparison.

/** The pointer of `key` (a member name or an array index) under `parent`. */
export function child(parent, key) {
  return `${parent}/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
}

/** The reference tokens of a pointer; "" (the whole document) has none. */
export function tokens(pointer) {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** The value at `pointer`, or undefined when any step is missing. */
export function get(document, pointer) {
  let here = document;
  for (const token of tokens(pointer)) {
    if (here === null || typeof here !== "object" || !(token in here)) return undefined;
    here = here[token];
  }
  return here;
}

/**
 * Sets the value at `pointer`, making objects on the way; `undefined`
 * removes the member (or the array item), so a control left empty leaves
 * its member out of the document rather than sending "".
 */
export function set(document, pointer, value) {
  const path = tokens(pointer);
  if (path.length === 0) return;
  let here = document;
  for (const token of path.slice(0, -1)) {
    if (here[token] === null || typeof here[token] !== "object") here[token] = {};
    here = here[token];
  }
  const last = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(here)) here.splice(Number(last), 1);
    else delete here[last];
  } else {
    here[last] = value;
  }
}

/** The pointer one step up; "" stays "". */
export function parent(pointer) {
  const at = pointer.lastIndexOf("/");
  return at <= 0 ? "" : pointer.slice(0, at);
}

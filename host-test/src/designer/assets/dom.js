// Building elements without HTML strings: every text goes in as text, so
// nothing a document or an answer holds can become markup, and no
// attribute is a `style` or an event handler (the page's CSP allows
// neither).

/**
 * An element with attributes (`text` sets its text, `class` its classes;
 * false, null and undefined leave an attribute out, true sets it empty)
 * and children (nodes or strings; null is skipped).
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** A JSON value as people read it in one line: strings quoted, null as null. */
export function jsonText(value) {
  return value === undefined ? "(none)" : JSON.stringify(value);
}

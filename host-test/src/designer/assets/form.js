// The form renderer: controls for exactly the schemas `describe` gives
// (draft 2020-12, as the component writes them), not for JSON Schema at
// large. It reads titles, descriptions, defaults, enums, `required`,
// `deprecated`, `writeOnly`, the id's `oneOf` and local `$ref`s; it checks
// nothing: validation is prepare's job, so the component's own checks are
// the only ones and a value the form cannot judge is sent as typed.
//
// Every control carries `data-doc` ("config" or "input") and
// `data-pointer`, the JSON Pointer of the value it edits, so the problems
// prepare names by pointer find their control (problems.js).

import { el } from "./dom.js";
import { child } from "./pointer.js";

let serial = 0;
function freshId(prefix) {
  serial += 1;
  return `${prefix}-${serial}`;
}

/**
 * A schema with its local `$ref` followed: the target's keywords, then the
 * referring schema's own (describe's `put` refers to `patch` and
 * overrides title, description and required).
 */
export function resolve(schema, root) {
  if (!schema || typeof schema !== "object" || !schema.$ref) return schema;
  const name = schema.$ref.replace(/^#\/\$defs\//, "");
  const target = resolve(root.$defs?.[name], root) ?? {};
  const { $ref, ...own } = schema;
  return { ...target, ...own };
}

function types(schema) {
  if (Array.isArray(schema.type)) return schema.type;
  return schema.type ? [schema.type] : [];
}

/**
 * The members of a document's top level that are credentials: those the
 * schema marks writeOnly, and those that must come with one
 * (dependentRequired: api_email goes with api_key).
 */
export function credentialMembers(schema) {
  const props = schema.properties ?? {};
  const secret = new Set(Object.keys(props).filter((k) => props[k].writeOnly));
  for (const [name, needs] of Object.entries(schema.dependentRequired ?? {})) {
    if (needs.some((n) => secret.has(n))) secret.add(name);
  }
  return [...secret];
}

/**
 * The groups of members that exclude each other, from `dependentSchemas`
 * whose properties are `false`: for the input, `sync` against the four
 * lists. [{ key: "sync", excludes: ["deletes", ...] }]
 */
export function exclusiveForms(schema) {
  return Object.entries(schema.dependentSchemas ?? {})
    .map(([key, s]) => ({
      key,
      description: s.description,
      excludes: Object.entries(s.properties ?? {})
        .filter(([, v]) => v === false)
        .map(([k]) => k),
    }))
    .filter((f) => f.excludes.length > 0);
}

function defaultText(schema) {
  return schema.default === undefined ? "" : JSON.stringify(schema.default);
}

/** A value typed into a text control, as the member's type reads it. */
function parseTyped(text, schema) {
  if (text === "") return undefined;
  const t = types(schema);
  if ((t.includes("integer") || t.includes("number")) && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text.trim())) {
    return Number(text.trim());
  }
  if (t.length === 0) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

function shownValue(value, schema) {
  if (value === undefined || value === null) return "";
  if (types(schema).length === 0 && typeof value !== "string") return JSON.stringify(value);
  return String(value);
}

/**
 * Renders one document's form into `container`.
 * options: { doc: "config" | "input", schema, value (the document),
 *   skip: member names of the top level left out of the form,
 *   edit(pointer, value): a value changed (undefined removes it),
 *   restructure(pointer, value, focusPointer): an item or form was added
 *   or removed; the caller re-renders and focuses focusPointer's control }
 */
export function renderDocument(container, options) {
  const { schema } = options;
  const ctx = { ...options, root: schema };
  container.replaceChildren();
  const fieldset = el(
    "fieldset",
    { class: "document", "data-doc": options.doc, "data-pointer": "" },
    el("legend", { text: schema.title ?? options.doc }),
  );
  if (schema.description) fieldset.append(el("p", { class: "hint", text: schema.description }));
  fieldset.append(problemSlot());

  const forms = exclusiveForms(schema);
  let hidden = new Set(options.skip ?? []);
  for (const form of forms) {
    const chosen = options.value[form.key] !== undefined;
    fieldset.append(formSwitch(ctx, form, chosen));
    const hide = chosen ? form.excludes : [form.key];
    hidden = new Set([...hidden, ...hide]);
  }
  renderMembers(ctx, fieldset, resolve(schema, schema), "", options.value, hidden);
  container.append(fieldset);
}

function problemSlot() {
  return el("p", { class: "problem", hidden: true, "data-problem": "" });
}

/** Radio buttons choosing between members that exclude each other. */
function formSwitch(ctx, form, chosen) {
  const name = freshId("form");
  const props = ctx.root.properties;
  const listTitles = form.excludes.map((k) => props[k]?.title ?? k).join(", ");
  const group = el("fieldset", { class: "switch" }, el("legend", { text: "Form of the input" }));
  if (form.description) group.append(el("p", { class: "hint", text: form.description }));
  const choices = [
    { value: false, text: `Lists (${listTitles})` },
    { value: true, text: `${props[form.key]?.title ?? form.key}: the policies the account should have` },
  ];
  for (const choice of choices) {
    const id = freshId("c");
    const radio = el("input", { type: "radio", name, id, checked: choice.value === chosen });
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      const next = structuredClone(ctx.value);
      if (choice.value) {
        for (const k of form.excludes) delete next[k];
        next[form.key] = newValue(resolve(props[form.key], ctx.root), ctx.root);
      } else {
        delete next[form.key];
      }
      ctx.restructure("", next, null);
    });
    group.append(el("div", { class: "choice" }, radio, el("label", { for: id, text: choice.text })));
  }
  return group;
}

/** A new value for an added item or form: required booleans false, required objects filled likewise. */
function newValue(schema, root) {
  const s = resolve(schema, root);
  if (types(s).includes("object")) {
    const value = {};
    for (const name of s.required ?? []) {
      const p = resolve(s.properties?.[name], root);
      if (!p) continue;
      if (types(p).includes("boolean")) value[name] = false;
      else if (types(p).includes("array")) value[name] = [];
      else if (types(p).includes("object")) value[name] = newValue(p, root);
    }
    return value;
  }
  if (types(s).includes("array")) return [];
  return undefined;
}

function renderMembers(ctx, into, schema, pointer, value, hidden = new Set()) {
  const required = new Set(schema.required ?? []);
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    if (hidden.has(name) || raw === false) continue;
    const member = resolve(raw, ctx.root);
    const present = value && typeof value === "object" && name in value;
    // Deprecated members stay out of sight unless the document has them;
    // credentials never enter the form (they are not kept in page state).
    if (member.deprecated && !present) continue;
    if (member.writeOnly) continue;
    into.append(renderMember(ctx, name, member, child(pointer, name), value?.[name], required.has(name)));
  }
}

function labelFor(id, name, schema, required) {
  const label = el("label", { for: id });
  label.append(schema.title ?? name, " ", el("code", { text: name }));
  if (required) label.append(el("span", { class: "required", text: " (required)" }));
  if (schema.deprecated) label.append(el("span", { class: "deprecated", text: " deprecated" }));
  return label;
}

function hintFor(schema) {
  const text = [schema.description, schema.default !== undefined ? `Default: ${defaultText(schema)}.` : ""]
    .filter(Boolean)
    .join(" ");
  if (!text) return null;
  return el("p", { class: "hint", id: freshId("h"), text });
}

function field(ctx, pointer, control, label, hint, extra = []) {
  const wrap = el("div", { class: "field", "data-doc": ctx.doc, "data-pointer": pointer });
  const problem = problemSlot();
  problem.id = freshId("p");
  const described = [hint?.id].filter(Boolean).join(" ");
  if (described) control.setAttribute("aria-describedby", described);
  control.dataset.doc = ctx.doc;
  control.dataset.pointer = pointer;
  control.dataset.control = "";
  if (control.type === "checkbox") wrap.append(control, label);
  else wrap.append(label, control);
  for (const e of extra) wrap.append(e);
  if (hint) wrap.append(hint);
  wrap.append(problem);
  return wrap;
}

function renderMember(ctx, name, schema, pointer, value, required) {
  const t = types(schema);
  if (schema.oneOf) return oneOfField(ctx, name, schema, pointer, value, required);
  if (schema.enum) return enumField(ctx, name, schema, pointer, value, required);
  if (t.includes("array")) return arrayField(ctx, name, schema, pointer, value, required);
  if (t.includes("object")) return objectField(ctx, name, schema, pointer, value, required);
  if (t.length === 1 && t[0] === "boolean") return booleanField(ctx, name, schema, pointer, value, required);
  return textField(ctx, name, schema, pointer, value, required);
}

function textField(ctx, name, schema, pointer, value, required) {
  const id = freshId("c");
  const t = types(schema);
  const numeric = t.includes("integer") || t.includes("number");
  const nullable = t.includes("null");
  const input = el("input", {
    id,
    type: "text",
    inputmode: numeric ? "numeric" : undefined,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: schema.default !== undefined ? `default ${defaultText(schema)}` : undefined,
  });
  input.value = shownValue(value, schema);
  const extra = [];
  let nullBox = null;
  if (nullable) {
    const nid = freshId("c");
    nullBox = el("input", { type: "checkbox", id: nid, checked: value === null });
    input.disabled = value === null;
    nullBox.addEventListener("change", () => {
      input.disabled = nullBox.checked;
      ctx.edit(pointer, nullBox.checked ? null : parseTyped(input.value, schema));
    });
    extra.push(
      el("div", { class: "nullable" }, nullBox, el("label", { for: nid, text: `${schema.title ?? name}: none (null)` })),
    );
  }
  input.addEventListener("input", () => ctx.edit(pointer, parseTyped(input.value, schema)));
  return field(ctx, pointer, input, labelFor(id, name, schema, required), hintFor(schema), extra);
}

function booleanField(ctx, name, schema, pointer, value, required) {
  const id = freshId("c");
  if (required) {
    // A required flag is a checkbox; one the document lacks shows as
    // indeterminate, so "missing" never looks like false.
    const box = el("input", { type: "checkbox", id, checked: value === true });
    box.indeterminate = value === undefined;
    box.addEventListener("change", () => ctx.edit(pointer, box.checked));
    return field(ctx, pointer, box, labelFor(id, name, schema, required), hintFor(schema));
  }
  // An optional flag has three states: left out (the default, or in an
  // update "as stored"), true, false.
  const select = el("select", { id });
  const unset = schema.default === undefined ? "not set" : `not set (default ${defaultText(schema)})`;
  for (const [v, text] of [["", unset], ["true", "true"], ["false", "false"]]) {
    select.append(el("option", { value: v, text, selected: String(value ?? "") === v }));
  }
  select.addEventListener("change", () =>
    ctx.edit(pointer, select.value === "" ? undefined : select.value === "true"),
  );
  return field(ctx, pointer, select, labelFor(id, name, schema, required), hintFor(schema));
}

function enumField(ctx, name, schema, pointer, value, required) {
  const id = freshId("c");
  const select = el("select", { id });
  select.append(el("option", { value: "", text: "not set", selected: value === undefined }));
  const choices = [...schema.enum];
  // A value outside the enum (UNKNOWN on an old policy) is shown as it is;
  // prepare says what is wrong with it.
  if (value !== undefined && !choices.includes(value)) choices.push(value);
  for (const v of choices) {
    select.append(el("option", { value: JSON.stringify(v), text: String(v), selected: v === value }));
  }
  select.addEventListener("change", () =>
    ctx.edit(pointer, select.value === "" ? undefined : JSON.parse(select.value)),
  );
  return field(ctx, pointer, select, labelFor(id, name, schema, required), hintFor(schema));
}

/** The name a person reads for one branch of a oneOf. */
function branchName(branch) {
  if (branch.title) return branch.title;
  if (branch.format === "uuid") return "UUID";
  if (branch.type === "integer") {
    const range = branch.minimum !== undefined ? ` ${branch.minimum}–${branch.maximum}` : "";
    return `integer${range}`;
  }
  return branch.format ?? branch.type ?? "value";
}

function oneOfField(ctx, name, schema, pointer, value, required) {
  const branches = schema.oneOf.map((b) => resolve(b, ctx.root));
  const id = freshId("c");
  const input = el("input", { id, type: "text", autocomplete: "off", spellcheck: "false" });
  input.value = value === undefined || value === null ? "" : String(value);
  const kindId = freshId("c");
  const kind = el("select", { id: kindId });
  let current = branches.findIndex((b) => b.type === (typeof value === "number" ? "integer" : "string"));
  if (current < 0) current = branches.findIndex((b) => b.type === "string");
  branches.forEach((b, i) => kind.append(el("option", { value: String(i), text: branchName(b), selected: i === current })));
  const read = () => {
    const branch = branches[Number(kind.value)] ?? {};
    if (input.value === "") return undefined;
    if (branch.type === "integer" && /^-?\d+$/.test(input.value.trim())) return Number(input.value.trim());
    return input.value;
  };
  input.addEventListener("input", () => ctx.edit(pointer, read()));
  kind.addEventListener("change", () => ctx.edit(pointer, read()));
  const kindField = el(
    "div",
    { class: "oneof" },
    el("label", { for: kindId, text: `${schema.title ?? name}: kind` }),
    kind,
  );
  return field(ctx, pointer, input, labelFor(id, name, schema, required), hintFor(schema), [kindField]);
}

function objectField(ctx, name, schema, pointer, value, required) {
  const box = el(
    "fieldset",
    { class: "object", "data-doc": ctx.doc, "data-pointer": pointer },
    el("legend", {}, schema.title ?? name, " ", el("code", { text: name })),
  );
  if (required) box.querySelector("legend").append(el("span", { class: "required", text: " (required)" }));
  const hint = hintFor(schema);
  if (hint) box.append(hint);
  box.append(problemSlot());
  renderMembers(ctx, box, schema, pointer, value ?? {});
  return box;
}

function arrayField(ctx, name, schema, pointer, value, required) {
  const items = resolve(schema.items ?? {}, ctx.root);
  const listTitle = schema.title ?? name;
  const itemTitle = items.title ?? "Item";
  const box = el(
    "fieldset",
    { class: "array", "data-doc": ctx.doc, "data-pointer": pointer },
    el("legend", {}, listTitle, " ", el("code", { text: name })),
  );
  if (required) box.querySelector("legend").append(el("span", { class: "required", text: " (required)" }));
  const hint = hintFor(schema);
  if (hint) box.append(hint);
  box.append(problemSlot());
  const list = Array.isArray(value) ? value : [];
  list.forEach((item, index) => {
    const at = child(pointer, index);
    const label = `${itemTitle} ${index + 1}`;
    const itemBox = el(
      "fieldset",
      { class: "item", "data-doc": ctx.doc, "data-pointer": at },
      el("legend", { text: label }),
    );
    itemBox.append(problemSlot());
    if (types(items).includes("object")) {
      renderMembers(ctx, itemBox, items, at, item);
    } else {
      itemBox.append(renderMember(ctx, String(index), items, at, item, true));
    }
    const remove = el("button", { type: "button", class: "remove", text: `Remove ${label}` });
    remove.addEventListener("click", () => {
      const next = list.filter((_, i) => i !== index);
      ctx.restructure(pointer, next, `${pointer}#add`);
    });
    itemBox.append(remove);
    box.append(itemBox);
  });
  const add = el("button", { type: "button", class: "add", "data-add": pointer, text: `Add to ${listTitle}` });
  add.addEventListener("click", () => {
    const next = [...list, newValue(items, ctx.root) ?? ""];
    ctx.restructure(pointer, next, child(pointer, next.length - 1));
  });
  box.append(add);
  if (list.length === 0) box.append(el("p", { class: "empty", text: "None." }));
  return box;
}

/** The first control, or the add button, under the element for `pointer`. */
export function focusTarget(container, doc, pointer) {
  if (pointer.endsWith("#add")) {
    return container.querySelector(`[data-add="${CSS.escape(pointer.slice(0, -4))}"]`);
  }
  const node = container.querySelector(`[data-doc="${doc}"][data-pointer="${CSS.escape(pointer)}"]`);
  if (!node) return null;
  if (node.matches("[data-control]")) return node;
  return node.querySelector("[data-control], button");
}

// What the component answered, for people: the exact request a Test
// request would send, a sync's plan, a Send's outcome, and a failure. Each
// function returns elements; none of them holds a credential, since the
// designer redacts every answer before the page gets it.

import { el, jsonText } from "./dom.js";

const KINDS = [
  ["deletes", "delete", "deletes"],
  ["patches", "update", "updates"],
  ["puts", "replace", "replaces"],
  ["posts", "create", "creates"],
];

/** "1 delete, 2 updates, 0 replaces, 3 creates". */
export function countsText(counts) {
  return KINDS.map(([key, one, many]) => `${counts?.[key] ?? 0} ${(counts?.[key] ?? 0) === 1 ? one : many}`).join(", ");
}

function pre(value, label) {
  return el("pre", { class: "json", tabindex: "0", "aria-label": label }, JSON.stringify(value, null, 2));
}

function facts(rows) {
  const list = el("dl", { class: "facts" });
  for (const [term, value] of rows) {
    if (value === undefined) continue;
    list.append(el("dt", { text: term }), el("dd", {}, value instanceof Node ? value : String(value)));
  }
  return list;
}

function section(title, ...children) {
  return el("section", { class: "panel" }, el("h3", { text: title }), ...children);
}

/** The warnings of a preview or a result, each with where it points. */
export function warningsList(warnings) {
  if (!warnings?.length) return null;
  const list = el("ul", { class: "warnings" });
  for (const w of warnings) {
    list.append(el("li", {}, el("code", { text: `${w.document}${w.pointer || " (whole document)"}` }), " ", w.message));
  }
  return section(`Warnings (${warnings.length})`, list);
}

/** The request exactly as it would leave: method, URL, headers, body. */
export function requestView(request, title = "The request") {
  const headers = el("table", { class: "headers" }, el("caption", { text: "Headers" }));
  headers.append(el("tr", {}, el("th", { scope: "col", text: "Name" }), el("th", { scope: "col", text: "Value" })));
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    headers.append(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value })));
  }
  return section(
    title,
    facts([
      ["Method", request.method],
      ["URL", el("code", { class: "url", text: request.url })],
    ]),
    headers,
    el("h4", { text: "Body" }),
    pre(request.body, `${title}: body`),
  );
}

function policyLine(p) {
  const flags = ["is_regex", "is_exempt_recipient", "is_trusted_sender", "is_acceptable_sender", "verify_sender"]
    .filter((k) => p[k] === true)
    .join(", ");
  return el("li", {}, el("code", { text: String(p.pattern) }), ` ${p.pattern_type ?? ""}${flags ? ` (${flags})` : ""}`);
}

/** A sync's plan: what would be created, changed (old → new) and deleted, and the batches. */
export function planView(plan) {
  const parts = [
    facts([
      ["Reads of the account", plan.reads],
      ["Already as they should be", plan.unchanged],
      ["Unlisted, kept", plan.kept_unlisted],
    ]),
  ];
  const create = el("ul", { class: "plan-create" });
  plan.create.forEach((p) => create.append(policyLine(p)));
  parts.push(el("h4", { text: `Create (${plan.create.length})` }), plan.create.length ? create : el("p", { text: "None." }));

  const change = el("ul", { class: "plan-change" });
  for (const c of plan.change) {
    const fields = el("ul", {});
    for (const f of c.fields) {
      fields.append(
        el("li", { class: "change" }, el("code", { text: f.field }), ": ", el("span", { class: "old", text: jsonText(f.old) }), " → ", el("span", { class: "new", text: jsonText(f.new) })),
      );
    }
    change.append(el("li", {}, "Policy ", el("code", { text: String(c.id) }), fields));
  }
  parts.push(el("h4", { text: `Change (${plan.change.length})` }), plan.change.length ? change : el("p", { text: "None." }));

  const del = el("ul", { class: "plan-delete" });
  for (const d of plan.delete) {
    del.append(
      el(
        "li",
        {},
        el("code", { text: String(d.id) }),
        ` ${d.pattern ?? "(no pattern)"}`,
        d.duplicate ? el("strong", { class: "badge", text: " duplicate" }) : null,
      ),
    );
  }
  parts.push(el("h4", { text: `Delete (${plan.delete.length})` }), plan.delete.length ? del : el("p", { text: "None." }));

  if (plan.duplicates.length) {
    const dup = el("ul", {});
    plan.duplicates.forEach((d) => dup.append(el("li", {}, el("code", { text: d.id }), " repeats ", el("code", { text: d.same_as }))));
    parts.push(el("h4", { text: `Duplicates kept (${plan.duplicates.length})` }), dup);
  }

  const batches = el("ol", { class: "batches" });
  plan.batches.forEach((b, i) => {
    const details = el("details", {}, el("summary", { text: `Batch ${i + 1}: ${b.method ?? "POST"} ${b.url ?? ""}` }));
    details.append(b.url ? requestView(b, `Batch ${i + 1}`) : pre(b, `Batch ${i + 1}`));
    batches.append(el("li", {}, details));
  });
  parts.push(el("h4", { text: `Batches (${plan.batches.length})` }), plan.batches.length ? batches : el("p", { text: "None: nothing to send." }));
  return section("The plan", ...parts);
}

/** prepare's preview: the request, or in sync mode the plan. */
export function previewView(doc) {
  const parts = [el("p", { class: "counts", text: `In all: ${countsText(doc.counts)}.` })];
  if (doc.skipped) parts.push(el("p", { text: "Nothing to send: the batch is empty." }));
  const warnings = warningsList(doc.warnings);
  if (warnings) parts.push(warnings);
  if (doc.plan) parts.push(planView(doc.plan));
  else if (doc.request) parts.push(requestView(doc.request));
  return parts;
}

function verificationText(v) {
  if (v === null || v === undefined) return "none needed";
  if (typeof v === "string") return v.replaceAll("_", " ");
  return `${v.outcome} after ${v.after?.kind} (${v.after?.message}); ${v.reads} read(s)`;
}

/** run-task's result: outcome, attempts, verification and API calls made. */
export function resultView(doc) {
  const rows = [
    ["Outcome", doc.skipped ? "skipped: nothing to send" : "applied"],
    ["HTTP status", doc.status ?? "none"],
    ["Attempts", doc.attempts],
    ["API calls made", doc.api_calls],
    ["Verification", verificationText(doc.verification)],
    ["Counts", countsText(doc.counts)],
  ];
  if (doc.sync) {
    rows.push(
      ["Created", doc.sync.created],
      ["Changed", doc.sync.changed],
      ["Deleted", doc.sync.deleted],
      ["Unchanged", doc.sync.unchanged],
      ["Unlisted, kept", doc.sync.kept_unlisted],
      ["Batches sent", doc.sync.batches.length],
    );
  }
  const parts = [facts(rows)];
  const warnings = warningsList(doc.warnings);
  if (warnings) parts.push(warnings);
  const details = el("details", {}, el("summary", { text: "The whole result document" }), pre(doc, "Result document"));
  parts.push(details);
  return section("Sent", ...parts);
}

/** A failure as task-host shows it ({"error": ...}'s member). */
export function failureView(error) {
  const parts = [
    el("p", { class: "failure-message", text: error.message ?? "" }),
    facts([
      ["Kind", error.kind],
      ["HTTP status", error.status ?? undefined],
      ["Safe to try again", error.retryable === undefined ? undefined : error.retryable ? "yes" : "no"],
      ["May have applied", error.may_have_applied === undefined ? undefined : error.may_have_applied ? "yes: look before repeating" : "no"],
      ["Attempts", error.attempts],
      ["API calls made", error.api_calls],
      ["Verification", error.verification === undefined ? undefined : verificationText(error.verification)],
    ]),
  ];
  const apiErrors = (error.errors ?? []).filter((e) => e.document === undefined);
  if (apiErrors.length) {
    const list = el("ul", {});
    apiErrors.forEach((e) => list.append(el("li", {}, e.code ? `${e.code}: ` : "", e.message, e.pointer ? el("code", { text: ` ${e.pointer}` }) : null)));
    parts.push(el("h4", { text: "The API's errors" }), list);
  }
  return section(`Failed: ${error.kind ?? "error"}`, ...parts);
}

/** What the designer says was written: false, "may-have" or true. */
export function wroteText(wrote) {
  if (wrote === true) return "The account was changed.";
  if (wrote === "may-have") return "The account may have been changed: look before sending again.";
  return "Nothing was written to the account.";
}

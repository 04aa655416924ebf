// The designer page: the config and input forms beside their JSON, Test
// request, Send (after a confirmation in the page), Start from the
// account, and the snippets for other runners. Everything it does goes
// through the designer's /api; it keeps the two documents in this module
// only (no global, no storage), and never a credential: those go once to
// /api/credentials and the field is cleared.

import { getJson, postJson } from "./api.js";
import { el } from "./dom.js";
import { credentialMembers, focusTarget, renderDocument } from "./form.js";
import { set } from "./pointer.js";
import { clearProblems, showProblems } from "./problems.js";
import { countsText, failureView, previewView, resultView, wroteText } from "./results.js";

/** Members the designer sets itself; the form leaves them out. */
const HOST_DECIDED = ["base_url"];

const $ = (id) => document.getElementById(id);

const state = {
  session: null,
  schemas: null,
  examples: [],
  documents: { config: {}, input: {} },
  credentials: [],
};

function announce(text) {
  $("announce").textContent = text;
}

function setBusy(busy) {
  for (const id of ["test-request", "send", "load-example", "export"]) $(id).disabled = busy;
  $("outcome").setAttribute("aria-busy", busy ? "true" : "false");
}

/** Removes credential members a pasted or loaded config may carry. */
function withoutCredentials(config) {
  const removed = state.credentials.filter((k) => k in config);
  const clean = { ...config };
  for (const k of removed) delete clean[k];
  return { clean, removed };
}

// ---- the forms and the JSON view, kept in step ----

function renderForms(focusPointer = null, focusDoc = null) {
  const forms = { config: $("config-form"), input: $("input-form") };
  for (const doc of ["config", "input"]) {
    renderDocument(forms[doc], {
      doc,
      schema: state.schemas[doc],
      value: state.documents[doc],
      skip: doc === "config" ? [...state.credentials, ...HOST_DECIDED] : [],
      edit: (pointer, value) => {
        set(state.documents[doc], pointer, value);
        showJson(doc);
      },
      restructure: (pointer, value, focus) => {
        if (pointer === "") state.documents[doc] = value;
        else set(state.documents[doc], pointer, value);
        showJson(doc);
        renderForms(focus, doc);
      },
    });
  }
  if (focusPointer !== null) {
    focusTarget(forms[focusDoc], focusDoc, focusPointer)?.focus();
  }
}

function showJson(doc) {
  $(`${doc}-json`).value = JSON.stringify(state.documents[doc], null, 2);
  $(`${doc}-json-status`).textContent = "";
}

function showAll() {
  renderForms();
  showJson("config");
  showJson("input");
}

function watchJson(doc) {
  const area = $(`${doc}-json`);
  const status = $(`${doc}-json-status`);
  let timer = null;
  const apply = () => {
    clearTimeout(timer);
    let value;
    try {
      value = JSON.parse(area.value);
    } catch (e) {
      status.textContent = `Not JSON yet, so the form keeps the last good version: ${e.message}`;
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      status.textContent = "The document must be a JSON object; the form keeps the last good version.";
      return;
    }
    status.textContent = "";
    if (doc === "config") {
      const { clean, removed } = withoutCredentials(value);
      value = clean;
      if (removed.length) {
        area.value = JSON.stringify(value, null, 2);
        status.textContent = `Removed ${removed.join(", ")}: credentials are not kept in this page. ${credentialAdvice()}`;
      }
    }
    if (JSON.stringify(value) === JSON.stringify(state.documents[doc])) return;
    state.documents[doc] = value;
    renderForms();
  };
  // The form follows while typing pauses, and at once when the text area
  // is left (before a click on Test request or Send takes effect).
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 250);
  });
  area.addEventListener("change", apply);
}

// ---- where it sends, and the credentials ----

function credentialAdvice() {
  return state.session?.mode === "live"
    ? "Enter them under Credentials: they go once to the designer, which keeps them in memory."
    : "The fake sandbox's credentials are used.";
}

function showSession() {
  const s = state.session;
  const target = $("target");
  target.classList.toggle("live", s.mode === "live");
  target.classList.toggle("fake", s.mode !== "live");
  const account = s.sandbox_account ? `, sandbox account ${s.sandbox_account}` : "";
  const words = {
    sandbox: "the sandbox's",
    "from-environment": "from the designer's environment",
    "from-form": "entered here, kept by the designer",
    missing: "none yet",
  };
  target.replaceChildren(
    el("strong", { text: s.mode === "live" ? "Live: sends to Cloudflare. " : "Fake sandbox: nothing leaves this machine. " }),
    `Sends to ${s.target}${account}. Credentials: ${words[s.credentials] ?? s.credentials}.`,
  );
}

function showCredentials() {
  const body = $("credentials-body");
  body.replaceChildren();
  if (state.session.mode !== "live") {
    body.append(el("p", { text: "Fake mode: the sandbox credentials are used; there is nothing to enter." }));
    return;
  }
  body.append(
    el("p", {
      class: "hint",
      text: "Sent once to the designer, which keeps them in memory until it stops; this page clears the fields and keeps nothing. Give an API token, or the legacy email and key.",
    }),
  );
  const props = state.schemas.config.properties;
  const inputs = [];
  for (const name of state.credentials) {
    const schema = props[name] ?? {};
    const id = `credential-${name}`;
    const input = el("input", {
      id,
      type: schema.writeOnly ? "password" : "text",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": `${id}-hint`,
    });
    input.dataset.member = name;
    inputs.push(input);
    body.append(
      el(
        "div",
        { class: "field" },
        el("label", { for: id }, schema.title ?? name, " ", el("code", { text: name })),
        input,
        el("p", { class: "hint", id: `${id}-hint`, text: schema.description ?? "" }),
      ),
    );
  }
  const status = el("p", { id: "credentials-status", "aria-live": "polite" });
  const button = el("button", { type: "button", id: "use-credentials", text: "Give these credentials to the designer" });
  button.addEventListener("click", async () => {
    const given = {};
    for (const input of inputs) {
      if (input.value !== "") given[input.dataset.member] = input.value;
      input.value = "";
    }
    if (Object.keys(given).length === 0) {
      status.textContent = "Nothing entered.";
      return;
    }
    try {
      const answer = await postJson("/api/credentials", given);
      state.session.credentials = answer.credentials ?? "from-form";
      status.textContent = "The designer has them now; the fields are cleared and this page kept nothing.";
      showSession();
    } catch (e) {
      status.textContent = `Not taken: ${e.message}`;
    }
  });
  body.append(button, status);
}

// ---- the outcome area ----

function resetOutcome() {
  clearProblems($("config-form"));
  clearProblems($("input-form"));
  $("problems").replaceChildren();
  $("outcome-body").replaceChildren();
}

function overriddenNote(overridden) {
  if (!overridden?.length) return null;
  return el("p", { class: "hint", text: `Set by the designer, not from the form: ${overridden.join(", ")}.` });
}

/** Shows a failure's problems at their fields and the rest in the summary; focuses the first. */
function showFailure(error) {
  const problems = (error.errors ?? []).filter((e) => e.document !== undefined);
  const forms = document.querySelector(".forms");
  const { placed, unplaced } = showProblems(forms, problems);
  const box = $("problems");
  box.replaceChildren();
  const count = problems.length;
  const heading = count
    ? `${count} ${count === 1 ? "problem" : "problems"}${placed.length ? `, ${placed.length} shown at ${placed.length === 1 ? "its field" : "their fields"}` : ""}: ${error.message}`
    : error.message;
  box.append(el("p", { class: "problems-heading", text: heading }));
  if (placed.length) {
    const list = el("ul", { class: "placed" });
    for (const { problem } of placed) {
      list.append(el("li", {}, el("code", { text: `${problem.document}${problem.pointer}` }), " ", problem.message));
    }
    box.append(list);
  }
  if (unplaced.length) {
    box.append(el("p", { text: "Not at any field:" }));
    const list = el("ul", { class: "unplaced" });
    for (const p of unplaced) {
      list.append(el("li", {}, el("code", { text: `${p.document}${p.pointer || " (whole document)"}` }), " ", p.message));
    }
    box.append(list);
  }
  // Whether anything was written is said once, in the announcement.
  $("outcome-body").append(failureView(error));
  const first = placed.find((p) => p.focus)?.focus;
  (first ?? box).focus();
}

function showTransportError(e) {
  const box = $("problems");
  box.replaceChildren(el("p", { class: "problems-heading", text: `The designer refused: ${e.message}` }));
  box.focus();
}

function request() {
  return { config: state.documents.config, input: state.documents.input };
}

function accountOf() {
  return state.documents.input.account_id ?? state.documents.config.account_id ?? null;
}

/** Test request: prepare's preview. Returns the preview document, or null. */
async function testRequest() {
  resetOutcome();
  setBusy(true);
  announce("Testing: asking the component for the exact request…");
  try {
    const answer = await postJson("/api/prepare", request());
    if (!answer.ok) {
      announce(`Test request found problems. ${wroteText(answer.wrote)}`);
      showFailure(answer.error);
      return null;
    }
    const doc = answer.document;
    const body = $("outcome-body");
    body.append(overriddenNote(answer.overridden) ?? "", ...previewView(doc));
    $("outcome").scrollIntoView({ block: "start" });
    announce(
      doc.plan
        ? `Test request: the plan is ready (${countsText(doc.counts)}). ${wroteText(false)}`
        : `Test request: the request is ready (${countsText(doc.counts)}). ${wroteText(false)}`,
    );
    return doc;
  } catch (e) {
    announce("Test request did not run.");
    showTransportError(e);
    return null;
  } finally {
    setBusy(false);
  }
}

/** Opens the confirmation dialog; resolves true when the person chose Send. */
function confirmSend(account, preview) {
  const dialog = $("confirm");
  $("confirm-title").textContent = `Send to account ${account}?`;
  const list = el("ul", {});
  for (const [key, word] of [["deletes", "Delete"], ["patches", "Update"], ["puts", "Replace"], ["posts", "Create"]]) {
    list.append(el("li", { text: `${word}: ${preview.counts[key]}` }));
  }
  $("confirm-body").replaceChildren(
    el("p", { text: `Where: ${state.session.target}.` }),
    el("p", { text: `Account ${account}: ${countsText(preview.counts)}.` }),
    list,
    preview.plan
      ? el("p", { class: "hint", text: "A sync reads the account again before it writes, so the plan follows any change made since this preview." })
      : "",
  );
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "send"), { once: true });
    dialog.showModal();
  });
}

async function send() {
  const preview = await testRequest();
  if (!preview) return;
  if (preview.skipped) {
    announce("Nothing to send: the batch is empty. Nothing was written.");
    return;
  }
  const account = accountOf();
  const confirmed = await confirmSend(account, preview);
  if (!confirmed) {
    announce("Not sent: cancelled. Nothing was written.");
    $("send").focus();
    return;
  }
  resetOutcome();
  setBusy(true);
  announce(`Sending to account ${account}…`);
  try {
    const answer = await postJson("/api/send", { ...request(), confirm_account: account });
    const body = $("outcome-body");
    if (answer.ok) {
      body.append(el("p", { class: "wrote", text: wroteText(answer.wrote) }), overriddenNote(answer.overridden) ?? "", resultView(answer.document));
      $("outcome").scrollIntoView({ block: "start" });
      announce(
        answer.document.skipped
          ? "Sent nothing: the batch was empty."
          : `Sent: ${countsText(answer.document.counts)} in ${answer.document.attempts} attempt(s), ${answer.document.api_calls} API call(s).`,
      );
    } else {
      announce(`Send failed: ${answer.error.message}. ${wroteText(answer.wrote)}`);
      showFailure(answer.error);
    }
  } catch (e) {
    announce("Send did not run.");
    showTransportError(e);
  } finally {
    setBusy(false);
  }
}

// ---- starting points ----

function showExamples() {
  const select = $("example");
  select.replaceChildren();
  for (const example of state.examples) {
    select.append(el("option", { value: example.name, text: example.title ?? example.name }));
  }
}

function loadExample() {
  const example = state.examples.find((e) => e.name === $("example").value);
  if (!example) return;
  state.documents.config = withoutCredentials(structuredClone(example.config ?? {})).clean;
  state.documents.input = structuredClone(example.input ?? {});
  resetOutcome();
  showAll();
  announce(`Loaded the example "${example.title ?? example.name}". Nothing was sent.`);
}

async function startFromAccount() {
  resetOutcome();
  const account = accountOf();
  setBusy(true);
  announce("Reading the account's policies (reads only)…");
  try {
    const answer = await postJson("/api/export", {
      config: state.documents.config,
      input: account && state.documents.input.account_id ? { account_id: account } : {},
    });
    if (!answer.ok) {
      announce(`Could not read the account. ${wroteText(answer.wrote)}`);
      showFailure(answer.error);
      return;
    }
    state.documents.input = answer.document;
    showAll();
    const policies = answer.document.sync?.policies?.length ?? 0;
    const leftOut = answer.document.sync?.left_out?.length ?? 0;
    announce(
      `Loaded the account's ${policies} ${policies === 1 ? "policy" : "policies"} as a sync list` +
        `${leftOut ? `; ${leftOut} could not be listed (see Left out)` : ""}. Nothing was written.`,
    );
  } catch (e) {
    announce("Start from the account did not run.");
    showTransportError(e);
  } finally {
    setBusy(false);
  }
}

// ---- take it elsewhere ----

async function fetchSnippets() {
  const answer = await postJson("/api/snippets", request());
  return answer.snippets ?? [];
}

function showSnippets(snippets) {
  const list = $("snippet-list");
  list.replaceChildren();
  for (const snippet of snippets) {
    const codeId = `snippet-${snippet.id}`;
    const status = el("span", { class: "copy-status", "aria-live": "polite" });
    const code = el("pre", { id: codeId, class: "snippet", tabindex: "0", "aria-label": snippet.title }, snippet.text);
    const button = el("button", { type: "button", class: "copy", "aria-describedby": codeId, text: `Copy ${snippet.title}` });
    button.addEventListener("click", async () => {
      status.textContent = "";
      let text;
      try {
        // Made anew from the documents as they are now.
        const fresh = (await fetchSnippets()).find((s) => s.id === snippet.id);
        text = fresh?.text ?? snippet.text;
        code.textContent = text;
      } catch (e) {
        status.textContent = ` Could not make it: ${e.message}`;
        return;
      }
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = " Copied.";
      } catch {
        window.getSelection()?.selectAllChildren(code);
        status.textContent = " Selected: press Ctrl+C to copy.";
      }
    });
    list.append(
      el(
        "div",
        { class: "snippet-item", "data-snippet": snippet.id },
        el("h3", { text: snippet.title }),
        button,
        status,
        el("details", {}, el("summary", { text: `Show ${snippet.language}` }), code),
      ),
    );
  }
}

// ---- start ----

async function main() {
  try {
    const [session, schemas, examples] = await Promise.all([
      getJson("/api/session"),
      getJson("/api/describe"),
      getJson("/api/examples"),
    ]);
    state.session = session;
    state.schemas = schemas;
    state.examples = examples.examples ?? [];
    state.credentials = credentialMembers(schemas.config);
  } catch (e) {
    $("target").textContent = `The designer did not answer: ${e.message}`;
    return;
  }
  showSession();
  showCredentials();
  showExamples();
  if (state.session.sandbox_account) state.documents.config.account_id = state.session.sandbox_account;
  showAll();
  watchJson("config");
  watchJson("input");
  $("test-request").addEventListener("click", testRequest);
  $("send").addEventListener("click", send);
  $("load-example").addEventListener("click", loadExample);
  $("export").addEventListener("click", startFromAccount);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
  $("confirm-send").addEventListener("click", () => $("confirm").close("send"));
  try {
    showSnippets(await fetchSnippets());
  } catch (e) {
    $("snippet-list").replaceChildren(el("p", { text: `No snippets: ${e.message}` }));
  }
  document.body.dataset.ready = "true";
}

main();

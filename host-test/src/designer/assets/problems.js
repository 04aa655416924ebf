// Problems at their fields: each problem the component names by document
// and JSON Pointer is shown beside the control that edits that value (or
// the group that holds it, for a problem with a whole item); the rest have
// no control and are returned for the summary.

/** Removes every problem shown at a field. */
export function clearProblems(container) {
  for (const slot of container.querySelectorAll("[data-problem]")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const control of container.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    const ids = (control.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => !id.startsWith("p-"));
    if (ids.length) control.setAttribute("aria-describedby", ids.join(" "));
    else control.removeAttribute("aria-describedby");
  }
}

/** The field or group element for a problem, or null when the form has none. */
function holderOf(container, problem) {
  const doc = problem.document ?? "input";
  const pointer = problem.pointer ?? "";
  if (pointer === "") return null;
  return container.querySelector(`[data-doc="${doc}"][data-pointer="${CSS.escape(pointer)}"]:not([data-control])`);
}

/**
 * Shows each problem at its field; returns { placed: [{problem, focus}],
 * unplaced: [problem] } in the order given, so the caller can focus the
 * first placed one and list the rest.
 */
export function showProblems(container, problems) {
  const placed = [];
  const unplaced = [];
  for (const problem of problems) {
    const holder = holderOf(container, problem);
    if (!holder) {
      unplaced.push(problem);
      continue;
    }
    const slot = holder.querySelector(":scope > [data-problem]");
    slot.hidden = false;
    slot.append(slot.textContent ? " " : "", problem.message);
    const control = holder.matches(".field")
      ? holder.querySelector(":scope > [data-control]")
      : holder.querySelector("[data-control], button");
    if (control && holder.matches(".field")) {
      control.setAttribute("aria-invalid", "true");
      const ids = new Set((control.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean));
      ids.add(slot.id);
      control.setAttribute("aria-describedby", [...ids].join(" "));
    }
    placed.push({ problem, focus: control });
  }
  return { placed, unplaced };
}

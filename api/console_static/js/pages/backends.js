// The backend catalogue (GET /backends) and which live workers serve each backend.

import { getJSON } from "../api.js";
import { fill, h, notice } from "../dom.js";

/** How often the page re-reads the catalogue while it is on screen. */
const POLL_MS = 5000;

function kind(backend) {
  if (backend.noisy) return `Noisy replica of ${backend.device}`;
  return `Ideal simulator (${backend.simulator_method.replaceAll("_", " ")})`;
}

function rows(backends) {
  return backends.map((b) => h("tr", { dataset: { backend: b.name } },
    h("th", { scope: "row" }, h("span.mono", {}, b.name),
      b.aliases.length ? h("span.muted.aliases", {}, ` also ${b.aliases.join(", ")}`) : null),
    h("td.num", {}, String(b.num_qubits)),
    h("td", {}, kind(b)),
    h("td", {}, h("code", {}, b.queue)),
    h("td", {}, b.served
      ? h("ul.workers", {}, b.workers.map((w) => h("li.mono", {}, w)))
      : h("span.badge.status-failed", {}, "No live worker: jobs wait"))));
}

export async function render(main, ctx) {
  document.title = "Backends · qruntime";
  const summary = h("p.lede", { "aria-live": "polite" });
  const tbody = h("tbody");
  const problem = h("div");

  function show(catalogue) {
    const served = catalogue.backends.filter((b) => b.served).length;
    const workers = new Set(catalogue.backends.flatMap((b) => b.workers)).size;
    const text = `${served} of ${catalogue.count} backends served by ${workers} live worker${workers === 1 ? "" : "s"}.`;
    if (summary.textContent !== text) summary.textContent = text; // announced only when it changes
    fill(tbody, rows(catalogue.backends));
  }

  show(await getJSON("/backends", { signal: ctx.signal }));
  main.append(
    h("h1", { tabindex: -1 }, "Backends"),
    summary,
    problem,
    h("div.table-wrap", {},
      h("table", {},
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Backend"), h("th.num", { scope: "col" }, "Qubits"),
          h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "Queue"),
          h("th", { scope: "col" }, "Workers serving it"))),
        tbody)),
    h("p.help", {}, "A worker serves the backends it was started with: ",
      h("code", {}, "qruntime worker --backends ibmq_montreal"), "."),
  );

  let timer = 0;
  const poll = async () => {
    if (!document.hidden) {
      try {
        show(await getJSON("/backends", { signal: ctx.signal }));
        fill(problem);
      } catch (error) {
        if (error.name === "AbortError") return;
        fill(problem, notice("error", error.message));
      }
    }
    if (!ctx.signal.aborted) timer = setTimeout(poll, POLL_MS);
  };
  timer = setTimeout(poll, POLL_MS);
  ctx.signal.addEventListener("abort", () => clearTimeout(timer));
}

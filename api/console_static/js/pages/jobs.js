// The caller's jobs (GET /jobs), newest first, paged and filtered, with statuses kept live.
//
// The filters are the ones GET /jobs has: pending=true (queued or running),
// pending=false (ended), and program. The list is polled while the page is open and
// visible, and rows are updated in place so focus and scroll stay where they are.

import { getJSON, withQuery } from "../api.js";
import { fill, formatDuration, h, secondsBetween, setStatusBadge, statusBadge, timeEl } from "../dom.js";
import { allPrograms } from "./programs.js";

const PAGE_SIZE = 20;
/** How often the list is refreshed while it is on screen. */
const POLL_MS = 2000;
const STATE_FILTERS = [
  ["", "Any status"],
  ["active", "Queued or running"],
  ["ended", "Ended (completed, failed, cancelled)"],
];

function runTime(job) {
  if (!job.started) return job.status === "QUEUED" ? "waiting" : "—";
  return formatDuration(secondsBetween(job.started, job.ended));
}

function row(job) {
  const status = statusBadge(job.status);
  const time = h("td.num", {}, runTime(job));
  const tr = h("tr", { dataset: { jobId: job.id } },
    h("th", { scope: "row" }, h("a.mono", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
    h("td", {}, status),
    h("td", {}, job.program.id),
    time,
    h("td", {}, job.backend),
    h("td", {}, timeEl(job.created)));
  tr.update = (next) => {
    if (next.status !== status.dataset.status) setStatusBadge(status, next.status);
    time.textContent = runTime(next);
  };
  return tr;
}

export async function render(main, ctx) {
  document.title = "Jobs · qruntime";
  const state = ctx.query.get("state") || "";
  const programId = ctx.query.get("program") || "";
  const offset = Math.max(0, Number.parseInt(ctx.query.get("offset") || "0", 10) || 0);
  const pending = { active: "true", ended: "false" }[state];
  const listPath = withQuery("/jobs", { limit: PAGE_SIZE, offset, pending, program: programId });
  const [programs, first] = await Promise.all([allPrograms(ctx.signal), getJSON(listPath, { signal: ctx.signal })]);

  const stateSelect = h("select", { id: "filter-state", name: "state" },
    STATE_FILTERS.map(([value, label]) => h("option", { value, selected: value === state }, label)));
  const programSelect = h("select", { id: "filter-program", name: "program" },
    h("option", { value: "" }, "Any program"),
    programs.map((p) => h("option", { value: p.id, selected: p.id === programId }, p.name)));
  const applyFilters = (event) => {
    event?.preventDefault();
    ctx.navigate(`#${withQuery("/jobs", { state: stateSelect.value, program: programSelect.value })}`);
  };
  stateSelect.addEventListener("change", applyFilters);
  programSelect.addEventListener("change", applyFilters);

  const tbody = h("tbody");
  const summary = h("p.lede", { "aria-live": "polite" });
  const pager = h("nav.pager", { "aria-label": "Pages" });
  const rows = new Map();

  function pageLink(label, toOffset, rel) {
    const href = `#${withQuery("/jobs", { state, program: programId, offset: toOffset || "" })}`;
    return h("a.button", { href, rel }, label);
  }

  function show(page) {
    const ids = page.jobs.map((j) => j.id);
    const sameRows = ids.length === rows.size && ids.every((id) => rows.has(id));
    if (sameRows) {
      for (const job of page.jobs) rows.get(job.id).update(job);
    } else {
      const focusedId = document.activeElement?.closest?.("tr")?.dataset.jobId;
      rows.clear();
      fill(tbody, page.jobs.map((job) => {
        const tr = row(job);
        rows.set(job.id, tr);
        return tr;
      }));
      if (focusedId) rows.get(focusedId)?.querySelector("a")?.focus();
    }
    if (!page.jobs.length) {
      fill(tbody, h("tr", {}, h("td.empty", { colspan: 6 },
        page.count ? "No jobs on this page." : "No jobs match. Run a program from the Programs page.")));
    }
    const last = offset + page.jobs.length;
    const text = page.count
      ? `Jobs ${page.jobs.length ? offset + 1 : 0}–${last} of ${page.count}, newest first.`
      : "No jobs.";
    if (summary.textContent !== text) summary.textContent = text; // announced only when it changes
    fill(pager,
      offset > 0 ? pageLink("← Newer", Math.max(0, offset - PAGE_SIZE), "prev") : null,
      last < page.count ? pageLink("Older →", offset + PAGE_SIZE, "next") : null);
  }

  main.append(
    h("div.title-row", {},
      h("h1", { tabindex: -1 }, "Jobs"),
      h("a.button", { href: "#/programs" }, "Run a program…")),
    h("form.filters", { onsubmit: applyFilters, "aria-label": "Filter jobs" },
      h("div.field", {}, h("label", { for: "filter-state" }, "Status"), stateSelect),
      h("div.field", {}, h("label", { for: "filter-program" }, "Program"), programSelect)),
    summary,
    h("div.table-wrap", {},
      h("table.jobs", {},
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Program"), h("th.num", { scope: "col" }, "Run time"),
          h("th", { scope: "col" }, "Backend"), h("th", { scope: "col" }, "Created"))),
        tbody)),
    pager,
  );
  show(first);

  let timer = 0;
  const poll = async () => {
    if (!document.hidden) {
      try {
        show(await getJSON(listPath, { signal: ctx.signal }));
      } catch (error) {
        if (error.name === "AbortError") return;
      }
    }
    if (!ctx.signal.aborted) timer = setTimeout(poll, POLL_MS);
  };
  timer = setTimeout(poll, POLL_MS);
  ctx.signal.addEventListener("abort", () => clearTimeout(timer));
}

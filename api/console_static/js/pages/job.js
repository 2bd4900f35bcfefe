// One job, live: what it is doing in a sentence, its details, its interim results
// plotted as they arrive, its logs, its result, and cancel/delete.
//
// Events from the stream are queued and applied once per animation frame, so a job
// publishing hundreds of results a second costs one redraw per frame, not one per
// result. Each frame's work is recorded as a performance measure named
// "console:update-batch" (what the browser tests report as the page's frame time).

import { ApiError, getJSON, resultText, send } from "../api.js";
import {
  FINAL_STATUSES, announce, fill, formatDuration, formatNumber, h, indentJSON, notice, prettyJSON, secondsBetween,
  setStatusBadge, statusBadge, timeEl,
} from "../dom.js";
import { Histogram, LineChart } from "../live/charts.js";
import { InterimSeries, parseInterim } from "../live/series.js";
import { followJob } from "../live/stream.js";
import { resultView } from "../result.js";

export const BATCH_MEASURE = "console:update-batch";
/** Measures kept before the oldest are cleared, so a page left open does not grow without end. */
const MAX_MEASURES = 5000;
/** Characters of log kept on the page; older lines are dropped from view (GET /jobs/{id}/logs has all). */
const MAX_LOG_CHARS = 200_000;
/** Events applied in one frame; a long replay is spread over frames so the page stays responsive. */
const MAX_EVENTS_PER_FRAME = 5000;
const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost; resuming where it left off…",
  ended: "Stream ended",
  gone: "This job no longer exists",
  error: "Stream stopped",
};

function runTime(job) {
  return job.started ? formatDuration(secondsBetween(job.started, job.ended)) : "—";
}

/** One figure of what the job's run cost (the API's `usage`), or a dash before it is known. */
function usageFigure(job, key, format) {
  const value = job.usage ? job.usage[key] : null;
  return value === null || value === undefined ? "—" : format(value);
}

function detailsList(job) {
  const program = job.program.id;
  return [
    ["Program", h("a", { href: `#/programs/${encodeURIComponent(program)}` }, program),
      h("span.muted", {}, ` version ${job.program.version}`)],
    ["Backend", job.backend],
    ["Owner", job.owner],
    ["Created", timeEl(job.created)],
    ["Started", timeEl(job.started)],
    ["Ended", timeEl(job.ended)],
    ["Run time", h("span.run-time", {}, runTime(job))],
    ["CPU time", usageFigure(job, "cpu_s", (v) => `${v.toFixed(2)} s`)],
    ["Peak memory", usageFigure(job, "peak_memory_bytes", (v) => `${(v / 2 ** 20).toFixed(0)} MiB`)],
    ["Attempts", String(job.attempts)],
    ["Max execution time", `${job.cost} s`],
    ["Log level", job.log_level],
  ];
}

export async function render(main, ctx) {
  const [jobId] = ctx.params;
  const path = `/jobs/${encodeURIComponent(jobId)}`;
  let job;
  try {
    job = await getJSON(path, { signal: ctx.signal });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    document.title = "Job not found · qruntime";
    main.append(h("h1", { tabindex: -1 }, "Job not found"), notice("error", error.message),
      h("p", {}, h("a", { href: "#/jobs" }, "Back to your jobs")));
    return;
  }
  document.title = `Job ${jobId} · qruntime`;

  const series = new InterimSeries();
  const charts = new Map(); // name → LineChart | Histogram
  let latestInterim = null;
  let resultShown = false;

  // -- the page's parts -------------------------------------------------------------
  const badge = statusBadge(job.status);
  const sentence = h("p.now", { id: "job-now" });
  const waiting = h("div.waiting");
  const connection = h("span.connection", { dataset: { state: "connecting" } }, CONNECTION_TEXT.connecting);
  const details = h("dl.details");
  const cancelButton = h("button", { type: "button", id: "cancel-job" }, "Cancel job");
  const deleteButton = h("button.danger", { type: "button", id: "delete-job" }, "Delete…");
  const actionStatus = h("div.form-status", { "aria-live": "polite" });
  const interimCount = h("span.count", { id: "interim-count" }, "0");
  const chartsBox = h("div.charts", { id: "charts" },
    h("p.placeholder", {}, "Interim results are plotted here as the program publishes them."));
  const rawTitle = h("h3", {}, "Latest interim result");
  const raw = h("pre.raw", { id: "raw-interim", tabindex: 0, "aria-label": "Latest interim result, JSON" }, "—");
  const resultBox = h("div.result", { id: "result" },
    h("p.placeholder", {}, "The final result appears here when the job ends."));
  const logBox = h("pre.logs", { id: "logs", tabindex: 0, "aria-label": "Logs" });
  const logEmpty = h("p.muted.logs-empty", {}, "Nothing logged yet.");
  const inputs = h("details.inputs", {}, h("summary", {}, "Inputs"),
    h("pre.raw", { tabindex: 0 }, prettyJSON(job.params)));

  function headline() {
    const group = series.orderedGroups().find((g) => g.lines.size === 1);
    if (!group) return "";
    const values = group.lines.values().next().value;
    const last = values.findLast((v) => v !== null);
    return last === undefined ? "" : `latest ${group.name} ${formatNumber(last)}`;
  }

  function describe() {
    const n = series.count;
    const results = `${n} interim result${n === 1 ? "" : "s"}`;
    const latest = headline();
    const progress = latest ? `${results}, ${latest}` : results;
    switch (job.status) {
      case "QUEUED":
        return `Waiting in the queue for backend ${job.backend}.`;
      case "RUNNING":
        if (!job.started) return `Running on ${job.backend}: ${progress}.`;
        return `Running on ${job.backend} for ${formatDuration(secondsBetween(job.started))}: ${progress}.`;
      case "COMPLETED":
        return `Completed in ${formatDuration(secondsBetween(job.started, job.ended))}: ${progress}.`;
      case "CANCELLED": {
        const why = job.reason ? job.reason[0].toUpperCase() + job.reason.slice(1) : "Cancelled";
        return job.started ? `${why} after ${formatDuration(secondsBetween(job.started, job.ended))}: ${progress}.`
          : `${why} before it started.`;
      }
      case "CANCELLED - RAN TOO LONG":
        return `Stopped after its maximum execution time of ${job.cost} s: ${progress}.`;
      case "FAILED":
        return `Failed${job.reason ? `: ${job.reason}` : ""}. ${progress}.`;
      default:
        return job.status;
    }
  }

  function showJob() {
    setStatusBadge(badge, job.status);
    sentence.textContent = describe();
    fill(details, detailsList(job).map(([term, ...value]) => [h("dt", {}, term), h("dd", {}, ...value)]));
    fill(waiting, job.waiting_reason ? notice("warning", job.waiting_reason) : null);
    const ended = FINAL_STATUSES.has(job.status);
    cancelButton.disabled = ended;
    cancelButton.title = ended ? "The job has ended." : "";
  }

  // -- results and status -----------------------------------------------------------
  async function refreshJob() {
    try {
      job = await getJSON(path, { signal: ctx.signal });
      showJob();
    } catch (error) {
      if (error.name !== "AbortError" && error.status === 404) fill(waiting, notice("error", error.message));
    }
    if (FINAL_STATUSES.has(job.status) && !resultShown) {
      resultShown = true;
      const placeholder = chartsBox.querySelector(".placeholder");
      if (placeholder && !queue.length) placeholder.textContent = "This job published no interim results.";
      try {
        fill(resultBox, resultView(job.status, await resultText(jobId)));
      } catch (error) {
        if (error.name !== "AbortError") fill(resultBox, notice("error", error.message));
      }
    }
  }

  // -- applying events, once per frame ----------------------------------------------
  const queue = [];
  let frame = 0;
  let width = 0;
  let batches = 0;

  function ensureCharts() {
    chartsBox.querySelector(".placeholder")?.remove();
    const wanted = [...series.orderedGroups().map((g) => [g.name, () => new LineChart(g, series.x)]),
      ...[...series.histograms.keys()].map((name) => [`hist:${name}`, () => new Histogram(name)])];
    for (const [key, make] of wanted) if (!charts.has(key)) charts.set(key, make());
    // Keep the display order (new fields may sort before counters already shown).
    chartsBox.replaceChildren(...wanted.map(([key]) => charts.get(key).figure));
    width = chartsBox.clientWidth;
  }

  let logChars = 0;

  function logAtBottom() {
    return logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
  }

  function appendLogs(entries, stick) {
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const loud = entry.stream === "stderr" || ["WARNING", "ERROR", "CRITICAL"].includes(entry.level);
      fragment.append(loud ? h("span.log-loud", {}, entry.text) : document.createTextNode(entry.text));
      logChars += entry.text.length;
    }
    logEmpty.remove();
    logBox.append(fragment);
    while (logChars > MAX_LOG_CHARS && logBox.firstChild) {
      logChars -= logBox.firstChild.textContent.length;
      logBox.firstChild.remove();
    }
    if (stick) logBox.scrollTop = logBox.scrollHeight;
  }

  function flush() {
    const start = performance.now();
    const batch = queue.splice(0, MAX_EVENTS_PER_FRAME);
    frame = queue.length ? requestAnimationFrame(flush) : 0;
    const stick = batch.some((e) => e.type === "log") && logAtBottom(); // read layout before writing
    let grew = false;
    let interim = 0;
    let status = null;
    const logs = [];
    for (const event of batch) {
      if (event.type === "interim") {
        grew = series.add(parseInterim(event.data)) || grew;
        latestInterim = event;
        interim += 1;
      } else if (event.type === "log") {
        const entry = parseInterim(event.data);
        logs.push(entry && typeof entry.text === "string" ? entry : { text: `${event.data}\n` });
      } else {
        status = parseInterim(event.data);
      }
    }
    if (interim) {
      if (grew || !charts.size) ensureCharts();
      for (const [key, chart] of charts) {
        if (key.startsWith("hist:")) chart.update(series.histograms.get(key.slice(5)));
        else chart.update(width);
      }
      interimCount.textContent = String(series.count);
      rawTitle.textContent = `Latest interim result (#${series.count}, event ${latestInterim.id})`;
      raw.textContent = indentJSON(latestInterim.data);
    }
    if (logs.length) appendLogs(logs, stick);
    if (status && status.status !== job.status) {
      job = { ...job, status: status.status, reason: status.reason ?? job.reason };
      announce(`Job ${status.status}`);
      refreshJob();
    }
    showJobSentence();
    const end = performance.now();
    performance.measure(BATCH_MEASURE, { start, end, detail: { events: batch.length, interim } });
    if (++batches % MAX_MEASURES === 0) performance.clearMeasures(BATCH_MEASURE);
  }

  function showJobSentence() {
    setStatusBadge(badge, job.status);
    sentence.textContent = describe();
    const time = details.querySelector(".run-time");
    if (time) time.textContent = runTime(job);
  }

  const stream = followJob(jobId, {
    onEvent(type, id, data) {
      queue.push({ type, id, data });
      if (!frame) frame = requestAnimationFrame(flush);
    },
    onState(state, detail) {
      connection.dataset.state = state;
      connection.textContent = detail ? `${CONNECTION_TEXT[state]}: ${detail}` : CONNECTION_TEXT[state];
      if (state === "ended" || state === "gone") refreshJob();
    },
  });

  // -- actions ------------------------------------------------------------------------
  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    fill(actionStatus, notice("info", "Cancelling…"));
    try {
      job = await send("POST", `${path}/cancel`);
      fill(actionStatus, FINAL_STATUSES.has(job.status)
        ? null : notice("info", "Cancel requested; the program is being stopped."));
      announce(`Job ${job.status}`);
      showJob();
    } catch (error) {
      fill(actionStatus, notice("error", error.message));
      cancelButton.disabled = FINAL_STATUSES.has(job.status);
    }
  });

  const confirmDelete = h("dialog.confirm", { "aria-labelledby": "delete-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "delete-title" }, "Delete this job?"),
      h("p", {}, "Its record, result, logs and interim results are removed for good.",
        " A job still running is cancelled first."),
      h("div.actions", {},
        h("button", { value: "keep", autofocus: true }, "Keep it"),
        h("button.danger", { value: "delete", id: "confirm-delete" }, "Delete job"))));
  confirmDelete.addEventListener("close", async () => {
    if (confirmDelete.returnValue !== "delete") return;
    fill(actionStatus, notice("info", "Deleting…"));
    try {
      await send("DELETE", path);
      stream.close();
      announce(`Job ${jobId} deleted`);
      ctx.navigate("#/jobs");
    } catch (error) {
      fill(actionStatus, notice("error", error.message));
    }
  });
  deleteButton.addEventListener("click", () => {
    confirmDelete.returnValue = "";
    confirmDelete.showModal();
  });

  // -- layout -----------------------------------------------------------------------
  main.append(
    h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs"), " / "),
    h("div.title-row", {},
      h("h1", { tabindex: -1 }, "Job ", h("span.mono", {}, jobId)),
      badge,
      h("div.actions", {}, cancelButton, deleteButton)),
    h("div.now-row", {}, sentence, connection), // status changes are announced, not every result
    waiting,
    actionStatus,
    h("section.panel", { "aria-labelledby": "interim-heading" },
      h("h2", { id: "interim-heading" }, "Interim results ", h("span.muted", {}, "(", interimCount, ")")),
      h("div.live", {}, chartsBox, h("aside.raw-box", {}, rawTitle, raw))),
    h("div.columns", {},
      h("section.panel", { "aria-labelledby": "result-heading" }, h("h2", { id: "result-heading" }, "Result"), resultBox),
      h("section.panel", { "aria-labelledby": "details-heading" },
        h("h2", { id: "details-heading" }, "Details"), details, inputs)),
    h("section.panel", { "aria-labelledby": "logs-heading" },
      h("h2", { id: "logs-heading" }, "Logs"), logEmpty, logBox),
    confirmDelete,
  );
  showJob();

  const resizer = new ResizeObserver(() => {
    const next = chartsBox.clientWidth;
    if (next === width) return;
    width = next;
    for (const chart of charts.values()) chart.resize?.(width);
  });
  resizer.observe(chartsBox);
  const ticker = setInterval(() => {
    if (job.status === "RUNNING" && !document.hidden) showJobSentence();
  }, 1000);
  ctx.signal.addEventListener("abort", () => {
    stream.close();
    clearInterval(ticker);
    resizer.disconnect();
    if (frame) cancelAnimationFrame(frame);
    for (const chart of charts.values()) chart.destroy();
  });
}

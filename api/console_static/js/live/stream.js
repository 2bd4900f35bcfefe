// Following one job's events over GET /jobs/{id}/stream, resuming after any drop.
//
// The browser's EventSource reconnects by itself and sends Last-Event-ID. When it
// gives up instead (the server answered an error, or 204 because everything was
// sent), we look at the job: ended with nothing missing means done; otherwise a new
// EventSource resumes with ?last_event_id=. Events are delivered once each, in id
// order, even if a server replays some we already have.

import { getJSON, streamUrl } from "../api.js";
import { FINAL_STATUSES } from "../dom.js";

export const EVENT_TYPES = ["status", "interim", "log", "done"];
/** Waits before re-opening a stream the browser gave up on, growing to the last one. */
const REOPEN_DELAYS_MS = [500, 1000, 2000, 5000];

/**
 * Follow `jobId`; `onEvent(type, id, dataText)` for each event, `onState(state, detail)`
 * with "connecting" | "live" | "reconnecting" | "ended" | "gone" | "error".
 * Returns {close()}.
 */
export function followJob(jobId, { onEvent, onState }) {
  let lastId = 0;
  let source = null;
  let finished = false;
  let timer = 0;
  let failures = 0;

  function deliver(type, event) {
    const id = Number(event.lastEventId) || 0;
    if (id && id <= lastId) return; // already have it
    if (id) lastId = id;
    failures = 0;
    if (type === "done") finish("ended");
    onEvent(type, id, event.data);
  }

  function finish(state, detail) {
    finished = true;
    source?.close();
    clearTimeout(timer);
    onState(state, detail);
  }

  function open() {
    onState(lastId ? "reconnecting" : "connecting");
    source = new EventSource(streamUrl(jobId, lastId));
    source.onopen = () => onState("live");
    for (const type of EVENT_TYPES) source.addEventListener(type, (event) => deliver(type, event));
    source.onerror = () => {
      if (finished) return;
      if (source.readyState === EventSource.CONNECTING) {
        onState("reconnecting"); // the browser retries by itself, with Last-Event-ID
        return;
      }
      source.close();
      const delay = REOPEN_DELAYS_MS[Math.min(failures, REOPEN_DELAYS_MS.length - 1)];
      failures += 1;
      onState("reconnecting");
      timer = setTimeout(reopen, delay);
    };
  }

  async function reopen() {
    if (finished) return;
    let job;
    try {
      job = await getJSON(`/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      if (error.status === 404) finish("gone", error.message);
      else if (error.status === 401) finish("error", error.message);
      else timer = setTimeout(reopen, REOPEN_DELAYS_MS.at(-1));
      return;
    }
    if (finished) return;
    if (FINAL_STATUSES.has(job.status) && job.last_event_id <= lastId) {
      finish("ended");
      return;
    }
    open();
  }

  open();
  return {
    close() {
      finished = true;
      clearTimeout(timer);
      source?.close();
    },
    get lastId() {
      return lastId;
    },
  };
}

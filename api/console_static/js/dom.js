// Small helpers to build the DOM and format what it shows. Text always goes in as
// text nodes, never as HTML, so nothing a program or a user sends can inject markup.

/** h("a.cls", {href}, child, ...): an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "text") {
      el.textContent = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the content of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** An ISO-8601 UTC time as a <time> in the browser's time zone ("—" when absent). */
export function timeEl(iso) {
  if (!iso) return h("span.muted", {}, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  return h("time", { datetime: iso, title: iso }, TIME_FORMAT.format(date));
}

export function timeZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

/** 83.2 → "1 min 23 s"; precise below a minute. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Seconds between two ISO times (or until now when `end` is absent). */
export function secondsBetween(start, end) {
  if (!start) return NaN;
  const stop = end ? Date.parse(end) : Date.now();
  return (stop - Date.parse(start)) / 1000;
}

/** A number for people: few digits, but enough to see an energy converge. */
export function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString("en-US").replaceAll(",", " ");
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(4);
  return value.toPrecision(7).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

export const FINAL_STATUSES = new Set(["COMPLETED", "FAILED", "CANCELLED", "CANCELLED - RAN TOO LONG"]);

const STATUS_CLASSES = {
  QUEUED: "queued",
  RUNNING: "running",
  COMPLETED: "completed",
  FAILED: "failed",
  CANCELLED: "cancelled",
  "CANCELLED - RAN TOO LONG": "failed",
};

/** A status badge; colour is never the only cue (the text says it). */
export function statusBadge(status) {
  const kind = STATUS_CLASSES[status] || "unknown";
  return h(`span.badge.status-${kind}`, { dataset: { status } }, status);
}

export function setStatusBadge(el, status) {
  el.className = `badge status-${STATUS_CLASSES[status] || "unknown"}`;
  el.dataset.status = status;
  el.textContent = status;
}

/** An inline message: kind is "error", "info" or "warning". */
export function notice(kind, ...children) {
  return h(`div.notice.notice-${kind}`, { role: kind === "error" ? "alert" : "status" }, ...children);
}

/** Say `text` to screen readers without moving focus. */
export function announce(text) {
  const el = document.getElementById("announcer");
  if (el) el.textContent = text;
}

/** Longest JSON text re-indented for display; longer text is shown as it came. */
const MAX_INDENT_CHARS = 200_000;
const BLANKS = " \n\r\t";

/**
 * JSON text re-indented without parsing it, so keys keep the order the program
 * wrote them in (JSON.parse would move integer-like keys such as "11" before "00").
 */
export function indentJSON(text, indent = "  ") {
  if (text.length > MAX_INDENT_CHARS) return text;
  let out = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (BLANKS.includes(c)) {
      // dropped: the layout is ours
    } else if (c === "{" || c === "[") {
      let next = i + 1;
      while (next < text.length && BLANKS.includes(text[next])) next += 1;
      if (text[next] === (c === "{" ? "}" : "]")) {
        out += c + text[next];
        i = next;
      } else {
        depth += 1;
        out += `${c}\n${indent.repeat(depth)}`;
      }
    } else if (c === "}" || c === "]") {
      depth -= 1;
      out += `\n${indent.repeat(Math.max(depth, 0))}${c}`;
    } else if (c === ",") {
      out += `,\n${indent.repeat(depth)}`;
    } else if (c === ":") {
      out += ": ";
    } else {
      out += c;
    }
  }
  return out;
}

/** Pretty JSON text, or the text itself when it is not JSON. */
export function prettyJSON(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

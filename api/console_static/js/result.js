// A job's final result for people: its plain fields as a table, the JSON beside it.
//
// Results are text in the Qiskit Runtime wire format (or a plain string). Values
// tagged {"__type__": ...} are named by their type rather than shown encoded.

import { formatNumber, h, indentJSON } from "./dom.js";
import { parseInterim } from "./live/series.js";

/** Top-level fields shown before the raw JSON is opened. */
const MAX_FIELDS = 40;

function summarize(value) {
  if (value === null) return "null";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value.length > 120 ? `${value.slice(0, 117)}…` : value;
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) {
    if (value.length <= 6 && value.every((v) => typeof v === "number")) return `[${value.map(formatNumber).join(", ")}]`;
    return `list of ${value.length}`;
  }
  if (value.__type__ === "complex" && Array.isArray(value.__value__)) {
    const [re, im] = value.__value__;
    return `${formatNumber(re)} ${im < 0 ? "−" : "+"} ${formatNumber(Math.abs(im))}i`;
  }
  if ("__type__" in value) return `${value.__type__} (encoded)`;
  const keys = Object.keys(value);
  return `{${keys.slice(0, 4).join(", ")}${keys.length > 4 ? ", …" : ""}}`;
}

function fieldsTable(object) {
  const entries = Object.entries(object).slice(0, MAX_FIELDS);
  return h("table.fields", {},
    h("tbody", {}, entries.map(([key, value]) => h("tr", {},
      h("th", { scope: "row" }, key), h("td", {}, summarize(value))))));
}

/** The result of a job that ended with `status`, from GET /jobs/{id}/results's `text`. */
export function resultView(status, text) {
  if (status === "FAILED" || status === "CANCELLED - RAN TOO LONG") {
    return h("div", {},
      h("p.result-headline.bad", {}, status === "FAILED" ? "The program failed:" : "The job ran too long:"),
      h("pre.raw.error-text", { tabindex: 0 }, text || "(no details)"));
  }
  if (status === "CANCELLED" && !text) return h("p.muted", {}, "No result: the job was cancelled.");
  if (text === null || text === "") return h("p.muted", {}, "The program returned nothing.");
  const value = parseInterim(text);
  if (typeof value !== "object" || value === null || Array.isArray(value) || "__type__" in value) {
    return h("div", {}, h("p.result-headline", {}, summarize(value)),
      typeof value === "string" ? null : h("pre.raw", { tabindex: 0 }, indentJSON(text)));
  }
  return h("div", {},
    fieldsTable(value),
    h("details.raw-result", {}, h("summary", {}, "Result as JSON"), h("pre.raw", { tabindex: 0 }, indentJSON(text))));
}

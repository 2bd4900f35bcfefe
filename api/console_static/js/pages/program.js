// One program: its run form, its metadata in the seed client's layout, and its versions.

import { getJSON } from "../api.js";
import { h, timeEl } from "../dom.js";
import { runForm } from "../run_form.js";
import { visibility } from "./programs.js";

const INDENT = " ";

/** Python's str() of a JSON value, as the seed's layout prints schema values. */
function pyStr(value, nested = false) {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") return nested ? `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'` : value;
  if (Array.isArray(value)) return `[${value.map((v) => pyStr(v, true)).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${pyStr(k, true)}: ${pyStr(v, true)}`).join(", ")}}`;
  }
  return String(value);
}

function sentenceCase(camel) {
  const spaced = camel.replace(/([A-Z])/g, " $1");
  return spaced.slice(0, 1).toUpperCase() + spaced.slice(1).toLowerCase();
}

function schemaLines(schema) {
  const lines = [];
  if ("description" in schema) lines.push(`${INDENT.repeat(4)}Description: ${pyStr(schema.description)}`);
  if ("type" in schema) lines.push(`${INDENT.repeat(4)}Type: ${pyStr(schema.type)}`);
  if ("properties" in schema) {
    lines.push(`${INDENT.repeat(4)}Properties:`);
    const required = schema.required || [];
    for (const [name, details] of Object.entries(schema.properties)) {
      lines.push(`${INDENT.repeat(8)}- ${name}:`);
      for (const [key, value] of Object.entries(details)) {
        lines.push(`${INDENT.repeat(12)}${sentenceCase(key)}: ${pyStr(value)}`);
      }
      lines.push(`${INDENT.repeat(12)}Required: ${required.includes(name) ? "True" : "False"}`);
    }
  }
  return lines;
}

/** The program as the seed client's str(program) printed it. */
export function seedLayout(program) {
  const spec = program.spec || {};
  const lines = [
    `${program.id}:`,
    `  Name: ${program.name}`,
    `  Description: ${program.description}`,
    `  Creation date: ${program.creation_date}`,
    `  Update date: ${program.update_date}`,
    `  Max execution time: ${program.cost}`,
  ];
  for (const [title, schema] of [["Input parameters", spec.parameters], ["Interim results", spec.interim_results],
    ["Returns", spec.return_values]]) {
    lines.push(`  ${title}:`);
    lines.push(...(schema && Object.keys(schema).length ? schemaLines(schema) : [`${INDENT.repeat(4)}none`]));
  }
  return lines.join("\n");
}

function versionsTable(versions) {
  return h("div.table-wrap", {},
    h("table", {},
      h("caption.visually-hidden", {}, "Versions"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Created"),
        h("th", { scope: "col" }, "Name"), h("th.num", { scope: "col" }, "Max time (s)"))),
      h("tbody", {}, versions.map((v) => h("tr", {},
        h("td", {}, h("code", {}, v.version), v.current ? h("span.muted", {}, " current") : null),
        h("td", {}, timeEl(v.created)), h("td", {}, v.name ?? ""), h("td.num", {}, v.cost ?? ""))))));
}

export async function render(main, ctx) {
  const [id] = ctx.params;
  const path = `/programs/${encodeURIComponent(id)}`;
  const [program, versions, backends] = await Promise.all([
    getJSON(path, { signal: ctx.signal }),
    getJSON(`${path}/versions`, { signal: ctx.signal }),
    getJSON("/backends", { signal: ctx.signal }),
  ]);
  document.title = `${program.name} · Programs · qruntime`;
  const form = runForm(program, versions.versions, backends.backends, {
    onCreated: (job) => ctx.navigate(`#/jobs/${encodeURIComponent(job.id)}`),
  });
  main.append(
    h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/programs" }, "Programs"), " / "),
    h("h1", { tabindex: -1 }, program.name),
    h("p.lede", {}, program.description),
    h("p.meta", {}, h("span", {}, `Version ${program.version}`), " · ", h("span", {}, visibility(program)),
      " · max run time ", h("span", {}, `${program.cost} s`)),
    h("div.columns", {},
      h("section.panel", {}, form),
      h("section.panel", { "aria-labelledby": "details-heading" },
        h("h2", { id: "details-heading" }, "Details"),
        h("pre.seed", { tabindex: 0, "aria-label": "Program metadata" }, seedLayout(program)),
        h("h2", {}, "Versions"),
        versionsTable(versions.versions))),
  );
  if (ctx.query.get("run")) form.querySelector("input, select, textarea")?.focus();
}

// The programs the caller may see (GET /programs), each linking to its page and run form.

import { getJSON } from "../api.js";
import { formatDuration, h } from "../dom.js";

/** Every page of GET /programs (the list is short; pages of 100 keep each answer small). */
export async function allPrograms(signal) {
  const PAGE = 100;
  const found = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await getJSON(`/programs?limit=${PAGE}&offset=${offset}`, { signal });
    found.push(...page.programs);
    if (!page.programs.length || found.length >= page.count) return found;
  }
}

export function visibility(program) {
  if (program.builtin) return "built in";
  return program.is_public ? "public" : "private";
}

export async function render(main, ctx) {
  document.title = "Programs · qruntime";
  const list = await allPrograms(ctx.signal);
  const rows = list.map((p) => {
    const href = `#/programs/${encodeURIComponent(p.id)}`;
    return h("tr", {},
      h("th", { scope: "row" }, h("a", { href }, p.name)),
      h("td", {}, p.description || h("span.muted", {}, "—")),
      h("td.num", {}, formatDuration(p.cost)),
      h("td", {}, visibility(p), p.owner ? h("span.muted", {}, ` · ${p.owner}`) : null),
      h("td", {}, h("a.button", { href: `${href}?run=1`, "aria-label": `Run ${p.name}` }, "Run…")));
  });
  main.append(
    h("h1", { tabindex: -1 }, "Programs"),
    h("p.lede", {}, `${list.length} program${list.length === 1 ? "" : "s"} you may run.`),
    h("div.table-wrap", {},
      h("table", {},
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Description"),
          h("th.num", { scope: "col" }, "Max run time"), h("th", { scope: "col" }, "Visibility"),
          h("th", { scope: "col" }, h("span.visually-hidden", {}, "Actions")))),
        h("tbody", {}, rows))),
  );
}

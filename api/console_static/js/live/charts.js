// Drawing interim results: a uPlot line chart per group of numeric fields, a bar
// histogram for counts. Sizes are fixed up front so nothing moves as points arrive:
// charts have a set height and a fixed-width y axis, histograms a set height.

import uPlot from "../../vendor/uplot/uPlot.esm.js";
import { formatNumber, h } from "../dom.js";

const CHART_HEIGHT_PX = 180;
/** Width kept for y-axis labels, so a longer number does not shift the plot. */
const Y_AXIS_PX = 64;
/** Outcomes drawn in a histogram; the rest are summed into one "other" bar. */
const MAX_BARS = 32;
const PALETTE = ["--line-1", "--line-2", "--line-3", "--line-4", "--line-5", "--line-6"];
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 1e6, 1e7];

/** Colours from the stylesheet (they follow prefers-color-scheme), read once per scheme. */
const colours = {};
function readColours() {
  const style = getComputedStyle(document.documentElement);
  for (const name of ["--fg-muted", "--grid", ...PALETTE]) colours[name] = style.getPropertyValue(name).trim();
}
readColours();
const schemeWatchers = new Set();
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  readColours();
  for (const redraw of schemeWatchers) redraw();
});

function axis(extra) {
  return {
    stroke: () => colours["--fg-muted"],
    grid: { stroke: () => colours["--grid"], width: 1 },
    ticks: { stroke: () => colours["--grid"], width: 1 },
    font: "12px system-ui, sans-serif",
    ...extra,
  };
}

/** The y range: a little room around the data; a constant line sits mid-chart, not at the bottom. */
function yRange(plot, min, max) {
  if (min === null || max === null) return [0, 1];
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    return [min - pad, max + pad];
  }
  return uPlot.rangeNum(min, max, 0.1, true);
}

/** "latest −1.137, min −1.137, max −0.948" of a line (nulls are gaps). */
function describeValues(values) {
  let last;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v === null) continue;
    last = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (last === undefined) return "no value yet";
  return `latest ${formatNumber(last)}, min ${formatNumber(min)}, max ${formatNumber(max)}`;
}

/** One group's lines against the result index, redrawn at most once per frame. */
export class LineChart {
  constructor(group, x) {
    this.group = group;
    this.x = x;
    this.plot = null;
    this.lineCount = 0;
    this.host = h("div.plot");
    this.latest = h("span.latest");
    this.points = h("span.points");
    this.figure = h("figure.chart", { dataset: { field: group.name, points: "0" } },
      h("figcaption", {}, h("span.name", {}, group.name), this.latest, this.points),
      this.host);
    this.redraw = () => this.plot?.redraw(false, true);
    schemeWatchers.add(this.redraw);
  }

  build(width) {
    this.plot?.destroy();
    const labels = [...this.group.lines.keys()];
    this.lineCount = labels.length;
    this.plot = new uPlot({
      width,
      height: CHART_HEIGHT_PX,
      legend: { show: labels.length > 1, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: { range: yRange } },
      axes: [axis({ incrs: WHOLE_STEPS }), axis({ size: Y_AXIS_PX })],
      series: [
        { label: "result" },
        ...labels.map((label, i) => ({
          label,
          stroke: () => colours[PALETTE[i % PALETTE.length]],
          width: 2,
          spanGaps: true,
          points: { size: 5 },
        })),
      ],
    }, this.data(), this.host);
  }

  data() {
    return [this.x, ...this.group.lines.values()];
  }

  /** Bring the drawing up to date with the group (call once per animation frame). */
  update(width) {
    if (!this.plot || this.group.lines.size !== this.lineCount) this.build(width);
    else this.plot.batch(() => this.plot.setData(this.data()));
    const lines = [...this.group.lines.values()];
    const described = lines.length === 1 ? describeValues(lines[0]) : `${lines.length} lines`;
    this.latest.textContent = described;
    this.points.textContent = `${this.x.length} point${this.x.length === 1 ? "" : "s"}`;
    this.figure.dataset.points = String(this.x.length);
    this.figure.setAttribute("aria-label", `${this.group.name}, ${this.x.length} results: ${described}`);
  }

  resize(width) {
    this.plot?.setSize({ width, height: CHART_HEIGHT_PX });
  }

  destroy() {
    schemeWatchers.delete(this.redraw);
    this.plot?.destroy();
  }
}

/** The latest counts as bars, largest outcomes kept when there are many. */
export class Histogram {
  constructor(name) {
    this.name = name;
    this.bars = h("div.bars", { role: "list" });
    this.total = h("span.points");
    this.figure = h("figure.chart.histogram", { dataset: { field: name } },
      h("figcaption", {}, h("span.name", {}, `${name} (latest)`), this.total),
      this.bars);
    this.shown = "";
  }

  update(counts) {
    let entries = Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const total = entries.reduce((sum, [, v]) => sum + v, 0);
    if (entries.length > MAX_BARS) {
      const kept = [...entries].sort((a, b) => b[1] - a[1]).slice(0, MAX_BARS - 1);
      const keptKeys = new Set(kept.map(([k]) => k));
      const rest = entries.filter(([k]) => !keptKeys.has(k)).reduce((sum, [, v]) => sum + v, 0);
      entries = [...entries.filter(([k]) => keptKeys.has(k)), ["other", rest]];
    }
    const key = JSON.stringify(entries);
    if (key === this.shown) return;
    this.shown = key;
    const peak = Math.max(1, ...entries.map(([, v]) => v));
    this.bars.replaceChildren(...entries.map(([outcome, count]) => {
      const bar = h("span.bar");
      bar.style.height = `${(100 * count) / peak}%`;
      return h("div.bar-item", { role: "listitem", title: `${outcome}: ${count}` },
        h("span.bar-value", {}, String(count)), h("span.bar-track", {}, bar), h("span.bar-label", {}, outcome));
    }));
    this.total.textContent = `${total} shots, ${Object.keys(counts).length} outcomes`;
    this.figure.setAttribute("aria-label",
      `${this.name}, latest: ${entries.map(([o, c]) => `${o} ${c}`).join(", ")}`);
  }

  destroy() {}
}

// Interim results as plottable data: every numeric field against the result's index,
// and dicts of counts as a histogram of the latest one.
//
// A number at the top level of a result is its own chart (energy, std, ...). A short
// array of numbers (parameters), or a nested dict of numbers, is one chart with a
// line per element. A dict whose keys are outcomes ("00", "0x3") and whose values are
// non-negative integers is counts. Complex numbers (the wire format's
// {"__type__": "complex"}) plot their real and imaginary parts. A field missing from
// some results leaves a gap. Fields that just count (iteration, step) go last.

/** Longest array plotted as one line per element. */
export const MAX_ARRAY_LINES = 16;
const MAX_DEPTH = 3;
const OUTCOME_KEY = /^(0x[0-9a-f]+|[01]+|\d+)$/i;
const COUNTER_NAMES = new Set(["iteration", "iterations", "iter", "index", "step", "steps", "count", "n",
  "i", "k", "epoch", "evaluation", "evaluations", "nfev", "nit", "eval", "evals"]);

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function isCounts(value) {
  if (!isPlainObject(value)) return false;
  const entries = Object.entries(value);
  return entries.length > 0 && entries.every(([k, v]) => OUTCOME_KEY.test(k) && Number.isInteger(v) && v >= 0);
}

/** One chart's worth of lines: label → values (one per result so far, null where absent). */
class Group {
  constructor(name, counter) {
    this.name = name;
    this.counter = counter;
    this.lines = new Map();
  }

  put(label, value, index) {
    let values = this.lines.get(label);
    if (!values) {
      values = new Array(index - 1).fill(null);
      this.lines.set(label, values);
    }
    values.push(value);
  }

  pad(length) {
    for (const values of this.lines.values()) if (values.length < length) values.push(null);
  }
}

export class InterimSeries {
  constructor() {
    this.x = []; // 1, 2, 3, ...: each result's index, in arrival order
    this.groups = new Map(); // chart name → Group
    this.histograms = new Map(); // name → the latest counts
    this.latest = undefined;
  }

  get count() {
    return this.x.length;
  }

  /** Add one interim result (already parsed); returns true if it made a new chart appear. */
  add(value) {
    const index = this.x.length + 1;
    this.x.push(index);
    this.latest = value;
    const before = this.groups.size + this.histograms.size;
    this.walk(value, "", 0, index);
    for (const group of this.groups.values()) group.pad(index);
    return this.groups.size + this.histograms.size !== before;
  }

  /** Chart groups in display order: measured quantities first, plain counters last. */
  orderedGroups() {
    const all = [...this.groups.values()];
    return [...all.filter((g) => !g.counter), ...all.filter((g) => g.counter)];
  }

  group(name) {
    let group = this.groups.get(name);
    if (!group) {
      const leaf = name.split(/[.[]/).at(-1).toLowerCase();
      group = new Group(name, COUNTER_NAMES.has(leaf));
      this.groups.set(name, group);
    }
    return group;
  }

  walk(value, path, depth, index) {
    const name = path || "value";
    if (isNumber(value)) {
      this.group(name).put(name, value, index);
    } else if (Array.isArray(value)) {
      if (value.length && value.length <= MAX_ARRAY_LINES && value.every(isNumber)) {
        const group = this.group(name);
        value.forEach((v, i) => group.put(`${name}[${i}]`, v, index));
      }
    } else if (isPlainObject(value)) {
      if (value.__type__ === "complex" && Array.isArray(value.__value__)) {
        const [re, im] = value.__value__;
        const group = this.group(name);
        if (isNumber(re)) group.put(`${name}.re`, re, index);
        if (isNumber(im)) group.put(`${name}.im`, im, index);
      } else if (isCounts(value)) {
        this.histograms.set(path || "counts", value);
      } else if ("__type__" in value) {
        // another wire-format type (ndarray, circuit, ...): not plotted
      } else if (depth > 0 && Object.values(value).every(isNumber) && Object.keys(value).length > 1) {
        const group = this.group(name);
        for (const [key, v] of Object.entries(value)) group.put(`${name}.${key}`, v, index);
      } else if (depth < MAX_DEPTH) {
        for (const [key, v] of Object.entries(value)) this.walk(v, path ? `${path}.${key}` : key, depth + 1, index);
      }
    }
  }
}

/** Parse an interim result's JSON text; Python's NaN/Infinity (not JSON) become null. */
export function parseInterim(text) {
  try {
    return JSON.parse(text);
  } catch {
    try {
      return JSON.parse(text.replace(/-?\bInfinity\b|\bNaN\b/g, "null"));
    } catch {
      return text;
    }
  }
}

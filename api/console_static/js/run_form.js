// The form that runs a program: one field per input of its JSON Schema
// (spec.parameters), a backend picker fed by GET /backends, then POST /jobs.
//
// Numbers, strings, enums and booleans get their own controls; anything else (objects
// such as a SparsePauliOp, arrays, unions) is JSON text in the Qiskit Runtime wire
// format. A field left empty is left out, so the program's own default applies.

import { ApiError, send } from "./api.js";
import { fill, formatDuration, h, notice } from "./dom.js";

const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const DEFAULT_BACKEND = "aer_simulator";
/** The name of the free-form inputs field (not an input name a schema can declare). */
const EXTRA = Symbol("other inputs");

class FieldError extends Error {}

function typesOf(schema) {
  const raw = schema.type === undefined ? [] : [].concat(schema.type);
  const alternatives = [...(schema.oneOf || []), ...(schema.anyOf || [])].flatMap((s) => [].concat(s.type || []));
  return { types: raw.filter((t) => t !== "null"), nullable: raw.includes("null"), alternatives };
}

function describe(schema) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (schema.default !== undefined) parts.push(`Default: ${JSON.stringify(schema.default)}.`);
  return parts.join(" ");
}

/** One input: its row in the form and how to read its value. */
function inputField(name, schema, required, { id = `input-${name.replace(/\s/g, "_")}`, label = name, typeText } = {}) {
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const { types, alternatives } = typesOf(schema);
  const common = {
    id, name: typeof name === "string" ? name : id, "aria-describedby": `${helpId} ${errorId}`, required: required || null,
  };
  const error = h("p.field-error", { id: errorId });
  let control;
  let read;
  if (Array.isArray(schema.enum)) {
    control = h("select", common,
      required ? null : h("option", { value: "" }, "(program default)"),
      schema.enum.map((v, i) => h("option", { value: String(i) }, JSON.stringify(v))));
    read = () => (control.value === "" ? undefined : schema.enum[Number(control.value)]);
  } else if (types.length === 1 && types[0] === "boolean") {
    control = h("select", common,
      h("option", { value: "" }, "(program default)"), h("option", { value: "true" }, "true"),
      h("option", { value: "false" }, "false"));
    read = () => (control.value === "" ? undefined : control.value === "true");
  } else if (types.length === 1 && (types[0] === "integer" || types[0] === "number")) {
    control = h("input", {
      ...common, type: "number", inputmode: types[0] === "integer" ? "numeric" : "decimal",
      step: types[0] === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
      placeholder: schema.default !== undefined ? String(schema.default) : null,
    });
    read = () => {
      if (control.value.trim() === "") return undefined;
      const value = Number(control.value);
      if (!Number.isFinite(value)) throw new FieldError("Enter a number.");
      if (types[0] === "integer" && !Number.isInteger(value)) throw new FieldError("Enter a whole number.");
      return value;
    };
  } else if (types.length === 1 && types[0] === "string") {
    control = h("input", { ...common, type: "text", spellcheck: "false" });
    read = () => (control.value === "" ? undefined : control.value);
  } else {
    const stringAllowed = types.includes("string") || alternatives.includes("string");
    control = h("textarea", { ...common, rows: 3, spellcheck: "false", class: "code" });
    read = () => {
      const text = control.value.trim();
      if (text === "") return undefined;
      try {
        return JSON.parse(text);
      } catch (parseError) {
        if (stringAllowed) return text;
        throw new FieldError(`Not JSON: ${parseError.message}`);
      }
    };
  }
  const row = h("div.field", {},
    h("label", { for: id }, label, required ? h("span.required", { "aria-hidden": "true" }, " *") : null,
      h("span.type", {}, ` ${typeText || [...types, ...alternatives].join(" or ") || "JSON"}`)),
    control,
    h("p.help", { id: helpId }, describe(schema) || (control.tagName === "TEXTAREA" ? "JSON value." : "")),
    error);
  return { name, row, control, error, read };
}

/** The "other inputs" JSON object, for programs whose schema allows inputs it does not list. */
function extraField(hasProperties) {
  const field = inputField(EXTRA, {
    description: "A JSON object of inputs, in the Qiskit Runtime wire format.",
  }, false, { id: "input-extra", label: hasProperties ? "Other inputs" : "Inputs", typeText: "JSON object" });
  if (!hasProperties) field.control.value = "{}";
  const read = field.read;
  field.read = () => {
    const value = read();
    if (value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))) {
      throw new FieldError("Must be a JSON object, such as {\"iterations\": 3}.");
    }
    return value;
  };
  return field;
}

function backendLabel(backend, minQubits) {
  const kind = backend.noisy ? `noisy replica of ${backend.device}` : `ideal, ${backend.simulator_method}`;
  const workers = backend.workers.length;
  const served = workers ? `${workers} worker${workers === 1 ? "" : "s"}` : "no live worker: jobs wait";
  const small = minQubits && backend.num_qubits < minQubits ? " — too few qubits" : "";
  return `${backend.name} — ${backend.num_qubits} qubits, ${kind} (${served})${small}`;
}

function backendSelect(backends, minQubits) {
  const usable = (b) => !(minQubits && b.num_qubits < minQubits);
  const preferred = backends.find((b) => b.name === DEFAULT_BACKEND && b.served && usable(b))
    || backends.find((b) => b.served && usable(b)) || backends.find(usable);
  return h("select", { id: "run-backend", name: "backend", required: true },
    backends.map((b) => h("option", {
      value: b.name, disabled: !usable(b), selected: b === preferred,
    }, backendLabel(b, minQubits))));
}

/** Put the API's per-input violations next to their fields; the rest stay in the summary. */
function showErrors(fields, summary, error) {
  const violations = Array.isArray(error.errors?.params) ? error.errors.params : [];
  for (const violation of violations) {
    const top = String(violation.path || "").split("/")[0];
    const field = fields.find((f) => f.name === top);
    if (field) {
      field.error.textContent = violation.message;
      field.control.setAttribute("aria-invalid", "true");
    }
  }
  fill(summary, notice("error", error.message));
}

/** The run form of `program`; submitting creates the job and calls `onCreated(job)`. */
export function runForm(program, versions, backends, { onCreated }) {
  const schema = program.spec?.parameters || {};
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const fields = Object.entries(properties).map(([name, s]) => inputField(name, s, required.has(name)));
  const hasProperties = fields.length > 0;
  if (!hasProperties || schema.additionalProperties !== false) fields.push(extraField(hasProperties));
  const minQubits = program.spec?.backend_requirements?.min_num_qubits;
  const backend = backendSelect(backends, minQubits);
  const version = h("select", { id: "run-version", name: "version" },
    versions.map((v) => h("option", { value: v.current ? "" : v.version, selected: Boolean(v.current) },
      `${v.version}${v.current ? " (current)" : ""}`)));
  const logLevel = h("select", { id: "run-log-level", name: "log_level" },
    LOG_LEVELS.map((l) => h("option", { value: l, selected: l === "WARNING" }, l)));
  const maxTime = h("input", {
    id: "run-max-time", name: "max_execution_time", type: "number", min: 1, max: program.cost, step: 1,
    placeholder: String(program.cost), inputmode: "numeric", "aria-describedby": "run-max-time-help",
  });
  const summary = h("div.form-status", { "aria-live": "polite" });
  const submit = h("button.primary", { type: "submit" }, "Run");

  function readBody() {
    const params = {};
    let firstBad = null;
    for (const field of fields) {
      field.error.textContent = "";
      field.control.removeAttribute("aria-invalid");
      try {
        const value = field.read();
        if (value === undefined) continue;
        if (field.name === EXTRA) Object.assign(params, value);
        else params[field.name] = value;
      } catch (error) {
        if (!(error instanceof FieldError)) throw error;
        field.error.textContent = error.message;
        field.control.setAttribute("aria-invalid", "true");
        firstBad = firstBad || field;
      }
    }
    if (firstBad) {
      firstBad.control.focus();
      throw new FieldError("Some inputs need fixing (see the messages under them).");
    }
    const body = { program_id: program.id, backend: backend.value, params, log_level: logLevel.value };
    if (version.value) body.version = version.value;
    if (maxTime.value.trim()) body.max_execution_time = Number(maxTime.value);
    return body;
  }

  async function onSubmit(event) {
    event.preventDefault();
    let body;
    try {
      body = readBody();
    } catch (error) {
      fill(summary, notice("error", error.message));
      return;
    }
    submit.disabled = true;
    fill(summary, notice("info", "Submitting…"));
    try {
      onCreated(await send("POST", "/jobs", body));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(fields, summary, error);
    } finally {
      submit.disabled = false;
    }
  }

  return h("form.run-form", { onsubmit: onSubmit, "aria-labelledby": "run-heading", novalidate: true },
    h("h2", { id: "run-heading" }, `Run ${program.name}`),
    fields.map((f) => f.row),
    h("div.field", {}, h("label", { for: "run-backend" }, "Backend"), backend),
    h("details.advanced", {},
      h("summary", {}, "Version, log level, time limit"),
      h("div.field", {}, h("label", { for: "run-version" }, "Version"), version),
      h("div.field", {}, h("label", { for: "run-log-level" }, "Log level"), logLevel),
      h("div.field", {},
        h("label", { for: "run-max-time" }, "Max execution time (s)"), maxTime,
        h("p.help", { id: "run-max-time-help" },
          `At most the program's own ${program.cost} s (${formatDuration(program.cost)}).`))),
    h("div.actions", {}, submit),
    summary);
}

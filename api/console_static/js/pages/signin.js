// Sign in with a bearer token: checked with GET /me before it is kept (sessionStorage).

import { ApiError, getJSON, saveToken } from "../api.js";
import { fill, h, notice } from "../dom.js";

export async function render(main, ctx) {
  document.title = "Sign in · qruntime";
  const input = h("input", {
    id: "token",
    type: "password", name: "token", autocomplete: "off", spellcheck: "false", required: true,
    "aria-describedby": "token-help",
  });
  const status = h("div.form-status", { id: "signin-status" });
  if (ctx.session.message) status.append(notice("info", ctx.session.message));
  const button = h("button.primary", { type: "submit" }, "Sign in");

  async function submit(event) {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) return;
    button.disabled = true;
    fill(status, notice("info", "Checking the token…"));
    try {
      const me = await getJSON("/me", { bearer: candidate, signal: ctx.signal });
      saveToken(candidate);
      ctx.signedIn(me);
    } catch (error) {
      if (error.name === "AbortError") return;
      const refused = error instanceof ApiError && error.status === 401;
      fill(status, notice("error", refused ? `Token refused: ${error.message}` : error.message));
      input.setAttribute("aria-invalid", "true");
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  }

  main.append(
    h("section.narrow", {},
      h("h1", { tabindex: -1 }, "Sign in"),
      h("p", {}, "The console uses the qruntime API with your bearer token, and shows only what that token may see."),
      h("form", { onsubmit: submit, "aria-describedby": "signin-status" },
        h("label", { for: "token" }, "Token"),
        input,
        h("p.help", { id: "token-help" },
          "On the machine running ", h("code", {}, "qruntime up"), ", ", h("code", {}, "qruntime tokens show"),
          " prints the admin's token. It is kept in this browser tab only, until you sign out or close it."),
        h("div.actions", {}, button)),
      status),
  );
  input.focus();
}

// The console's shell: hash routes to pages, who is signed in, and leaving a page cleanly.
//
// Each page module exports `render(main, ctx)`. ctx.signal is aborted when the user
// navigates away, which closes the page's streams and stops its polling.

import { forgetToken, getJSON, onUnauthorized, token } from "./api.js";
import { fill, h, notice, timeZoneName } from "./dom.js";
import * as backends from "./pages/backends.js";
import * as job from "./pages/job.js";
import * as jobs from "./pages/jobs.js";
import * as program from "./pages/program.js";
import * as programs from "./pages/programs.js";
import * as signin from "./pages/signin.js";

const HOME = "#/jobs";
const ROUTES = [
  { pattern: /^\/signin$/, page: signin, nav: null, open: true },
  { pattern: /^\/programs$/, page: programs, nav: "programs" },
  { pattern: /^\/programs\/([^/]+)$/, page: program, nav: "programs" },
  { pattern: /^\/jobs$/, page: jobs, nav: "jobs" },
  { pattern: /^\/jobs\/([^/]+)$/, page: job, nav: "jobs" },
  { pattern: /^\/backends$/, page: backends, nav: "backends" },
];

const session = { me: null, returnTo: HOME, message: "" };
let leaving = null;

function navigate(hash, { replace = false } = {}) {
  if (replace) location.replace(hash);
  else location.hash = hash;
}

async function whoAmI() {
  if (session.me) return session.me;
  // Without a saved token this still works on a server run with QRT_AUTH=off.
  session.me = await getJSON("/me");
  showWho();
  return session.me;
}

function signOut(message = "") {
  forgetToken();
  session.me = null;
  session.message = message;
  showWho();
  navigate("#/signin");
}

function showWho() {
  const who = document.getElementById("who");
  if (!session.me) {
    fill(who);
    return;
  }
  const label = h("span", {}, "Signed in as ", h("strong", {}, session.me.name), ` (${session.me.role})`);
  fill(who, label, token() ? h("button.link", { type: "button", onclick: () => signOut() }, "Sign out") : null);
}

function markNav(active) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show() {
  const hash = location.hash || HOME;
  const [path, query = ""] = hash.slice(1).split("?");
  const route = ROUTES.find((r) => r.pattern.test(path));
  if (!route) {
    navigate(HOME, { replace: true });
    return;
  }
  leaving?.abort();
  const controller = new AbortController();
  leaving = controller;
  const main = document.getElementById("main");
  if (!route.open) {
    try {
      await whoAmI();
    } catch {
      if (controller.signal.aborted) return;
      session.returnTo = hash;
      navigate("#/signin", { replace: true });
      return;
    }
  }
  if (controller.signal.aborted) return;
  markNav(route.nav);
  main.replaceChildren();
  main.setAttribute("aria-busy", "true");
  const ctx = {
    params: path.match(route.pattern).slice(1).map(decodeURIComponent),
    query: new URLSearchParams(query),
    signal: controller.signal,
    session,
    navigate,
    signedIn(me) {
      session.me = me;
      session.message = "";
      showWho();
      const target = session.returnTo;
      session.returnTo = HOME;
      navigate(target === "#/signin" ? HOME : target);
    },
  };
  try {
    await route.page.render(main, ctx);
  } catch (error) {
    if (error.name === "AbortError" || controller.signal.aborted) return;
    main.append(notice("error", error.message));
  } finally {
    if (!controller.signal.aborted) main.removeAttribute("aria-busy");
  }
  // Move focus to the new page's heading, unless the page put it somewhere on purpose.
  if (!controller.signal.aborted && !main.contains(document.activeElement)) {
    main.querySelector("h1")?.focus({ preventScroll: true });
  }
}

onUnauthorized((error) => signOut(`Signed out: ${error.message}`));
window.addEventListener("hashchange", show);
document.getElementById("timezone").textContent = `Times in ${timeZoneName()}`;
show();

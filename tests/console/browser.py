"""The console as a user sees it: Debian's headless Chromium driven by Playwright.

Playwright's own browser download cannot work here, so the tests launch the system
``chromium`` (``.ci/run`` installs it). A missing browser fails the tests loudly:
skipping them would let the console break unnoticed.

:class:`ConsolePage` wraps one browser tab with the few things a test does: sign in,
open a page, read what a chart shows, wait for a condition on the page (always with
a deadline), and save a screenshot to :data:`SCREENSHOTS_DIR`.
"""

from __future__ import annotations

import bisect
import gzip
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

#: Where a test run leaves its screenshots and frame-time figures (not committed).
SCREENSHOTS_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "console"
#: Longest a page condition may take before the test fails, in milliseconds.
PAGE_WAIT_MS = 60_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: Chromium trace categories that hold each frame's main-thread task and its rAF callbacks.
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline"]
#: A zone away from UTC, so a time shown in UTC instead of the browser's zone would show.
TIMEZONE = "Europe/Berlin"

#: Collects the console's own per-batch measures and the browser's long animation
#: frames (>50 ms) from the first moment of every page load.
FRAME_RECORDER = """
window.__consoleFrames = {batches: [], longFrames: [],
  longFramesObserved: PerformanceObserver.supportedEntryTypes.includes("long-animation-frame")};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.name !== "console:update-batch") continue;
    window.__consoleFrames.batches.push({start: e.startTime, duration: e.duration,
      events: e.detail && e.detail.events, interim: e.detail && e.detail.interim});
  }
}).observe({type: "measure", buffered: true});
if (window.__consoleFrames.longFramesObserved) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__consoleFrames.longFrames.push({start: e.startTime, duration: e.duration,
        blocking: e.blockingDuration, render: e.startTime + e.duration - e.renderStart,
        scripts: e.scripts.map((s) => `${s.invoker} ${Math.round(s.duration)} ms`)});
    }
  }).observe({type: "long-animation-frame", buffered: true});
}
"""


def chromium_path() -> str:
    """The system Chromium; fails the test (never skips) when there is none."""
    found = os.environ.get("QRT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise RuntimeError(
            f"No Chromium at {found}: the console tests need Debian's chromium "
            "(apt-get install chromium; .ci/run does it), or QRT_TEST_CHROMIUM=/path/to/chromium."
        )
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium for a test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


class ConsolePage:
    """One tab on the console at ``url``; JavaScript errors and CSP violations fail the test."""

    def __init__(self, browser: Browser, url: str, *, viewport: dict[str, int] = DESKTOP) -> None:
        self.url = url
        self.context = browser.new_context(viewport=viewport, timezone_id=TIMEZONE)
        self.context.add_init_script(FRAME_RECORDER)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(PAGE_WAIT_MS)
        self.errors: list[str] = []
        self.requested: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console_message)
        self.page.on("request", lambda request: self.requested.append(request.url))

    def _console_message(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)  # the page tried to load or run something the CSP forbids

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"JavaScript errors on the console: {self.errors}"

    # -- navigation ------------------------------------------------------------------

    def open(self, route: str = "") -> None:
        """Load the console (``route`` like ``#/jobs``) and wait for its first page."""
        self.page.goto(f"{self.url}/console/{route}")
        self.page.wait_for_selector("main h1")

    def go(self, route: str, heading: str) -> None:
        """Change the route as a link would (no reload) and wait for the page titled ``heading``."""
        self.page.evaluate("route => { location.hash = route; }", route)
        self.page.wait_for_selector(f"main h1:has-text({json.dumps(heading)})")
        self.page.wait_for_selector("main:not([aria-busy])")

    def sign_in(self, token: str) -> None:
        self.open("#/signin")
        self.page.fill("#token", token)
        self.page.click("form button[type=submit]")
        self.page.wait_for_selector("#who >> text=Signed in as")

    # -- reading the page ------------------------------------------------------------

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def status(self) -> str:
        return self.page.get_attribute(".title-row .badge", "data-status") or ""

    def points(self, field: str) -> int:
        """How many results the chart of ``field`` has drawn (0 before it exists)."""
        value = self.page.evaluate(
            "field => document.querySelector(`figure[data-field='${field}']`)?.dataset.points", field)
        return int(value or 0)

    def wait_for_points(self, field: str, at_least: int, *, unless: Sequence[str] = ()) -> tuple[int, str]:
        """Wait until the chart of ``field`` shows ``at_least`` results, or the job's status
        is one of ``unless``; return (results shown, status shown)."""
        self.page.wait_for_function(
            """([field, atLeast, unless]) =>
                 Number(document.querySelector(`figure[data-field='${field}']`)?.dataset.points || 0) >= atLeast
                 || unless.includes(document.querySelector('.title-row .badge')?.dataset.status)""",
            arg=[field, at_least, list(unless)],
        )
        return self.points(field), self.status()

    def wait_for_status(self, *statuses: str) -> str:
        self.page.wait_for_function(
            "statuses => statuses.includes(document.querySelector('.title-row .badge')?.dataset.status)",
            arg=list(statuses),
        )
        return self.status()

    def frame_stats(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.__consoleFrames")

    @contextmanager
    def traced(self, name: str) -> Iterator[list[dict[str, float]]]:
        """Record a Chromium trace of this tab (saved as ``name``.json.gz beside the screenshots);
        the list yielded is filled, on exit, with :func:`animation_frames` of the trace."""
        frames: list[dict[str, float]] = []
        browser = self.context.browser
        browser.start_tracing(page=self.page, categories=TRACE_CATEGORIES)
        try:
            yield frames
        finally:
            raw = browser.stop_tracing()
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS_DIR / f"{name}.json.gz").write_bytes(gzip.compress(raw))
        frames.extend(animation_frames(json.loads(raw)))

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def animation_frames(trace: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, float]]:
    """Each frame that ran requestAnimationFrame callbacks, from a Chromium trace.

    A frame's main-thread work is one task: the rAF callbacks (the console applies
    its queued events there), then style, layout and paint. For each such task this
    gives its wall time, its CPU time, and the rAF callbacks' wall time, in ms.
    """
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    callbacks = [e for e in events if e["name"] == "FireAnimationFrame" and e.get("ph") == "X"]
    threads = {(e["pid"], e["tid"]) for e in callbacks}
    tasks = sorted((e for e in events if e["name"] == "RunTask" and e.get("ph") == "X" and "dur" in e
                    and (e["pid"], e["tid"]) in threads), key=lambda e: e["ts"])
    starts = [t["ts"] for t in tasks]
    frames: dict[int, dict[str, float]] = {}
    for callback in callbacks:
        i = bisect.bisect_right(starts, callback["ts"]) - 1
        while i >= 0 and tasks[i]["ts"] + tasks[i]["dur"] < callback["ts"]:
            i -= 1
        if i < 0:
            continue
        task = tasks[i]
        frame = frames.setdefault(task["ts"], {"start_ms": task["ts"] / 1000, "wall_ms": task["dur"] / 1000,
                                               "cpu_ms": task.get("tdur", 0) / 1000, "raf_ms": 0.0})
        frame["raf_ms"] += callback["dur"] / 1000
    return [frames[start] for start in sorted(frames)]


def record(name: str, figures: dict[str, Any]) -> Path:
    """Write measured figures next to the screenshots (they are reported, never asserted)."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path

"""The docs are true: every runnable block in README.md and docs/*.md runs, and the
generated pages (docs/api.md, docs/configuration.md) are current.

Rules (also in docs/README.md): fenced blocks tagged ``python`` or ``bash`` run in
document order, each in its own process, in one scratch directory per page, against
a private stack with authentication on; ``http://127.0.0.1:8000`` and
``localhost:8000`` are replaced with the stack's URL, and the stack's admin token is
the saved default account (what ``qruntime up`` leaves). An HTML comment right above
a fence changes that: ``<!-- file: NAME -->`` writes the block to NAME in the page's
scratch directory instead of running it; ``<!-- not-run: REASON -->`` leaves it out
(no test is made for it: a skipped test is not a pass), and
``test_every_block_left_out_says_why`` lists each one with its reason, so exclusions stay
visible.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.harness import Stack, running_stack

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"python": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
LOCAL_URLS = ("http://127.0.0.1:8000", "http://localhost:8000", "localhost:8000")
#: Longest one block may run (a job on a simulator takes about a second).
BLOCK_TIMEOUT_S = 120
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*(file|not-run)\s*:\s*(.*?)\s*-->\s*$", re.S)
#: Names the code reads that are no ``Settings`` field and no client variable: none so far.
NOT_SETTINGS: set[str] = set()


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    file: str = ""
    not_run: str = ""

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}-{self.language or 'text'}"


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of a page, with the marker on the line above it, if any."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        kind, value = (marker.group(1), marker.group(2)) if marker else ("", "")
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group(1).lower(),
                           match.group(2), file=value if kind == "file" else "",
                           not_run=value if kind == "not-run" else ""))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
RUNNABLE = [b for b in ALL_BLOCKS if b.file or b.language in RUN_LANGUAGES]
ACTIVE = [b for b in RUNNABLE if not b.not_run]
LEFT_OUT = [b for b in RUNNABLE if b.not_run]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the generated pages ---------------------------------------------------------------

def test_configuration_page_matches_the_settings() -> None:
    text = _load("gen_config").render()
    assert (ROOT / "docs" / "configuration.md").read_text() == text, (
        "docs/configuration.md is stale: run python docs/gen_config.py")


def test_api_page_matches_the_openapi_document() -> None:
    text = _load("gen_api").render()
    assert (ROOT / "docs" / "api.md").read_text() == text, "docs/api.md is stale: run python docs/gen_api.py"


def test_every_qrt_variable_the_code_reads_is_documented() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    names = set()
    for folder in ("qruntime", "api", "orchestrator", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"\bQRT_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    missing = sorted(n for n in names - NOT_SETTINGS if f"`{n}`" not in page)
    assert not missing, (f"{missing} are read by the code but not in docs/configuration.md: add a "
                         "Settings field with a #: comment, or an entry in docs/gen_config.py's OTHER_VARIABLES")


def test_the_readme_links_every_page_of_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert not sorted(p for p in pages if f"docs/{p}" not in readme)


def test_every_block_left_out_says_why() -> None:
    """The blocks no test runs, each with its reason (printed with ``-s``); none without one."""
    for block in LEFT_OUT:
        print(f"left out: {block.name}: {block.not_run}")
        assert len(block.not_run.strip()) >= 10, f"{block.name} is left out without a reason worth the name"
    assert len(LEFT_OUT) < len(ACTIVE), "most runnable blocks must run"


def test_every_marker_sits_right_above_a_block() -> None:
    """A marker separated from its fence by a blank line or text would silently do nothing."""
    for page in PAGES:
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines):
            if MARKER.search(line):
                following = lines[number + 1] if number + 1 < len(lines) else ""
                assert following.startswith("```"), f"{page.name}:{number + 1}: marker not above a fence"


# -- the blocks ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def doc_stack() -> Iterator[Stack]:
    with running_stack(concurrency=2, auth="on") as stack:
        yield stack


@pytest.fixture(scope="module")
def doc_env(doc_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh user's environment after ``qruntime up``: a saved default account, no QRT_URL/QRT_TOKEN."""
    account = tmp_path_factory.mktemp("account") / "account.json"
    account.write_text(json.dumps({"default": doc_stack.url,
                                   "accounts": {doc_stack.url: {"token": doc_stack.admin_token}}}))
    account.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRT_")}
    env["QRT_ACCOUNT_FILE"] = str(account)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def page_dirs() -> Iterator[dict[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="qrt-docs-") as scratch:
        dirs: dict[Path, Path] = {}
        for page in PAGES:
            dirs[page] = Path(scratch) / str(page.relative_to(ROOT)).replace("/", "_").removesuffix(".md")
            dirs[page].mkdir()
        yield dirs


def _localize(code: str, url: str) -> str:
    for local in LOCAL_URLS:
        code = code.replace(local, url)
    return code


@pytest.mark.parametrize("block", ACTIVE, ids=[b.name for b in ACTIVE])
def test_doc_block_runs(block: Block, doc_stack: Stack, doc_env: dict[str, str],
                        page_dirs: dict[Path, Path]) -> None:
    workdir = page_dirs[block.page]
    if block.file:
        target = workdir / block.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
        return
    code = _localize(block.code, doc_stack.url)
    if RUN_LANGUAGES[block.language] == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=workdir, env=doc_env, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT_S)
    assert done.returncode == 0, (f"{block.name} failed with exit code {done.returncode}\n--- block\n{code}"
                                  f"\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")

"""The ``qruntime`` parser as a newcomer meets it: help for every option, and shell completion.

No stack is needed: these read the parser (``qruntime.cli.build_parser``) and run the
command the way a shell runs it to complete a word.
"""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from qruntime.cli import build_parser

#: The commands registered by qruntime/cli/client.py and qruntime/cli/publishing.py.
CLIENT_COMMANDS = ("programs", "program", "run", "follow", "jobs", "job", "result", "logs", "cancel", "delete",
                   "backends", "completion", "upload", "update", "delete-program", "publish", "unpublish",
                   "versions")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself included), with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def undocumented(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    """The options and arguments of one command without help, or (taking a value) without their default."""
    problems = []
    visible_dests = {a.dest for a in parser._actions if a.help != argparse.SUPPRESS}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        where = f"qruntime {' '.join(path)} {name}".replace("  ", " ")
        if action.help == argparse.SUPPRESS:
            if action.dest not in visible_dests:
                problems.append(f"{where}: hidden, but not an alias of a visible option")
            continue
        if not action.help:
            problems.append(f"{where}: no help")
            continue
        takes_value = action.nargs != 0
        optional = bool(action.option_strings) or action.nargs in ("?", "*")
        shown = parser._get_formatter()._format_action(action)
        if takes_value and optional and "default" not in shown:
            problems.append(f"{where}: help does not name the default")
    return problems


def test_every_option_of_the_client_and_program_commands_has_help_naming_its_default() -> None:
    found = dict(commands(build_parser()))
    assert {path[0] for path in found if path} >= set(CLIENT_COMMANDS)
    problems = [p for path, parser in found.items() if path and path[0] in CLIENT_COMMANDS
                for p in undocumented(path, parser)]
    assert problems == []


def test_every_option_of_every_command_has_help_naming_its_default() -> None:
    problems = [p for path, parser in commands(build_parser()) for p in undocumented(path, parser)]
    assert problems == []


def test_limit_and_offset_are_documented_and_skip_is_a_hidden_alias() -> None:
    found = dict(commands(build_parser()))
    for command in ("jobs", "programs"):
        shown = found[(command,)].format_help()
        assert "--offset OFFSET" in shown and "--limit LIMIT" in shown and "--skip" not in shown
        assert "(default: 0)" in shown
    assert "--log-level LEVEL" in found[("run",)].format_help()
    assert "--loglevel" not in found[("run",)].format_help()


def test_the_bash_code_from_qruntime_completion_completes_commands_and_options(tmp_path: Path) -> None:
    # The shell runs `qruntime`: here, this checkout's, as the console script would.
    command = tmp_path / "qruntime"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} -m qruntime "$@"\n')
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    script = """
source <(qruntime completion bash)
complete_line() {
  COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$1"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=(); _python_argcomplete qruntime "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
  echo "${COMPREPLY[*]}"
}
complete_line "qruntime fol"
complete_line "qruntime jobs --off"
complete_line "qruntime completion z"
complete_line "qruntime jobs --sk"
"""
    done = subprocess.run(["bash", "-c", script], env=env, cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines()] == ["follow", "--offset", "zsh", ""]


def test_qruntime_completion_prints_code_for_bash_and_zsh() -> None:
    for shell in ("bash", "zsh"):
        done = subprocess.run([sys.executable, "-m", "qruntime", "completion", shell], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "_python_argcomplete" in done.stdout and "qruntime" in done.stdout
    main = (Path(__file__).resolve().parents[1] / "qruntime" / "__main__.py").read_text()
    assert "PYTHON_ARGCOMPLETE_OK" in main[:1024]  # argcomplete's global completion looks there


def test_a_usage_error_is_one_qruntime_line_naming_the_help_to_read() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "qruntime", "jobs", "--limit", "many"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "qruntime: Argument --limit: invalid int value: 'many'; see 'qruntime jobs --help'.\n"

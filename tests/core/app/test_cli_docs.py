"""The docs describe the command line there is: docs/cli.md has a section for every `tradectl` command
with a row for each of its options and arguments, and every `tradectl ...` written in docs/*.md or
README.md names a command that exists and only options it has.

The commands come from the real typer app (the click tree ``tradectl`` runs), not from a list kept here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main

from core.app.cli import app

ROOT = Path(__file__).parents[3]
REFERENCE = ROOT / "docs" / "cli.md"
TYPER_OWN = frozenset({"--install-completion", "--show-completion", "--help"})  # typer's, not ours to describe

_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[^\n]*$", re.MULTILINE | re.DOTALL)
# an inline code span; it may run over a line break, but not past a paragraph or a table row
_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n\s*[|\n]).)+?)(?<!`)\1(?!`)", re.DOTALL)
# where one shell command ends and the next begins; ` | ` with spaces only, `a|b` is a list of choices
_SEPARATOR = re.compile(r"\s\|\|?\s|&&|;|\$\(|[()`]")
# the start of a command: a prompt, VAR=value assignments, then tradectl (or a path to it, not Slack's /tradectl)
_START = re.compile(r"^\s*(?:\$\s+)?(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:\S+/)?tradectl(?:\s+(?P<rest>.*))?$",
                    re.DOTALL)
_PLACEHOLDER = re.compile(r"^(?:<[^>]*>|[A-Z][A-Z0-9_]*|\.\.\.|…)$")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.*)$", re.MULTILINE)
_PATH = re.compile(r"^tradectl((?:\s+[a-z][a-z0-9-]*)*)(?:\s|$)")


def command_tree() -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the real CLI with its path: () for ``tradectl`` itself, ("db", "backup"), ..."""
    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


def option_names(cmd: Any) -> set[str]:
    """All spellings of the command's options, long and short, and --help."""
    names = {"--help"}
    for param in cmd.params:
        if param.param_type_name == "option":
            names.update(param.opts, param.secondary_opts)
    return names


def argument_names(cmd: Any) -> set[str]:
    return {param.name.upper() for param in cmd.params if param.param_type_name == "argument"}


def problem(tokens: list[str], root: Any) -> str | None:
    """What is wrong with ``tradectl <tokens>``, or None. Placeholders (``<command>``, ``ARGS``, ``...``)
    stand for what cannot be checked; ``a|b`` names alternatives; ``[--opt X]`` marks an optional part."""
    cmd, path = root, "tradectl"
    for raw in tokens:
        token = raw.strip("[]")
        if not token or token.startswith((">", "2>")) or token == "<":
            return None  # a redirection: the command ended
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            if name not in option_names(cmd):
                return f"`{path}` has no option {name}"
            continue
        commands = getattr(cmd, "commands", None)
        if commands is None:
            continue  # an argument or an option's value
        if _PLACEHOLDER.match(token):
            return None
        choices = token.split("|")
        unknown = [c for c in choices if c not in commands]
        if unknown:
            return f"`{path}` has no command {unknown[0]!r}"
        if len(choices) > 1:
            return None
        cmd, path = commands[token], f"{path} {token}"
    return None


@dataclass(frozen=True)
class Invocation:
    where: str
    tokens: list[str]

    def __str__(self) -> str:
        return f"{self.where}: tradectl {' '.join(self.tokens)}"


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an apostrophe in prose
        return text.split()


def _blank(match: re.Match[str]) -> str:
    """A fenced code block's lines, emptied: what is outside it keeps its line numbers."""
    return "\n" * match.group(0).count("\n")


def invocations(text: str, name: str) -> list[Invocation]:
    """Every ``tradectl ...`` in the fenced code blocks and inline code spans of a Markdown text."""
    found: list[Invocation] = []

    def scan(code: str, line: int) -> None:
        for segment in _SEPARATOR.split(code):
            match = _START.match(segment)
            if match and match["rest"]:
                found.append(Invocation(f"{name}:{line}", _split(match["rest"])))

    for block in _FENCE.finditer(text):
        number = text.count("\n", 0, block.start(2)) + 1
        # a line ending in a backslash continues on the next one: scanned whole, under its first line's number
        for line in re.split(r"(?<!\\)\n", block.group(2)):
            scan(line.replace("\\\n", " "), number)
            number += line.count("\n") + 1
    prose = _FENCE.sub(_blank, text)
    for span in _SPAN.finditer(prose):
        scan(span.group(2).replace("\\|", "|").replace("\n", " "), prose.count("\n", 0, span.start()) + 1)
    return found


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sections(text: str) -> dict[tuple[str, ...], str]:
    """docs/cli.md's sections by the command a code span in their heading names (`tradectl db backup PATH`
    -> ("db", "backup")); a section runs to the next heading ("# ..." lines in code blocks are not headings)."""
    text = _FENCE.sub(_blank, text)
    headings = list(_HEADING.finditer(text))
    out: dict[tuple[str, ...], str] = {}
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        for span in _SPAN.finditer(heading["title"]):
            match = _PATH.match(span.group(2))
            if match:
                out[tuple(match.group(1).split())] = text[heading.end():end]
                break
    return out


def documented(section: str) -> set[str]:
    """The options and arguments a section's tables describe: the first word of each code span in a row's
    first cell, for rows whose last cell says something."""
    names: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if not line.lstrip().startswith("|") or len(cells) < 2 or not cells[-1].strip("-: "):
            continue
        names.update(span.group(2).split()[0] for span in _SPAN.finditer(cells[0]) if span.group(2).strip())
    return names


def reference_problems(text: str) -> list[str]:
    """What docs/cli.md (``text``) lacks or has too many: a section per command, and in it a table row
    for each long option (typer's own left out) and argument; rows for options the command does not have."""
    by_path = sections(text)
    problems: list[str] = []
    for path, cmd in command_tree():
        title = " ".join(("tradectl", *path))
        if path not in by_path:
            problems.append(f"no section whose heading names `{title}`")
            continue
        described = documented(by_path[path])
        wanted = {n for n in option_names(cmd) if n.startswith("--")} - TYPER_OWN | argument_names(cmd)
        problems += [f"`{title}`: no table row for {n}" for n in sorted(wanted - described)]
        stale = described - option_names(cmd) - argument_names(cmd) - TYPER_OWN
        problems += [f"`{title}`: a row for {n}, which it does not have" for n in sorted(stale)]
    return problems


def test_the_reference_describes_every_command_option_and_argument() -> None:
    assert REFERENCE.exists(), "docs/cli.md, the command-line reference, is missing"
    problems = reference_problems(REFERENCE.read_text())
    assert not problems, "docs/cli.md is out of date:\n" + "\n".join(problems)


def test_every_tradectl_written_in_the_docs_exists() -> None:
    root = typer.main.get_command(app)
    found = [inv for path in doc_files() for inv in invocations(path.read_text(), path.relative_to(ROOT).as_posix())]
    assert len(found) > 100, f"only {len(found)} `tradectl ...` found in the docs: the parser lost them"
    wrong = [f"{inv}  <- {why}" for inv in found if (why := problem(inv.tokens, root))]
    assert not wrong, "the docs show commands or options that do not exist:\n" + "\n".join(wrong)


def test_the_docs_check_finds_what_a_reader_would_type() -> None:
    text = "\n".join([
        "Run `tradectl db bakup PATH` or `tradectl vault init|set|lst`, then",
        "`printf '/status\\n' | tradectl run --exit-afterinput` and `tradectl\ntune --oss 0.2`.",
        "```sh",
        "TRADECTL_X=1 tradectl data download --venue kraken|coinbase --pair BTC/USD \\",
        "    --timefram 1h   # a comment --not-an-option",
        "$ tradectl --verison",
        "```",
        "Not commands: `/tradectl status` (Slack), `docker run --name tradectl -v x:/y tradectl`, `tradectl.toml`,",
        "`tradectl <command> --help`, `tradectl ARGS`, `tradectl vault set ...`, `tradectl db backup a.db`,",
        "`tradectl tune --grid a.b=1 --samples 3 -q`, `tradectl vault init\\|rotate --path=v.bin`.",
    ])
    root = typer.main.get_command(app)
    found = invocations(text, "t.md")
    assert [(inv.where, why) for inv in found if (why := problem(inv.tokens, root))] == [
        ("t.md:5", "`tradectl data download` has no option --timefram"),
        ("t.md:7", "`tradectl` has no option --verison"),
        ("t.md:1", "`tradectl db` has no command 'bakup'"),
        ("t.md:1", "`tradectl vault` has no command 'lst'"),
        ("t.md:2", "`tradectl run` has no option --exit-afterinput"),
        ("t.md:2", "`tradectl tune` has no option --oss"),
    ]
    assert len(found) == 12


def test_the_reference_check_finds_missing_sections_and_rows_and_stale_rows() -> None:
    text = REFERENCE.read_text()
    edits = {"| `--revision REV` |": "| revision |", "`--trials N`, `--samples N`": "`--trials N`",
             "### `tradectl data list`": "### tradectl data list",
             "| `--dry-run` |": "| `--dry-runs` | gone |\n| `--dry-run` |",
             "| `NAME` | The secret's name. |": "| `NAME` | |"}
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    assert reference_problems(text) == [
        "no section whose heading names `tradectl data list`",
        "`tradectl db upgrade`: no table row for --revision",
        "`tradectl tune`: no table row for --samples",
        "`tradectl tune`: a row for --dry-runs, which it does not have",
        "`tradectl vault delete`: no table row for NAME",
    ]

"""Rewrite README.md's command-line synopses from the parser itself.

The block between ``<!-- cli-synopsis -->`` and ``<!-- /cli-synopsis -->`` is generated
from ``napari_wbcseg.cli.build_parser()`` (every subcommand, its one-line help and every
option, choices spelled out), so the README cannot drift from ``--help``;
``tests/test_cli_help.py`` fails when it has.  Run after changing an option:

    .venv/bin/python scripts/cli_synopsis.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

START = "<!-- cli-synopsis -->"
END = "<!-- /cli-synopsis -->"
README = Path(__file__).resolve().parents[1] / "README.md"
WIDTH = 92


def _value(action) -> str:
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        word = "|".join(map(str, action.choices))
    else:
        word = action.metavar or action.dest.upper()
    if action.nargs == "+":
        return f"{word}..."
    if action.nargs == "*":
        return f"[{word}...]"
    if action.nargs == "?":
        return f"[{word}]"
    return word


def _token(action) -> str:
    if not action.option_strings:  # positional
        return _value(action)
    longs = [s for s in action.option_strings if s.startswith("--")] or action.option_strings
    if isinstance(action, argparse.BooleanOptionalAction):
        text = f"--[no-]{longs[0][2:]}"
    elif action.nargs == 0:
        text = longs[0]
    else:
        text = f"{longs[0]} {_value(action)}"
    return text if action.required else f"[{text}]"


def _wrap(tokens: list[str]) -> list[str]:
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + 1 + len(token) > WIDTH:
            lines.append(line)
            line = "    " + token
        else:
            line = f"{line} {token}" if line else token
    return lines + [line]


def synopsis_block() -> str:
    """The generated text between the markers (a fenced block, one synopsis a command)."""
    from napari_wbcseg.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = ["<!-- generated from the parser by scripts/cli_synopsis.py; do not edit -->",
           "```text"]
    for name, command in sub.choices.items():
        tokens = [f"napari-wbcseg {name}"] + [
            _token(a) for a in command._actions if not isinstance(a, argparse._HelpAction)]
        out += [f"# {helps.get(name, '')}"] + _wrap(tokens)
    out.append("```")
    return "\n".join(out)


def current_block(text: str) -> str:
    """The text between the markers of ``text``; ValueError when they are missing."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return text[start + len(START):end].strip("\n")


def rewrite(text: str) -> str:
    """``text`` with its marked block replaced by :func:`synopsis_block`."""
    current_block(text)  # the markers are there
    start, end = text.find(START) + len(START), text.find(END)
    return f"{text[:start]}\n{synopsis_block()}\n{text[end:]}"


def main() -> int:
    from napari_wbcseg.io.atomic import write_text_atomic

    old = README.read_text(encoding="utf-8")
    try:
        new = rewrite(old)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if new != old:
        write_text_atomic(README, new)
    print(f"{README.name}: synopses {'rewritten' if new != old else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

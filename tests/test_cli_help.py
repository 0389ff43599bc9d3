"""The command line read as a newcomer (issue 14, item 10): every subcommand described,
every option helped (with its default), one ``--device``, the README's synopses generated
from the parser, the default model marked, a missing input one error line."""
import argparse
import importlib.util
from pathlib import Path

import pytest

from napari_wbcseg.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def subcommands(parser):
    """``{name: subparser}`` of every subcommand (one level: the CLI has no deeper ones)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser):
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


COMMANDS = sorted(subcommands(build_parser()))


def test_the_cli_has_its_subcommands():
    assert {"demo", "preprocess", "segment", "models", "architectures", "train", "evaluate",
            "train-classifier", "classifiers"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_a_description_and_help(command):
    parser = build_parser()
    sub = subcommands(parser)[command]
    assert sub.description and len(sub.description) > 20, command
    listed = {a.dest: a.help for a in subcommands_action(parser)._choices_actions}
    assert listed.get(command), f"{command} has no one-line help in `napari-wbcseg --help`"


def subcommands_action(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_that_names_its_default(command):
    sub = subcommands(build_parser())[command]
    for action in options(sub):
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {name}: no help"
        if action.default not in (None, False, argparse.SUPPRESS) and not action.required:
            assert "default" in action.help, f"{command} {name}: help does not give the default"


def test_the_top_level_options_have_help():
    for action in options(build_parser()):
        assert action.help, action.option_strings


def test_device_is_one_definition_everywhere():
    from napari_wbcseg.cli_args import DEVICE_HELP

    found = {}
    for command, sub in subcommands(build_parser()).items():
        for action in options(sub):
            if "--device" in action.option_strings:
                found[command] = (action.help, action.default, action.type, action.metavar)
    assert {"demo", "segment", "evaluate"} <= set(found)
    assert len(set(found.values())) == 1, found
    assert next(iter(found.values()))[0] == DEVICE_HELP
    for word in ("auto", "cpu", "cuda", "cuda:N", "mps", "default"):
        assert word in DEVICE_HELP


@pytest.mark.parametrize("command", ["segment", "demo", "evaluate", "train"])
def test_help_prints_without_error(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: napari-wbcseg " + command)


# ------------------------------------------------------------------ README synopses
def load_synopsis_script():
    spec = importlib.util.spec_from_file_location("cli_synopsis",
                                                  REPO / "scripts" / "cli_synopsis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_synopsis_block_is_the_generated_one():
    script = load_synopsis_script()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert script.current_block(readme) == script.synopsis_block(), (
        "README.md's CLI synopses differ from the parser: run "
        ".venv/bin/python scripts/cli_synopsis.py")


def test_synopsis_lists_every_command_and_option():
    import re

    text = load_synopsis_script().synopsis_block()
    text = re.sub(r"--\[no-\]([\w-]+)", r"--\1 --no-\1", text)  # --[no-]X: both flags
    for command, sub in subcommands(build_parser()).items():
        assert f"napari-wbcseg {command}" in text
        for action in options(sub):
            for flag in action.option_strings:
                if flag.startswith("--"):
                    assert flag in text, (command, flag)


def test_synopsis_script_rewrites_only_the_marked_block(tmp_path):
    script = load_synopsis_script()
    stale = (f"# T\n\nbefore\n\n{script.START}\nold text\n{script.END}\n\nafter\n")
    fresh = script.rewrite(stale)
    assert fresh.startswith("# T\n\nbefore\n\n") and fresh.endswith("\n\nafter\n")
    assert "old text" not in fresh and script.current_block(fresh) == script.synopsis_block()
    with pytest.raises(ValueError):
        script.rewrite("no markers here")


# ------------------------------------------------------------------ models
def test_models_marks_the_default(tiny_model, capsys):
    from napari_wbcseg.io.model_store import DEFAULT_MODEL

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [ln for ln in lines if ln.startswith("* ")]
    assert any(ln.split()[1] == DEFAULT_MODEL for ln in marked), lines
    assert any("default" in ln and DEFAULT_MODEL in ln for ln in marked), "no legend line"
    tiny = next(ln for ln in lines if ln.split() and ln.split()[0] == "tiny")
    assert not tiny.startswith("*")


# ------------------------------------------------------------------ missing inputs
@pytest.mark.parametrize("argv, words", [
    (["segment", "missing.png", "--out", "OUT", "--model", "tiny", "--device", "cpu"],
     ["missing.png"]),
    (["preprocess", "missing.png", "--out", "OUT"], ["missing.png"]),
    (["evaluate", "--data", "missing", "--model", "tiny", "--device", "cpu"], ["missing"]),
    (["evaluate", "--data", "missing"], ["missing"]),
    (["demo", "--image", "missing.png", "--headless", "--out", "OUT"], ["missing.png"]),
])
def test_a_missing_input_is_one_line(argv, words, tmp_path, tiny_model, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    capfd.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capfd.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and all(w in err[0] for w in words), err
    assert "Traceback" not in captured.err + captured.out

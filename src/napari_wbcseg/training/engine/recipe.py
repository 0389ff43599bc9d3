"""A model card's training recipe as stages to run again (Qt-free, no torch).

A card's ``training.reproduce.commands`` lists the ``napari-wbcseg train`` commands that
made the model: the first from ImageNet or scratch, each later one continuing an earlier
stage's output (``--continues RUNj/NAME.safetensors``).  A per-cell classifier's recipe
holds ``napari-wbcseg train-classifier`` commands instead.  :func:`recipe_stages` turns them
into argument lists for this machine: the user's data folders, every output and
checkpoint inside one folder, never installed.  A card is data from a file, so only the
flags of ``train`` pass, and nothing a command names may point outside that folder.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

MAX_STAGES = 20
MAX_COMMAND_CHARS = 4000
# flags a recipe may not carry: the stage's files are placed by recipe_stages alone
_REFUSED = ("--resume", "--checkpoint-dir")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_CONTINUES = re.compile(rf"RUN(\d{{1,2}})/({_NAME})\.safetensors")


class RecipeError(ValueError):
    """A card without a usable recipe (no commands, or a command that is not a plain
    ``napari-wbcseg train`` or ``train-classifier`` of this folder's stages)."""


@dataclass(frozen=True)
class Stage:
    number: int
    folder: Path  # OUT/RUNk: the stage's weights and card
    argv: list  # ``train ...`` as ``napari_wbcseg.cli.main`` takes it
    name: str  # the model name the stage writes


def recipe_commands(card: dict) -> list:
    """The card's recipe commands (``RecipeError`` when it has none)."""
    commands = ((card.get("training") or {}).get("reproduce") or {}).get("commands")
    if not commands:
        raise RecipeError(f"the card of {card.get('name', '?')!r} records no recipe "
                          "(training.reproduce.commands): it cannot be reproduced by one "
                          "command")
    if (not isinstance(commands, list) or len(commands) > MAX_STAGES
            or not all(isinstance(c, str) and len(c) <= MAX_COMMAND_CHARS for c in commands)):
        raise RecipeError(f"training.reproduce.commands must be a list of at most "
                          f"{MAX_STAGES} command strings")
    return commands


def recipe_stages(card: dict, data: list, out: Path) -> list:
    """The card's recipe as :class:`Stage` s writing into ``out`` and reading ``data``."""
    out = Path(out)
    stages = []
    for k, command in enumerate(recipe_commands(card), 1):
        try:
            tokens = shlex.split(command)
        except ValueError as exc:
            raise RecipeError(f"recipe stage {k}: {exc}") from None
        if tokens[:1] != ["napari-wbcseg"] or tokens[1:2] not in (["train"],
                                                                   ["train-classifier"]):
            raise RecipeError(f"recipe stage {k} is not a `napari-wbcseg train` or "
                              f"`train-classifier` command: {command[:80]!r}")
        stages.append(_stage(k, tokens[1], _split_equals(tokens[2:]), [str(d) for d in data],
                             out))
    return stages


def _split_equals(tokens: list) -> list:
    """``--flag=value`` as ``--flag value`` (the form argparse accepts either way)."""
    flat = []
    for t in tokens:
        if t.startswith("--") and "=" in t:
            flat.extend(t.split("=", 1))
        else:
            flat.append(t)
    return flat


def _stage(k: int, command: str, tokens: list, data: list, out: Path) -> Stage:
    argv, name, i, seen_out, seen_data = [command], None, 0, False, False
    classifier = command == "train-classifier"
    while i < len(tokens):
        t = tokens[i]
        if t in _REFUSED:
            raise RecipeError(f"recipe stage {k}: {t} is placed by reproduce, not by a card")
        if classifier and t == "--init" and tokens[i + 1:i + 2] not in (["imagenet"],
                                                                        ["scratch"]):
            # auto or a name would start from whatever this machine has installed
            raise RecipeError(f"recipe stage {k}: a classifier stage starts from --init "
                              "imagenet or scratch")
        if t == "--data":  # its values: up to the next flag
            i += 1
            while i < len(tokens) and not tokens[i].startswith("--"):
                i += 1
            argv += ["--data", *data]
            seen_data = True
            continue
        if t in ("--out", "--continues", "--name") and i + 1 >= len(tokens):
            raise RecipeError(f"recipe stage {k}: {t} without a value")
        if t == "--out":
            if tokens[i + 1] != f"RUN{k}":
                raise RecipeError(f"recipe stage {k}: --out must be RUN{k}, got "
                                  f"{tokens[i + 1][:80]!r}")
            argv += ["--out", str(out / f"RUN{k}")]
            seen_out, i = True, i + 2
            continue
        if t == "--continues":
            m = _CONTINUES.fullmatch(tokens[i + 1])
            if not m or not 1 <= int(m.group(1)) < k:
                raise RecipeError(f"recipe stage {k}: --continues must name an earlier "
                                  f"stage's weights (RUNj/NAME.safetensors, j < {k}), got "
                                  f"{tokens[i + 1][:80]!r}")
            argv += ["--continues", str(out / tokens[i + 1])]
            i += 2
            continue
        if t == "--name":
            name = tokens[i + 1]
            if not re.fullmatch(_NAME, name) or ".." in name:
                raise RecipeError(f"recipe stage {k}: --name must be a plain file name, "
                                  f"got {name[:80]!r}")
        argv.append(t)
        i += 1
    if name is None or not seen_out:
        raise RecipeError(f"recipe stage {k}: needs --name and --out RUN{k}")
    if not seen_data:
        argv += ["--data", *data]
    if classifier and "--init" not in argv:
        argv += ["--init", "imagenet"]  # not auto: see above
    if "--no-install" not in argv:
        argv.append("--no-install")  # a rebuilt bundled model must not shadow the bundled one
    if not classifier:  # the classifier's few minutes keep no checkpoints
        argv += ["--checkpoint-dir", str(out / "checkpoints" / f"RUN{k}")]
    return Stage(k, out / f"RUN{k}", argv, name)


def selection_score(card: dict) -> float:
    """The loop's score of the card's best epoch on the inner selection split (what each
    stage is kept by); NaN without one."""
    from .loop import _score

    if card.get("kind") == "cell-classifier":  # its selection accuracy
        accuracy = (card.get("selection") or {}).get("accuracy")
        return float(accuracy) if isinstance(accuracy, (int, float)) else float("nan")
    summary = (card.get("selection") or {}).get("summary") or {}
    settings = (card.get("training") or {}).get("settings") or {}
    return _score(summary, not settings.get("score_without_classes", False))


__all__ = ["MAX_STAGES", "RecipeError", "Stage", "recipe_commands", "recipe_stages",
           "selection_score"]

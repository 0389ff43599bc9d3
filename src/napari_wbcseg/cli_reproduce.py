"""``napari-wbcseg reproduce MODEL``: rebuild a model from its card's recipe, one command.

The stages of ``training.reproduce.commands`` run one after another in this process, each
writing ``OUT/RUNk``.  A stage finished by an earlier call (same command) is skipped, so
an interrupted reproduction continues at the stage it was in.  At the end the stage with
the best score on the inner selection split (never validation) is copied to
``OUT/NAME.safetensors`` with its card, which records this command, the hardware and the
minutes each stage took.
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from .cli_args import check_out_dir, writing

STAGE_MARK = "stage.json"  # in OUT/RUNk once the stage finished: the command it ran


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="rebuild a model from its card's training recipe (one command)",
        description="Run the training recipe recorded in a model's card "
        "(training.reproduce.commands) from start to end: each stage writes OUT/RUNk, and "
        "a later call skips the stages already finished.  The stage that scores best on the "
        "inner selection split is copied to OUT/NAME.safetensors, with a card recording the "
        "command, the hardware and the time.  Nothing is installed.")
    p.add_argument("model", metavar="MODEL",
                   help="model or per-cell classifier name (see `napari-wbcseg models`, "
                   "`napari-wbcseg classifiers`) or .safetensors file whose card holds the "
                   "recipe")
    p.add_argument("--data", metavar="DIR", nargs="+", required=True,
                   help="the training data folder(s), in place of the recipe's own "
                   "(e.g. ../shared/data)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the stages, their checkpoints and the result (created)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the train commands of each stage and stop")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    from .cli import CliError
    from .io.model_store import ModelNotFoundError
    from .training.engine.recipe import RecipeError, recipe_stages

    try:
        entry = _find_entry(args.model)
        stages = recipe_stages(entry.card, args.data, Path(args.out))
    except (ModelNotFoundError, RecipeError) as exc:
        raise CliError(str(exc.args[0] if exc.args else exc)) from None
    missing = [d for d in args.data if not Path(d).exists()]
    if missing:
        raise CliError(f"--data: {', '.join(missing)} not found")
    if args.dry_run:
        for stage in stages:
            print(" ".join(["napari-wbcseg"] + [shlex.quote(a) for a in stage.argv]))
        return 0
    check_out_dir(args.out)
    rows = [_run_stage(stage, len(stages)) for stage in stages]
    return _keep_best(entry.name, stages, rows, args)


def _find_entry(name):
    """A segmentation model, else a per-cell classifier, of this name or file."""
    from .io.classifier_store import find_classifier
    from .io.model_store import ModelNotFoundError, find_model

    try:
        return find_model(name)
    except ModelNotFoundError as not_a_model:
        try:
            return find_classifier(name)
        except ModelNotFoundError:
            raise not_a_model from None


def _run_stage(stage, n: int) -> dict:
    """Run one stage (or find it finished); its seconds and card."""
    from .cli import CliError, build_parser

    mark = stage.folder / STAGE_MARK
    card_path = stage.folder / f"{stage.name}.json"
    weights = stage.folder / f"{stage.name}.safetensors"
    shown = " ".join(["napari-wbcseg"] + [shlex.quote(a) for a in stage.argv])
    if mark.is_file() and weights.is_file() and card_path.is_file():
        done = _read_json(mark)
        if done.get("argv") == stage.argv:
            print(f"stage {stage.number}/{n}: already finished in {stage.folder}, skipped",
                  flush=True)
            return {"seconds": done.get("seconds"), "card": _read_json(card_path),
                    "skipped": True}
    print(f"stage {stage.number}/{n}: {shown}", flush=True)
    try:
        args = build_parser().parse_args(stage.argv)
    except SystemExit:
        raise CliError(f"recipe stage {stage.number} is not a train command this version "
                       "accepts (see above)") from None
    args.argv = list(stage.argv)
    t0 = time.perf_counter()
    try:
        args.func(args)
    except CliError as exc:
        raise CliError(f"recipe stage {stage.number}: {exc}") from None
    seconds = round(time.perf_counter() - t0, 1)
    from .io.atomic import write_text_atomic

    with writing(f"the stage mark {mark}"):
        write_text_atomic(mark, json.dumps({"argv": stage.argv, "seconds": seconds}))
    return {"seconds": seconds, "card": _read_json(card_path), "skipped": False}


def _keep_best(model: str, stages, rows, args) -> int:
    """Copy the stage best on the selection split to OUT/NAME.*; print the stages."""
    import math

    from .io.atomic import write_bytes_atomic, write_text_atomic
    from .training.engine.bundle import hardware
    from .training.engine.recipe import selection_score

    scores = [selection_score(r["card"]) for r in rows]
    ranked = [(s if math.isfinite(s) else -math.inf, -i) for i, s in enumerate(scores)]
    best = max(range(len(rows)), key=lambda i: ranked[i])  # ties: the earlier stage
    stage = stages[best]
    card = rows[best]["card"]
    total = sum(r["seconds"] or 0 for r in rows)
    command = " ".join(["napari-wbcseg"] + [shlex.quote(a) for a in getattr(args, "argv", [])])
    card.setdefault("training", {})["reproduced"] = {
        "command": command, "of": model, "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"), "minutes": round(total / 60, 1),
        "kept_stage": stage.number,
        "rule": "the stage with the best loop score on the inner selection split",
        "stages": [{"stage": s.number, "minutes": round((r["seconds"] or 0) / 60, 1),
                    "selection_score": None if not math.isfinite(sc) else round(sc, 4),
                    "skipped": r["skipped"]} for s, r, sc in zip(stages, rows, scores)]}
    out = Path(args.out)
    with writing(f"the reproduced model to {out}"):
        write_bytes_atomic(out / f"{stage.name}.safetensors",
                           (stage.folder / f"{stage.name}.safetensors").read_bytes())
        write_text_atomic(out / f"{stage.name}.json", json.dumps(card, indent=1))
    for s, r, sc in zip(stages, rows, scores):
        print(f"stage {s.number}: {(r['seconds'] or 0) / 60:.1f} min, selection score "
              f"{sc:.4f}{' (kept)' if s is stage else ''}")
    print(f"reproduced {model!r} in {total / 60:.1f} min -> {out / (stage.name + '.safetensors')}"
          f" (stage {stage.number}; " + (
              "scripts/evaluate_cell_types.py --classifier" if card.get("kind") ==
              "cell-classifier" else "`napari-wbcseg evaluate --model`") + " it to compare)")
    return 0


def _read_json(path) -> dict:
    """A stage's mark or card ({} when unreadable); its size is checked before reading."""
    from .io.safe_json import UnsafeJSONError, load_json_file

    try:
        value = load_json_file(path)
    except UnsafeJSONError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["add_parser", "cmd_reproduce"]

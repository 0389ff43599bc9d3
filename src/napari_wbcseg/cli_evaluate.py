"""``napari-wbcseg evaluate``: a model's metrics per dataset, in the papers' layout.

By default only the validation part of the group-aware split the model was trained
with is scored: seed and fraction come from its card (``training.data.split_spec``,
see :mod:`.training.protocol`), so a model is never scored on its own training images.
A ``--seed`` or ``--data`` that differs from the card's is warned about, and refused
where the split would then include training images; ``--split all`` scores every image
(for data the model never saw) and warns where the model saw some of it.
"""
from __future__ import annotations

import sys

from .cli_args import add_device_option, add_tta_option, check_out_file, seed, writing


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a model on labelled data (Dice, mIoU, ME, ...)",
        description="Score a model on labelled data, per dataset, in the papers' layout "
        "(Precision, Dice, mIoU, ME, FPR, FNR for cell / nucleus / cytoplasm, the cell-type "
        "confusion).  By default only the validation part of the model card's own split is "
        "scored, so a model is never scored on its training images.")
    p.add_argument("--model", default=None, help="model name or .safetensors file "
                   "(default: the bundled default; see `napari-wbcseg models`)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="labelled folder(s): public layouts, annotation projects, saved label "
                   "layers or image + mask pairs (see `napari-wbcseg train --help`)")
    p.add_argument("--split", default="validation", choices=["validation", "selection", "all"],
                   help="validation (default): the held-out part of the model card's split; "
                   "selection: its inner selection split (the part to compare models or "
                   "settings on, so that validation stays selection-free); all: every image "
                   "(for data the model never saw)")
    p.add_argument("--seed", metavar="N",
                   type=seed, default=None, help="seed of the group-aware split "
                   "(default: the one in the model card, else 0)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="also write the numbers to this CSV file (default: none)")
    add_device_option(p)
    add_tta_option(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from tqdm import tqdm

    from .cli import CliError, _check_device
    from .cli_train import load_public_layouts
    from .inference.predictor import ModelLoadError, load_model
    from .io.model_store import ModelNotFoundError
    from .training.data.datasets import split_by_group
    from .training.evaluation.protocol import evaluation_plan
    from .training.evaluation.report import evaluate_datasets, format_report, write_csv

    if args.csv:  # before the minutes of scoring, not after
        check_out_file(args.csv, "--csv")
    device = _check_device(args.device)
    try:
        model = load_model(args.model, device, tta=args.tta)
    except (ModelNotFoundError, ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        samples = load_public_layouts(args.data, synthetic=0, full_fields=True)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    plan = evaluation_plan(model.entry.card, args.data, {s.source for s in samples},
                           seed=args.seed, split=args.split)
    if plan.refusal:
        raise CliError(plan.refusal)
    for line in plan.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if args.split == "validation":
        samples = split_by_group(samples, plan.val_fraction, seed=plan.seed)[1]
    elif args.split == "selection":
        samples = split_by_group(split_by_group(samples, plan.val_fraction, seed=plan.seed)[0],
                                 plan.inner_fraction, seed=plan.seed)[1]
    bar = tqdm(total=len(samples), unit="image", desc="evaluating", dynamic_ncols=True)

    try:  # LoadedModel takes 0..255 pixel values, as every evaluator's predict does
        report = evaluate_datasets(model, samples, model.size_multiple,
                                   on_sample=lambda i, n: bar.update(1))
    finally:
        bar.close()
    split = {"validation": f"validation split (seed {plan.seed}, {plan.val_fraction:.0%})",
             "selection": f"inner selection split (seed {plan.seed}, {plan.inner_fraction:.0%}"
                          f" of the {1 - plan.val_fraction:.0%} outside validation)",
             "all": "all images"}[args.split]
    print(f"model {model.entry.name} ({model.entry.architecture}), {split}, "
          + ("test-time mirror augmentation (--tta), " if args.tta else "") +
          "metrics in % (region metrics: per-image means, ME = misclassification error; "
          "five-class pixel metrics: one confusion matrix pooled over each dataset's pixels)")
    print(format_report(report))
    if args.csv:
        from .io.atomic import atomic_path

        with writing(args.csv), atomic_path(args.csv, suffix=".csv") as tmp:
            write_csv(report, tmp)
        print(f"wrote {args.csv}")
    return 0

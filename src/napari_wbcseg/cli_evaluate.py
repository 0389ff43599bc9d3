"""``napari-wbcseg evaluate``: a model's metrics per dataset, in the papers' layout.

By default only the validation part of the group-aware split that training uses
(seed 0) is scored, so a bundled or ``napari-wbcseg train`` model is never evaluated on
its own training images; ``--split all`` scores every image (for data the model never saw).
"""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on labelled data (Dice, mIoU, ME, ...)")
    p.add_argument("--model", default=None, help="model name or .safetensors file "
                   "(default: the bundled default)")
    p.add_argument("--data", nargs="+", required=True,
                   help="labelled folder(s): public layouts, annotation projects, saved label "
                   "layers or image + mask pairs (see `napari-wbcseg train --help`)")
    p.add_argument("--split", default="validation", choices=["validation", "all"])
    p.add_argument("--seed", type=int, default=0, help="seed of the group-aware split")
    p.add_argument("--csv", default=None, help="also write the numbers to this CSV file")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from tqdm import tqdm

    from .cli import CliError
    from .cli_train import load_public_layouts
    from .inference.predictor import ModelLoadError, load_model
    from .io.model_store import ModelNotFoundError
    from .training.datasets import split_by_group
    from .training.report import evaluate_datasets, format_report, write_csv

    try:
        model = load_model(args.model, args.device)
    except (ModelNotFoundError, ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        samples = load_public_layouts(args.data, synthetic=0)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.split == "validation":
        samples = split_by_group(samples, 0.2, seed=args.seed)[1]
    bar = tqdm(total=len(samples), unit="image", desc="evaluating", dynamic_ncols=True)

    def predict(x):
        return model(x * 255.0)  # LoadedModel takes 0..255 and returns (N, 3 + K, H, W)

    try:
        report = evaluate_datasets(predict, samples, model.size_multiple,
                                   on_sample=lambda i, n: bar.update(1))
    finally:
        bar.close()
    print(f"model {model.entry.name} ({model.entry.architecture}), {args.split} split, "
          f"metrics in % (region metrics: per-image means, ME = misclassification error; "
          f"five-class pixel metrics: one confusion matrix pooled over each dataset's pixels)")
    print(format_report(report))
    if args.csv:
        print(f"wrote {write_csv(report, args.csv)}")
    return 0

"""``napari-wbcseg train-classifier`` and ``napari-wbcseg classifiers``.

The per-cell classifier trains from every labelled cell of the ``--data`` folders (any
layout ``train`` reads).  An annotation project brings its own class table (marrow
schemes included); other folders use ``--scheme`` (a built-in scheme or a scheme file),
else the five blood classes.  Its head has one output per class of the table and its
card lists the table (codes included).  The result is a user classifier, used at once
behind every segmentation model with the same class table.
"""
from __future__ import annotations

import time
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("train-classifier", help="train the per-cell classifier (cell types)",
                       description="Train the per-cell classifier (cell types) from every "
                       "labelled cell of the --data folders (any layout `train` reads; an "
                       "annotation project brings its own class table) into a user "
                       "classifier, used at once behind every model with the same classes.")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="labelled folder(s), as for `napari-wbcseg train`")
    p.add_argument("--scheme", metavar="NAME|FILE.csv", default=None,
                   help="class table of folders that are not annotation projects: a "
                   "built-in scheme (blood-5part, blood-extended, marrow-icsh) or a scheme "
                   "file (default: a project's own table, else blood-5part)")
    p.add_argument("--name", default=None, help="name of the classifier (default: "
                   "cell-classifier-DATE)")
    p.add_argument("--segmenter", metavar="MODEL|truth", default=None,
                   help="crop the cells this segmentation model finds (default: the default "
                   "model, as at inference); 'truth' crops the labels' own masks (corrected "
                   "layers, projects)")
    p.add_argument("--init", metavar="auto|imagenet|scratch|NAME", default="auto",
                   help="auto (default: fine-tune the installed classifier for the data's "
                   "class table, else start from ImageNet), imagenet (needs "
                   "napari-wbcseg[pretrained]), scratch, or the name of a classifier")
    p.add_argument("--epochs", metavar="N",
                   type=int, default=12, help="epochs, 1..100000 (default 12)")
    p.add_argument("--steps", metavar="N", type=int, default=50,
                   help="batches per epoch, 1..1000000 (default 50)")
    p.add_argument("--batch", metavar="N", type=int, default=32,
                   help="cell crops per batch, 2..1024 (default 32)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="learning rate, (0, 10] (default 0.001)")
    p.add_argument("--folds", metavar="K", type=int, default=1,
                   help="1 (default): one model, its epoch and temperature chosen on the "
                   "inner selection split; 2..8: K group-aware folds of the training cells, "
                   "epoch and temperature chosen out of fold, the K models kept as an "
                   "ensemble (K times the training time; starts from ImageNet)")
    p.add_argument("--seed", metavar="N", type=int, default=0,
                   help="seed of the split and the training, 0..2**32-1 (default 0)")
    p.add_argument("--synthetic", metavar="N", type=int, default=0,
                   help="synthetic smears to add, 0..10000 (default 0)")
    p.add_argument("--minutes", metavar="MIN", type=float, default=None,
                   help="stop cleanly after this many minutes (default: no limit)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write the classifier to this folder (default: only the user "
                   "classifier folder)")
    p.add_argument("--patience", metavar="EPOCHS", type=int, default=5,
                   help="stop after this many epochs without a better selection score, "
                   "1..100000 (default 5)")
    p.add_argument("--no-install", action="store_true",
                   help="write the classifier only to --out, not to the user classifiers "
                   "(needs --out; what `reproduce` runs)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an installed user classifier of the same name (default: "
                   "refuse)")
    p.set_defaults(func=cmd_train_classifier)
    lst = sub.add_parser("classifiers", help="list the installed per-cell classifiers",
                         description="List the installed per-cell classifiers (bundled and "
                         "user) with their classes and validation accuracy.")
    lst.set_defaults(func=cmd_classifiers)


def class_table(folders, scheme=None):
    """The class table of the data (``[{"code", "name", "color"[, "group"]}, ...]``):
    ``scheme`` when given, else an annotation project's own table, else the five blood
    classes.  ``CliError`` when projects disagree or ``scheme`` does not load."""
    from .cli import CliError
    from .training.data.class_tables import ClassTableError, data_class_table

    try:
        return data_class_table(folders, scheme)
    except ClassTableError as exc:
        raise CliError(str(exc)) from None


def _load(folders, classes, synthetic, log=print):
    from .io.project import is_project
    from .training.data.folders import load_project
    from .training.data.sources import load_data_folders
    from .training.engine.session import class_codes

    samples = []
    for folder in folders:
        if is_project(folder):
            samples += load_project(folder, classes=classes)
        else:
            samples += load_data_folders([folder])
    if synthetic:
        from .training.data.datasets import synthetic_samples

        samples += synthetic_samples(synthetic)
    known = {int(c["code"]) for c in classes}
    foreign = [c for c in class_codes(samples) if c not in known]
    if foreign:  # cells the table lacks are not learnt; say so rather than drop them quietly
        log(f"note: cell-type codes {', '.join(map(str, foreign[:10]))} are not in the class "
            f"table ({len(classes)} classes): those cells are left out (--scheme names the "
            "table of folders that are not projects)")
    return samples


def cmd_train_classifier(args) -> int:
    from .cli import CliError
    from .io.classifier_store import user_classifier_dir
    from .training.engine.classifier import ClassifierConfig
    from .training.engine.classifier_run import run_classifier_training
    from .training.engine.loop import BatchEvent, EpochEvent, NoticeEvent
    from .training.evaluation.protocol import SplitSpec, data_names

    import math

    from .io.classifier_store import check_name

    if not (1 <= args.epochs <= 100_000 and 1 <= args.steps <= 1_000_000
            and 2 <= args.batch <= 1024 and math.isfinite(args.lr) and 0 < args.lr <= 10):
        raise CliError("--epochs (1..100000) and --steps (1..1000000) must be at least 1, "
                       "--batch 2..1024, and --lr a positive number up to 10")
    if not 0 <= args.synthetic <= 10_000 or (args.minutes is not None and not (
            math.isfinite(args.minutes) and args.minutes > 0)):
        raise CliError("--synthetic must be >= 0 (at most 10000) and --minutes > 0")
    if not 1 <= args.patience <= 100_000:
        raise CliError(f"--patience must be 1..100000, got {args.patience}")
    if args.no_install and not args.out:
        raise CliError("--no-install needs --out (the only place the classifier is written)")
    if not 1 <= args.folds <= 8:
        raise CliError(f"--folds must be 1..8, got {args.folds}")
    if args.folds > 1 and args.init not in ("auto", "imagenet", "scratch"):
        raise CliError("--folds > 1 trains every fold afresh: use --init imagenet or scratch, "
                       f"not {args.init!r}")
    if not 0 <= args.seed <= 2**32 - 1:
        raise CliError(f"--seed must be 0..{2**32 - 1}, got {args.seed}")
    name = args.name or f"cell-classifier-{time.strftime('%Y%m%d-%H%M')}"
    try:
        check_name(name)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if ((user_classifier_dir() / f"{name}.json").exists() and not args.overwrite
            and not args.no_install):
        raise CliError(f"a user classifier named {name!r} exists; choose another --name or "
                       "pass --overwrite")
    if args.out:
        from .cli_args import check_out_dir

        check_out_dir(args.out)
    classes = class_table(args.data, args.scheme)
    try:
        samples = _load(args.data, classes, args.synthetic)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    init = "imagenet" if args.folds > 1 and args.init == "auto" else args.init
    if init == "auto":
        from .io.classifier_store import classifier_for

        found = classifier_for(classes)
        init = found.name if found is not None else "imagenet"
        print(f"starting from {'classifier ' + init if found is not None else 'ImageNet'}")
    initial, imagenet, crop = None, init == "imagenet", 128
    if imagenet:
        from .models.imagenet_lite import weights_file
        from .models.pretrained import PretrainedUnavailableError

        try:
            weights_file("lite0")
        except PretrainedUnavailableError as exc:
            if args.init == "imagenet":  # asked for explicitly: do not train something else
                raise CliError(str(exc)) from None
            print(f"note: {exc}; starting from random weights")
            init, imagenet = "scratch", False
    if init not in ("imagenet", "scratch"):
        initial, classes, crop = _classifier_state(init, classes)  # its class order and crop
    segmenter = None if args.segmenter == "truth" else args.segmenter
    if segmenter is None and args.segmenter != "truth":
        from .io.model_store import DEFAULT_MODEL

        segmenter = DEFAULT_MODEL
    config = ClassifierConfig(crop_size=crop, epochs=args.epochs, steps_per_epoch=args.steps,
                              batch_size=args.batch, lr=args.lr, seed=args.seed,
                              imagenet=imagenet, patience=args.patience)
    spec = SplitSpec(seed=args.seed, data=data_names(args.data, args.synthetic))
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")
    bars = []  # made at the first batch, so that an early error stays one line

    def bar_():
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=config.epochs * config.steps_per_epoch * args.folds,
                             unit="batch",
                             desc="training", dynamic_ncols=True, leave=False))
        return bars[0]

    def write(message):
        (bars[0].write if bars else print)(message)

    def on_event(ev):
        if isinstance(ev, NoticeEvent):
            write(f"note: {ev.message}")
        elif isinstance(ev, BatchEvent):
            bar_().update(1)
            bar_().set_postfix(epoch=ev.epoch, loss=f"{ev.loss:.3f}")
        elif isinstance(ev, EpochEvent) and ev.validation:
            write(f"epoch {ev.epoch}: {'out-of-fold' if args.folds > 1 else 'selection'} "
                  f"accuracy {ev.validation['accuracy']:.3f}, "
                  f"balanced {ev.validation['balanced_accuracy']:.3f}"
                  f"{' (best)' if ev.improved else ''}")

    out_dirs = ([] if args.no_install else [user_classifier_dir()]) + (
        [Path(args.out)] if args.out else [])
    try:
        card, result, report = run_classifier_training(
            samples, spec, classes, config, segmenter=segmenter, out_dirs=out_dirs, name=name,
            log=write, on_event=on_event, initial_state=initial, folds=args.folds,
            should_stop=lambda: time.monotonic() > deadline,
            notes=f"Trained by `napari-wbcseg train-classifier` (masks from "
                  f"{segmenter or 'truth'}, init {init})")
    except (ValueError, KeyError, OSError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    finally:
        for bar in bars:
            bar.close()
    if report:
        print(f"validation (selection-free, {report['n']} cells): accuracy "
              f"{report['accuracy']:.3f}, balanced {report['balanced_accuracy']:.3f}")
    else:
        print("note: the validation split holds no labelled cell: no selection-free score")
    print(f"saved classifier {name!r} (best epoch {result.best_epoch}, temperature "
          f"{result.temperature:.2f}) -> {card}")
    return 0


def _classifier_state(name, classes):
    from .cli import CliError
    from .io.classifier_store import find_classifier, same_classes
    from .io.model_store import ModelNotFoundError
    from .models.weights import load_weights

    try:
        entry = find_classifier(name)
        if not same_classes(entry.card.get("classes"), classes):
            raise CliError(f"classifier {name!r} has another class table than the data")
        state, _ = load_weights(entry.weights)
    except (ModelNotFoundError, ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    return state, list(entry.card["classes"]), int(entry.card["config"].get("crop_size", 128))


def cmd_classifiers(args) -> int:
    from .io.classifier_store import classifier_entries

    entries = classifier_entries()
    if not entries:
        print("no per-cell classifier installed (cell types come from the networks' heads)")
        return 0
    print(f"{'name':30} {'origin':8} {'classes':44} {'val acc':>7}")
    for e in entries:
        names = ",".join(c["name"][:5] for c in e.card.get("classes", []))
        acc = e.card.get("validation", {}).get("accuracy")
        print(f"{e.name:30} {e.origin:8} {names:44} "
              f"{'-' if acc is None else format(acc, '.3f'):>7}")
    return 0


__all__ = ["add_parsers", "class_table", "cmd_classifiers", "cmd_train_classifier"]

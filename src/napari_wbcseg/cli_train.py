"""``napari-wbcseg train``: train any registered architecture on the public data layouts.

The result is a user model (``io.model_store.user_dir()``), listed at once by
``napari-wbcseg models``, ``napari_wbcseg.list_models()`` and the Segment widget.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import time
from pathlib import Path

from .cli_args import check_out_dir

PRESETS = ("fast", "paper")  # training.presets.PRESETS (not imported: keeps the CLI start light)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network (any architecture) into a user model",
        description="Train a network into a user model.  --preset picks the recipe (fast: "
        "the CPU schedule; paper: the architecture's published recipe, for a GPU); explicit "
        "flags override it.  A checkpoint is written after every epoch; --resume continues it.")
    p.add_argument("--model", metavar="ARCH", default=None,
                   help="architecture (see `napari-wbcseg architectures`); not needed with "
                   "--resume")
    p.add_argument("--data", metavar="DIR", nargs="+", required=True,
                   help=DATA_HELP)
    p.add_argument("--preset", default=None, choices=list(PRESETS),
                   help="fast (default): AdamW one-cycle, 30 x 60 batches of 8, ~1 h on 2 CPU "
                   "cores for a -compact model; paper: the paper's optimiser, learning rate, "
                   "batch, epochs, freezing and augmentation")
    p.add_argument("--name", default=None, help="name of the new model (default: ARCH-DATE)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write the weights and card to this folder (default: only the "
                   "user model folder)")
    p.add_argument("--epochs", metavar="N",
                   type=int, default=None, help="maximum epochs (default: preset)")
    p.add_argument("--steps", metavar="N", type=int, default=None,
                   help="batches per epoch, 0 = one pass over the training samples "
                   "(default: preset)")
    # bounds: training.presets.LIMITS and check_config (the API refuses the same values)
    p.add_argument("--batch", metavar="N",
                   type=int, default=None, help="batch size, 1..1024 (default: preset)")
    p.add_argument("--crop", metavar="PX", type=int, default=None,
                   help="crop side in px, 8..2048 (default: preset)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate, (0, 10] (default: preset)")
    p.add_argument("--patience", metavar="EPOCHS", type=int, default=None,
                   help="epochs without improvement before stopping (default: preset, 10)")
    p.add_argument("--mosaic", type=float, nargs="?", const=0.5, default=None,
                   metavar="FRACTION", help="make this fraction of the training crops Zhu et "
                   "al. mosaics of 2x2/3x3/4x4 single-cell images (0.5 without a value)")
    p.add_argument("--ahe-retinex", action=argparse.BooleanOptionalAction, default=None,
                   help="AHE-Retinex-correct every image before training (the model card "
                   "then asks inference to do the same)")
    p.add_argument("--init", default=None, choices=["scratch", "imagenet", "bundled"],
                   help="imagenet: encoder from ImageNet weights when online; bundled: "
                   "fine-tune the bundled model of this architecture (default: imagenet where "
                   "the paper preset's network starts from it, else scratch)")
    p.add_argument("--continues", default=None, metavar="MODEL",
                   help="warm start from this model (an installed name or a .safetensors "
                   "file; --model defaults to its architecture) and carry its run history "
                   "into the new card (training.previous_runs, total_seconds)")
    p.add_argument("--freeze-encoder", type=float, default=None, metavar="FRACTION",
                   help="keep a pretrained encoder frozen for this fraction of the epochs, "
                   "0..1 (default: preset)")
    p.add_argument("--class-weight", metavar="W", type=float, default=None,
                   help="weight of the cell-type loss, 0..1000 (default 1)")
    p.add_argument("--class-balance", action="store_true", default=None,
                   help="weight the cell-type loss by inverse sqrt class frequency")
    p.add_argument("--source-weights", default=None, metavar="JSON",
                   help='sampling weight per data source, e.g. {"segmentation_WBC-2": 2}')
    p.add_argument("--model-config", default=None, metavar="JSON",
                   help="overrides of the architecture's configuration (bounded)")
    p.add_argument("--no-install", action="store_true",
                   help="write the model only to --out, not into the user model folder (how "
                   "a bundled model is rebuilt under its own name)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue the run of this checkpoint (file or folder) from its next "
                   "epoch, with its settings (flags given here override them)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="write last.pt here after every epoch (default: the user model folder's "
                   "checkpoints/NAME, or the folder of --resume)")
    p.add_argument("--synthetic", metavar="N", type=int, default=20,
                   help="synthetic smears to add to the training data, 0..10000 (default 20)")
    p.add_argument("--minutes", metavar="MIN", type=float, default=None,
                   help="stop cleanly after this many minutes (default: no limit)")
    p.add_argument("--seed", metavar="N",
                   type=int, default=None, help="random seed and split (default 0)")
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 where the CPU and architecture gain from it; fp32 / bf16 "
                   "force it (default: preset, auto)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                   help="number type of the saved weights (default float32; float16 halves "
                   "the file)")
    p.set_defaults(func=cmd_train)


DATA_HELP = ("folder(s) of training data: the public layouts (segmentation_WBC/, BCISC/), an "
             "annotation project (project.json), images with their saved label layers "
             "(X.png + X_nucleus.tif + X_cytoplasm.tif [+ X_celltype.tif]) or plain image + "
             "mask pairs (images/ + masks/, or X.png + X_mask.png)")


def load_public_layouts(folders, synthetic: int, *, full_fields: bool = False):
    """Samples of the ``--data`` folders (any supported layout) plus synthetic smears;
    ``full_fields`` keeps BCISC fields at their own resolution (evaluation).

    Kept under this name for scripts; see :func:`.training.sources.load_data_folders`.
    """
    from .training.data.sources import load_data_folders

    return load_data_folders(folders, synthetic, full_fields=full_fields)


def _settings(args):
    """(TrainConfig, preset name, init) from the preset or checkpoint and the explicit flags."""
    from .cli import CliError
    from .models import architecture_info
    from .training.engine.checkpoint import read_config
    from .training.engine.loop import TrainConfig
    from .training.engine.presets import check_config, preset

    arch = None
    continued = _continued_entry(args.continues) if args.continues else None
    if continued is not None:
        if args.resume or args.init:
            raise CliError("--continues starts from that model's weights; leave out --resume "
                           "and --init")
        if args.model is None:
            args.model = continued.architecture
    if args.model is not None:
        try:
            arch = architecture_info(args.model)["name"]
        except KeyError as exc:
            raise CliError(str(exc)) from None
    if args.resume:
        if args.preset or args.init:
            raise CliError("--resume continues the checkpoint's settings and weights; "
                           "leave out --preset and --init (override single settings instead)")
        try:
            base = read_config(args.resume)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if arch is not None and arch != base.get("architecture"):
            raise CliError(f"--resume: the checkpoint trains {base.get('architecture')!r}, "
                           f"not {arch!r}")
        name, init = None, "checkpoint"
    else:
        if arch is None:
            raise CliError("--model is required (unless --resume is given)")
        name = args.preset or "fast"
        try:
            base = preset(name, arch)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        init = args.init or ("imagenet" if base.get("imagenet") else "scratch")
        if continued is not None:
            if continued.architecture != arch:
                raise CliError(f"--continues: {continued.name!r} is a {continued.architecture!r} "
                               f"model, not {arch!r}")
            init = "continues"
        base["imagenet"] = init == "imagenet"
    flags = {"epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": args.batch,
             "crop": args.crop, "lr": args.lr, "patience": args.patience,
             "mosaic_fraction": args.mosaic, "seed": args.seed, "precision": args.precision,
             "freeze_encoder_fraction": args.freeze_encoder, "class_weight": args.class_weight,
             "class_balance": args.class_balance,
             "source_weights": _json_flag("--source-weights", args.source_weights),
             "model_config": _json_flag("--model-config", args.model_config),
             "preprocess": None if args.ahe_retinex is None else
             ("ahe-retinex" if args.ahe_retinex else "none")}
    values = {**base, **{k: v for k, v in flags.items() if v is not None}}
    if not 0 <= args.synthetic <= 10_000:
        raise CliError(f"--synthetic must be 0..10000, got {args.synthetic}")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise CliError(f"--minutes must be a positive number, got {args.minutes}")
    try:
        config = TrainConfig.from_dict(values)
        check_config(config)
    except (TypeError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return config, name, init


def _json_flag(flag: str, text):
    """A JSON object given on the command line (None when the flag is absent)."""
    from .cli import CliError

    from .io.safe_json import UnsafeJSONError, loads_bounded

    if text is None:
        return None
    try:
        value = loads_bounded(text)
    except UnsafeJSONError:
        raise CliError(f"{flag} must be a JSON object, got {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise CliError(f"{flag} must be a JSON object, got {text[:80]!r}")
    return value


def _continued_entry(model):
    """The model entry ``--continues`` names (an installed name or a weights file)."""
    from .cli import CliError
    from .io.model_store import ModelNotFoundError, find_model

    try:
        return find_model(model)
    except ModelNotFoundError as exc:
        raise CliError(f"--continues: {exc.args[0] if exc.args else exc}") from None


def cmd_train(args) -> int:
    from .cli import CliError
    from .core.batch import run_to_end
    from .io.model_store import user_dir
    from .training.engine.bundle import write_model
    from .training.engine.checkpoint import checkpoint_file
    from .training.evaluation.evaluate import score_validation
    from .training.engine.loop import BatchEvent, EpochEvent, NoticeEvent, train_steps
    from .training.engine.presets import describe
    from .training.evaluation.protocol import SplitSpec, card_blocks, data_names, three_way_split

    config, preset_name, init = _settings(args)
    continued_card = _continued_entry(args.continues).card if args.continues else None
    arch = config.architecture
    resume_dir = checkpoint_file(args.resume).parent if args.resume else None
    name = args.name or (resume_dir.name if resume_dir else
                         f"{arch}-{time.strftime('%Y%m%d-%H%M')}")
    from .training.engine.names import check_model_name, has_labelled_cell

    if args.no_install and not args.out:
        raise CliError("--no-install writes the model only to --out; give --out DIR")
    try:
        check_model_name(name, install=not args.no_install)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.out:
        check_out_dir(args.out)
    ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else (
        resume_dir or user_dir() / "checkpoints" / name)
    try:
        samples = load_public_layouts(args.data, 0)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not has_labelled_cell(samples):  # synthetic smears must not hide empty masks
        raise CliError(f"no labelled cell in {', '.join(map(str, args.data))}: every mask "
                       "is empty")
    if args.synthetic:
        from .training.data.datasets import synthetic_samples

        samples += synthetic_samples(args.synthetic)
    # the best epoch is picked on an inner split of the training part; the validation
    # part is scored once, at the end, so its numbers are free of selection
    spec = SplitSpec(seed=config.seed, data=data_names(args.data, args.synthetic))
    train, inner_val, val = three_way_split(samples, spec)
    counts: dict = {}
    for part, group in (("train", train), ("selection", inner_val), ("val", val)):
        for s in group:
            counts.setdefault(s.source, {"train": 0, "selection": 0, "val": 0})[part] += 1
    print(f"{len(train)} training / {len(inner_val)} selection (inner validation, picks the "
          f"best epoch) / {len(val)} validation samples (scored once, at the end): "
          f"{json.dumps(counts)}")
    print(f"settings: {describe(config, preset_name=preset_name, init=init)}; "
          f"checkpoints in {ckpt_dir}", flush=True)

    initial = (_bundled_state(arch) if init == "bundled" else
               _weights_state(args.continues) if init == "continues" else None)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")
    bar = _progress(None)
    fatal = []

    def on_event(ev):
        if isinstance(ev, NoticeEvent):
            if ev.message.startswith("non-finite"):
                fatal.append(ev.message)  # becomes the error line
            else:
                bar.write(f"note: {ev.message}")
        elif isinstance(ev, BatchEvent):
            if bar.total is None:
                bar.total = (config.epochs - ev.epoch + 1) * ev.steps
                bar.refresh()
            bar.update(1)
            bar.set_postfix(epoch=ev.epoch, loss=f"{ev.loss:.3f}")
        elif isinstance(ev, EpochEvent):
            bar.write(f"epoch {ev.epoch}: train loss {ev.train_loss:.3f}, selection score "
                      f"{ev.score:.3f}{' (best)' if ev.improved else ''}")

    try:
        result = run_to_end(train_steps(train, inner_val, config, initial_state=initial,
                                        should_stop=lambda: time.monotonic() > deadline,
                                        checkpoint_dir=ckpt_dir, resume=args.resume),
                            on_event)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()
    if result.stopped == "non-finite loss":
        raise CliError(fatal[-1] if fatal else "non-finite loss: try a lower --lr")
    print(f"scoring the {len(val)} validation samples once with the best epoch's weights",
          flush=True)
    selection, validation = card_blocks(
        result, score_validation(result.model, val, config.preprocess), spec)
    shown = {k: round(v, 4) for k, v in validation["summary"].items()}
    print(f"validation (selection-free): {json.dumps(shown) if shown else 'no images'}")
    data = {"split": f"group-aware 80/20, seed {config.seed}; best epoch picked on an inner "
                     f"{spec.inner_fraction:.0%} of the 80%", "split_spec": spec.to_card(),
            "samples": counts}
    how = (f"resumed from {args.resume}" if args.resume else
           f"preset {preset_name}, {init} initialisation")
    command = " ".join(["napari-wbcseg"] + [shlex.quote(a) for a in getattr(args, "argv", [])])
    from .cli_args import writing
    from .training.engine.bundle import chain_history

    cards = []
    folders = ([] if args.no_install else [user_dir()]) + ([args.out] if args.out else [])
    for folder in folders:
        with writing(f"model {name!r} to {folder}"):
            card = write_model(folder, name, result, data=data, dtype=args.dtype,
                               preprocessing=config.preprocess, validation=validation,
                               selection=selection,
                               notes=f"Trained by `{command}` ({how})")
            if continued_card is not None:
                chain_history(card, continued_card)
            cards.append(card)
    more = (f"; continue with --resume {result.checkpoint}"
            if result.stopped == "user" and result.checkpoint else "")
    print(f"saved model {name!r} ({result.stopped}, best epoch {result.best_epoch}) -> "
          f"{cards[0]}{more}")
    return 0


def _bundled_state(arch: str) -> dict:
    """State dict of the bundled model of ``arch`` (``CliError`` naming those that exist)."""
    from .cli import CliError
    from .io.model_store import model_entries
    from .models.weights import load_weights

    bundled = {e.architecture: e for e in model_entries().values() if e.origin == "bundled"}
    if arch not in bundled:
        raise CliError(f"no bundled model of {arch!r} to start from; bundled architectures: "
                       f"{', '.join(sorted(bundled))} (or use --init scratch)")
    state, _ = load_weights(bundled[arch].weights)
    return state


def _weights_state(model) -> dict:
    from .models.weights import load_weights

    state, _ = load_weights(_continued_entry(model).weights)
    return state


def _progress(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="batch", desc="training", dynamic_ncols=True, leave=False)


__all__ = ["add_parser", "cmd_train", "load_public_layouts"]

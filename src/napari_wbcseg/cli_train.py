"""``napari-wbcseg train``: train any registered architecture on the public data layouts.

The result is a user model (``io.model_store.user_dir()``), listed at once by
``napari-wbcseg models``, ``napari_wbcseg.list_models()`` and the Segment widget.
"""
from __future__ import annotations

import json
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (any architecture) into a user model")
    p.add_argument("--model", required=True,
                   help="architecture (see `napari-wbcseg architectures`)")
    p.add_argument("--data", nargs="+", required=True,
                   help="folder(s) holding segmentation_WBC/ and/or BCISC/ in their public layout")
    p.add_argument("--name", default=None, help="name of the new model (default: ARCH-DATE)")
    p.add_argument("--out", default=None, help="also write the weights and card here")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=60, help="batches per epoch")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--init", default="scratch", choices=["scratch", "imagenet", "bundled"],
                   help="imagenet: encoder from ImageNet weights when online; bundled: "
                   "fine-tune the bundled model of this architecture")
    p.add_argument("--synthetic", type=int, default=20, help="synthetic smears to add")
    p.add_argument("--minutes", type=float, default=None, help="stop cleanly after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.set_defaults(func=cmd_train)


def load_public_layouts(folders, synthetic: int):
    """Samples from folders holding segmentation_WBC/ and/or BCISC/ (plus synthetic smears)."""
    from .training.datasets import (load_bcisc_fields, load_bcisc_subimages,
                                    load_segmentation_wbc, synthetic_samples)

    samples = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"--data {folder}: no such folder")
        found = []
        if (folder / "segmentation_WBC").is_dir():
            for dataset in (1, 2):
                if (folder / "segmentation_WBC" / f"Dataset {dataset}").is_dir():
                    found += load_segmentation_wbc(folder, dataset)
        if (folder / "BCISC").is_dir():
            found += load_bcisc_subimages(folder)
            found += list(load_bcisc_fields(folder, native=True))
        if not found:
            raise ValueError(f"--data {folder}: no segmentation_WBC/ or BCISC/ data found")
        samples += found
    return samples + (synthetic_samples(synthetic) if synthetic else [])


def cmd_train(args) -> int:
    from .cli import CliError
    from .core.batch import run_to_end
    from .io.model_store import user_dir
    from .models import architecture_info
    from .training.bundle import write_model
    from .training.datasets import split_by_group
    from .training.loop import BatchEvent, EpochEvent, NoticeEvent, TrainConfig, train_steps

    try:
        arch = architecture_info(args.model)["name"]
    except KeyError as exc:
        raise CliError(str(exc)) from None
    if args.epochs < 1 or args.steps < 1 or args.batch < 1:
        raise CliError("--epochs, --steps and --batch must be at least 1")
    name = args.name or f"{arch}-{time.strftime('%Y%m%d-%H%M')}"
    try:
        samples = load_public_layouts(args.data, args.synthetic)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    train, val = split_by_group(samples, 0.2, seed=args.seed)
    counts: dict = {}
    for part, group in (("train", train), ("val", val)):
        for s in group:
            counts.setdefault(s.source, {"train": 0, "val": 0})[part] += 1
    print(f"{len(train)} training / {len(val)} validation samples: {json.dumps(counts)}")

    config = TrainConfig(architecture=arch, epochs=args.epochs, steps_per_epoch=args.steps,
                         batch_size=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         imagenet=args.init == "imagenet",
                         # Zhu et al.: a pretrained encoder stays frozen for the first half
                         freeze_encoder_fraction=0.5 if args.init == "imagenet" else 0.0)
    initial = _bundled_state(arch) if args.init == "bundled" else None
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")
    bar = _progress(args.epochs * args.steps)

    def on_event(ev):
        if isinstance(ev, NoticeEvent):
            bar.write(f"note: {ev.message}")
        elif isinstance(ev, BatchEvent):
            bar.update(1)
            bar.set_postfix(epoch=ev.epoch, loss=f"{ev.loss:.3f}")
        elif isinstance(ev, EpochEvent):
            bar.write(f"epoch {ev.epoch}: train loss {ev.train_loss:.3f}, validation score "
                      f"{ev.score:.3f}{' (best)' if ev.improved else ''}")

    try:
        result = run_to_end(train_steps(train, val, config, initial_state=initial,
                                        should_stop=lambda: time.monotonic() > deadline),
                            on_event)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()
    data = {"split": f"group-aware 80/20, seed {args.seed}", "samples": counts}
    card = write_model(user_dir(), name, result, data=data, dtype=args.dtype,
                       notes=f"Trained by `napari-wbcseg train` ({args.init} initialisation)")
    if args.out:
        write_model(args.out, name, result, data=data, dtype=args.dtype,
                    notes=f"Trained by `napari-wbcseg train` ({args.init} initialisation)")
    print(f"saved model {name!r} ({result.stopped}, best epoch {result.best_epoch}) -> {card}")
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


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="batch", desc="training", dynamic_ncols=True)


__all__ = ["add_parser", "cmd_train", "load_public_layouts"]

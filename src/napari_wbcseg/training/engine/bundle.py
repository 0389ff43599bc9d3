"""Write a trained model as a safe weight file plus its JSON model card."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...io.fetch import sha256_of

DATA_LICENCES = {
    "segmentation_WBC": "zxaoyou/segmentation_WBC, GPL-3.0 (Zheng et al. 2018; acknowledge "
                        "Jiangxi Tecom Science Corporation and the CellaVision blog)",
    "BCISC": "fpklipic/BCISC, Apache-2.0 (Fan et al. 2019)",
    "synthetic": "napari-wbcseg synthetic smears (generated, BSD-3-Clause)",
}


def hardware() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:
        threads = os.cpu_count()
    return f"CPU {platform.processor() or platform.machine()}, {threads} threads"


def data_licences(data: dict) -> list[str]:
    """Licences of the datasets named in ``data["samples"]`` (keys = sample sources)."""
    sources = " ".join(data.get("samples", {}))
    return [text for key, text in DATA_LICENCES.items() if key in sources]


def write_model(folder, name: str, result, *, data: dict, preprocessing="none",
                native_cell_diameter=80.0, notes: str = "", dtype: str = "float32",
                validation: dict | None = None, selection: dict | None = None,
                classes=None) -> Path:
    """Save ``result.model`` as ``<folder>/<name>.safetensors`` + ``<name>.json``.

    ``dtype="float16"`` halves the file (weights are converted back to float32 on load).
    ``validation``: the card's ``validation`` block, scored once on images no choice was
    made on (``selection_free: true``); ``selection``: the ``selection`` block, the
    numbers of the images the best epoch was picked on.  Without ``validation`` the best
    epoch's numbers (``result.best_validation``) become ``validation``, marked
    ``selection_free: false`` since they were picked on those same images.
    ``classes``: the table the cell-type head learnt (channel k is code k + 1; default the
    five blood classes); the card lists its first K rows.
    """
    from ...models.weights import save_weights
    from ..evaluation.evaluate import summary

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    model = result.model
    head = head_classes(classes, model.num_classes)
    save_weights(model, weights, {"name": name}, dtype=dtype)
    card = {
        "name": name,
        "architecture": model.architecture,
        "config": model.config,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "classes": head,
        "input": "RGB, 0..1 (any normalisation happens inside the model)",
        "preprocessing": {"method": preprocessing},
        "native_cell_diameter_px": native_cell_diameter,
        "training": {
            "data": data,
            "licences": data_licences(data),
            "settings": result.config,
            "best_epoch": result.best_epoch,
            "stopped": result.stopped,
            "seconds": round(result.seconds, 1),
            "hardware": hardware(),
            "date": _dt.date.today().isoformat(),
        },
        "validation": validation if validation is not None else {
            "per_dataset": result.best_validation, "summary": summary(result.best_validation),
            "selection_free": False},
        **({"selection": selection} if selection is not None else {}),
        "weights": {"file": weights.name, "sha256": sha256_of(weights), "format": "safetensors",
                    "storage_dtype": dtype},
        "notes": notes,
    }
    card_path = folder / f"{name}.json"
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    return card_path


def head_classes(classes, num_classes: int) -> list[dict]:
    """The classes of a cell-type head of ``num_classes`` channels: the rows of codes 1, 2,
    ... of ``classes`` (default: the five blood classes) up to the first code the table
    lacks, since the loss trains channel k on code k + 1 (a marrow table: its codes 1..5)."""
    from ..data.class_tables import default_table, table_rows

    by_code = {r["code"]: r for r in (table_rows(classes) if classes is not None
                                      else default_table())}
    rows = []
    for code in range(1, int(num_classes) + 1):
        if code not in by_code:
            break
        rows.append(by_code[code])
    return rows


def chain_history(card_path, previous_card: dict) -> None:
    """Record the runs of the model a run continued (its card) in the new card:
    ``training.previous_runs`` (oldest first) and ``total_seconds``."""
    from ...io.safe_json import load_json_file

    card_path = Path(card_path)
    card = load_json_file(card_path)
    old = previous_card.get("training") or {}
    runs = [r for r in old.get("previous_runs", []) if isinstance(r, dict)]
    if "seconds" in old:
        runs.append({k: old.get(k) for k in ("settings", "seconds", "best_epoch", "stopped",
                                              "hardware")})
    tr = card["training"]
    if "first_run" in old:
        tr["first_run"] = old["first_run"]
    tr["previous_runs"] = runs
    before = old.get("total_seconds", old.get("seconds", 0.0))
    before = before if isinstance(before, (int, float)) else 0.0
    tr["total_seconds"] = round(float(before) + float(tr.get("seconds", 0.0)), 1)
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")


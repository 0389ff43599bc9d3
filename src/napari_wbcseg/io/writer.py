"""Writing label layers (TIFF) and per-cell tables (CSV).

Files are written through :mod:`.atomic` (a temporary name beside the target, then
moved into place, mode ``0666 & ~umask``), so a failed save (full disk, killed process)
never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path

LABELS_TAG = "napari_wbcseg"  # key in the TIFF description that marks our label files


def smallest_label_dtype(data: np.ndarray) -> np.dtype:
    top = int(data.max()) if data.size else 0
    if data.size and int(data.min()) < 0:
        raise ValueError("labels must not be negative")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def save_labels(path, labels, *, name: str | None = None) -> str:
    """Write a label image as a zlib-compressed TIFF that the plugin reopens as Labels."""
    import tifffile

    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"labels must be integers, got {arr.dtype}")
    arr = arr.astype(smallest_label_dtype(arr), copy=False)
    description = json.dumps({LABELS_TAG: {"layer_type": "labels", "name": name}})
    path = Path(path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, arr, compression="zlib", description=description, metadata=None)
    return str(path)


def save_table(path, table) -> str:
    """Write a per-cell table (a pandas DataFrame or a dict of columns) as CSV."""
    columns, rows = _table_rows(table)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(rows)
    return str(path)


def write_labels_tiff(path: str, data, meta: dict) -> list[str]:
    """npe2 writer for one Labels layer."""
    if isinstance(data, (list, tuple)):  # multiscale: the full-resolution level
        data = data[0]
    return [save_labels(path, np.asarray(data), name=meta.get("name"))]


def write_features_csv(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: the per-cell table (``features``) of one Labels layer."""
    features = meta.get("features")
    if features is None or len(features) == 0:
        raise ValueError(f"layer {meta.get('name')!r} has no per-cell table to save")
    return [save_table(path, features)]


def _table_rows(table):
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas DataFrame
        df = table
        if not any(c in df.columns for c in ("index", "label", "cell_id")):
            # keep a named index (cell_id, class_code); an unnamed one holds cell ids
            df = df.reset_index().rename(columns={"index": "cell_id"})
        return [str(c) for c in df.columns], df.itertuples(index=False, name=None)
    columns = list(table)
    n = len(next(iter(table.values()))) if table else 0
    return columns, ([table[c][i] for c in columns] for i in range(n))

"""Training samples from label files saved by the plugin itself (numpy / OpenCV only).

``napari-wbcseg segment --out DIR`` writes ``<stem>_nucleus.tif``, ``<stem>_cytoplasm.tif``
and ``<stem>_celltype.tif``; napari's "Save layer" with this plugin's writer gives the
same TIFFs under names the user picks.  Put the corrected files beside their image
``<stem>.png`` (any readable format) and the folder can be given to ``--data``::

    smears/  a.png  a_nucleus.tif  a_cytoplasm.tif  a_celltype.tif  b.jpg  b_nucleus.tif ...

The cell-type file is optional (cell types unknown without it; ``_cell_type`` also
accepted).  Its codes are kept as they are (any class table: gapped or marrow codes
too) unless ``classes=`` names the table, whose codes alone are kept.  The labels are
taken as complete (every white cell of the image labelled),
since they come from a segmentation the user checked.  Annotation projects
(:mod:`napari_wbcseg.io.project`) are the richer alternative, with review state.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.image import as_rgb_uint8
from ...io.imread import SUPPORTED_SUFFIXES, read_image
from ...schema import LabelSchemaError, check_labels, semantic_from_layers
from .class_tables import keep_table_codes, table_codes, table_rows
from .sample import UNKNOWN_CLASS, Sample

__all__ = ["LAYER_SUFFIXES", "find_layer_sets", "load_layer_folder"]

LAYER_SUFFIXES = {"nucleus": ("_nucleus",), "cytoplasm": ("_cytoplasm",),
                  "cell_type": ("_celltype", "_cell_type")}
_ALL_SUFFIXES = tuple(s for group in LAYER_SUFFIXES.values() for s in group)


def _layer_kind(stem: str) -> tuple[str, str] | None:
    """``(image stem, kind)`` of a label file name, None for anything else."""
    low = stem.lower()
    for kind, suffixes in LAYER_SUFFIXES.items():
        # longest first, so "_cell_type" is not read as "..._cell" + "_type"
        for suf in sorted(suffixes, key=len, reverse=True):
            if low.endswith(suf) and len(stem) > len(suf):
                return stem[: -len(suf)], kind
    return None


def find_layer_sets(folder) -> list[dict[str, Path]]:
    """``[{"image", "nucleus", "cytoplasm"[, "cell_type"]}, ...]`` of ``folder``'s top level.

    An image counts when both its nucleus and cytoplasm files are there.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in SUPPORTED_SUFFIXES)
    layers: dict[str, dict[str, Path]] = {}
    images: dict[str, Path] = {}
    for f in files:
        hit = _layer_kind(f.stem)
        if hit:
            layers.setdefault(hit[0], {})[hit[1]] = f
        else:
            images.setdefault(f.stem, f)
    sets = []
    for stem, found in sorted(layers.items()):
        if stem in images and "nucleus" in found and "cytoplasm" in found:
            sets.append({"image": images[stem], **found})
    return sets


def load_layer_folder(folder, *, scale: float | None = None, num_classes: int | None = None,
                      classes=None) -> list[Sample]:
    """Every image of ``folder`` with saved nucleus + cytoplasm (+ cell-type) label files.

    ``classes``: the class table (codes it lacks become 255; default: every code 1..254
    is kept); ``num_classes``: codes above it become 255 too.

    Raises ValueError (one line, naming the file) for labels that break the schema or
    whose shape differs from the image.  Source ``layers:<folder name>``.
    """
    from .folders import _scale_from_cells

    table = None if classes is None else table_rows(classes)
    codes = None if table is None else table_codes(table)
    folder = Path(folder)
    sets = find_layer_sets(folder)
    if not sets:
        raise ValueError(f"{folder}: no image with <stem>_nucleus.tif and <stem>_cytoplasm.tif "
                         "beside it")
    rows, ids_list = [], []
    for found in sets:
        image = as_rgb_uint8(read_image(found["image"]), what=str(found["image"]))
        nuc = np.asarray(read_image(found["nucleus"]))
        cyt = np.asarray(read_image(found["cytoplasm"]))
        if "cell_type" in found:
            cell_type = np.asarray(read_image(found["cell_type"]))
        else:
            cell_type = np.where((nuc > 0) | (cyt > 0), UNKNOWN_CLASS, 0).astype(np.uint8)
        for kind, arr in (("nucleus", nuc), ("cytoplasm", cyt), ("cell_type", cell_type)):
            if arr.shape != image.shape[:2]:
                where = found.get(kind, found["nucleus"])
                raise ValueError(f"{where}: labels are {'x'.join(map(str, arr.shape))}, the "
                                 f"image {found['image'].name} is "
                                 f"{image.shape[0]}x{image.shape[1]}")
        try:
            check_labels(nuc, cyt, cell_type)
        except LabelSchemaError as exc:
            raise ValueError(f"{found['nucleus'].parent / found['image'].stem}: {exc}") from None
        semantic = semantic_from_layers(nuc, cyt)
        cell_class = keep_table_codes(cell_type, semantic > 0, codes, num_classes)
        rows.append((found, image, semantic, cell_class))
        ids_list.append(np.where(nuc > 0, nuc, cyt).astype(np.int64))
    if scale is None:
        scale = _scale_from_cells(ids_list)
    source = f"layers:{folder.resolve().name}"
    out = []
    for found, image, semantic, cell_class in rows:
        name = f"{source}/{found['image'].stem}"
        known = np.unique(cell_class[(cell_class > 0) & (cell_class != UNKNOWN_CLASS)])
        out.append(Sample(
            image=image, semantic=semantic, cell_class=cell_class, source=source, group=name,
            name=name, scale=float(scale), complete=True,
            image_class=int(known[0]) if known.size == 1 else (0 if known.size else UNKNOWN_CLASS),
            meta={**{k: str(v) for k, v in found.items()},
                  **({"classes": table} if table is not None else {})}))
    return out

"""Training samples from the user's own folders (numpy / OpenCV only).

* :func:`load_project`: an annotation project (:mod:`napari_wbcseg.io.project`).
* :func:`load_image_mask_folder`: a plain folder of image + mask pairs.
* :func:`detect_and_load`: either of these or a public layout (segmentation_WBC/, BCISC/).

Plain-folder pairing (the top level of the folder only):

* ``images/X.png`` + ``masks/X.png`` (``labels/`` also accepted for ``masks/``), or
* ``X.jpg`` + ``X_mask.png`` side by side (suffixes ``_mask``, ``_label``, ``_labels``,
  ``_seg``, any case; the mask may have another extension than the image).

Mask encodings, detected per file from the values in it (RGB masks with equal channels
are read as grey; masks of other colours are refused):

=====================  ==================================================================
values                 meaning
=====================  ==================================================================
{0, 1} or {0, 255}     whole cell (semantic 3: in a cell, nucleus / cytoplasm unknown)
{0, 1, 2}              class indices: 0 background, 1 cytoplasm, 2 nucleus
{0, 128, 255}          segmentation_WBC: ``(m >= 64) + (m >= 192)`` (128 cytoplasm, 255 nucleus)
=====================  ==================================================================

A mask whose values are at least 99.5 % one of the 0/128/255 or 0/255 encodings (stray
anti-aliasing or drawing artefacts) is decoded with thresholds (``>= 64``/``>= 192``,
resp. ``> 127``).  Anything else raises ValueError naming the file and the values.

Cell types: 255 (unknown) on every cell unless ``classes.csv`` in the folder (columns
``image,class``; image = file name or stem, class = a code or a name of the class table,
``classes=``, default the five blood classes, e.g. ``neutrophil``) gives the image's
class, which is put on the cell under the image centre (else the largest cell); other
cells stay 255.  Samples keep the table's codes (:mod:`.class_tables`).

Scale: ``scale=`` if given; for a project with a pixel size, from a typical white-cell
diameter of :data:`TYPICAL_WBC_DIAMETER_UM`; otherwise ``NATIVE_CELL_DIAMETER / d`` with
``d`` the median equivalent diameter of the labelled cells of the whole folder (cells
cut by the image border left out unless there are no others), 1.0 without cells.
"""
from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from ...core.image import as_rgb_uint8
from ...io.imread import SUPPORTED_SUFFIXES, read_image
from ...schema import DEFAULT_CLASSES
from .class_tables import keep_table_codes, table_codes, table_rows
from .sample import (BACKGROUND, CELL, CYTOPLASM, IGNORE, NATIVE_CELL_DIAMETER, NUCLEUS,
                     SYNTHETIC_CELL_DIAMETER_UM, UNKNOWN_CLASS, Sample, ignore_unlabelled)

__all__ = ["MASK_SUFFIXES", "TYPICAL_WBC_DIAMETER_UM", "decode_mask", "detect_and_load",
           "find_pairs", "load_image_mask_folder", "load_project"]

#: assumed white-cell diameter when a project gives its pixel size (the synthetic smears'
#: median; neutrophils are 10-12 um across)
TYPICAL_WBC_DIAMETER_UM = SYNTHETIC_CELL_DIAMETER_UM
MASK_SUFFIXES = ("_mask", "_labels", "_label", "_seg")
MASK_DIRS = ("masks", "labels")
MIN_CELL_AREA = 16  # px; smaller mask components are not counted as cells for the scale
_TOLERANCE = 0.005
#: short names some public sets use, for the five blood classes
_SHORT_NAMES = {"baso": "basophil", "eosi": "eosinophil", "lymp": "lymphocyte",
                "mono": "monocyte", "neut": "neutrophil"}


# ---------------------------------------------------------------------------- projects

def load_project(project_dir, *, reviewed_only: bool = True, scale: float | None = None,
                 num_classes: int | None = None, classes=None) -> list[Sample]:
    """The images of an annotation project as samples.

    semantic: nucleus layer -> 2, cytoplasm layer -> 1.  cell_class: the cell-type layer's
    codes (gapped or above 5 too: marrow, extended blood); "unidentified" (255), codes
    not in ``classes`` (a class table; default: the project's own) and, with
    ``num_classes``, codes above it become 255.  ``meta["classes"]``: the table.  Fully reviewed
    images give ``complete=True``.  ``reviewed_only`` keeps the reviewed images plus
    those with a ``reviewed_cells`` list, whose unchecked cells become IGNORE (255) and
    which get ``complete=False``; False takes every image (unreviewed ones incomplete).
    Group ``project:<name>``, source ``project:<folder name>``.
    """
    from ...io.project import load_entry, read_project

    project = read_project(project_dir)
    table = table_rows(project.classes if classes is None else classes)
    codes = table_codes(table)
    _warn_class_table(project, num_classes)
    folder_name = Path(project_dir).resolve().name
    rows, ids_list = [], []
    for entry in project.entries:
        partial = not entry.reviewed and bool(entry.reviewed_cells)
        if reviewed_only and not (entry.reviewed or partial):
            continue
        data = load_entry(project_dir, entry)
        image = as_rgb_uint8(data.image, what=f"{entry.name!r} image")
        nuc, cyt = data.nucleus, data.cytoplasm
        semantic = np.zeros(nuc.shape, np.uint8)
        semantic[cyt > 0] = CYTOPLASM
        semantic[nuc > 0] = NUCLEUS
        cell = semantic > 0
        cell_class = keep_table_codes(data.cell_type, cell, codes, num_classes)
        ids = np.where(nuc > 0, nuc, cyt).astype(np.int64)
        if partial:
            unchecked = cell & ~np.isin(ids, list(entry.reviewed_cells))
            semantic[unchecked] = IGNORE
            cell_class[unchecked] = UNKNOWN_CLASS
            ids = np.where(unchecked, 0, ids)
        ids_list.append(ids)
        rows.append((entry, image, semantic, cell_class))
    if scale is None:
        if project.pixel_size_um:
            scale = NATIVE_CELL_DIAMETER * project.pixel_size_um / TYPICAL_WBC_DIAMETER_UM
        else:
            scale = _scale_from_cells(ids_list)
    source = f"project:{folder_name}"
    out = []
    for (entry, image, semantic, cell_class), ids in zip(rows, ids_list):
        out.append(Sample(
            image=image, semantic=semantic, cell_class=cell_class, source=source,
            group=f"project:{entry.name}", name=f"{source}/{entry.name}", scale=float(scale),
            complete=bool(entry.reviewed), image_class=_image_class(cell_class),
            meta={"reviewed": entry.reviewed, "reviewed_cells": entry.reviewed_cells,
                  "n_cells": int(np.unique(ids[ids > 0]).size),
                  "pixel_size_um": project.pixel_size_um, "classes": table,
                  "scheme": project.scheme}))
    return out


def _warn_class_table(project, num_classes: int | None) -> None:
    """Codes 1..K of the project that a segmentation head of K classes would learn as
    another class (a user's table; the built-ins share their codes by design)."""
    from ...schemes.scheme import normalise_name

    defaults = {c.code: normalise_name(c.name) for c in DEFAULT_CLASSES}
    top = len(DEFAULT_CLASSES) - 1 if num_classes is None else num_classes
    same = {"segmented neutrophil": "neutrophil"}
    odd = [f"{c.code}={c.name}" for c in project.classes
           if 1 <= c.code <= top and defaults.get(c.code) not in
           (normalise_name(c.name), same.get(normalise_name(c.name)))]
    if odd:
        warnings.warn(f"{project.path}: class codes {', '.join(odd)} differ from the "
                      "model's classes; the segmentation model's cell-type head learns "
                      "them as its own classes (the per-cell classifier learns the "
                      "project's)",
                      stacklevel=3)


# ------------------------------------------------------------------------ plain folders

def find_pairs(folder) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """``([(image, mask), ...], [images without a mask])`` of a plain folder.

    Raises ValueError for a mask file without an image.
    """
    folder = Path(folder)
    img_dir = folder / "images"
    mask_dir = next((folder / d for d in MASK_DIRS if (folder / d).is_dir()), None)
    if img_dir.is_dir() and mask_dir is not None:
        images, masks = _files(img_dir), _files(mask_dir)
        by_stem = {}
        for m in masks:
            by_stem.setdefault(_strip_mask_suffix(m.stem) or m.stem, []).append(m)
    else:
        files = _files(folder)
        masks = [f for f in files if _strip_mask_suffix(f.stem)]
        images = [f for f in files if not _strip_mask_suffix(f.stem)]
        by_stem = {}
        for m in masks:
            by_stem.setdefault(_strip_mask_suffix(m.stem), []).append(m)
    pairs, unpaired, used = [], [], set()
    for img in images:
        cands = by_stem.get(img.stem, [])
        if len(cands) > 1:
            raise ValueError(f"{img}: several masks match it "
                             f"({', '.join(c.name for c in cands)})")
        if cands:
            pairs.append((img, cands[0]))
            used.add(cands[0])
        else:
            unpaired.append(img)
    orphans = [m for m in masks if m not in used]
    if orphans:
        raise ValueError(f"{orphans[0]}: mask without an image of the same name"
                         + (f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""))
    return pairs, unpaired


def decode_mask(mask: np.ndarray, name: str = "mask") -> tuple[np.ndarray, str]:
    """``(semantic uint8, encoding)`` of one mask array; see the module docstring."""
    m = np.asarray(mask)
    if m.ndim == 3:
        if m.shape[2] == 4:
            m = m[..., :3]
        if m.shape[2] == 3:
            diff = int(np.ptp(m.astype(np.int32), axis=2).max()) if m.size else 0
            if diff > 20:
                raise ValueError(f"{name}: colour mask (channels differ by up to {diff}); "
                                 "expected a grey mask")
            m = cv2.cvtColor(np.ascontiguousarray(m), cv2.COLOR_RGB2GRAY)
        elif m.shape[2] == 1:
            m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"{name}: mask must be one 2D plane, got shape {m.shape}")
    if m.dtype == bool:
        m = m.astype(np.uint8)
    if m.dtype.kind not in "ui":
        raise ValueError(f"{name}: mask must hold integers, got {m.dtype}")
    values, counts = np.unique(m, return_counts=True)
    vals = set(values.tolist())
    if vals <= {0, 1} or vals <= {0, 255}:
        return np.where(m > 0, CELL, BACKGROUND).astype(np.uint8), "binary"
    if vals <= {0, 1, 2}:
        return m.astype(np.uint8), "class-index"
    if vals <= {0, 128, 255}:
        return _segwbc(m), "segmentation_WBC"
    frac = dict(zip(values.tolist(), (counts / m.size).tolist()))
    if 128 in vals and sum(frac.get(v, 0) for v in (0, 128, 255)) >= 1 - _TOLERANCE:
        return _segwbc(m), "segmentation_WBC"
    if 128 not in vals and 255 in vals and frac.get(0, 0) + frac[255] >= 1 - _TOLERANCE:
        return np.where(m > 127, CELL, BACKGROUND).astype(np.uint8), "binary"
    shown = ", ".join(str(v) for v in values[:10].tolist()) + (", ..." if len(values) > 10 else "")
    raise ValueError(f"{name}: unknown mask encoding, values {{{shown}}} ({len(values)} "
                     "distinct); expected {0,255} or {0,1} whole-cell, {0,1,2} classes, or "
                     "{0,128,255} segmentation_WBC-style")


def load_image_mask_folder(folder, *, scale: float | None = None, complete: bool = False,
                           mark_unlabelled: bool = True, num_classes: int | None = None,
                           classes=None) -> list[Sample]:
    """A plain folder of image + mask pairs as samples (see the module docstring).

    Nothing says every white cell of such an image is masked, so by default samples get
    ``complete=False`` and pixels that look like unmasked white cells are set to 255
    (:func:`~.sample.ignore_unlabelled`); ``complete=True`` trusts the masks and marks
    nothing.  ``classes``: the class table ``classes.csv`` names (default: the five blood
    classes); with ``num_classes``, codes above it become 255.  Images without a mask
    are skipped with a warning.  Source
    ``folder:<folder name>``, one group per image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    pairs, unpaired = find_pairs(folder)
    if not pairs:
        raise ValueError(f"{folder}: no image + mask pairs (expected images/ + masks/ with the "
                         "same names, or X.png beside X_mask.png)")
    if unpaired:
        warnings.warn(f"{folder}: {len(unpaired)} images have no mask and are skipped "
                      f"(e.g. {unpaired[0].name})", stacklevel=2)
    table = table_rows(DEFAULT_CLASSES if classes is None else classes)
    classes = _read_classes_csv(folder / "classes.csv", table, num_classes)
    rows, ids_list = [], []
    for img_path, mask_path in pairs:
        image = read_image(img_path)
        if image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
            raise ValueError(f"{img_path}: a stack of {image.shape[0]} images; expected one")
        image = as_rgb_uint8(image, what=str(img_path))
        semantic, encoding = decode_mask(read_image(mask_path), str(mask_path))
        if semantic.shape != image.shape[:2]:
            raise ValueError(f"{mask_path}: mask is {semantic.shape[0]}x{semantic.shape[1]}, "
                             f"its image {img_path.name} is {image.shape[0]}x{image.shape[1]}")
        cell = semantic > 0
        _, cc = cv2.connectedComponents(cell.astype(np.uint8), connectivity=8)
        code = classes.get(img_path.name, classes.get(img_path.stem))
        cell_class = np.where(cell, UNKNOWN_CLASS, 0).astype(np.uint8)
        if code is not None and cell.any():
            cell_class[cc == _main_component(cc)] = code
        rows.append((img_path, mask_path, image, semantic, cell_class, encoding, code))
        ids_list.append(cc)
    if scale is None:
        scale = _scale_from_cells(ids_list)
    source = f"folder:{folder.resolve().name}"
    out = []
    for img_path, mask_path, image, semantic, cell_class, encoding, code in rows:
        ignored = 0
        if mark_unlabelled and not complete:
            ignored = ignore_unlabelled(semantic, cell_class, image,
                                        work_scale=min(1.0, 2.0 * float(scale)))
        rel = img_path.relative_to(folder).with_suffix("").as_posix()
        out.append(Sample(
            image=image, semantic=semantic, cell_class=cell_class, source=source,
            group=f"{source}/{rel}", name=f"{source}/{rel}", scale=float(scale),
            complete=complete, image_class=UNKNOWN_CLASS if code is None else int(code),
            meta={"image_path": str(img_path), "mask_path": str(mask_path),
                  "encoding": encoding, "ignored_px": ignored}))
    return out


# ---------------------------------------------------------------------------- detection

def detect_and_load(folder, *, reviewed_only: bool = True, full_fields: bool = False
                    ) -> list[Sample]:
    """Samples from one ``--data`` folder of any supported layout.

    In this order: a project (``project.json``), a public layout (``segmentation_WBC/``
    and/or ``BCISC/`` inside, or the folder itself so named; BCISC full fields are
    resampled to the native scale unless ``full_fields``), the plugin's saved label layers beside their images
    (:mod:`.layer_files`), a plain folder of image + mask pairs.  Raises
    FileNotFoundError or ValueError with a one-line message naming the folder.
    """
    from ...io.project import is_project

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if is_project(folder):
        samples = load_project(folder, reviewed_only=reviewed_only)
        if not samples:
            raise ValueError(f"{folder}: the project has no reviewed images; mark images as "
                             "reviewed before training on them")
        return samples
    public = _load_public(folder, full_fields)
    if public is not None:
        return public
    from .layer_files import find_layer_sets, load_layer_folder

    if find_layer_sets(folder):
        return load_layer_folder(folder)
    if not find_pairs(folder)[0]:
        raise ValueError(f"{folder}: no project.json, segmentation_WBC/ or BCISC/ folder, "
                         "saved label layers (X.png + X_nucleus.tif + X_cytoplasm.tif) or "
                         "image + mask pairs (images/ + masks/, or X.png + X_mask.png) found")
    return load_image_mask_folder(folder)


def _load_public(folder: Path, full_fields: bool = False) -> list[Sample] | None:
    from .datasets import load_bcisc_fields, load_bcisc_subimages, load_segmentation_wbc

    segwbc = folder / "segmentation_WBC" if folder.name != "segmentation_WBC" else folder
    bcisc = folder / "BCISC" if folder.name != "BCISC" else folder
    if not (segwbc.is_dir() or bcisc.is_dir()):
        return None
    found: list[Sample] = []
    if segwbc.is_dir():
        for dataset in (1, 2):
            if (segwbc / f"Dataset {dataset}").is_dir():
                found += load_segmentation_wbc(segwbc, dataset)
    if bcisc.is_dir():
        if (bcisc / "sub-images").is_dir():
            found += load_bcisc_subimages(bcisc)
        if (bcisc / "original-images").is_dir():
            found += list(load_bcisc_fields(bcisc, native=not full_fields))
    if not found:
        raise ValueError(f"{folder}: segmentation_WBC/ or BCISC/ holds no images in the "
                         "published layout ('Dataset N/', 'sub-images/', 'original-images/')")
    return found


# ------------------------------------------------------------------------------ helpers

def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in SUPPORTED_SUFFIXES)


def _strip_mask_suffix(stem: str) -> str | None:
    low = stem.lower()
    for suf in MASK_SUFFIXES:
        if low.endswith(suf) and len(stem) > len(suf):
            return stem[: -len(suf)]
    return None


def _segwbc(m: np.ndarray) -> np.ndarray:
    return ((m >= 64).astype(np.uint8) + (m >= 192)).astype(np.uint8)


def _main_component(cc: np.ndarray) -> int:
    """The component under the image centre (8 px box), else the largest."""
    H, W = cc.shape
    box = cc[max(H // 2 - 8, 0):H // 2 + 9, max(W // 2 - 8, 0):W // 2 + 9]
    ids, counts = np.unique(box[box > 0], return_counts=True)
    if ids.size:
        return int(ids[np.argmax(counts)])
    ids, counts = np.unique(cc[cc > 0], return_counts=True)
    return int(ids[np.argmax(counts)])


def _scale_from_cells(id_images) -> float:
    """NATIVE_CELL_DIAMETER / median equivalent diameter of the cells in the id images."""
    inner, edge = [], []
    for ids in id_images:
        labels, areas = np.unique(ids[ids > 0], return_counts=True)
        if not labels.size:
            continue
        border = np.unique(np.concatenate([ids[0], ids[-1], ids[:, 0], ids[:, -1]]))
        for lab, area in zip(labels.tolist(), areas.tolist()):
            if area >= MIN_CELL_AREA:
                (edge if lab in border else inner).append(2.0 * np.sqrt(area / np.pi))
    d = inner or edge
    return float(NATIVE_CELL_DIAMETER / np.median(d)) if d else 1.0


def _image_class(cell_class: np.ndarray) -> int:
    """The one class of the classified cells; 0 without cells or with mixed classes,
    255 when no cell has a known class."""
    cls = cell_class[cell_class > 0]
    if not cls.size:
        return 0
    known = np.unique(cls[cls != UNKNOWN_CLASS])
    if not known.size:
        return UNKNOWN_CLASS
    return int(known[0]) if known.size == 1 else 0


def _read_classes_csv(path: Path, table, num_classes: int | None = None) -> dict[str, int]:
    if not path.is_file():
        return {}
    from ...schemes.scheme import normalise_name

    names = {normalise_name(r["name"]): r["code"] for r in table}
    names.update({k: names[v] for k, v in _SHORT_NAMES.items() if v in names})
    codes = set(names.values())
    top = num_classes if num_classes is not None else 254
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(k or "").strip().lower(): k for k in reader.fieldnames or []}
        if "image" not in fields or "class" not in fields:
            raise ValueError(f"{path}: needs the columns 'image,class', got {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            image = (row[fields["image"]] or "").strip()
            value = (row[fields["class"]] or "").strip()
            if not image or not value:
                continue
            if re.fullmatch(r"\d+", value):
                code = int(value)
            elif normalise_name(value) in names:
                code = names[normalise_name(value)]
            elif value.lower() in ("unknown", "unidentified"):
                code = UNKNOWN_CLASS
            else:
                raise ValueError(f"{path}, line {i}: unknown class {value!r}")
            out[image] = code if code in codes and code <= top else UNKNOWN_CLASS
    return out

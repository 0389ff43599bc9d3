"""Loaders for BCISC (Fan et al. 2019): single-cell crops and full fields, whole-cell masks.

BCISC masks cover the whole white cell (no nucleus / cytoplasm split), so cells get
the semantic code ``CELL`` (3).  What a look at every staged crop showed, and how the
loaders deal with it:

* a sub-image mask is the union of the field's masks cropped, so besides the central
  cell it can hold parts of other cells, which are not always of the file's class
  (``mono_10-3_1`` is a neutrophil at the crop edge, ``eosi_8-5_0`` has a neutrophil in
  the centre).  The folder class is therefore put only on the mask component under the
  crop centre; other components are cells of unknown class (255), and the crops in
  :data:`DOUBTFUL_SUBIMAGES`, whose central cell does not look like the named class, get
  no class at all;
* masks may miss white cells (README; e.g. ``neut/4-2`` has an unmasked cell at the
  border).  Unmasked cells would be wrong background, so by default pixels that look
  like an unlabelled white cell (:func:`~.sample.mark_unlabelled_cells`) are set to 255
  and every BCISC sample has ``complete=False``.  The heuristic cannot promise to catch
  every such cell: that risk remains;
* full fields: the folder class is only put on the cells of a field with one unsuffixed
  mask file (``N-M.png``); fields with several masks show cells of other classes
  (``mono/10-3`` has two neutrophils masked), so their cells get class 255;
* ``baso/2-2.jpg`` is 1024x768, not 2048x1536: it and its crops get twice the scale.

Groups: ``bcisc-<cls>-<N>`` for crops and fields alike (split by N, README).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ...io.imread import read_image
from .sample import (BACKGROUND, CELL, DEFAULT_SCALE, UNKNOWN_CLASS, Sample, find_folder,
                     ignore_unlabelled)

BCISC_CLASSES = {"neut": 1, "lymp": 2, "mono": 3, "eosi": 4, "baso": 5}
#: crops whose central cell does not look like the class in the file name (checked by eye,
#: not by a haematologist): the central cell is kept as a cell of unknown class
DOUBTFUL_SUBIMAGES = {
    "eosi_8-5_0": "central cell is a neutrophil (the eosinophil is at the top left)",
    "eosi_7-2_5": "small dark agranular cell, not an eosinophil",
    "eosi_10-2_0": "two touching cells in one mask component",
    "lymp_9-2_0": "granular, basophil-like cell",
}
#: the fields (and their crops) at half the usual resolution
HALF_RESOLUTION_FIELDS = {("baso", "2-2")}
CENTRE_BOX = 8  # the target component must cover a pixel within this many px of the centre

_SUB_RE = re.compile(r"^(baso|eosi|lymp|mono|neut)_(\d+)-(\d+)_(\d+)$")
_FIELD_MASK_RE = re.compile(r"^(\d+)-(\d+)(?:\((\d+)\)|_(\d+))?$")


def _read_mask(path: Path) -> np.ndarray:
    m = read_image(path)
    if m.ndim == 3:  # noisy RGB masks: PIL-style luma, then > 127
        m = cv2.cvtColor(m[..., :3], cv2.COLOR_RGB2GRAY)
    return m > 127


def _centre_component(mask: np.ndarray):
    """(component labels, index of the component under the centre or 0)."""
    n, cc = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    H, W = mask.shape
    box = cc[max(H // 2 - CENTRE_BOX, 0):H // 2 + CENTRE_BOX + 1,
             max(W // 2 - CENTRE_BOX, 0):W // 2 + CENTRE_BOX + 1]
    ids, counts = np.unique(box[box > 0], return_counts=True)
    return cc, (int(ids[np.argmax(counts)]) if ids.size else 0)


def load_bcisc_subimages(root, *, mark_unlabelled: bool = True) -> list[Sample]:
    """All ``sub-images/images/<cls>_<N>-<M>_<k>.jpg`` crops with their whole-cell masks.

    ``root`` is the data root or the ``BCISC`` folder.  ``meta`` holds the field
    (``"<cls>/<N>-<M>"``), ``k``, ``class_on`` ("centre", "none") and the number of
    pixels set to unknown by the unlabelled-cell heuristic.
    """
    base = find_folder(root, "BCISC") / "sub-images"
    samples = []
    for img_path in sorted((base / "images").glob("*.jpg")):
        m = _SUB_RE.match(img_path.stem)
        if m is None:
            continue
        cls, n, fm, k = m[1], int(m[2]), int(m[3]), int(m[4])
        image = read_image(img_path)[..., :3]
        mask = _read_mask(base / "masks" / f"{img_path.stem}.png")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{img_path.name}: mask shape {mask.shape} != image {image.shape[:2]}")
        code = BCISC_CLASSES[cls]
        semantic = np.where(mask, CELL, BACKGROUND).astype(np.uint8)
        cell_class = np.where(mask, UNKNOWN_CLASS, 0).astype(np.uint8)
        cc, centre = _centre_component(mask)
        class_on = "none"
        if centre and img_path.stem not in DOUBTFUL_SUBIMAGES:
            cell_class[cc == centre] = code
            class_on = "centre"
        ignored = ignore_unlabelled(semantic, cell_class, image) if mark_unlabelled else 0
        half = (cls, f"{n}-{fm}") in HALF_RESOLUTION_FIELDS
        scale = DEFAULT_SCALE["BCISC-sub"] * (2.0 if half else 1.0)
        samples.append(Sample(
            image=np.ascontiguousarray(image), semantic=semantic, cell_class=cell_class,
            source="BCISC-sub", group=f"bcisc-{cls}-{n}", name=img_path.stem, scale=scale,
            complete=False, image_class=code,
            meta={"field": f"{cls}/{n}-{fm}", "k": k, "class_on": class_on,
                  "ignored_px": ignored, "doubt": DOUBTFUL_SUBIMAGES.get(img_path.stem)}))
    return samples


def field_masks(root) -> dict[tuple[str, str], list[Path]]:
    """``{(cls, "N-M"): [mask paths]}`` for every full field that has mask files."""
    base = find_folder(root, "BCISC") / "original-images"
    out: dict[tuple[str, str], list[Path]] = {}
    for cls in sorted(BCISC_CLASSES):
        for p in sorted((base / cls).glob("*.png")):
            m = _FIELD_MASK_RE.match(p.stem)
            if m and (base / cls / f"{m[1]}-{m[2]}.jpg").is_file():
                out.setdefault((cls, f"{m[1]}-{m[2]}"), []).append(p)
    return out


def load_bcisc_fields(root, *, mark_unlabelled: bool = True, native: bool = False,
                      classes=None, only=None) -> Iterator[Sample]:
    """Full fields with at least one mask, one at a time (each is 2048x1536, ~9 MiB).

    Fields without masks (all of ``eosi``) are skipped.  Identical mask files are
    counted once.  ``native=True`` resamples each field to the native scale on the fly
    (``scale`` becomes 1), which is what training wants (~700x525 per field).
    ``classes`` limits the folders (e.g. ``["neut"]``), ``only`` the fields (names
    such as ``"mono/10-3"``).  ``meta["class_on"]`` is "all" where the folder class was
    put on the masked cells, "none" where they got 255.
    """
    from .augment import resample_to_native

    base = find_folder(root, "BCISC") / "original-images"
    for (cls, stem), paths in field_masks(root).items():
        if classes is not None and cls not in classes:
            continue
        if only is not None and f"{cls}/{stem}" not in only:
            continue
        image = read_image(base / cls / f"{stem}.jpg")[..., :3]
        masks: list[np.ndarray] = []
        for p in paths:
            m = _read_mask(p)
            if m.shape != image.shape[:2]:
                raise ValueError(f"{cls}/{p.name}: mask shape {m.shape} != image {image.shape[:2]}")
            if not any(np.array_equal(m, u) for u in masks):
                masks.append(m)
        cell = np.logical_or.reduce(masks)
        single = len(masks) == 1 and any(p.stem == stem for p in paths)
        code = BCISC_CLASSES[cls]
        semantic = np.where(cell, CELL, BACKGROUND).astype(np.uint8)
        cell_class = np.where(cell, code if single else UNKNOWN_CLASS, 0).astype(np.uint8)
        half = (cls, stem) in HALF_RESOLUTION_FIELDS
        scale = DEFAULT_SCALE["BCISC-field"] * (2.0 if half else 1.0)
        ignored = ignore_unlabelled(semantic, cell_class, image, work_scale=min(1.0, 2 * scale)) \
            if mark_unlabelled else 0
        n = int(stem.split("-")[0])
        sample = Sample(image=np.ascontiguousarray(image), semantic=semantic, cell_class=cell_class,
                        source="BCISC-field", group=f"bcisc-{cls}-{n}", name=f"{cls}/{stem}",
                        scale=scale, complete=False, image_class=code,
                        meta={"masks": [p.name for p in paths], "distinct_masks": len(masks),
                              "class_on": "all" if single else "none", "ignored_px": ignored})
        yield resample_to_native(sample) if native else sample

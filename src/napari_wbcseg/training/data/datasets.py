"""Training data as numpy :class:`Sample` objects (no torch): loaders, synthetic data, splits.

Sources (see ``shared/data/README.md``) and their ``Sample.source`` names:

* ``segmentation_WBC-1`` / ``-2`` (Zheng et al. 2018): nucleus + cytoplasm masks of the
  central cell, class from the CSVs.  Only the central cell is annotated: border-cut or
  whole neighbouring white cells are background in the masks (so ``complete=False``).
  By default the loader sets pixels that look like such cells to 255 (6 of the 319
  images are touched, e.g. Dataset 2 / 040 has an unmasked cell in the middle);
  ``mark_unlabelled=False`` keeps the masks as published.
* ``BCISC-sub`` / ``BCISC-field`` (Fan et al. 2019): whole-cell masks; see
  :mod:`.bcisc` for what was found in them and how it is handled.
* ``synthetic``: :func:`~napari_wbcseg.core.synthetic.synthetic_smear`, fully known.

Label codes, the native scale and :class:`Sample` are defined in :mod:`.sample`.
"""
from __future__ import annotations

import csv
import zlib
from collections import defaultdict

import numpy as np

from ...io.imread import read_image
from .bcisc import BCISC_CLASSES, load_bcisc_fields, load_bcisc_subimages
from .sample import (BACKGROUND, CELL, CYTOPLASM, DEFAULT_SCALE, IGNORE, MEDIAN_CELL_DIAMETER,
                     NATIVE_CELL_DIAMETER, NUCLEUS, SEMANTIC_CODES, SYNTHETIC_CELL_DIAMETER_UM,
                     UNKNOWN_CLASS, Sample, find_folder, ignore_unlabelled, mark_unlabelled_cells,
                     synthetic_scale)

__all__ = [
    "BACKGROUND", "BCISC_CLASSES", "CELL", "CYTOPLASM", "DEFAULT_SCALE", "IGNORE",
    "MEDIAN_CELL_DIAMETER", "NATIVE_CELL_DIAMETER", "NUCLEUS", "SEGWBC_DUPLICATES",
    "SEMANTIC_CODES", "SYNTHETIC_CELL_DIAMETER_UM", "UNKNOWN_CLASS", "Sample",
    "load_all", "load_bcisc_fields", "load_bcisc_subimages", "load_segmentation_wbc",
    "mark_unlabelled_cells", "read_class_csv", "split_by_group", "synthetic_samples",
    "synthetic_scale",
]

#: Dataset 1 images that show the same cell (README "Grouping / duplicates")
SEGWBC_DUPLICATES = ((54, 91), (112, 139), (60, 90), (70, 72), (19, 75), (56, 92), (30, 86),
                     (21, 82), (157, 158), (166, 171))
_CSV_NAMES = {1: "Class Labels of Dataset 1.csv", 2: "Class Labels of Dataset 2.csv"}


def read_class_csv(path) -> dict[int, int]:
    """``{image id: class code}`` from a segmentation_WBC CSV (any header, CRLF or LF)."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[0].strip().isdigit() and row[1].strip().isdigit():
                out[int(row[0])] = int(row[1])
    return out


def _segwbc_groups(dataset: int) -> dict[int, str]:
    if dataset != 1:
        return {}
    return {i: f"segwbc1-{a:03d}+{b:03d}" for a, b in SEGWBC_DUPLICATES for i in (a, b)}


def load_segmentation_wbc(root, dataset: int = 1, *, mark_unlabelled: bool = True,
                          conflicts_unknown: bool = True) -> list[Sample]:
    """``Dataset N/NNN.bmp`` + ``NNN.png`` of segmentation_WBC as samples.

    Masks decode as ``(m >= 64) + (m >= 192)``: 0 background, 1 cytoplasm, 2 nucleus.
    The class from the CSV is put on the cell (255 if the image has no CSV row).
    Duplicate pairs share a group; a pair whose two CSV labels disagree (060 / 090:
    neutrophil / monocyte) gets class 255 on both when ``conflicts_unknown``; the raw
    CSV label stays in ``meta["csv_class"]``.  ``mark_unlabelled=True`` sets pixels that
    look like unannotated (e.g. border-cut) white cells to 255; False keeps the published
    masks.
    """
    if dataset not in (1, 2):
        raise ValueError(f"dataset must be 1 or 2, got {dataset!r}")
    base = find_folder(root, "segmentation_WBC")
    classes = read_class_csv(base / _CSV_NAMES[dataset])
    groups = _segwbc_groups(dataset)
    conflicting = set()
    if conflicts_unknown:
        for a, b in (SEGWBC_DUPLICATES if dataset == 1 else ()):
            if a in classes and b in classes and classes[a] != classes[b]:
                conflicting |= {a, b}
    source = f"segmentation_WBC-{dataset}"
    samples = []
    for img_path in sorted((base / f"Dataset {dataset}").glob("*.bmp")):
        if not img_path.stem.isdigit():
            continue
        idx = int(img_path.stem)
        image = read_image(img_path)[..., :3]
        m = read_image(img_path.with_suffix(".png"))
        if m.ndim == 3:
            m = m[..., 0]
        if m.shape != image.shape[:2]:
            raise ValueError(f"{img_path.name}: mask shape {m.shape} != image {image.shape[:2]}")
        semantic = ((m >= 64).astype(np.uint8) + (m >= 192)).astype(np.uint8)
        csv_class = classes.get(idx)
        code = UNKNOWN_CLASS if csv_class is None or idx in conflicting else int(csv_class)
        cell_class = np.where(semantic > 0, code, 0).astype(np.uint8)
        ignored = ignore_unlabelled(semantic, cell_class, image) if mark_unlabelled else 0
        samples.append(Sample(
            image=np.ascontiguousarray(image), semantic=semantic, cell_class=cell_class,
            source=source, group=groups.get(idx, f"segwbc{dataset}-{idx:03d}"),
            name=f"{source}/{img_path.stem}", scale=DEFAULT_SCALE[source],
            complete=False, image_class=code,
            meta={"id": idx, "csv_class": csv_class, "conflict": idx in conflicting,
                  "ignored_px": ignored}))
    return samples


def synthetic_samples(n: int, seed0: int = 0, shape=(384, 512), **smear_kwargs) -> list[Sample]:
    """``n`` synthetic smears (seeds ``seed0 .. seed0 + n - 1``), labels fully known.

    Extra keyword arguments go to ``synthetic_smear`` (``n_wbc``, ``pixel_size_um``,
    ``touching``, ...).
    """
    from ...core.synthetic import synthetic_smear

    out = []
    for seed in range(int(seed0), int(seed0) + int(n)):
        sm = synthetic_smear(shape, seed=seed, **smear_kwargs)
        semantic = np.zeros(sm.nucleus.shape, np.uint8)
        semantic[sm.cytoplasm > 0] = CYTOPLASM
        semantic[sm.nucleus > 0] = NUCLEUS
        out.append(Sample(
            image=sm.image, semantic=semantic, cell_class=sm.cell_type.astype(np.uint8),
            source="synthetic", group=f"synthetic-{seed}", name=f"synthetic-{seed}",
            scale=synthetic_scale(sm.pixel_size_um), complete=True, image_class=0,
            meta={"seed": seed, "classes": dict(sm.classes), "pixel_size_um": sm.pixel_size_um}))
    return out


def load_all(root, *, fields: bool = False, synthetic: int = 0, mark_unlabelled: bool = True
             ) -> list[Sample]:
    """segmentation_WBC 1 and 2 plus the BCISC crops (about 535 samples, ~90 MiB).

    ``fields=True`` adds the BCISC full fields resampled to the native scale (~150 more,
    slow to decode); ``synthetic`` adds that many synthetic smears.
    """
    samples = []
    for ds in (1, 2):
        samples += load_segmentation_wbc(root, ds, mark_unlabelled=mark_unlabelled)
    samples += load_bcisc_subimages(root, mark_unlabelled=mark_unlabelled)
    if fields:
        samples += list(load_bcisc_fields(root, native=True, mark_unlabelled=mark_unlabelled))
    if synthetic:
        samples += synthetic_samples(synthetic)
    return samples


def _family(source: str) -> str:
    return "BCISC" if source.startswith("BCISC") else source


def split_by_group(samples, val_fraction: float = 0.2, seed: int = 0):
    """Deterministic ``(train, val)`` lists with no group on both sides.

    Groups are stratified by dataset family (the two BCISC sources count as one, since
    a crop and its field share a group) and by image-level class, so every dataset and,
    where it has enough groups, every class has validation samples.  Within a stratum
    the groups are shuffled with ``seed`` and moved to validation until it holds
    ``val_fraction`` of the stratum's samples; a stratum with a single group stays in
    training.  The order of ``samples`` does not matter.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    samples = list(samples)
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_group[s.group].append(i)
    strata: dict[tuple, list[str]] = defaultdict(list)
    for g, idx in by_group.items():
        first = min(idx, key=lambda i: (samples[i].source, samples[i].name))
        strata[(_family(samples[first].source), int(samples[first].image_class))].append(g)
    val_groups = set()
    for key in sorted(strata):
        groups = sorted(strata[key])
        if len(groups) < 2 or val_fraction == 0:
            continue
        rng = np.random.default_rng([int(seed), zlib.crc32(repr(key).encode())])
        order = [groups[i] for i in rng.permutation(len(groups))]
        total = sum(len(by_group[g]) for g in groups)
        got = 0
        for g in order[:-1]:  # never the whole stratum
            if got >= val_fraction * total:
                break
            if got and got + len(by_group[g]) > 1.5 * val_fraction * total:
                continue  # a big group would overshoot: try the next one
            val_groups.add(g)
            got += len(by_group[g])
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    key = lambda s: (s.source, s.name)  # noqa: E731
    return sorted(train, key=key), sorted(val, key=key)

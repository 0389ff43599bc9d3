"""Score every bundled model on the validation split and write docs/benchmarks.md.

    nice -n 19 .venv/bin/python scripts/benchmarks_table.py [--data ../shared/data]
        [--out docs/benchmarks.md] [--device cpu] [--models NAME ...] [--json FILE]
    .venv/bin/python scripts/benchmarks_table.py --from-json FILE   # re-render only

The numbers are measured, not copied from the model cards: each bundled model is run
through ``napari_wbcseg.training.evaluation.report.evaluate_datasets`` on the validation part of the
group-aware split (seed 0, 20%) of all staged data, exactly as ``napari-wbcseg evaluate``
does.  The papers' numbers beside them are constants below, each checked against the
paper text in ../shared/papers/ (table cited).  Rerun after retraining: the page, the
targets and whether they are met are all regenerated.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SOURCES = [("segmentation_WBC-1", "segmentation_WBC Dataset 1 (Jiangxi Tecom, 120x120)"),
           ("segmentation_WBC-2", "segmentation_WBC Dataset 2 (CellaVision, 300x300)"),
           ("BCISC-sub", "BCISC single-cell sub-images (256x256)"),
           ("BCISC-field", "BCISC full fields (2048x1536)")]

#: columns of the per-dataset tables: (key, header)
COLUMNS = [("cell_dice", "cell Dice"), ("cell_miou", "cell mIoU"),
           ("cell_precision", "cell precision"), ("nucleus_dice", "nucleus Dice"),
           ("cytoplasm_dice", "cytoplasm Dice"), ("cell_type_accuracy", "cell-type acc."),
           ("five_class_miou", "5-class mIoU")]

#: The papers' reported numbers (fractions), each checked against ../shared/papers/*.txt.
PAPERS = {
    "segmentation_WBC-1": [
        {"method": "WBC-Net (Lu et al. 2021)", "where": "Table 1, Dataset1",
         "cell_dice": 0.9892, "cell_miou": 0.9844, "cell_precision": 0.9897},
        {"method": "LeukocyteMask (Fan et al. 2019)", "where": "Table 1, Dataset 1, Aug-ET",
         "cell_dice": 0.98196, "cell_miou": 0.96975, "cell_precision": 0.99544},
        {"method": "AHE-Retinex CBAM U-Net (Zhu et al. 2023)", "where": "Table 2, their "
         "Dataset2 (= Jiangxi); F1 in the Dice column", "cell_dice": 0.9897,
         "cell_miou": 0.9973, "cell_precision": 0.9915},
        {"method": "WCSegNet (Nasser et al. 2025)", "where": "Table 1, Jiangxi; nuclei of "
         "three cell types, see below", "cell_dice": 0.9653, "cell_miou": 0.9599,
         "cell_precision": 0.9790},
    ],
    "segmentation_WBC-2": [
        {"method": "WBC-Net (Lu et al. 2021)", "where": "Table 1, Dataset2",
         "cell_dice": 0.9928, "cell_miou": 0.9902, "cell_precision": 0.9942},
        {"method": "LeukocyteMask (Fan et al. 2019)", "where": "Table 1, Dataset 2, Aug-ET",
         "cell_dice": 0.98242, "cell_miou": 0.96671, "cell_precision": 0.99432},
        {"method": "AHE-Retinex CBAM U-Net (Zhu et al. 2023)", "where": "Table 2, their "
         "Dataset3 (= CellaVision); F1 in the Dice column", "cell_dice": 0.9893,
         "cell_miou": 0.9834, "cell_precision": 0.9899},
        {"method": "WCSegNet (Nasser et al. 2025)", "where": "Table 1, CellaVision; nuclei "
         "of three cell types, see below", "cell_dice": 0.9662, "cell_miou": 0.9609,
         "cell_precision": 0.9706},
    ],
    "BCISC-sub": [
        {"method": "LeukocyteMask (Fan et al. 2019)", "where": "Table 1, BCISC, Aug-ET",
         "cell_dice": 0.97835, "cell_miou": 0.96471, "cell_precision": 0.98947},
        {"method": "AHE-Retinex CBAM U-Net (Zhu et al. 2023)", "where": "Table 2, their "
         "Dataset1 (= BCISC); F1 in the Dice column", "cell_dice": 0.9886,
         "cell_miou": 0.9877, "cell_precision": 0.9913},
        {"method": "AHE-Retinex CBAM U-Net (Zhu et al. 2023)", "where": "Tables 3 and 4: "
         "five-class segmentation of 2x2 mosaics of BCISC sub-images", "five_class_miou": 0.9189},
        {"method": "WCSegNet (Nasser et al. 2025)", "where": "Table 2, BCISC; nuclei of "
         "three cell types, see below", "cell_dice": 0.9658, "cell_miou": 0.9598,
         "cell_precision": 0.9735},
    ],
    "BCISC-field": [
        {"method": "WBC-Net (Lu et al. 2021)", "where": "Table 1, Dataset4 (Third People's "
         "Hospital of Fujian, 231 images of 2048x1536: presumably these fields)",
         "cell_dice": 0.9760, "cell_miou": 0.9763, "cell_precision": 0.9862},
    ],
}

#: Zhu et al. Table 1 (Dataset1 = BCISC mosaics, "Method of this paper"): per-class IoU.
ZHU_CLASS_IOU = {"neutrophil": 0.9207, "lymphocyte": 0.8894, "monocyte": 0.8924,
                 "eosinophil": 0.9008, "basophil": 0.9131}

#: The five cell types in the order of the report's confusion matrices
#: (``napari_wbcseg.training.evaluation.report.CLASS_NAMES``; rows true, columns predicted).
CELL_TYPES = ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")

#: The issue's targets for the best bundled network: (label, source or None for all
#: validation cells pooled over the sources, metric key, threshold).  ``recall_<type>``
#: is the recall of one cell type from the confusion matrices pooled over the sources.
TARGETS = [
    ("whole-cell Dice, Dataset 1", "segmentation_WBC-1", "cell_dice", 0.98),
    ("whole-cell Dice, Dataset 2", "segmentation_WBC-2", "cell_dice", 0.985),
    ("whole-cell Dice, BCISC sub-images", "BCISC-sub", "cell_dice", 0.975),
    ("whole-cell Dice, BCISC full fields", "BCISC-field", "cell_dice", 0.975),
    ("nucleus Dice, Dataset 1", "segmentation_WBC-1", "nucleus_dice", 0.96),
    ("nucleus Dice, Dataset 2", "segmentation_WBC-2", "nucleus_dice", 0.96),
    ("cytoplasm Dice, Dataset 1", "segmentation_WBC-1", "cytoplasm_dice", 0.92),
    ("cytoplasm Dice, Dataset 2", "segmentation_WBC-2", "cytoplasm_dice", 0.92),
    ("cell-type accuracy, Dataset 1", "segmentation_WBC-1", "cell_type_accuracy", 0.95),
    ("cell-type accuracy, Dataset 2", "segmentation_WBC-2", "cell_type_accuracy", 0.95),
    ("cell-type accuracy, BCISC sub-images", "BCISC-sub", "cell_type_accuracy", 0.95),
    ("cell-type accuracy, BCISC full fields", "BCISC-field", "cell_type_accuracy", 0.95),
] + [(f"{t} recall, all validation cells", None, f"recall_{t}", 0.85) for t in CELL_TYPES]


# --- numbers out of a report (training.report.evaluate_datasets) -------------------------

def metric(row: dict | None, key: str) -> float | None:
    """One number of a dataset row of the report, None where it was not measured."""
    if not row:
        return None
    if key == "cell_type_accuracy":
        return row.get("cell_type_accuracy")
    if key == "five_class_miou":
        return row.get("pixel_classes", {}).get("miou")
    region, _, name = key.partition("_")
    if region not in ("cell", "nucleus", "cytoplasm"):
        raise KeyError(key)
    return row.get("regions", {}).get(region, {}).get(name)


def pooled_confusion(report: dict) -> list[list[int]] | None:
    """The cell-type confusion matrices (rows true, columns predicted) of all sources
    summed, None where no source has annotated cells."""
    total = None
    for row in report.values():
        conf = (row or {}).get("confusion")
        if conf is None:
            continue
        if total is None:
            total = [[0] * len(conf) for _ in conf]
        for i, counts in enumerate(conf):
            for j, c in enumerate(counts):
                total[i][j] += int(c)
    return total


def measured(report: dict, source: str | None, key: str) -> float | None:
    """``metric`` for one source, or for ``source=None`` pooled over all sources: the
    cell-type accuracy over every annotated validation cell, or ``recall_<type>`` (right
    / all cells of that true type; None where there is none)."""
    if source is not None:
        return metric(report.get(source), key)
    conf = pooled_confusion(report)
    if key == "cell_type_accuracy":
        total = sum(map(sum, conf)) if conf else 0
        return sum(conf[i][i] for i in range(len(conf))) / total if total else None
    if key.startswith("recall_"):
        i = CELL_TYPES.index(key[len("recall_"):])
        if conf is None or i >= len(conf) or not sum(conf[i]):
            return None
        return conf[i][i] / sum(conf[i])
    raise ValueError(f"{key} is not pooled over datasets")


def pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def target_pct(v: float | None, threshold: float) -> str:
    """``pct``, with a third decimal where two would round a miss up to the threshold."""
    text = pct(v)
    if text != "–" and v < threshold and float(text) >= round(100 * threshold, 2):
        text = f"{100 * v:.3f}"
    return text


def paper_pct(v: float) -> str:
    """A paper's fraction in % rounded half up from its printed digits (0.96975 -> 96.98)."""
    return str((Decimal(repr(v)) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- markdown --------------------------------------------------------------------------

def _table(head: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(head) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def target_rows(reports: dict[str, dict]) -> list[dict]:
    """Each target with every model's value, the best model and whether it is met."""
    out = []
    for label, source, key, threshold in TARGETS:
        values = {name: measured(rep, source, key) for name, rep in reports.items()}
        scored = {n: v for n, v in values.items() if v is not None and not math.isnan(v)}
        best = max(scored, key=scored.get) if scored else None
        out.append({"label": label, "source": source, "key": key, "threshold": threshold,
                    "values": values, "best": best,
                    "met": best is not None and scored[best] >= threshold})
    return out


#: the cell-type file that scripts/evaluate_cell_types.py --part validation --json writes
CELL_TYPES_JSON = REPO / "docs" / "cell_types_validation.json"


def pipeline_cell_type_section(cell_types: dict | None) -> list[str]:
    """The cell-type targets as Segment meets them (the default segmentation network, then
    the per-cell classifier combined with its head), from ``evaluate_cell_types.py``'s JSON;
    nothing when there is none."""
    if not cell_types or cell_types.get("part") != "validation":
        return []
    w = cell_types.get("head_weight")
    L = ["### Cell types as Segment gives them", "",
         f"The table above scores the networks' heads alone. Segment puts the per-cell "
         f"classifier `{cell_types.get('classifier')}` behind `{cell_types.get('model')}`, "
         f"combined with its head at weight {w} (chosen on the selection split). Scored on "
         "the validation cells that the network *finds*, a found cell counting when one "
         "expert class covers at least half of it (`scripts/evaluate_cell_types.py --part "
         "validation`, file `docs/cell_types_validation.json`"
         + (", with `--tta`" if cell_types.get("tta") else ", without TTA")
         + "; see [classifier.md](classifier.md)):", ""]
    body, met = [], 0
    rows = []  # the cell-type rows of TARGETS, read from the classifier file instead
    for label, source, key, threshold in TARGETS:
        if key == "cell_type_accuracy":
            rows.append((label, cell_types.get(source, {}), "combined_accuracy", threshold))
        elif key.startswith("recall_"):
            rows.append((label.replace("all validation cells", "all found cells"),
                         cell_types.get("recall", {}).get(key[len("recall_"):], {}),
                         "combined", threshold))
    for label, row, key, threshold in rows:
        v = row.get(key)
        ok = v is not None and v >= threshold
        met += ok
        body.append([label, f"≥ {100 * threshold:.1f}", str(row.get("cells", "–")),
                     pct(v), "met" if ok else "**not met**"])
    L += _table(["target", "threshold", "cells", "classifier + head", "met?"], body, "llrrl")
    L += ["", f"{met} of {len(rows)} of these targets met this way.", ""]
    return L


def render_markdown(reports: dict[str, dict], meta: dict) -> str:
    """docs/benchmarks.md from ``{model name: evaluate_datasets report}`` and ``meta``
    (``date``, ``device``, ``seconds`` per model, ``architectures`` and ``parameters`` per
    model; all optional)."""
    names = sorted(reports)
    arch = meta.get("architectures", {})
    params = meta.get("parameters", {})
    L = ["# Benchmarks: the bundled models against the papers", ""]
    L += ["*Generated by `scripts/benchmarks_table.py`"
          + (f" on {meta['date']}" if meta.get("date") else "")
          + (f" ({meta['device']})" if meta.get("device") else "")
          + "; do not edit by hand, rerun it (see [Reproduce](#reproduce)).*", ""]
    L += ["Every bundled model is scored on the **validation split** that its training held "
          "out (group-aware, 20%, seed 0, of the staged development data; each model's split "
          "is read from its card, as `napari-wbcseg evaluate` does), with the papers' "
          "metrics (`napari_wbcseg.training.evaluation.report`). All numbers are percentages. "
          "The papers' numbers are given beside ours for orientation only: the protocols "
          "differ (data, splits, resolution, hardware; see "
          "[Protocol differences](#protocol-differences)), so no row is a like-for-like "
          "comparison.", ""]
    counts = {}
    for rep in reports.values():
        for src, row in rep.items():
            counts[src] = row.get("images", 0)
    if counts:
        L.append("Validation images: " + ", ".join(
            f"{src} {counts[src]}" for src, _ in SOURCES if src in counts) + ".")
        L.append("")

    # targets
    rows = target_rows(reports)
    L += ["## Targets of the issue", ""]
    L += ["The issue asks the best bundled network for the thresholds below. Each row "
          "shows every model's measured value; *best* is the highest, and the target is "
          "met when the best value reaches the threshold. \"BCISC\" is scored as two "
          "rows, the sub-images and the full fields. A recall is the share of the "
          "validation cells of that true type that get it, from the cell-type confusion "
          "matrices of all four sources pooled.", ""]
    L += ["The cell-type rows score the segmentation networks' own per-pixel class heads: "
          "each annotated cell's type is the argmax of the class probabilities averaged "
          "over its *true* area, as in [Per dataset](#per-dataset). The per-cell "
          "classifier stage (crops of the segmented cells, `inference.classify`) is "
          "not in these rows; `scripts/evaluate_cell_types.py` scores it (below, where "
          "its validation file exists, and in [classifier.md](classifier.md)).", ""]
    head = ["target", "threshold"] + [f"`{n}`" for n in names] + ["best", "met?"]
    body = []
    for t in rows:
        cells = [t["label"], f"≥ {100 * t['threshold']:.1f}"]
        for n in names:
            v = t["values"][n]
            text = target_pct(v, t["threshold"])
            cells.append(text if t["best"] != n else f"**{text}**")
        cells.append(f"`{t['best']}`" if t["best"] else "–")
        cells.append("met" if t["met"] else "**not met**")
        body.append(cells)
    L += _table(head, body, "ll" + "r" * len(names) + "ll")
    n_met = sum(t["met"] for t in rows)
    L += [""]
    conf = next((c for c in (pooled_confusion(r) for r in reports.values()) if c), None)
    if conf:
        L += ["Validation cells per true type, all sources: " + ", ".join(
            f"{t} {sum(conf[i])}" for i, t in enumerate(CELL_TYPES) if i < len(conf))
            + ".", ""]
    L += [f"**{n_met} of {len(rows)} targets met** by the best bundled model of each row."]
    per_model = {n: sum(t["values"][n] is not None and t["values"][n] >= t["threshold"]
                        for t in rows) for n in names}
    if per_model:
        top = max(per_model.values())
        leaders = [f"`{n}`" for n in names if per_model[n] == top]
        L.append(f"No single model meets all of them; the most any one model meets is {top} "
                 f"({', '.join(leaders)})." if top < len(rows) else
                 f"{', '.join(leaders)} meet{'s' if len(leaders) == 1 else ''} all of them.")
    L.append("")
    L += pipeline_cell_type_section(meta.get("cell_types"))

    # per dataset
    L += ["## Per dataset", ""]
    L += ["Whole cell = nucleus + cytoplasm against background. Region metrics (Dice, mIoU "
          "over cell and background, precision) are per-image means, as in Lu et al. and "
          "Fan et al. The cell-type accuracy counts each annotated cell once (its class = "
          "argmax of the network's own class probabilities averaged over its true area; "
          "the per-cell classifier is scored in [classifier.md](classifier.md)). The five-class "
          "mIoU is Zhu et al.'s: six classes per pixel (background and the five cell types), "
          "IoU per class from one confusion matrix pooled over the dataset's pixels, "
          "averaged over the classes including background (see "
          "[Five-class segmentation](#five-class-segmentation-per-class)). Paper rows are "
          "in italics; – = not reported or not measurable (BCISC masks do not separate "
          "nucleus and cytoplasm).", ""]
    for src, title in SOURCES:
        L += [f"### {title}", ""]
        head = ["model"] + [h for _, h in COLUMNS]
        body = []
        for n in names:
            label = f"`{n}`"
            if n in arch and arch[n] != n:
                label += f" ({arch[n]})"
            body.append([label] + [pct(metric(reports[n].get(src), k)) for k, _ in COLUMNS])
        for p in PAPERS.get(src, []):
            body.append([f"*{p['method']}, {p['where']}*"]
                        + [f"*{paper_pct(p[k])}*" if k in p else "–" for k, _ in COLUMNS])
        L += _table(head, body) + [""]

    L += ["### Bone marrow (Bendiabdallah & Settouti): not available here", ""]
    L += _table(["model", "nucleus Dice", "cytoplasm Dice", "nucleus precision",
                 "cytoplasm precision"],
                [["*U-Net with a ResNet-50 encoder, cross-entropy loss (Table 2; the text "
                  "gives 0.957 and 0.931)*", "*95.77*", "*93.14*", "*98.00*", "*88.91*"]])
    L += ["", "The 87 bone-marrow images of Tlemcen (Benazzouz et al.) are not among the "
          "staged data, so no bundled model is scored on them.", ""]

    # five-class per class
    L += ["## Five-class segmentation per class", ""]
    L += ["IoU per pixel class (one against the rest, from the pooled confusion matrix), "
          "then the mean over the six classes (Zhu et al.'s mIoU), over the five cell types "
          "alone, and the pixel accuracy (right pixels / all counted pixels). Pixels of "
          "cells whose type is unknown are left out; a class absent from both truth and "
          "prediction is not scored (–) and not averaged. `napari-wbcseg evaluate` also "
          "prints precision, recall, F1 and the one-against-rest accuracy of every class.",
          ""]
    classes = ["background", "neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"]
    for src, title in SOURCES:
        if not any("pixel_classes" in (reports[n].get(src) or {}) for n in names):
            continue
        L += [f"### {title}", ""]
        head = ["model"] + [f"IoU {c}" for c in classes] + ["mIoU (6)", "mIoU (5 types)",
                                                            "pixel acc."]
        body = []
        for n in names:
            pc = (reports[n].get(src) or {}).get("pixel_classes")
            if not pc:
                continue
            body.append([f"`{n}`"] + [pct(pc["per_class"][c]["iou"]) for c in classes]
                        + [pct(pc["miou"]), pct(pc["miou_cell_types"]), pct(pc["accuracy"])])
        if src == "BCISC-sub":
            types = sum(ZHU_CLASS_IOU.values()) / len(ZHU_CLASS_IOU)
            body.append(["*Zhu et al. 2023, Table 1 (IoU) and Table 3 (mIoU, Acc); 2x2 "
                         "mosaics*", "*(99.70)*"] + [f"*{paper_pct(ZHU_CLASS_IOU[c])}*"
                                                     for c in classes[1:]]
                        + ["*91.89*", f"*{pct(types)}*", "*99.53*"])
        L += _table(head, body) + [""]
    L += ["Zhu et al. do not print a background IoU; (99.70) is what their 91.89% mIoU "
          "needs as a sixth class, given their five cell-type IoUs (mean 90.33%). That is "
          "why the mIoU here includes background: their text defines it as the IoU "
          "\"obtained from each class of prediction ... summed and averaged\", and only "
          "a six-class mean reproduces their figure.", ""]

    # protocol differences
    L += ["## Protocol differences", ""]
    L += [
        "- **Data and split.** About 20% of every dataset is a hidden test set that is not "
        "staged here; we use the remaining ~80% (segmentation_WBC: 239 of 300 + 80 of 100 "
        "images; BCISC: 216 single-cell crops and 199 fields, 156 with masks) and score the "
        "group-aware 20% validation part of it (seed 0; copies of one cell and a BCISC crop "
        "with its field always fall on one side). The papers use all published images: Lu "
        "et al. a random 80/20 train/test split per dataset (Sec. 4.2); Fan et al. a random "
        "60/20/20 train/validation/test split and 5-fold cross-validation (Sec. 3.3); Zhu et "
        "al. a 9:1 split of 50 mosaics of four BCISC sub-images each (Sec. 3.3, so about 5 "
        "test mosaics); Bendiabdallah & Settouti a random 80% train+validation / 20% test "
        "split of 87 marrow images (Sec. 3.1); Nasser et al. an 80:20 split (Sec. 2.5) of a "
        "set they had already augmented tenfold, so augmented copies of one image may sit "
        "on both sides. None of them says it keeps Dataset 1's duplicated cells together.",
        "- **One network for all data.** Each bundled model is trained once on all four "
        "sources together (plus synthetic smears) and scored per source. Lu et al. and Fan et "
        "al. split each dataset separately (Fan et al. show a learning curve per dataset); "
        "Nasser et al. pool three datasets into one training set, as we pool four.",
        "- **Resolution.** Each network sees the image resampled to its native scale "
        "(white cells ~80 px across: Dataset 1 by ~1.07, Dataset 2 by ~0.51, BCISC "
        "sub-images by ~0.67, BCISC fields by ~0.34), and its probabilities are resized "
        "back to the image's own pixels, as Segment does for the user; the metrics are "
        "computed there, on the original label maps (BCISC fields at 2048x1536). Before "
        "2026-12-01 the labels were resampled to the native scale instead and scored there, "
        "which counts the nearest-neighbour resampling's jagged edges as errors: a perfect "
        "disc read at half size scores 0.968 that way and 0.990 at its own resolution "
        "(`tests/training/test_report.py`). The papers work at their own input sizes: Zhu et al. "
        "normalise to 512x512 mosaics, Bendiabdallah & Settouti resize to 256x256, Nasser "
        "et al. to 120x120; Fan et al. segment inside detected regions of interest.",
        "- **What is segmented.** BCISC masks cover the whole cell, so BCISC has no nucleus "
        "or cytoplasm scores. WCSegNet (Nasser et al.) segments the *nuclei* of "
        "neutrophils, lymphocytes and basophils only (553 images pooled from the three "
        "datasets, Sec. 2.1), so its rows are not whole-cell numbers. Zhu et al.'s Table 2 "
        "gives P, R, F1, mIoU and Acc without saying whether they are two-class or five-class; "
        "F1 is shown in the Dice column. Their five-class numbers are on mosaics of four "
        "BCISC cells, ours on the single-cell sub-images and the fields.",
        "- **Labels.** Pixels the loaders mark unknown (255: e.g. white cells that look "
        "unannotated, such as neighbours cut by the image border) are left out of every "
        "metric; cells of unknown type (Dataset 1 images without a class row or with "
        "conflicting duplicate labels, unlabelled cells beside a BCISC crop's centre cell, "
        "fields with several cells) only of the cell-type metrics. Dataset 1's "
        "class labels are partly unchecked by experts (its README), and BCISC types come "
        "from folder names.",
        "- **Bone marrow.** The data of Bendiabdallah & Settouti is not available here.",
        "- **Hardware and training time.** The bundled models were trained on a 2-core CPU "
        "(minutes in [Models](#models)), several of them as compact variants of the papers' "
        "networks, some from ImageNet encoder weights (*initial weights* in [Models](#models)); "
        "the papers trained full-size networks on GPUs (Tesla P100, GTX 1080 Ti, "
        "GTX 1660 Ti, GTX 1060, GTX 1050).",
        "",
    ]

    # models and reproduce
    if names:
        L += ["## Models", ""]
        train_min = meta.get("training_minutes", {})
        encoders = meta.get("encoders", {})
        init = meta.get("init", {})
        precision = meta.get("precision", {})
        body = [[f"`{n}`" + (" (default)" if n == meta.get("default") else ""),
                 arch.get(n, "–") + (f" ({encoders[n]} encoder)" if n in encoders
                                                else ""),
                 init.get(n, "–"),
                 f"{params[n] / 1e6:.2f}" if n in params else "–",
                 f"{train_min[n]:.0f}" if n in train_min else "–",
                 precision.get(n, "–"),
                 f"{meta['seconds'][n] / 60:.1f}" if n in meta.get("seconds", {}) else "–"]
                for n in names]
        L += _table(["model", "architecture", "initial weights", "parameters (M)",
                     "CPU training (min, card)", "evaluation precision", "evaluation (min)"],
                    body, "lllrrlr")
        L += ["", "*Evaluation precision* is what `napari-wbcseg evaluate` runs the model at "
              "on the machine of this page (`auto`: bf16 autocast only on a CPU with native "
              "bf16 and for the families measured to gain, else fp32). Training details of "
              "each model: [models.md](models.md).", ""]
    L += ["## Reproduce", ""]
    L += ["```",
          "nice -n 19 .venv/bin/python scripts/benchmarks_table.py --data ../shared/data "
          "[--device cuda] [--json scores.json]",
          "```", "",
          "This rewrites this page. One model alone, with every metric of every class: "
          "`napari-wbcseg evaluate --model NAME --data ../shared/data [--csv scores.csv]`.",
          ""]
    return "\n".join(L)


# --- evaluation ------------------------------------------------------------------------

def evaluate_bundled(data: list[str], names: list[str] | None, device: str, seed: int):
    """``(reports, meta)``: every bundled model (or ``names``) on the validation split."""
    from napari_wbcseg.cli_train import load_public_layouts
    from napari_wbcseg.inference.predictor import load_model
    from napari_wbcseg.io.model_store import DEFAULT_MODEL, model_entries
    from napari_wbcseg.training.data.datasets import split_by_group
    from napari_wbcseg.training.evaluation.protocol import evaluation_plan
    from napari_wbcseg.training.evaluation.report import evaluate_datasets

    entries = {n: e for n, e in model_entries().items() if e.origin == "bundled"}
    if names:
        missing = sorted(set(names) - set(entries))
        if missing:
            raise SystemExit(f"not bundled models: {', '.join(missing)}")
        entries = {n: entries[n] for n in names}
    samples = load_public_layouts(data, synthetic=0, full_fields=True)
    sources = {s.source for s in samples}
    reports, meta = {}, {"architectures": {}, "parameters": {}, "seconds": {},
                         "default": DEFAULT_MODEL}
    for name in sorted(entries):
        t0 = time.perf_counter()
        model = load_model(name, device)
        # each model's own split (its card), as `napari-wbcseg evaluate` does
        plan = evaluation_plan(model.card, data, sources, seed=seed)
        if plan.refusal:
            raise SystemExit(plan.refusal)
        for line in plan.warnings:
            print(f"warning: {line}", file=sys.stderr)
        val = split_by_group(samples, plan.val_fraction, seed=plan.seed)[1]
        meta.setdefault("splits", {})[name] = (plan.seed, plan.val_fraction)
        print(f"{name}: {len(val)} validation images ...", file=sys.stderr, flush=True)
        reports[name] = evaluate_datasets(model, val, model.size_multiple)
        meta["architectures"][name] = model.entry.architecture
        encoder = model.card.get("config", {}).get("encoder")
        if encoder:
            meta.setdefault("encoders", {})[name] = encoder
        init = initial_weights(model.card)
        if init:
            meta.setdefault("init", {})[name] = init
        meta.setdefault("precision", {})[name] = getattr(model.module, "precision", "fp32")
        if "parameters" in model.card:
            meta["parameters"][name] = model.card["parameters"]
        minutes = training_minutes(model.card)
        if minutes is not None:
            meta.setdefault("training_minutes", {})[name] = minutes
        meta["seconds"][name] = time.perf_counter() - t0
        print(f"{name}: done in {meta['seconds'][name] / 60:.1f} min", file=sys.stderr)
    return reports, meta


def initial_weights(card: dict) -> str | None:
    """"ImageNet" where the model's first training run started from ImageNet encoder
    weights (a later run fine-tunes the earlier one, so its own ``imagenet`` is false),
    "random" where the card records that no run did, None where it does not say."""
    tr = card.get("training", {})
    runs = [tr.get("first_run", {})] + list(tr.get("previous_runs", [])) + [tr]
    flags = [r["settings"]["imagenet"] for r in runs
             if isinstance(r, dict) and "imagenet" in r.get("settings", {})]
    if not flags:
        return None
    return "ImageNet" if any(flags) else "random"


def training_minutes(card: dict) -> float | None:
    """CPU training time recorded in a model card (all runs where the card sums them)."""
    tr = card.get("training", {})
    if "total_minutes_both_runs" in tr:
        return float(tr["total_minutes_both_runs"])
    seconds = tr.get("total_seconds", tr.get("seconds"))
    return None if seconds is None else float(seconds) / 60


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    return obj


def _nan_back(obj):
    """JSON null -> NaN inside pixel-class scores (the renderer shows both as –)."""
    if isinstance(obj, dict):
        return {k: (float("nan") if v is None else _nan_back(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_back(v) for v in obj]
    return obj


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=[str(REPO.parent / "shared" / "data")])
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the group-aware split (default: each model card's own)")
    p.add_argument("--models", nargs="+", default=None, help="only these bundled models")
    p.add_argument("--json", default=None, help="also save the raw reports here")
    p.add_argument("--from-json", default=None, help="render a saved --json, evaluate nothing")
    p.add_argument("--cell-types", default=str(CELL_TYPES_JSON),
                   help="evaluate_cell_types.py --part validation --json file for the "
                   "'Cell types as Segment gives them' section ('none': leave it out)")
    args = p.parse_args(argv)
    from napari_wbcseg.io.atomic import write_text_atomic

    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        reports, meta = _nan_back(saved["reports"]), saved["meta"]
    else:
        reports, meta = evaluate_bundled(args.data, args.models, args.device, args.seed)
        meta["date"] = datetime.date.today().isoformat()
        seeds = sorted({seed for seed, _ in meta.get("splits", {}).values()})
        meta["device"] = (f"device {args.device}, split seed "
                          f"{', '.join(map(str, seeds)) or args.seed}"
                          + ("" if args.seed is not None else ", from each model card"))
        if args.json:
            write_text_atomic(args.json, json.dumps(
                _jsonable({"reports": reports, "meta": meta}), indent=1) + "\n")
    if args.cell_types != "none" and Path(args.cell_types).is_file():
        meta["cell_types"] = json.loads(Path(args.cell_types).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, render_markdown(reports, meta))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

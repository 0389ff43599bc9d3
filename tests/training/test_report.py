"""Paper-style evaluation: region metrics, cell-type confusion, tables and CSV."""
import csv

import numpy as np
import pytest

from napari_wbcseg.training.evaluation.report import (PIXEL_CLASS_NAMES, evaluate_datasets, format_report,
                                           pixel_class_summary, score_image, write_csv)
from napari_wbcseg.training.data.sample import Sample


def _probs_from(semantic, cell_class, n_classes=5):
    """One-hot probabilities that reproduce ``semantic`` (0/1/2) and ``cell_class``."""
    h, w = semantic.shape
    p = np.zeros((3 + n_classes, h, w), np.float32)
    for c in range(3):
        p[c] = semantic == c
    cls = np.where(cell_class >= 1, cell_class, 1)
    for k in range(n_classes):
        p[3 + k] = cls == k + 1
    return p


def _cell():
    sem = np.zeros((40, 40), np.uint8)
    sem[5:25, 5:25] = 1
    sem[10:20, 10:20] = 2
    cls = np.where(sem > 0, 2, 0).astype(np.uint8)
    return sem, cls


def test_perfect_prediction_scores_perfectly():
    sem, cls = _cell()
    out = score_image(_probs_from(sem, cls), sem, cls)
    for region in ("cell", "nucleus", "cytoplasm"):
        r = out["regions"][region]
        assert r["dice"] == 1 and r["precision"] == 1 and r["miou"] == 1
        assert r["me"] == 0 and r["fpr"] == 0 and r["fnr"] == 0
    assert out["cells"] == [(2, 2)]


def test_errors_show_in_the_right_metrics():
    sem, cls = _cell()
    pred_sem = sem.copy()
    pred_sem[10:20, 10:20] = 1  # nucleus called cytoplasm
    pred_cls = np.where(cls > 0, 3, 0)  # lymphocyte called monocyte
    out = score_image(_probs_from(pred_sem, pred_cls), sem, cls)
    assert out["regions"]["cell"]["dice"] == 1
    assert out["regions"]["nucleus"]["dice"] == 0 and out["regions"]["nucleus"]["fnr"] == 1
    assert 0 < out["regions"]["cytoplasm"]["precision"] < 1
    assert out["cells"] == [(2, 3)]


def test_whole_cell_masks_give_no_nucleus_or_cytoplasm_scores():
    sem, cls = _cell()
    whole = np.where(sem > 0, 3, 0).astype(np.uint8)  # BCISC: cell, parts unknown
    out = score_image(_probs_from(sem, cls), whole, cls)
    assert set(out["regions"]) == {"cell"}


def test_table_and_csv(tmp_path):
    report = {"segmentation_WBC-1": {
        "images": 2, "regions": {"cell": {"precision": 0.9, "dice": 0.8, "miou": 0.85,
                                          "me": 0.05, "fpr": 0.01, "fnr": 0.2}},
        "cell_type_accuracy": 0.5, "confusion": [[1, 1, 0, 0, 0]] + [[0] * 5] * 4}}
    text = format_report(report)
    assert "segmentation_WBC-1 (2 images)" in text and "80.00" in text and "50.00%" in text
    rows = list(csv.DictReader(open(write_csv(report, tmp_path / "e.csv"))))
    assert {"dataset": "segmentation_WBC-1", "region": "cell", "metric": "dice",
            "value": "0.800000"} in rows
    assert any(r["metric"] == "neutrophil->lymphocyte" and r["value"] == "1" for r in rows)


# --- five-class pixel metrics (Zhu et al.) ---------------------------------------------


def test_perfect_prediction_gives_a_diagonal_pixel_confusion():
    sem, cls = _cell()
    out = score_image(_probs_from(sem, cls), sem, cls)
    c = out["pixel_confusion"]
    assert c.shape == (6, 6) and c.sum() == sem.size
    assert np.count_nonzero(c - np.diag(np.diag(c))) == 0
    assert c[2, 2] == 400 and c[0, 0] == 1200  # lymphocyte 20x20, the rest background
    pc = pixel_class_summary(c)
    assert pc["miou"] == 1 and pc["miou_cell_types"] == 1 and pc["accuracy"] == 1
    assert np.isnan(pc["per_class"]["monocyte"]["iou"])  # not in truth nor prediction


def test_pixel_classes_by_hand():
    """Half of a lymphocyte called monocyte, and a background strip called lymphocyte."""
    sem, cls = _cell()  # cell rows/cols 5:25, class 2 (lymphocyte)
    pred_sem, pred_cls = sem.copy(), cls.copy()
    pred_cls[5:15, 5:25] = 3  # top half of the cell (200 px): monocyte
    pred_sem[30:32, 0:10] = 1  # 20 background px predicted as cell ...
    pred_cls[30:32, 0:10] = 2  # ... of type lymphocyte
    c = score_image(_probs_from(pred_sem, pred_cls), sem, cls)["pixel_confusion"]
    assert c[2, 2] == 200 and c[2, 3] == 200 and c[0, 2] == 20 and c[0, 0] == 1180
    pc = pixel_class_summary(c)
    lym, mono, bg = (pc["per_class"][k] for k in ("lymphocyte", "monocyte", "background"))
    assert lym["precision"] == pytest.approx(200 / 220)
    assert lym["recall"] == pytest.approx(0.5)
    assert lym["iou"] == pytest.approx(200 / 420)
    assert lym["f1"] == pytest.approx(400 / 620)
    assert lym["accuracy"] == pytest.approx((1600 - 220) / 1600)
    assert mono["precision"] == 0 and mono["recall"] == 0 and mono["iou"] == 0
    assert bg["iou"] == pytest.approx(1180 / 1200)
    assert pc["miou"] == pytest.approx((1180 / 1200 + 200 / 420 + 0) / 3)  # 3 seen classes
    assert pc["miou_cell_types"] == pytest.approx((200 / 420 + 0) / 2)
    assert pc["accuracy"] == pytest.approx(1380 / 1600)


def test_cells_of_unknown_type_are_left_out_of_pixel_classes():
    sem, cls = _cell()
    unknown = np.where(sem > 0, 255, 0).astype(np.uint8)
    out = score_image(_probs_from(sem, cls), sem, unknown)
    c = out["pixel_confusion"]
    assert c.sum() == 1200 and c[1:].sum() == 0 and c[:, 1:].sum() == 0
    assert out["cells"] == []


def test_pixel_classes_are_pooled_over_a_dataset():
    """A big right cell and a small wrong one: pooled, not a per-image mean."""
    def sample(name, size, code):
        sem = np.zeros((32, 32), np.uint8)
        sem[2:2 + size, 2:2 + size] = 1
        cls = np.where(sem > 0, code, 0).astype(np.uint8)
        return Sample(image=np.zeros((32, 32, 3), np.uint8), semantic=sem, cell_class=cls,
                      source="D", group=name, name=name)

    big, small = sample("a", 20, 2), sample("b", 4, 3)
    preds = iter([_probs_from(big.semantic, big.cell_class),
                  _probs_from(small.semantic, np.where(small.cell_class > 0, 2, 0))])
    report = evaluate_datasets(lambda x: next(preds)[None], [big, small], 16)
    pc = report["D"]["pixel_classes"]
    assert pc["per_class"]["lymphocyte"]["iou"] == pytest.approx(400 / 416)  # per-image: 0.5
    assert pc["per_class"]["monocyte"]["recall"] == 0
    assert report["D"]["cell_type_accuracy"] == 0.5
    text = format_report(report)
    assert "five-class pixel segmentation" in text and "96.15" in text
    assert all(name in text for name in PIXEL_CLASS_NAMES)


def test_pixel_classes_in_csv(tmp_path):
    sem, cls = _cell()
    c = score_image(_probs_from(sem, cls), sem, cls)["pixel_confusion"]
    report = {"D": {"images": 1, "regions": {}, "pixel_classes": pixel_class_summary(c)}}
    rows = list(csv.DictReader(open(write_csv(report, tmp_path / "e.csv"))))
    assert {"dataset": "D", "region": "five-class", "metric": "miou",
            "value": "1.000000"} in rows
    assert {"dataset": "D", "region": "five-class lymphocyte", "metric": "iou",
            "value": "1.000000"} in rows
    assert any(r["metric"] == "background->background" and r["value"] == "1200" for r in rows)
    assert any(r["region"] == "five-class monocyte" and r["value"] == "nan" for r in rows)
    assert "-" in format_report(report)  # unseen classes print as "-"


# --- scripts/benchmarks_table.py on a fake report (no model is run) ---------------------

def _benchmarks_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks_table.py"
    spec = importlib.util.spec_from_file_location("benchmarks_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_row(dice, nucleus=None, acc=None, images=10, miou5=None):
    regions = {"cell": {"precision": 0.99, "dice": dice, "miou": dice - 0.01,
                        "me": 0.01, "fpr": 0.01, "fnr": 0.01}}
    row = {"images": images, "regions": regions}
    if nucleus is not None:
        regions["nucleus"] = {"dice": nucleus}
        regions["cytoplasm"] = {"dice": nucleus - 0.05}
    if acc is not None:  # 10 cells, round(10 * acc) right
        right = round(10 * acc)
        row["cell_type_accuracy"] = acc
        row["confusion"] = [[right, 10 - right, 0, 0, 0]] + [[0] * 5] * 4
    if miou5 is not None:
        iou = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": miou5, "accuracy": 1.0}
        nan = dict.fromkeys(iou, float("nan"))
        row["pixel_classes"] = {
            "miou": miou5, "miou_cell_types": miou5, "accuracy": 0.99,
            "per_class": {"background": iou, "neutrophil": iou, "lymphocyte": nan,
                          "monocyte": nan, "eosinophil": nan, "basophil": nan}}
    return row


def test_benchmarks_markdown_from_a_fake_report():
    bt = _benchmarks_module()
    good = {"segmentation_WBC-1": _fake_row(0.98, nucleus=0.96, acc=0.9, miou5=0.8),
            "segmentation_WBC-2": _fake_row(0.99, nucleus=0.975, acc=1.0, images=4),
            "BCISC-sub": _fake_row(0.975, acc=0.9, miou5=0.5),
            "BCISC-field": _fake_row(0.96)}
    weak = {src: _fake_row(0.5, nucleus=0.5 if src.startswith("seg") else None, acc=0.1)
            for src in good}
    reports = {"model-b": good, "model-a": weak}
    text = bt.render_markdown(reports, {"date": "2024-01-01", "architectures":
                                        {"model-a": "arch-a", "model-b": "arch-b"}})
    rows = {t["label"]: t for t in bt.target_rows(reports)}
    assert len(rows) == len(bt.TARGETS) == 17
    assert rows["whole-cell Dice, Dataset 1"]["met"] and \
        rows["whole-cell Dice, Dataset 1"]["best"] == "model-b"
    assert rows["whole-cell Dice, BCISC sub-images"]["met"]  # 97.5 reaches 97.5
    assert not rows["whole-cell Dice, BCISC full fields"]["met"]
    assert rows["nucleus Dice, Dataset 1"]["met"] and rows["nucleus Dice, Dataset 2"]["met"]
    assert not rows["cytoplasm Dice, Dataset 1"]["met"]  # 91 < 92
    assert rows["cytoplasm Dice, Dataset 2"]["met"]  # 92.5
    # cell-type accuracy per source: 90 < 95 on Dataset 1, 100 on Dataset 2; model-b has
    # no typed cell on the fields, so the weak model is the best there
    assert not rows["cell-type accuracy, Dataset 1"]["met"]
    assert rows["cell-type accuracy, Dataset 2"]["met"]
    fields = rows["cell-type accuracy, BCISC full fields"]
    assert fields["values"]["model-b"] is None and fields["best"] == "model-a"
    assert not fields["met"]
    # recall pooled over the sources: 28 of 30 neutrophils; no cell of the other types
    neu = rows["neutrophil recall, all validation cells"]
    assert neu["values"]["model-b"] == pytest.approx(28 / 30) and neu["met"]
    assert neu["values"]["model-a"] == pytest.approx(3 / 30)
    assert rows["basophil recall, all validation cells"]["values"] == \
        {"model-b": None, "model-a": None}
    met = {label for label, t in rows.items() if t["met"]}
    assert met == {"whole-cell Dice, Dataset 1", "whole-cell Dice, Dataset 2",
                   "whole-cell Dice, BCISC sub-images", "nucleus Dice, Dataset 1",
                   "nucleus Dice, Dataset 2", "cytoplasm Dice, Dataset 2",
                   "cell-type accuracy, Dataset 2", "neutrophil recall, all validation cells"}
    assert f"**{len(met)} of {len(bt.TARGETS)} targets met**" in text
    assert "| whole-cell Dice, BCISC full fields | ≥ 97.5 | 50.00 | **96.00** | `model-b` " \
           "| **not met** |" in text
    assert "| cell-type accuracy, BCISC full fields | ≥ 95.0 | **10.00** | – | `model-a` " \
           "| **not met** |" in text
    assert "| basophil recall, all validation cells | ≥ 85.0 | – | – | – | **not met** |" in text
    assert "Validation cells per true type, all sources: neutrophil 30, lymphocyte 0," in text
    assert "scripts/evaluate_cell_types.py" in text and "classifier.md" in text
    # per dataset: ours beside the papers' (verified constants), with missing values as –
    assert "| `model-b` (arch-b) | 98.00 | 97.00 | 99.00 | 96.00 | 91.00 | 90.00 | 80.00 |" in text
    assert "*98.92*" in text and "*99.28*" in text  # WBC-Net, Lu et al. Table 1
    assert "*98.20*" in text and "*98.24*" in text and "*97.84*" in text  # LeukocyteMask
    assert "*91.89*" in text and "*95.77*" in text and "*93.14*" in text  # Zhu, Bendiabdallah
    assert "| `model-b` (arch-b) | 96.00 | 95.00 | 99.00 | – | – | – | – |" in text
    assert "## Protocol differences" in text and "## Reproduce" in text
    assert "scripts/benchmarks_table.py" in text
    # five-class table: unseen classes print as –, Zhu's row on BCISC sub-images
    assert "| `model-b` | 80.00 | 80.00 | – | – | – | – | 80.00 | 80.00 | 99.00 |" in text
    assert "*Zhu et al. 2023" in text


def test_benchmarks_recall_pooled_over_sources():
    from napari_wbcseg.training.evaluation.report import CLASS_NAMES

    bt = _benchmarks_module()
    assert bt.CELL_TYPES == CLASS_NAMES  # the confusion matrices' row order
    a = [[8, 2, 0, 0, 0], [0, 5, 0, 0, 0], [0, 1, 3, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]
    b = [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [2, 0, 2, 0, 0], [0, 0, 0, 3, 0], [0, 0, 0, 0, 0]]
    rep = {"X": {"confusion": a}, "Y": {"confusion": b}, "Z": {"images": 3}}
    assert bt.measured(rep, None, "recall_neutrophil") == pytest.approx(9 / 11)
    assert bt.measured(rep, None, "recall_lymphocyte") == 1.0
    assert bt.measured(rep, None, "recall_monocyte") == pytest.approx(5 / 8)
    assert bt.measured(rep, None, "recall_eosinophil") == 1.0
    assert bt.measured(rep, None, "recall_basophil") == 0.5
    assert bt.measured(rep, None, "cell_type_accuracy") == pytest.approx(23 / 29)
    assert bt.measured({"Z": {"images": 3}}, None, "recall_basophil") is None
    with pytest.raises(ValueError):
        bt.measured(rep, None, "cell_dice")
    # a miss that two decimals would round up to the threshold shows a third decimal
    assert bt.target_pct(0.97996, 0.98) == "97.996"
    assert bt.target_pct(0.98, 0.98) == "98.00" and bt.target_pct(0.5, 0.98) == "50.00"
    assert bt.target_pct(None, 0.98) == "–"


def test_benchmarks_models_table():
    bt = _benchmarks_module()
    reports = {"m": {"BCISC-sub": _fake_row(0.97)}}
    meta = {"architectures": {"m": "m"}, "encoders": {"m": "tu-tf_efficientnet_lite0"},
            "init": {"m": "ImageNet"}, "precision": {"m": "bf16"}, "parameters": {"m": 3.8e6},
            "training_minutes": {"m": 21.6}, "seconds": {"m": 90}, "default": "m"}
    text = bt.render_markdown(reports, meta)
    assert "| `m` (default) | m (tu-tf_efficientnet_lite0 encoder) | ImageNet | 3.80 | 22 | bf16 | 1.5 |" \
        in text


def test_benchmarks_initial_weights_follow_the_first_run():
    bt = _benchmarks_module()
    second = {"settings": {"imagenet": False}}  # run 2 fine-tunes run 1
    assert bt.initial_weights({"training": {**second, "previous_runs": [
        {"settings": {"imagenet": True}}]}}) == "ImageNet"
    assert bt.initial_weights({"training": {**second, "first_run": second}}) == "random"
    assert bt.initial_weights({"training": {"settings": {}}}) is None
    assert bt.initial_weights({}) is None


def test_benchmarks_json_round_trip(tmp_path):
    bt = _benchmarks_module()
    reports = {"m": {"BCISC-sub": _fake_row(0.97, acc=0.5, miou5=0.6)}}
    saved = tmp_path / "s.json"
    import json
    saved.write_text(json.dumps(bt._jsonable({"reports": reports, "meta": {}})))
    out = tmp_path / "b.md"
    assert bt.main(["--from-json", str(saved), "--out", str(out), "--cell-types", "none"]) == 0
    assert out.read_text() == bt.render_markdown(reports, {})


# --- one evaluator: the loop's Dice (training.evaluation.evaluate) == the papers' tables (report) -----


def test_loop_and_report_give_identical_scores():
    from napari_wbcseg.training.data.augment import resample_to_native
    from napari_wbcseg.training.data.datasets import synthetic_samples
    from napari_wbcseg.training.evaluation.evaluate import evaluate, summary

    smear = synthetic_samples(1)[0]
    flip = lambda a: np.ascontiguousarray(a[:, ::-1])  # noqa: E731  (another image)
    whole = smear.with_arrays(flip(smear.image),  # BCISC-like whole-cell masks (code 3)
                              flip(np.where(smear.semantic > 0, 3, 0).astype(np.uint8)),
                              flip(smear.cell_class), source="BCISC-sub", name="w", group="w")
    # only cytoplasm labelled: the two evaluators once disagreed on whether it has a nucleus
    parts = smear.with_arrays(smear.image[::-1].copy(), np.minimum(smear.semantic, 1)[::-1].copy(),
                              smear.cell_class[::-1].copy(), source="folder:p", name="p", group="p")
    samples = [smear, whole, parts]
    truth = [resample_to_native(s) for s in samples]

    def predict(x):
        """Ground truth (code 3 called cytoplasm) plus noise, so that the Dice is neither
        0 nor 1; the same probabilities for the same image in both evaluators."""
        i, t = next((i, t) for i, t in enumerate(truth) if np.array_equal(
            x[0, :, :t.shape[0], :t.shape[1]], t.image.transpose(2, 0, 1)))
        p = np.random.default_rng(i).uniform(0, 2.0, (8, *x.shape[2:])).astype(np.float32)
        p[:, :t.shape[0], :t.shape[1]] += 1.2 * _probs_from(
            np.where(t.semantic == 3, 1, t.semantic % 3), t.cell_class)
        p[:3] /= p[:3].sum(0)
        p[3:] /= p[3:].sum(0)
        return p[None]

    loop = evaluate(predict, samples, 16)
    report = evaluate_datasets(predict, samples, 16)
    assert set(report["BCISC-sub"]["regions"]) == {"cell"}
    assert set(report["folder:p"]["regions"]) == {"cell", "cytoplasm"}
    for source in ("synthetic", "BCISC-sub", "folder:p"):
        assert {k for k in loop[source] if k.endswith("_dice")} == {
            f"{r}_dice" for r in report[source]["regions"]}
        for region, vals in report[source]["regions"].items():
            assert 0.05 < vals["dice"] < 0.99
            assert loop[source][f"{region}_dice"] == vals["dice"]
        assert loop[source]["class_accuracy"] == report[source]["cell_type_accuracy"]
    assert set(summary(loop)) == {"cell_dice", "nucleus_dice", "cytoplasm_dice",
                                  "class_accuracy"}


def test_benchmarks_table_scores_each_model_on_its_own_card_split(monkeypatch):
    """The table's validation part is the model card's split, as ``evaluate``'s: a model
    trained with seed 3 is not scored on the seed-0 part (which holds its training images)."""
    from types import SimpleNamespace

    import napari_wbcseg.cli_train as cli_train
    import napari_wbcseg.inference.predictor as predictor
    import napari_wbcseg.io.model_store as model_store
    import napari_wbcseg.training.data.datasets as datasets
    import napari_wbcseg.training.evaluation.report as report

    mod = _benchmarks_module()
    card = {"name": "m", "training": {"data": {"split_spec": {
        "seed": 3, "val_fraction": 0.25, "inner_fraction": 0.15, "data": ["data"]}}}}
    entry = SimpleNamespace(origin="bundled", architecture="a", name="m")
    model = SimpleNamespace(card=card, entry=entry, size_multiple=16, module=None)
    samples = [SimpleNamespace(source="segmentation_WBC-1", group=f"g{i}") for i in range(20)]
    calls = []
    monkeypatch.setattr(model_store, "model_entries", lambda: {"m": entry})
    monkeypatch.setattr(predictor, "load_model", lambda name, device: model)
    monkeypatch.setattr(cli_train, "load_public_layouts", lambda data, synthetic, **kw: samples)
    monkeypatch.setattr(datasets, "split_by_group",
                        lambda s, frac, seed: calls.append((frac, seed)) or (s[:15], s[15:]))
    monkeypatch.setattr(report, "evaluate_datasets", lambda *a, **k: {})
    _, meta = mod.evaluate_bundled(["data"], None, "cpu", None)
    assert calls == [(0.25, 3)]
    assert meta["splits"]["m"] == (3, 0.25)
    with pytest.raises(SystemExit, match="seed 3"):  # another seed would score training images
        mod.evaluate_bundled(["data"], None, "cpu", 0)


def _disc_sample(size=101, scale=0.5):
    """A round cell at its own resolution; the network sees it resampled by ``scale``."""
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - 50.3) ** 2 + (xx - 49.6) ** 2 <= 30.5 ** 2
    image = np.where(disc[..., None], 60, 220).astype(np.uint8).repeat(3, axis=2)
    sem = disc.astype(np.uint8)
    cls = np.where(disc, 2, 0).astype(np.uint8)
    return Sample(image=image, semantic=sem, cell_class=cls, source="src", group="g",
                  name="disc", scale=scale)


def _dark_is_cell(x):
    """A predictor reading the cell off the (native-scale) image: dark pixels are cell."""
    cell = (x[0, 0] < 140).astype(np.float32)
    p = np.zeros((1, 8) + cell.shape, np.float32)
    p[0, 0], p[0, 1], p[0, 4] = 1 - cell, cell, 1.0
    return p


def test_scores_are_taken_at_the_sample_own_resolution():
    """Predicted at the native scale, scored on the sample's own labels: the probabilities
    come back at the sample's size and the Dice is that of the upsampled prediction."""
    from napari_wbcseg.core.metrics import dice
    from napari_wbcseg.core.resize import resize_probabilities
    from napari_wbcseg.training.data.augment import resample_to_native
    from napari_wbcseg.training.evaluation.evaluate import (evaluate, predict_at_own_resolution,
                                                            predict_sample, semantic_prediction)

    s = _disc_sample()
    seen = []
    probs = predict_at_own_resolution(lambda x: seen.append(x.shape) or _dark_is_cell(x), s, 8)
    assert probs.shape == (8, 101, 101)
    assert seen[0][2:] == (56, 56)  # 51x51 at the native scale, padded to a multiple of 8
    native = resample_to_native(s)
    expected = resize_probabilities(predict_sample(_dark_is_cell, native.image, 8), s.shape)
    pred = semantic_prediction(expected) > 0
    want = dice(pred, s.semantic > 0, np.ones(s.shape, bool))
    got = evaluate(_dark_is_cell, [s], 8)["src"]["cell_dice"]
    assert got == pytest.approx(want)
    assert evaluate_datasets(_dark_is_cell, [s], 8)["src"]["regions"]["cell"]["dice"] \
        == pytest.approx(want)


def test_benchmarks_pipeline_cell_types_from_the_classifier_file():
    bt = _benchmarks_module()
    reports = {"model-b": {"segmentation_WBC-1": _fake_row(0.98, nucleus=0.96, acc=0.9)}}
    ct = {"part": "validation", "model": "model-b", "classifier": "clf", "head_weight": 0.5,
          "tta": False,
          "segmentation_WBC-1": {"cells": 50, "combined_accuracy": 0.96},
          "segmentation_WBC-2": {"cells": 18, "combined_accuracy": 17 / 18},
          "BCISC-sub": {"cells": 48, "combined_accuracy": 0.958},
          "recall": {t: {"cells": 20, "combined": 0.9} for t in bt.CELL_TYPES}}
    ct["recall"]["monocyte"]["combined"] = 0.8
    text = bt.render_markdown(reports, {"cell_types": ct})
    assert "### Cell types as Segment gives them" in text
    assert "`clf` behind `model-b`, combined with its head at weight 0.5" in text
    assert "| cell-type accuracy, Dataset 1 | ≥ 95.0 | 50 | 96.00 | met |" in text
    assert "| cell-type accuracy, Dataset 2 | ≥ 95.0 | 18 | 94.44 | **not met** |" in text
    assert "| cell-type accuracy, BCISC full fields | ≥ 95.0 | – | – | **not met** |" in text
    assert "| monocyte recall, all found cells | ≥ 85.0 | 20 | 80.00 | **not met** |" in text
    assert "6 of 9 of these targets met this way." in text
    # a selection-split file is not a validation number: no section
    assert "Segment gives them" not in bt.render_markdown(reports, {"cell_types": {
        **ct, "part": "selection"}})
    assert "Segment gives them" not in bt.render_markdown(reports, {})

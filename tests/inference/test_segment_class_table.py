"""Segmentation in a project's class table (issue 15): ``SegmentParams(classes=...)``.

With a classifier installed for the project's table, "auto" picks it and the cell-type
layer holds that table's codes; without one, the cell types of the model's table are
mapped onto the project's by name (``schemes.map_classes``) and the one-line mapping
message is in ``Segmentation.messages``.  A small random network (mechanics only); the
marrow classifier is a stand-in with the real interface (no training here).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from napari_wbcseg.inference import classify
from napari_wbcseg.inference.segment import SegmentParams, segment
from napari_wbcseg.schemes import builtin_schemes, map_classes, scheme_from_classes
from napari_wbcseg.schemes.tables import classes_to_json

torch = pytest.importorskip("torch")

MARROW = builtin_schemes()["marrow-icsh"]
MARROW_CODES = {c.code for c in MARROW.classes}
PROMYELOCYTE = 8  # a marrow code the five-class model cannot write
RUN = dict(device="cpu", tile=128, overlap=32, class_threshold=0.0)


@pytest.fixture
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(192, 256), n_wbc=3, seed=3)


class _OneClassModule:
    """Stands in for a trained classifier: every crop is a promyelocyte."""

    crop_size, architecture = 64, "stand-in"

    def __init__(self, codes):
        self.num_classes, self._best = len(codes), codes.index(PROMYELOCYTE)

    def predict_proba(self, x):
        p = torch.full((len(x), self.num_classes), 0.1 / self.num_classes)
        p[:, self._best] = 0.9
        return p


@pytest.fixture
def marrow_classifier(tiny_model, monkeypatch):
    """A classifier card for the 16 marrow classes in the user store (its weights: a
    stand-in module)."""
    from napari_wbcseg.io.classifier_store import user_classifier_dir

    rows = [r for r in classes_to_json(MARROW.classes) if r["code"] != 255]
    folder = user_classifier_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "marrow-stand-in.json").write_text(json.dumps({
        "kind": "cell-classifier", "classes": rows,
        "config": {"crop_size": 64, "num_classes": len(rows)}}))
    (folder / "marrow-stand-in.safetensors").write_bytes(b"")
    module = _OneClassModule([r["code"] for r in rows])
    real = classify._module_cached
    monkeypatch.setattr(classify, "_module_cached", lambda weights, device: (
        module if weights.endswith("marrow-stand-in.safetensors") else real(weights, device)))
    return "marrow-stand-in"


def _cell_codes(r):
    return set(np.unique(r.cell_type).tolist()) - {0}


def test_auto_picks_the_classifier_of_the_project_table(tiny_model, marrow_classifier, smear):
    r = segment(smear.image, model=tiny_model, classes=MARROW, **RUN)
    assert r.classifier == marrow_classifier and len(r.table)
    assert _cell_codes(r) == {PROMYELOCYTE}
    assert set(r.table["class"]) == {"promyelocyte"}
    assert set(r.differential.index) >= {7, 8, 16}  # the differential counts marrow classes
    assert r.classes == MARROW.classes
    assert not any("mapped" in m for m in r.messages)  # the tables agree: nothing mapped


def test_default_table_keeps_the_model_classifier(tiny_model, marrow_classifier, smear):
    r = segment(smear.image, model=tiny_model, **RUN)
    assert r.classifier == "cell-classifier-lite0" and r.classes == ()
    assert _cell_codes(r) <= {1, 2, 3, 4, 5, 255}


def test_without_a_classifier_for_the_table_the_model_classes_are_mapped(tiny_model, smear):
    plain = segment(smear.image, model=tiny_model, classifier="none", **RUN)
    r = segment(smear.image, model=tiny_model, classifier="none", classes=MARROW, **RUN)
    mapping = map_classes([{"code": k, "name": n} for k, n in enumerate(
        ["neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"], 1)], MARROW,
        source_label="model tiny")
    assert mapping.message() in r.messages
    assert "neutrophil as segmented neutrophil" in mapping.message()
    assert np.array_equal(r.cell_type, mapping.apply(plain.cell_type))
    assert _cell_codes(r) <= MARROW_CODES
    assert set(r.table["class"]) <= {c.name for c in MARROW.classes}


def test_auto_without_a_table_classifier_maps_the_installed_one(tiny_model, smear):
    r = segment(smear.image, model=tiny_model, classes=MARROW, **RUN)
    assert r.classifier == "cell-classifier-lite0"
    assert any(m.startswith("classifier cell-classifier-lite0 classes") for m in r.messages)


def test_codes_the_project_lacks_become_unidentified(tiny_model, smear):
    own = scheme_from_classes([{"code": 40, "name": "eosinophil", "color": "#00c800"},
                               {"code": 2, "name": "lymphocyte", "color": "#ffd700"}],
                              name="two-classes")
    plain = segment(smear.image, model=tiny_model, classifier="none", **RUN)
    r = segment(smear.image, model=tiny_model, classifier="none", classes=own, **RUN)
    lut = np.array([0, 255, 2, 255, 40, 255] + [255] * 250, np.uint8)
    assert np.array_equal(r.cell_type, lut[plain.cell_type])
    assert not np.array_equal(r.cell_type, plain.cell_type)  # some code did change
    assert set(r.differential["class"]) >= {"eosinophil", "lymphocyte"}
    line = next(m for m in r.messages if "mapped" in m)
    assert "'neutrophil', 'monocyte', 'basophil' have no class in this project" in line


def test_a_bad_table_is_one_line(tiny_model):
    with pytest.raises(ValueError, match="class table: .*duplicate code"):
        SegmentParams(classes=[{"code": 3, "name": "a"}, {"code": 3, "name": "b"}])
    assert SegmentParams(classes="marrow-icsh").classes == MARROW.classes

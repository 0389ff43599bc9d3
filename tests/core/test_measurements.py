"""Per-cell table and differential count."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_wbcseg.core.measurements import (BASE_COLUMNS, UM_COLUMNS, cell_table,
                                             differential_count)
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import UNIDENTIFIED, CellClass


@pytest.fixture
def tiny():
    """Cell 1: 10x10 square with a 4x6 nucleus; cell 2: a 1x5 bare nucleus;
    cell 4: one cytoplasm pixel (id 3 unused)."""
    nucleus = np.zeros((20, 30), np.uint16)
    cytoplasm = np.zeros_like(nucleus)
    cell_type = np.zeros((20, 30), np.uint8)
    cytoplasm[2:12, 2:12] = 1
    cytoplasm[4:8, 4:10] = 0
    nucleus[4:8, 4:10] = 1
    cell_type[2:12, 2:12] = 2
    nucleus[15, 20:25] = 2
    cell_type[15, 20:25] = UNIDENTIFIED
    cytoplasm[18, 2] = 4
    cell_type[18, 2] = 7
    return nucleus, cytoplasm, cell_type


def test_tiny_cells_known_values(tiny):
    t = cell_table(*tiny, confidence={1: 0.9, 2: 0.5})
    assert list(t.columns) == BASE_COLUMNS
    assert t.index.name == "cell_id" and t.index.tolist() == [1, 2, 4]
    assert t["class_code"].tolist() == [2, UNIDENTIFIED, 7]
    assert t["class"].tolist() == ["lymphocyte", "unidentified", "class 7"]
    assert t.loc[1, "confidence"] == 0.9 and t.loc[2, "confidence"] == 0.5
    assert np.isnan(t.loc[4, "confidence"])
    assert t["cell_area_px"].tolist() == [100, 5, 1]
    assert t["nucleus_area_px"].tolist() == [24, 5, 0]
    assert t["cytoplasm_area_px"].tolist() == [76, 0, 1]
    assert t.loc[1, "nc_ratio"] == pytest.approx(24 / 76)
    assert np.isnan(t.loc[2, "nc_ratio"])  # no cytoplasm: undefined
    assert t.loc[4, "nc_ratio"] == 0
    # skimage perimeter of an h x w rectangle: 2 (h - 1) + 2 (w - 1)
    assert t["perimeter_px"].tolist() == pytest.approx([36.0, 3.0, 0.0])
    assert t.loc[1, "circularity"] == pytest.approx(4 * np.pi * 100 / 36**2)
    assert t.loc[2, "circularity"] == 1.0  # clipped
    assert np.isnan(t.loc[4, "circularity"])  # zero perimeter
    assert t["nucleus_lobes"].tolist() == [1, 1, 0]
    assert t.loc[1, ["centroid_y", "centroid_x"]].tolist() == pytest.approx([6.5, 6.5])
    assert t.loc[2, ["centroid_y", "centroid_x"]].tolist() == pytest.approx([15, 22])


def test_pixel_size_columns(tiny):
    t = cell_table(*tiny, pixel_size_um=0.5)
    assert list(t.columns) == BASE_COLUMNS + UM_COLUMNS
    assert t.loc[1, "cell_area_um2"] == pytest.approx(25.0)
    assert t.loc[1, "nucleus_area_um2"] == pytest.approx(6.0)
    assert t.loc[1, "cytoplasm_area_um2"] == pytest.approx(19.0)
    assert t.loc[1, "perimeter_um"] == pytest.approx(18.0)
    assert not set(UM_COLUMNS) & set(cell_table(*tiny).columns)
    with pytest.raises(ValueError):
        cell_table(*tiny, pixel_size_um=0)


def test_empty_input():
    z = np.zeros((16, 16), np.uint16)
    t = cell_table(z, z, z.astype(np.uint8))
    assert t.empty and list(t.columns) == BASE_COLUMNS and t.index.name == "cell_id"
    t = cell_table(z, z, z.astype(np.uint8), pixel_size_um=0.2)
    assert t.empty and list(t.columns) == BASE_COLUMNS + UM_COLUMNS
    d = differential_count(t)
    assert d["count"].tolist() == [0] * 5 and d["percent"].tolist() == [0.0] * 5
    assert d.attrs["total"] == 0
    assert differential_count([]).attrs["total"] == 0
    with pytest.raises(ValueError):
        cell_table(z, z[:8], z)


def _disc(img, cy, cx, r, value):
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


def test_lobes_by_constriction():
    nucleus = np.zeros((60, 160), np.uint16)
    _disc(nucleus, 30, 20, 10, 1)  # cell 1: two round lobes joined by a 1-px filament
    _disc(nucleus, 30, 55, 10, 1)
    nucleus[30, 20:56] = 1
    _disc(nucleus, 30, 100, 12, 2)  # cell 2: a kidney (disc with a bite) -> one lobe
    _disc(nucleus, 30, 114, 7, 0)
    nucleus[5:25, 130:150] = 3  # cells 3 and 4: touching square nuclei, one lobe each
    nucleus[25:45, 130:150] = 4
    cytoplasm = np.zeros_like(nucleus)
    t = cell_table(nucleus, cytoplasm, (nucleus > 0).astype(np.uint8))
    assert t["nucleus_lobes"].tolist() == [2, 1, 1, 1]


def test_synthetic_lobes():
    s = synthetic_smear((768, 1024), n_wbc=10, seed=5, rbc_density=0)
    t = cell_table(s.nucleus, s.cytoplasm, s.cell_type, pixel_size_um=s.pixel_size_um)
    assert len(t) == 10
    lobes = t.groupby("class")["nucleus_lobes"]
    assert lobes.min()["neutrophil"] >= 2
    assert lobes.max()["lymphocyte"] == 1 and lobes.min()["lymphocyte"] == 1
    assert lobes.max()["monocyte"] == 1
    assert lobes.min()["eosinophil"] == 2
    # physical sizes are those of white cells (7-18 um across)
    d = 2 * np.sqrt(t["cell_area_um2"] / np.pi)
    assert d.between(6, 19).all()
    assert (t["circularity"] > 0.8).all() and (t["circularity"] <= 1).all()
    n = np.where(s.nucleus > 0, s.nucleus, s.cytoplasm)
    assert t["cell_area_px"].to_dict() == {i: int((n == i).sum()) for i in s.classes}


def test_differential_count():
    a = pd.DataFrame({"class_code": [1, 1, 2, 3]})
    b = pd.DataFrame({"class_code": [1, 4, 2]})
    d = differential_count([a, b])
    assert d.index.name == "class_code" and d.index.tolist() == [1, 2, 3, 4, 5]
    assert list(d.columns) == ["class", "count", "percent", "border_left_out"]
    assert d["class"].tolist() == ["neutrophil", "lymphocyte", "monocyte", "eosinophil",
                                   "basophil"]
    assert d["count"].tolist() == [3, 2, 1, 1, 0]
    assert d["percent"].sum() == pytest.approx(100.0)
    assert d.loc[1, "percent"] == pytest.approx(300 / 7)
    assert d.attrs["total"] == 7
    u = differential_count(pd.DataFrame({"class_code": [1, UNIDENTIFIED, 9, 5]}))
    assert u.index.tolist() == [1, 2, 3, 4, 5, UNIDENTIFIED]
    assert u.loc[UNIDENTIFIED, "class"] == "unidentified"
    assert u.loc[UNIDENTIFIED, "count"] == 2  # unknown codes count as unidentified
    assert u["percent"].sum() == pytest.approx(100.0)
    marrow = (CellClass(1, "blast", "#ff0000"), CellClass(2, "myelocyte", "#00ff00"))
    m = differential_count(pd.DataFrame({"class_code": [2, 2]}), classes=marrow)
    assert m["class"].tolist() == ["blast", "myelocyte"] and m["percent"].tolist() == [0, 100]


def test_table_of_postprocessed_instances():
    from napari_wbcseg.core.postprocessing import instances_from_probabilities

    s = synthetic_smear((384, 512), n_wbc=4, seed=2, rbc_density=0)
    sem = np.stack([(s.nucleus == 0) & (s.cytoplasm == 0), s.cytoplasm > 0,
                    s.nucleus > 0]).astype(np.float32)
    cls = np.stack([s.cell_type == k for k in range(1, 6)]).astype(np.float32)
    inst = instances_from_probabilities(sem, cls)
    t = cell_table(inst.nucleus, inst.cytoplasm, inst.cell_type, confidence=inst.confidence)
    assert t.index.tolist() == list(range(1, inst.n_cells + 1))
    assert t["class_code"].to_dict() == inst.classes
    assert t["confidence"].tolist() == pytest.approx(list(inst.confidence.values()))
    assert differential_count(t)["count"].sum() == 4

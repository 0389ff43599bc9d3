"""Loaders on the staged data, synthetic samples and leakage-free splits."""
from __future__ import annotations

import sys
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest

from napari_wbcseg.training.data import datasets as D
from napari_wbcseg.training.data.sample import (CELL, IGNORE, NATIVE_CELL_DIAMETER, Sample,
                                           mark_unlabelled_cells)


@lru_cache(maxsize=None)
def _segwbc(root, ds):
    return tuple(D.load_segmentation_wbc(root, ds))


@lru_cache(maxsize=None)
def _sub(root):
    return tuple(D.load_bcisc_subimages(root))


def _by_name(samples):
    return {s.name.split("/")[-1]: s for s in samples}


def test_package_import_is_light():
    import importlib
    import subprocess

    code = ("import sys, napari_wbcseg.training, napari_wbcseg.training.data.datasets, "
            "napari_wbcseg.training.data.augment; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert importlib.import_module("napari_wbcseg.training").Sample is Sample


@pytest.mark.parametrize("ds, n, counts", [
    (1, 239, {1: 140, 2: 42, 3: 38, 4: 18, 5: 1}),
    (2, 80, {1: 26, 2: 30, 3: 12, 4: 10, 5: 2}),
])
def test_segmentation_wbc_counts_and_values(shared_data, ds, n, counts):
    samples = _segwbc(str(shared_data), ds)
    assert len(samples) == n
    assert Counter(s.meta["csv_class"] for s in samples) == counts  # README staged counts
    for s in samples:
        assert s.source == f"segmentation_WBC-{ds}" and not s.complete
        assert s.image.dtype == np.uint8 and s.image.shape == s.semantic.shape + (3,)
        assert set(np.unique(s.semantic)) <= {0, 1, 2, IGNORE}
        assert {1, 2} <= set(np.unique(s.semantic))  # one annotated cell, nucleus + cytoplasm
        cell = (s.semantic == 1) | (s.semantic == 2)
        assert np.all(s.cell_class[cell] == s.image_class)
        assert np.all(s.cell_class[s.semantic == 0] == 0)
        assert np.all(s.cell_class[s.semantic == IGNORE] == IGNORE)
    if ds == 2:
        assert all(s.image.shape == (300, 300, 3) for s in samples)


def test_segmentation_wbc_duplicates_share_groups(shared_data):
    samples = _by_name(_segwbc(str(shared_data), 1))
    for a, b in D.SEGWBC_DUPLICATES:
        sa, sb = samples[f"{a:03d}"], samples[f"{b:03d}"]
        assert sa.group == sb.group
    # the only pair with disagreeing CSV labels (060 neutrophil / 090 monocyte) is unknown
    assert samples["060"].image_class == samples["090"].image_class == 255
    assert samples["060"].meta["csv_class"] == 1 and samples["090"].meta["csv_class"] == 3
    groups = Counter(s.group for s in samples.values())
    assert sum(v == 2 for v in groups.values()) == len(D.SEGWBC_DUPLICATES)
    assert max(groups.values()) == 2
    raw = D.load_segmentation_wbc(shared_data, 1, conflicts_unknown=False, mark_unlabelled=False)
    assert _by_name(raw)["060"].image_class == 1
    assert all(s.meta["ignored_px"] == 0 for s in raw)


def test_native_scale_matches_measured_diameters(shared_data):
    for ds in (1, 2):
        samples = _segwbc(str(shared_data), ds)
        d = np.median([2 * np.sqrt(((s.semantic == 1) | (s.semantic == 2)).sum() / np.pi) * s.scale
                       for s in samples])
        assert abs(d - NATIVE_CELL_DIAMETER) < 0.1 * NATIVE_CELL_DIAMETER
    sub = _sub(str(shared_data))
    d = np.median([2 * np.sqrt(s.cell_mask().sum() / np.pi) * s.scale for s in sub])
    assert abs(d - NATIVE_CELL_DIAMETER) < 0.15 * NATIVE_CELL_DIAMETER


def test_bcisc_subimages(shared_data):
    samples = _sub(str(shared_data))
    assert len(samples) == 216
    prefix = Counter(s.name.split("_")[0] for s in samples)
    assert prefix == {"baso": 43, "eosi": 45, "lymp": 43, "mono": 43, "neut": 42}
    codes = {"neut": 1, "lymp": 2, "mono": 3, "eosi": 4, "baso": 5}
    for s in samples:
        assert s.source == "BCISC-sub" and not s.complete and s.shape == (256, 256)
        assert set(np.unique(s.semantic)) <= {0, CELL, IGNORE}
        assert (s.semantic == CELL).any()
        cls = s.name.split("_")[0]
        assert s.image_class == codes[cls]
        assert s.group == f"bcisc-{cls}-{s.name.split('_')[1].split('-')[0]}"
        assert set(np.unique(s.cell_class[s.semantic == CELL])) <= {codes[cls], 255}
        assert np.all(s.cell_class[s.semantic == 0] == 0)
    by = _by_name(samples)
    # the folder class sits on the central cell only ...
    c = by["mono_1-1_1"]
    assert c.cell_class[128, 128] == 3 and c.meta["class_on"] == "centre"
    # ... not on off-centre cells of other types, nor on crops whose centre cell is doubtful
    for name in ("mono_10-3_1", "mono_10-4_2", "eosi_10-3_1", "eosi_8-5_0", "lymp_9-2_0"):
        s = by[name]
        assert s.meta["class_on"] == "none"
        assert np.all(s.cell_class[s.semantic == CELL] == 255), name
    # eosi_8-5_1: the eosinophil in the centre has the class, the neutrophil at the edge not
    s = by["eosi_8-5_1"]
    on_cell = s.cell_class[s.semantic == CELL]
    assert (on_cell == 4).any() and (on_cell == 255).any()
    assert sum(s.meta["class_on"] == "centre" for s in samples) >= 195
    assert by["baso_2-2_0"].scale == pytest.approx(2 * D.DEFAULT_SCALE["BCISC-sub"])


def test_bcisc_fields(shared_data):
    fields = {s.name: s for s in D.load_bcisc_fields(
        shared_data, only={"mono/10-3", "lymp/1-1", "neut/4-2", "baso/2-2"})}
    assert set(fields) == {"mono/10-3", "lymp/1-1", "neut/4-2", "baso/2-2"}
    one = fields["lymp/1-1"]
    assert one.shape == (1536, 2048) and one.group == "bcisc-lymp-1" and not one.complete
    assert set(np.unique(one.semantic)) <= {0, CELL, IGNORE}
    assert np.all(one.cell_class[one.semantic == CELL] == 2) and one.meta["class_on"] == "all"
    multi = fields["mono/10-3"]  # three masks, two of them neutrophils: no class on any
    assert multi.meta["distinct_masks"] == 3
    assert np.all(multi.cell_class[multi.semantic == CELL] == 255)
    assert fields["baso/2-2"].meta["distinct_masks"] == 2  # 2-2.png == 2-2(1).png
    assert fields["baso/2-2"].scale == pytest.approx(2 * D.DEFAULT_SCALE["BCISC-field"])
    # neut/4-2 has an unmasked white cell at the bottom edge: it must not stay background
    n = fields["neut/4-2"]
    assert (n.semantic[1400:, 800:1300] == IGNORE).sum() > 5000
    native = next(iter(D.load_bcisc_fields(shared_data, only={"lymp/1-1"}, native=True)))
    assert native.scale == pytest.approx(1.0) and native.shape == (525, 700)
    # eosinophils have no masks at all
    assert not list(D.load_bcisc_fields(shared_data, classes=["eosi"]))


def test_synthetic_samples():
    samples = D.synthetic_samples(3, seed0=5, shape=(256, 320))
    assert [s.group for s in samples] == ["synthetic-5", "synthetic-6", "synthetic-7"]
    for s in samples:
        assert s.complete and s.source == "synthetic"
        assert set(np.unique(s.semantic)) <= {0, 1, 2}
        cell = s.semantic > 0
        assert np.all((s.cell_class > 0) == cell)
        assert set(np.unique(s.cell_class[cell])) <= {1, 2, 3, 4, 5}
        assert s.scale == pytest.approx(NATIVE_CELL_DIAMETER / 56.0)
    again = D.synthetic_samples(1, seed0=5, shape=(256, 320))[0]
    assert np.array_equal(again.image, samples[0].image)
    coarse = D.synthetic_samples(1, shape=(256, 320), pixel_size_um=0.4, n_wbc=2)[0]
    assert coarse.scale == pytest.approx(2 * samples[0].scale)


def test_mark_unlabelled_cells_finds_a_hidden_cell():
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear((320, 400), n_wbc=2, seed=3, classes=[2, 2])
    cell_ids = np.maximum(sm.nucleus, sm.cytoplasm)
    known, hidden = cell_ids == 1, cell_ids == 2
    flagged = mark_unlabelled_cells(sm.image, known)
    assert not (flagged & known).any()
    assert (flagged & hidden).sum() > 0.5 * hidden.sum()
    assert flagged.mean() < 0.3
    # nothing to find when every cell is labelled
    assert mark_unlabelled_cells(sm.image, known | hidden).sum() < 0.05 * hidden.sum()


def _toy(source, group, name, cls=1):
    z = np.zeros((8, 8), np.uint8)
    return Sample(np.zeros((8, 8, 3), np.uint8), z, z.copy(), source, group, name, image_class=cls)


def test_split_by_group_is_leak_free_and_deterministic():
    samples = [_toy("A", f"a{i // 2}", f"a{i}", cls=1 + i % 3) for i in range(60)]
    samples += [_toy("BCISC-sub", f"b{i % 7}", f"bs{i}", cls=2) for i in range(30)]
    samples += [_toy("BCISC-field", f"b{i % 7}", f"bf{i}", cls=2) for i in range(10)]
    samples += [_toy("lonely", "only-group", f"l{i}") for i in range(3)]
    train, val = D.split_by_group(samples, 0.2, seed=1)
    assert len(train) + len(val) == len(samples)
    assert not {s.group for s in train} & {s.group for s in val}
    assert {s.source for s in val} >= {"A", "BCISC-sub", "BCISC-field"}
    assert not any(s.source == "lonely" for s in val)  # a single group stays in training
    assert 0.1 < len(val) / len(samples) < 0.35
    train2, val2 = D.split_by_group(list(reversed(samples)), 0.2, seed=1)
    assert [s.name for s in val2] == [s.name for s in val]
    other = D.split_by_group(samples, 0.2, seed=2)[1]
    assert [s.name for s in other] != [s.name for s in val]
    with pytest.raises(ValueError):
        D.split_by_group(samples, 1.0)


def test_split_on_real_data(shared_data):
    samples = list(_segwbc(str(shared_data), 1)) + list(_segwbc(str(shared_data), 2))
    samples += list(_sub(str(shared_data)))
    train, val = D.split_by_group(samples, 0.2, seed=0)
    assert not {s.group for s in train} & {s.group for s in val}
    assert {s.source for s in val} == {"segmentation_WBC-1", "segmentation_WBC-2", "BCISC-sub"}
    for src in ("segmentation_WBC-1", "segmentation_WBC-2", "BCISC-sub"):
        n_all = sum(s.source == src for s in samples)
        n_val = sum(s.source == src for s in val)
        assert 0.1 < n_val / n_all < 0.35, src
    # every BCISC class has validation crops (8 groups N per class)
    assert {s.image_class for s in val if s.source == "BCISC-sub"} == {1, 2, 3, 4, 5}
    assert [s.name for s in D.split_by_group(samples, 0.2, seed=0)[1]] == [s.name for s in val]

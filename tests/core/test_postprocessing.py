"""Probability maps -> schema instances: recovery, splitting, filters, schema, speed."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from napari_wbcseg.core.postprocessing import (Instances, instances_from_probabilities,
                                               min_area_px)
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schema import UNIDENTIFIED, check_labels

K = 5


def perfect_probs(nucleus, cytoplasm, cell_type, blur=0.0, noise=0.0, seed=0):
    """One-hot semantic and class maps from ground truth, optionally blurred and noisy."""
    sem = np.zeros((3,) + nucleus.shape, np.float32)
    sem[2] = nucleus > 0
    sem[1] = cytoplasm > 0
    sem[0] = 1 - sem[1] - sem[2]
    cls = np.full((K,) + nucleus.shape, 1.0 / K, np.float32)
    cell = cell_type > 0
    for k in range(K):
        cls[k][cell] = cell_type[cell] == k + 1
    if blur:
        sem = np.stack([cv2.GaussianBlur(c, (0, 0), blur) for c in sem])
        cls = np.stack([cv2.GaussianBlur(c, (0, 0), blur) for c in cls])
    if noise:
        rng = np.random.default_rng(seed)
        sem = np.clip(sem + rng.normal(0, noise, sem.shape).astype(np.float32), 0, 1)
        sem /= sem.sum(0, keepdims=True) + 1e-6
    return sem, cls


def from_smear(s, **kw):
    return perfect_probs(s.nucleus, s.cytoplasm, s.cell_type, **kw)


def match(s, inst: Instances):
    """Per ground-truth cell: (Dice of the best-overlapping predicted cell, its id)."""
    gt = np.where(s.nucleus > 0, s.nucleus, s.cytoplasm)
    pr = inst.cells
    out = {}
    for k in s.classes:
        g = gt == k
        ids, counts = np.unique(pr[g], return_counts=True)
        j = int(ids[np.argmax(counts)])
        p = pr == j
        out[k] = (2 * (g & p).sum() / (g.sum() + p.sum()) if j else 0.0, j)
    return out


def check_consistent(inst: Instances, need_nucleus=True):
    check_labels(inst.nucleus, inst.cytoplasm, inst.cell_type)
    cells = inst.cells
    ids = np.unique(cells[cells > 0])
    assert ids.tolist() == list(range(1, inst.n_cells + 1))  # consecutive
    assert sorted(inst.classes) == sorted(inst.confidence) == ids.tolist()
    for i in ids:  # every cell has both a nucleus and a cytoplasm with its id
        assert (inst.cytoplasm == i).any()
        assert (inst.nucleus == i).any() or not need_nucleus
        assert np.all(inst.cell_type[cells == i] == inst.classes[i])
    conf = np.array(list(inst.confidence.values()))
    assert np.all((conf >= 0) & (conf <= 1))
    assert inst.nucleus.dtype == inst.cytoplasm.dtype == np.uint16
    assert inst.cell_type.dtype == np.uint8


@pytest.mark.parametrize("seed", [0, 1])
def test_perfect_maps_recover_cells(seed):
    s = synthetic_smear((512, 640), n_wbc=6, seed=seed)
    inst = instances_from_probabilities(*from_smear(s))
    check_consistent(inst)
    assert inst.n_cells == len(s.classes)
    m = match(s, inst)
    for k, (d, j) in m.items():
        assert d > 0.95
        assert inst.classes[j] == s.classes[k]
        assert inst.confidence[j] == pytest.approx(1.0)
    assert len({j for _, j in m.values()}) == inst.n_cells  # one-to-one


def test_blurred_noisy_maps_recover_cells():
    s = synthetic_smear((512, 640), n_wbc=6, seed=2, touching=True)
    inst = instances_from_probabilities(*from_smear(s, blur=1.5, noise=0.1))
    check_consistent(inst)
    assert inst.n_cells == 6
    m = match(s, inst)
    assert all(d > 0.95 for d, _ in m.values())
    assert all(inst.classes[j] == s.classes[k] for k, (_, j) in m.items())
    assert all(0.5 < inst.confidence[j] <= 1 for _, j in m.values())


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_touching_cells_are_separated(seed):
    s = synthetic_smear((512, 640), n_wbc=6, seed=seed, touching=True)
    fg = ((s.nucleus > 0) | (s.cytoplasm > 0)).astype(np.uint8)
    n_blobs = cv2.connectedComponents(fg, connectivity=4)[0] - 1
    assert n_blobs < 6  # the fixture really has touching cells
    inst = instances_from_probabilities(*from_smear(s))
    check_consistent(inst)
    assert inst.n_cells == 6
    m = match(s, inst)
    assert len({j for _, j in m.values()}) == 6
    assert all(d > 0.95 for d, _ in m.values())
    # without splitting, touching cells stay merged
    merged = instances_from_probabilities(*from_smear(s), split_touching=False)
    check_consistent(merged)
    assert merged.n_cells == n_blobs


def test_neutrophil_lobes_stay_one_cell():
    s = synthetic_smear((384, 384), n_wbc=3, seed=4, classes=[1], rbc_density=0)
    # lose the thin filaments between lobes, as a network often does
    nuc = (s.nucleus > 0).astype(np.uint8)
    opened = cv2.morphologyEx(nuc, cv2.MORPH_OPEN,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    lost = (nuc > 0) & (opened == 0)
    nucleus = np.where(lost, 0, s.nucleus)
    cytoplasm = np.where(lost, s.nucleus, s.cytoplasm)
    for i in s.classes:  # the fixture's nuclei now fall apart into lobes
        assert cv2.connectedComponents((nucleus == i).astype(np.uint8), connectivity=4)[0] > 2
    inst = instances_from_probabilities(*perfect_probs(nucleus, cytoplasm, s.cell_type))
    check_consistent(inst)
    assert inst.n_cells == 3
    assert set(inst.classes.values()) == {1}
    assert all(d > 0.95 for d, _ in match(s, inst).values())


def test_fragments_and_nucleus_free_blobs_are_removed():
    s = synthetic_smear((256, 320), n_wbc=2, seed=1, rbc_density=0)
    nucleus, cytoplasm, cell_type = s.nucleus.copy(), s.cytoplasm.copy(), s.cell_type.copy()
    free = (s.nucleus == 0) & (s.cytoplasm == 0)
    yy, xx = np.mgrid[:256, :320]

    def empty_disc(r):  # a disc where there is no cell yet
        for cy in range(r + 2, 256 - r - 2, 4):
            for cx in range(r + 2, 320 - r - 2, 4):
                d = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 3) ** 2
                if free[d].all():
                    free[d] = False
                    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        raise AssertionError("no room")

    blob = empty_disc(15)  # a red-cell-sized blob predicted as cytoplasm only
    cytoplasm[blob], cell_type[blob] = 9, 2
    frag = empty_disc(4)  # a small fragment with a nucleus
    nucleus[frag], cell_type[frag] = 10, 3
    sem, cls = perfect_probs(nucleus, cytoplasm, cell_type)
    inst = instances_from_probabilities(sem, cls, min_cell_area=min_area_px(20, 0.2))
    check_consistent(inst)
    assert inst.n_cells == 2
    assert not inst.cells[blob | frag].any()
    kept = instances_from_probabilities(sem, cls, min_cell_area=min_area_px(20, 0.2),
                                        require_nucleus=False)
    check_consistent(kept, need_nucleus=False)
    assert kept.n_cells == 3 and kept.cells[blob].all()
    small = instances_from_probabilities(sem, cls, min_cell_area=20)
    assert small.n_cells == 3 and small.cells[frag].all()


def test_holes_are_filled_and_ids_shared():
    nucleus = np.zeros((80, 80), np.uint16)
    cytoplasm = np.zeros_like(nucleus)
    yy, xx = np.mgrid[:80, :80]
    r2 = (yy - 40) ** 2 + (xx - 40) ** 2
    cytoplasm[r2 <= 30**2] = 1
    nucleus[r2 <= 12**2] = 1
    cytoplasm[nucleus > 0] = 0
    cell_type = np.where(r2 <= 30**2, 2, 0).astype(np.uint8)
    sem, cls = perfect_probs(nucleus, cytoplasm, cell_type)
    sem[:, 38:41, 38:41] = [[[1.0]], [[0.0]], [[0.0]]]  # background hole in the nucleus
    sem[:, 20:23, 55:58] = [[[1.0]], [[0.0]], [[0.0]]]  # background hole in the cytoplasm
    inst = instances_from_probabilities(sem, cls)
    check_consistent(inst)
    assert inst.n_cells == 1 and inst.classes == {1: 2}
    assert np.array_equal(inst.nucleus > 0, nucleus > 0)
    assert np.array_equal(inst.cytoplasm > 0, cytoplasm > 0)
    raw = instances_from_probabilities(sem, cls, fill_holes=False)
    assert not raw.cells[38:41, 38:41].any() and not raw.cells[20:23, 55:58].any()


def test_class_from_mean_over_cell_and_threshold():
    nucleus = np.zeros((60, 60), np.uint16)
    cytoplasm = np.zeros_like(nucleus)
    yy, xx = np.mgrid[:60, :60]
    r2 = (yy - 30) ** 2 + (xx - 30) ** 2
    cytoplasm[(r2 <= 20**2) & (r2 > 8**2)] = 1
    nucleus[r2 <= 8**2] = 1
    cell_type = np.where(r2 <= 20**2, 1, 0).astype(np.uint8)
    sem, cls = perfect_probs(nucleus, cytoplasm, cell_type)
    cls[:] = 0
    cls[2] = 0.6  # monocyte everywhere ...
    cls[3][r2 <= 8**2], cls[2][r2 <= 8**2] = 1.0, 0.0  # ... but eosinophil on the nucleus
    inst = instances_from_probabilities(sem, cls)
    cell = r2 <= 20**2
    assert inst.classes == {1: 3}
    assert inst.confidence[1] == pytest.approx(cls[2][cell].mean(), abs=1e-6)
    custom = instances_from_probabilities(sem, cls, class_codes=(6, 7, 8, 9, 10))
    assert custom.classes == {1: 8} and set(np.unique(custom.cell_type)) == {0, 8}
    none = instances_from_probabilities(sem, None)
    assert none.classes == {1: UNIDENTIFIED} and np.isnan(none.confidence[1])
    strict = instances_from_probabilities(sem * np.float32(0.6), cls, cell_threshold=0.7)
    assert strict.n_cells == 0 and not strict.cell_type.any()


def test_empty_and_bad_input():
    sem = np.zeros((3, 40, 50), np.float32)
    sem[0] = 1
    inst = instances_from_probabilities(sem, np.full((K, 40, 50), 0.2, np.float32))
    check_labels(inst.nucleus, inst.cytoplasm, inst.cell_type)
    assert inst.n_cells == 0 and inst.classes == {} and inst.nucleus.shape == (40, 50)
    with pytest.raises(ValueError, match="sem_prob"):
        instances_from_probabilities(sem[:2], None)
    with pytest.raises(ValueError, match="channels"):
        instances_from_probabilities(sem, np.zeros((4, 40, 50), np.float32))
    with pytest.raises(ValueError, match="cls_prob"):
        instances_from_probabilities(sem, np.zeros((K, 40, 51), np.float32))
    with pytest.raises(ValueError):
        min_area_px(20, 0)
    assert min_area_px(20, 0.2) == 500


def test_full_field_finds_every_cell():
    """A 2048x1536 field with touching cells (its speed: benchmarks/bench_segment.py)."""
    s = synthetic_smear((1536, 2048), n_wbc=10, seed=3, touching=True, rbc_density=0.3)
    sem, cls = from_smear(s, noise=0.05)
    inst = instances_from_probabilities(sem, cls)
    assert inst.n_cells == 10

"""The headless demo (issue 14, item 10): an overlay picture beside the label files, and
the cell-type accuracy against the synthetic smear's ground truth beside the Dice."""
import types

import numpy as np
import pandas as pd
import pytest

import napari_wbcseg.cli as cli
from napari_wbcseg.cli import main
from napari_wbcseg.cli_demo import cell_type_accuracy, overlay
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.imread import read_image
from napari_wbcseg.schema import UNIDENTIFIED, class_by_code


@pytest.fixture
def no_display(monkeypatch):
    """The code path of a machine without a display: napari is never imported."""
    monkeypatch.setattr(cli, "has_display", lambda: False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture(scope="module")
def smear():
    return synthetic_smear(seed=0)


def as_found(truth, cell_type):
    """A segmentation result that found the true cells with the given cell-type layer."""
    return types.SimpleNamespace(nucleus=truth.nucleus, cytoplasm=truth.cytoplasm,
                                 cell_type=cell_type, table=pd.DataFrame(),
                                 differential=pd.DataFrame({"count": [5]}))


def test_demo_without_display_writes_an_overlay_and_prints_cell_type_accuracy(
        tmp_path, tiny_model, no_display, capsys):
    assert main(["demo", "--out", str(tmp_path), "--model", tiny_model, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    picture = tmp_path / "synthetic_smear_overlay.png"
    assert picture.is_file()
    assert read_image(picture).shape == read_image(tmp_path / "synthetic_smear.png").shape
    line = next(ln for ln in out.splitlines() if "whole-cell Dice" in ln)
    assert "cell-type accuracy:" in line and " of 5 cells right" in line
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp file left


@pytest.mark.parametrize("types_of, right", [("truth", 5), ("none", 0), ("shifted", 0)])
def test_demo_overlay_differs_from_the_input_and_accuracy_counts_cells(
        tmp_path, smear, no_display, monkeypatch, capsys, types_of, right):
    cell_type = {"truth": smear.cell_type, "none": np.zeros_like(smear.cell_type),
                 "shifted": np.where(smear.cell_type > 0, smear.cell_type % 5 + 1, 0)
                 .astype(smear.cell_type.dtype)}[types_of]
    monkeypatch.setattr(cli, "_segment_and_save", lambda *a: as_found(smear, cell_type))
    assert main(["demo", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"cell-type accuracy: {right} of 5 cells right" in out
    picture = read_image(tmp_path / "synthetic_smear_overlay.png")
    assert picture.shape == smear.image.shape
    assert (picture != smear.image).any(axis=-1).sum() > 500  # outlines of five cells


def test_accuracy_is_per_true_cell_by_majority(smear):
    assert cell_type_accuracy(smear, smear.cell_type) == (5, 5)
    first = int(next(iter(smear.classes)))
    cell = (smear.nucleus == first) | (smear.cytoplasm == first)
    wrong = smear.cell_type.copy()
    ys, xs = np.nonzero(cell)
    minority = np.zeros_like(cell)
    minority[ys[: len(ys) // 3], xs[: len(xs) // 3]] = True
    wrong[minority] = smear.classes[first] % 5 + 1  # a third of it wrong: still right
    assert cell_type_accuracy(smear, wrong) == (5, 5)
    wrong[cell] = UNIDENTIFIED  # left unidentified: wrong
    assert cell_type_accuracy(smear, wrong) == (4, 5)
    wrong[cell] = 0  # missed: wrong
    assert cell_type_accuracy(smear, wrong) == (4, 5)


def test_overlay_draws_in_the_cell_type_colour(smear):
    picture = overlay(smear.image, smear.nucleus, smear.cytoplasm, smear.cell_type)
    assert picture.shape == smear.image.shape and picture.dtype == np.uint8
    for code in set(smear.classes.values()):
        colour = class_by_code()[code].color.lstrip("#")
        rgb = np.array([int(colour[i:i + 2], 16) for i in (0, 2, 4)], np.uint8)
        assert (picture == rgb).all(axis=-1).sum() > 50, code
    assert (smear.image == picture).any()  # an overlay, not a repaint


def test_overlay_of_grey_16_bit_and_huge_ids():
    nucleus = np.zeros((40, 50), np.uint32)
    cytoplasm = np.zeros_like(nucleus)
    nucleus[10:20, 10:20] = 2**32 - 1
    cytoplasm[5:25, 5:25][nucleus[5:25, 5:25] == 0] = 2**32 - 1
    cell_type = ((nucleus > 0) | (cytoplasm > 0)).astype(np.uint8) * 3
    grey = np.full((40, 50), 30000, np.uint16)
    picture = overlay(grey, nucleus, cytoplasm, cell_type)
    assert picture.shape == (40, 50, 3) and picture.dtype == np.uint8
    assert (picture != picture[0, 0]).any()
    empty = overlay(grey, np.zeros_like(nucleus), np.zeros_like(nucleus),
                    np.zeros((40, 50), np.uint8))
    assert (empty == empty[0, 0]).all()

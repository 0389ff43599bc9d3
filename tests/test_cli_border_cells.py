"""``napari-wbcseg segment``: border cells in the table, differential.csv by the setting.

The network is replaced by a made-up result, so the counts are known."""
import cv2
import numpy as np
import pandas as pd
import pytest

from napari_wbcseg import cli
from napari_wbcseg.core.measurements import cell_table
from napari_wbcseg.inference import segment as segment_module
from napari_wbcseg.inference.segment import SegmentParams, Segmentation


def _fake_steps(image, params):
    """Cell 1 inside (0.9), cell 2 on the top row (0.3), cell 3 inside (0.2)."""
    h, w = image.shape[:2]
    nucleus, cytoplasm = np.zeros((h, w), np.uint16), np.zeros((h, w), np.uint16)
    cell_type = np.zeros((h, w), np.uint8)
    for cid, r, c, code in ((1, 10, 10, 1), (2, 0, 30, 1), (3, 20, 40, 2)):
        nucleus[r:r + 6, c:c + 6] = cid
        cell_type[r:r + 6, c:c + 6] = code
    table = cell_table(nucleus, cytoplasm, cell_type, confidence={1: 0.9, 2: 0.3, 3: 0.2})
    return Segmentation(nucleus, cytoplasm, cell_type, table, params.differential(table),
                        "made-up", "cpu", timings={"total_s": 0.1})
    yield  # a generator, like segment_steps


@pytest.fixture
def field(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setattr(segment_module, "segment_steps", _fake_steps)
    path = tmp_path / "field.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), 200, np.uint8))
    return path


@pytest.mark.parametrize("flag, counted, left_out", [([], 2, 1), (["--include-border-cells"], 3, 0)])
def test_differential_csv_follows_the_border_setting(field, tmp_path, capsys, flag, counted,
                                                     left_out):
    out = tmp_path / "out"
    assert cli.main(["segment", str(field), "--model", "tiny", "--out", str(out),
                     "--device", "cpu", *flag]) == 0
    cells = pd.read_csv(out / "field_cells.csv")
    assert cells["cell_id"].tolist() == [1, 2, 3]  # every cell, flagged
    assert cells["touches_border"].tolist() == [False, True, False]
    diff = pd.read_csv(out / "differential.csv")
    assert diff["count"].sum() == counted and diff["border_left_out"].sum() == left_out
    assert diff["to_check"].sum() == (1 if left_out else 2)  # below the 0.5 default
    said = capsys.readouterr().out
    assert f"differential count of {counted} cells" in said
    assert ("1 cut by the image border left out" in said) == bool(left_out)


def test_help_names_the_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["segment", "--help"])
    assert "--include-border-cells" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_include_border_cells_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="include_border_cells must be True or False"):
        SegmentParams(include_border_cells=bad)

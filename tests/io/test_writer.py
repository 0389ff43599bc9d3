import numpy as np
import pytest

from napari_wbcseg.io.imread import read_image
from napari_wbcseg.io.reader import read_smear
from napari_wbcseg.schema import labels_style
from napari_wbcseg.io.writer import (save_labels, save_table, write_features_csv,
                                     write_labels_tiff)


def test_labels_round_trip_keeps_values_and_reopens_as_labels(tmp_path):
    labels = np.zeros((64, 80), np.int64)  # napari's default label dtype
    labels[5:20, 5:30] = 3
    labels[30:60, 40:70] = 70000  # needs 32 bits
    [path] = write_labels_tiff(str(tmp_path / "cells.tif"), labels, {"name": "smear nucleus"})
    back = read_image(path)
    assert back.dtype == np.uint32 and np.array_equal(back, labels)
    [(data, kwargs, kind)] = read_smear(path)
    assert kind == "labels" and kwargs["name"] == "smear nucleus"
    assert kwargs["colormap"] == labels_style("nucleus")["colormap"]  # reopens in the schema look


def test_small_labels_are_stored_compactly(tmp_path):
    labels = np.zeros((32, 32), np.int32)
    labels[4:8, 4:8] = 5
    assert read_image(save_labels(tmp_path / "a.tif", labels)).dtype == np.uint8


def test_refuses_float_and_negative_labels(tmp_path):
    with pytest.raises(ValueError, match="integers"):
        save_labels(tmp_path / "f.tif", np.zeros((9, 9), np.float32))
    with pytest.raises(ValueError, match="negative"):
        save_labels(tmp_path / "n.tif", -np.ones((9, 9), np.int32))
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.tif"
    save_labels(target, np.ones((16, 16), np.uint8))
    before = target.read_bytes()
    with pytest.raises(ValueError):
        save_labels(target, np.zeros((16, 16), np.float64))
    assert target.read_bytes() == before


def test_table_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"class": ["neutrophil", "lymphocyte"], "area": [120.5, 80.0]},
                      index=pd.Index([1, 2], name="cell_id"))
    [path] = write_features_csv(str(tmp_path / "cells.csv"), None, {"features": df, "name": "x"})
    text = (tmp_path / "cells.csv").read_text().splitlines()
    assert text[0] == "cell_id,class,area" and text[1] == "1,neutrophil,120.5"
    save_table(tmp_path / "d.csv", {"a": [1, 2], "b": ["x", "y"]})
    assert (tmp_path / "d.csv").read_text().splitlines() == ["a,b", "1,x", "2,y"]
    with pytest.raises(ValueError, match="no per-cell table"):
        write_features_csv(str(tmp_path / "e.csv"), None, {"features": pd.DataFrame(), "name": "x"})


def test_expert_masks_round_trip_through_schema_layers(tmp_path):
    """A segmentation_WBC-style mask (0 / 128 cytoplasm / 255 nucleus, here drawn by the
    synthetic generator) survives schema layers -> label TIFFs -> semantic."""
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.schema import check_labels, layers_from_semantic, semantic_from_layers

    sm = synthetic_smear(shape=(120, 160), n_wbc=1, seed=2)
    mask = np.where(sm.nucleus > 0, 255, np.where(sm.cytoplasm > 0, 128, 0)).astype(np.uint8)
    semantic = (mask >= 64).astype(np.uint8) + (mask >= 192)
    assert set(np.unique(semantic).tolist()) == {0, 1, 2}  # both parts are present
    layers = layers_from_semantic(semantic, class_code=2)
    back = []
    for kind, arr in zip(("nucleus", "cytoplasm", "cell_type"), layers):
        [path] = write_labels_tiff(str(tmp_path / f"001_{kind}.tif"), arr, {"name": kind})
        back.append(read_image(path))
    check_labels(*back)
    assert np.array_equal(semantic_from_layers(back[0], back[1]), semantic)

"""Saved label layers (segment CLI / napari writer output) beside their images as --data."""
import cv2
import numpy as np
import pytest

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.writer import save_labels
from napari_wbcseg.training.data.layer_files import find_layer_sets, load_layer_folder
from napari_wbcseg.training.data.sample import UNKNOWN_CLASS
from napari_wbcseg.training.data.sources import load_data_folders


@pytest.fixture(scope="module")
def smear():
    return synthetic_smear((160, 224), n_wbc=3, seed=7, classes=[1, 2, 4])


def _save_set(folder, stem, sm, *, cell_type=True, suffix="_celltype"):
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / f"{stem}.png"), np.ascontiguousarray(sm.image[..., ::-1]))
    save_labels(folder / f"{stem}_nucleus.tif", sm.nucleus)
    save_labels(folder / f"{stem}_cytoplasm.tif", sm.cytoplasm)
    if cell_type:
        save_labels(folder / f"{stem}{suffix}.tif", sm.cell_type)


def test_segment_output_layout_loads_as_full_labels(tmp_path, smear):
    _save_set(tmp_path, "a", smear)
    _save_set(tmp_path, "b", smear, suffix="_cell_type")
    (tmp_path / "a_cells.csv").write_text("cell_id\n1\n")  # other segment outputs are ignored
    sets = find_layer_sets(tmp_path)
    assert [s["image"].name for s in sets] == ["a.png", "b.png"]
    samples = load_data_folders([tmp_path])
    assert len(samples) == 2 and all(s.complete for s in samples)
    s = samples[0]
    assert s.source == f"layers:{tmp_path.name}" and s.group != samples[1].group
    np.testing.assert_array_equal(s.semantic == 2, smear.nucleus > 0)
    np.testing.assert_array_equal(s.semantic == 1, smear.cytoplasm > 0)
    np.testing.assert_array_equal(s.cell_class, smear.cell_type)
    assert s.image_class == 0  # three cell types in one image
    assert np.array_equal(s.image, smear.image)
    # cells ~56 px across at 0.2 um/px -> resampled towards the 80 px native scale
    assert 1.2 < s.scale < 1.7


def test_without_cell_type_file_types_are_unknown(tmp_path, smear):
    _save_set(tmp_path, "a", smear, cell_type=False)
    (s,) = load_layer_folder(tmp_path)
    cell = s.semantic > 0
    assert (s.cell_class[cell] == UNKNOWN_CLASS).all() and (s.cell_class[~cell] == 0).all()


def test_bad_layers_give_one_line_errors(tmp_path, smear):
    _save_set(tmp_path / "shape", "a", smear)
    save_labels(tmp_path / "shape" / "a_cytoplasm.tif", smear.cytoplasm[:-4])
    with pytest.raises(ValueError, match="a_cytoplasm.tif: labels are"):
        load_data_folders([tmp_path / "shape"])
    _save_set(tmp_path / "overlap", "a", smear)
    save_labels(tmp_path / "overlap" / "a_cytoplasm.tif", smear.cytoplasm + smear.nucleus)
    with pytest.raises(ValueError, match="both nucleus and cytoplasm"):
        load_data_folders([tmp_path / "overlap"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="X_nucleus.tif"):
        load_data_folders([tmp_path / "empty"])

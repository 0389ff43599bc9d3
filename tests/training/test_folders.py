import os

import cv2
import numpy as np
import pytest

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import save_image_entry, set_reviewed
from napari_wbcseg.training.data.folders import (decode_mask, detect_and_load, find_pairs,
                                            load_image_mask_folder, load_project)
from napari_wbcseg.training.data.sample import (CELL, IGNORE, NATIVE_CELL_DIAMETER, UNKNOWN_CLASS,
                                           synthetic_scale)
from napari_wbcseg.training.data.sources import load_data_folders


@pytest.fixture(scope="module")
def smear():
    # cells 1..3: neutrophil, lymphocyte, monocyte
    return synthetic_smear((192, 256), n_wbc=3, seed=5, classes=[1, 2, 3])


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = arr[..., ::-1] if arr.ndim == 3 else arr  # cv2 writes BGR
    assert cv2.imwrite(str(path), np.ascontiguousarray(a))


def _semantic(sm):
    sem = np.zeros(sm.nucleus.shape, np.uint8)
    sem[sm.cytoplasm > 0] = 1
    sem[sm.nucleus > 0] = 2
    return sem


# ----------------------------------------------------------------------------- projects

def _project(tmp_path, sm, *, pixel_size=None):
    ct = sm.cell_type.copy()
    ct[(sm.nucleus == 3) | (sm.cytoplasm == 3)] = 255  # cell 3: unidentified
    save_image_entry(tmp_path, "reviewed", sm.image, sm.nucleus, sm.cytoplasm, ct,
                     reviewed=True, pixel_size_um=pixel_size)
    save_image_entry(tmp_path, "draft", sm.image, sm.nucleus, sm.cytoplasm, ct)
    return tmp_path


def test_project_reviewed_only_and_label_codes(tmp_path, smear):
    _project(tmp_path, smear)
    [s] = load_project(tmp_path)
    assert s.name.endswith("/reviewed") and s.group == "project:reviewed"
    assert s.source == f"project:{tmp_path.name}" and s.complete
    assert np.array_equal(s.semantic, _semantic(smear))
    cell3 = (smear.nucleus == 3) | (smear.cytoplasm == 3)
    assert (s.cell_class[cell3] == UNKNOWN_CLASS).all()
    assert (s.cell_class[(smear.nucleus == 1)] == 1).all()
    assert (s.cell_class[(smear.cytoplasm == 2)] == 2).all()
    assert (s.cell_class[s.semantic == 0] == 0).all()
    assert s.image_class == 0  # two known classes: no single image class
    both = load_project(tmp_path, reviewed_only=False)
    assert [x.name.rsplit("/", 1)[1] for x in both] == ["reviewed", "draft"]
    assert [x.complete for x in both] == [True, False]


def test_project_codes_beyond_the_model_become_unknown(tmp_path, smear):
    _project(tmp_path, smear)
    [s] = load_project(tmp_path, num_classes=1)
    assert (s.cell_class[smear.cytoplasm == 2] == UNKNOWN_CLASS).all()
    assert (s.cell_class[smear.cytoplasm == 1] == 1).all()


def test_project_partly_reviewed_cells(tmp_path, smear):
    _project(tmp_path, smear)
    set_reviewed(tmp_path, "draft", False, cells=[2])
    s = {x.name.rsplit("/", 1)[1]: x for x in load_project(tmp_path)}["draft"]
    assert not s.complete
    other = (smear.nucleus + smear.cytoplasm > 0) & (smear.nucleus != 2) & (smear.cytoplasm != 2)
    assert (s.semantic[other] == IGNORE).all() and (s.cell_class[other] == UNKNOWN_CLASS).all()
    assert (s.semantic[smear.nucleus == 2] == 2).all()
    assert s.image_class == 2 and s.meta["n_cells"] == 1


def test_project_scale_from_pixel_size_or_cells(tmp_path, smear):
    _project(tmp_path / "a", smear, pixel_size=0.2)
    [s] = load_project(tmp_path / "a")
    assert s.scale == pytest.approx(synthetic_scale(0.2))
    _project(tmp_path / "b", smear)
    [s] = load_project(tmp_path / "b")
    ids = np.where(smear.nucleus > 0, smear.nucleus, smear.cytoplasm)
    areas = np.bincount(ids.ravel())[1:]
    d = np.median(2 * np.sqrt(areas[areas > 0] / np.pi))
    border = set(np.unique(np.r_[ids[0], ids[-1], ids[:, 0], ids[:, -1]])) - {0}
    if not border:  # all cells inside: the estimate is exactly the median diameter
        assert s.scale == pytest.approx(NATIVE_CELL_DIAMETER / d)
    assert 0.5 * synthetic_scale(0.2) < s.scale < 2 * synthetic_scale(0.2)
    assert load_project(tmp_path / "b", scale=0.7)[0].scale == 0.7


def test_project_without_cells_has_scale_one(tmp_path, smear):
    z = np.zeros(smear.nucleus.shape, np.uint16)
    save_image_entry(tmp_path, "empty", smear.image, z, z, z.astype(np.uint8), reviewed=True)
    [s] = load_project(tmp_path)
    assert s.scale == 1.0 and s.image_class == 0 and not s.semantic.any()


def test_project_without_reviewed_images_is_refused_by_detection(tmp_path, smear):
    save_image_entry(tmp_path, "draft", smear.image, smear.nucleus, smear.cytoplasm,
                     smear.cell_type)
    with pytest.raises(ValueError, match="no reviewed images"):
        detect_and_load(tmp_path)
    assert len(detect_and_load(tmp_path, reviewed_only=False)) == 1


# ------------------------------------------------------------------------ mask encodings

def test_decode_each_encoding():
    m = np.zeros((20, 20), np.uint8)
    m[2:18, 2:18] = 128
    m[6:14, 6:14] = 255
    sem, enc = decode_mask(m)
    assert enc == "segmentation_WBC" and sem[3, 3] == 1 and sem[10, 10] == 2 and sem[0, 0] == 0
    sem, enc = decode_mask((m > 0).astype(np.uint8) + (m > 128))
    assert enc == "class-index" and sem[3, 3] == 1 and sem[10, 10] == 2
    for binary in ((m > 0).astype(np.uint8), (m > 0).astype(np.uint8) * 255, m > 0):
        sem, enc = decode_mask(binary)
        assert enc == "binary" and sem[3, 3] == CELL and sem[10, 10] == CELL and sem[0, 0] == 0
    noisy = np.kron(m, np.ones((5, 5), np.uint8))  # 100x100: 3 strays are 0.03 %
    noisy[0, :3] = (7, 24, 45)  # segmentation_WBC Dataset 2 drawing artefacts
    sem, enc = decode_mask(noisy)
    assert enc == "segmentation_WBC" and not sem[0, :3].any()
    rgb = np.repeat(((m > 0) * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert decode_mask(rgb)[1] == "binary"


def test_unknown_mask_values_and_colour_masks_are_refused():
    m = np.zeros((20, 20), np.uint8)
    m[:5] = 3
    m[5:10] = 7
    with pytest.raises(ValueError, match=r"x.png: unknown mask encoding, values \{0, 3, 7\}"):
        decode_mask(m, "x.png")
    col = np.zeros((20, 20, 3), np.uint8)
    col[:5, :, 0] = 255
    with pytest.raises(ValueError, match="colour mask"):
        decode_mask(col, "c.png")


# ------------------------------------------------------------------------- plain folders

def _crop_masks(sm):
    sem = _semantic(sm)
    return {"segwbc": np.choose(sem, [0, 128, 255]).astype(np.uint8),
            "index": sem, "binary": ((sem > 0) * 255).astype(np.uint8)}


def test_images_and_masks_subfolders(tmp_path, smear):
    masks = _crop_masks(smear)
    for name, m in masks.items():
        _write(tmp_path / "images" / f"{name}.jpg", smear.image)
        _write(tmp_path / "masks" / f"{name}.png", m)
    samples = load_image_mask_folder(tmp_path, complete=True)
    by = {s.name.rsplit("/", 1)[1]: s for s in samples}
    assert sorted(by) == ["binary", "index", "segwbc"]
    sem = _semantic(smear)
    assert np.array_equal(by["segwbc"].semantic, sem)
    assert np.array_equal(by["index"].semantic, sem)
    assert np.array_equal(by["binary"].semantic, np.where(sem > 0, CELL, 0))
    for s in samples:
        assert s.source == f"folder:{tmp_path.name}" and s.complete
        assert (s.cell_class[sem > 0] == UNKNOWN_CLASS).all()
        assert (s.cell_class[sem == 0] == 0).all()
        assert s.image_class == UNKNOWN_CLASS and s.image.shape == smear.image.shape
    assert len({s.group for s in samples}) == 3
    # the scale comes from the cells: about the synthetic cell size at 0.2 um/px
    assert 0.5 * synthetic_scale(0.2) < samples[0].scale < 2 * synthetic_scale(0.2)
    assert load_image_mask_folder(tmp_path, scale=0.3)[0].scale == 0.3


def test_side_by_side_suffixes_and_classes_csv(tmp_path, smear):
    sem = _semantic(smear)
    m = ((sem > 0) * 255).astype(np.uint8)
    for i, suf in enumerate(("_mask", "_label", "_labels", "_SEG")):
        _write(tmp_path / f"c{i}.bmp", smear.image)
        _write(tmp_path / f"c{i}{suf}.png", m)
    _write(tmp_path / "unlabelled.png", smear.image)
    (tmp_path / "classes.csv").write_text("image,class\nc0.bmp,2\nc1,monocyte\nc2,9\n")
    with pytest.warns(UserWarning, match="1 images have no mask"):
        samples = load_image_mask_folder(tmp_path)
    by = {s.name.rsplit("/", 1)[1]: s for s in samples}
    assert sorted(by) == ["c0", "c1", "c2", "c3"]
    assert [by[k].image_class for k in ("c0", "c1", "c2", "c3")] == [2, 3, 255, 255]
    c0 = by["c0"].cell_class
    # the class goes on one cell only (the one under the centre, else the largest)
    assert (c0 == 2).any() and set(np.unique(c0).tolist()) <= {0, 2, 255}
    assert not (by["c3"].cell_class == 2).any()
    assert all(not s.complete for s in samples)


def test_bad_folders(tmp_path, smear):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_image_mask_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image \\+ mask pairs"):
        load_image_mask_folder(tmp_path)
    _write(tmp_path / "a.png", smear.image)
    _write(tmp_path / "a_mask.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(ValueError, match=r"a_mask.png: mask is 10x12, its image a.png is 192x256"):
        load_image_mask_folder(tmp_path)
    _write(tmp_path / "a_mask.png", np.full(smear.image.shape[:2], 77, np.uint8))
    with pytest.raises(ValueError, match=r"a_mask.png: unknown mask encoding, values \{77\}"):
        load_image_mask_folder(tmp_path)
    os.remove(tmp_path / "a.png")
    with pytest.raises(ValueError, match="a_mask.png: mask without an image"):
        find_pairs(tmp_path)
    (tmp_path / "a_mask.png").unlink()
    (tmp_path / "classes.csv").write_text("file,type\n")
    with pytest.raises(ValueError, match="no project.json, segmentation_WBC/"):
        detect_and_load(tmp_path)


def test_bad_classes_csv(tmp_path, smear):
    _write(tmp_path / "a.png", smear.image)
    _write(tmp_path / "a_mask.png", ((_semantic(smear) > 0) * 255).astype(np.uint8))
    (tmp_path / "classes.csv").write_text("image,class\na,platypus\n")
    with pytest.raises(ValueError, match="classes.csv, line 2: unknown class 'platypus'"):
        load_image_mask_folder(tmp_path)


# ------------------------------------------------------------------------- load_data_folders

def test_load_data_folders_mixes_layouts(tmp_path, smear):
    proj = _project(tmp_path / "proj", smear)
    plain = tmp_path / "plain"
    _write(plain / "x.png", smear.image)
    _write(plain / "x_mask.png", _crop_masks(smear)["segwbc"])
    samples = load_data_folders([proj, plain, proj], synthetic=1)
    assert [s.source for s in samples] == ["project:proj", "folder:plain", "synthetic"]
    with pytest.raises(FileNotFoundError, match="nope: no such folder"):
        load_data_folders([tmp_path / "nope"])


def _public_subset(root, data):
    """A small copy of the public layout made of symlinks (nothing is copied)."""
    seg = root / "segmentation_WBC"
    for ds, n in ((1, 2), (2, 1)):
        src_dir = data / "segmentation_WBC" / f"Dataset {ds}"
        (seg / f"Dataset {ds}").mkdir(parents=True)
        for img in sorted(src_dir.glob("*.bmp"))[:n]:
            for src in (img, img.with_suffix(".png")):
                (seg / f"Dataset {ds}" / src.name).symlink_to(src)
        csv = f"Class Labels of Dataset {ds}.csv"
        (seg / csv).symlink_to(data / "segmentation_WBC" / csv)
    sub = data / "BCISC" / "sub-images"
    for kind in ("images", "masks"):
        (root / "BCISC" / "sub-images" / kind).mkdir(parents=True)
    for img in sorted((sub / "images").glob("*.jpg"))[:2]:
        (root / "BCISC/sub-images/images" / img.name).symlink_to(img)
        mask = sub / "masks" / f"{img.stem}.png"
        (root / "BCISC/sub-images/masks" / mask.name).symlink_to(mask)
    return root


def test_public_layout_is_detected(tmp_path, shared_data):
    root = _public_subset(tmp_path / "data", shared_data)
    samples = load_data_folders([root])
    sources = {s.source for s in samples}
    assert sources == {"segmentation_WBC-1", "segmentation_WBC-2", "BCISC-sub"}
    assert len(samples) == 5
    # the dataset folder itself is accepted too
    assert {s.source for s in detect_and_load(root / "BCISC")} == {"BCISC-sub"}


def test_load_data_folders_on_the_shared_data(shared_data, monkeypatch):
    from napari_wbcseg.training.data import datasets

    if not os.environ.get("WBCSEG_SLOW_TESTS"):  # decoding every 2048x1536 field takes ~1 min
        fields = datasets.load_bcisc_fields
        monkeypatch.setattr(datasets, "load_bcisc_fields",
                            lambda root, **kw: fields(root, only={"neut/1-1"}, **kw))
    samples = load_data_folders([shared_data])
    counts = {}
    for s in samples:
        counts[s.source] = counts.get(s.source, 0) + 1
    assert set(counts) == {"segmentation_WBC-1", "segmentation_WBC-2", "BCISC-sub", "BCISC-field"}
    assert counts["segmentation_WBC-1"] > 200 and counts["segmentation_WBC-2"] > 50
    assert counts["BCISC-sub"] > 200
    assert all(s.scale == 1.0 for s in samples if s.source == "BCISC-field")  # native


def test_project_with_another_class_table_warns(tmp_path, smear):
    from napari_wbcseg.schema import CellClass

    classes = [CellClass(1, "blast", "#ff0000"), CellClass(2, "lymphocyte", "#ffff00"),
               CellClass(3, "monocyte", "#0000ff")]
    save_image_entry(tmp_path, "a", smear.image, smear.nucleus, smear.cytoplasm,
                     smear.cell_type, reviewed=True, classes=classes)
    with pytest.warns(UserWarning, match="1=blast differ from the model's classes"):
        load_project(tmp_path)

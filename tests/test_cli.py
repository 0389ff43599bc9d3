import subprocess
import sys

import numpy as np
import pytest

from napari_wbcseg.cli import main
from napari_wbcseg.io.imread import read_image


@pytest.fixture
def smear_bmp(tmp_path):
    """A synthetic smear saved as a BMP, the format of the segmentation_WBC images."""
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    path = tmp_path / "in" / "004.bmp"
    path.parent.mkdir()
    image = synthetic_smear(shape=(120, 120), n_wbc=1, seed=4).image
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    return path


def test_preprocess_writes_corrected_images(tmp_path, smear_bmp, capsys):
    src = smear_bmp
    assert main(["preprocess", str(src), "--out", str(tmp_path)]) == 0
    out = read_image(tmp_path / "004_ahe-retinex.png")
    from napari_wbcseg import ahe_retinex

    assert np.array_equal(out, ahe_retinex(read_image(src)))
    assert "[1/1] 004.bmp" in capsys.readouterr().out


def test_preprocess_bad_file_is_one_line_and_nonzero(tmp_path, smear_bmp, capsys):
    bad = tmp_path / "x.png"
    bad.write_text("nope")
    good = smear_bmp
    assert main(["preprocess", str(bad), str(good), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: x.png")
    assert (tmp_path / "o" / "004_ahe-retinex.png").is_file()  # the good file is still done


def test_bad_parameters_are_reported(tmp_path, capsys):
    assert main(["preprocess", "a.png", "--out", str(tmp_path), "--sigmas", "1,x"]) == 2
    assert "--sigmas" in capsys.readouterr().err
    assert main(["preprocess", "a.png", "--out", str(tmp_path), "--sigmas", "-5"]) == 2


def test_demo_headless_segments_the_synthetic_smear(tmp_path, tiny_model, capsys):
    assert main(["demo", "--headless", "--out", str(tmp_path), "--model", tiny_model,
                 "--device", "cpu"]) == 0
    assert read_image(tmp_path / "synthetic_smear.png").shape == (768, 1024, 3)
    for suffix in ("nucleus.tif", "cytoplasm.tif", "celltype.tif", "cells.csv"):
        assert (tmp_path / f"synthetic_smear_{suffix}").is_file()
    assert (tmp_path / "differential.csv").is_file()
    assert "whole-cell Dice vs the generator's ground truth" in capsys.readouterr().out


def test_console_script_runs_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "napari_wbcseg.cli", "demo", "--image",
                           str(tmp_path / "missing.png"), "--headless", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: missing.png: file not found"


def test_segment_writes_layers_tables_and_differential(tmp_path, tiny_model, capsys):
    from napari_wbcseg.core.synthetic import synthetic_smear

    img = tmp_path / "field.png"
    import cv2

    cv2.imwrite(str(img), cv2.cvtColor(synthetic_smear(shape=(128, 160), n_wbc=1).image,
                                       cv2.COLOR_RGB2BGR))
    bad = tmp_path / "bad.png"
    bad.write_text("x")
    out = tmp_path / "out"
    code = main(["segment", str(img), str(bad), "--model", tiny_model, "--out", str(out),
                 "--device", "cpu"])
    assert code == 2  # one image failed, the other is done
    for suffix in ("nucleus.tif", "cytoplasm.tif", "celltype.tif", "cells.csv"):
        assert (out / f"field_{suffix}").is_file()
    assert (out / "differential.csv").read_text().startswith("class_code,class,count,percent")
    captured = capsys.readouterr()
    assert "[1/2] field: " in captured.out and "error: bad.png" in captured.err


def test_segment_unknown_model_lists_models(tmp_path, tiny_model, capsys):
    assert main(["segment", "x.png", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert "tiny" in capsys.readouterr().err


def test_models_and_architectures(tiny_model, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "wcsegnet-compact" in out and "0.500" in out
    assert main(["architectures"]) == 0
    assert "wcsegnet" in capsys.readouterr().out


def test_evaluate_a_model_without_split_info_warns(tmp_path, tiny_model, capsys):
    """An imported model's card says nothing of its split: seed 0, and a warning."""
    import cv2

    from napari_wbcseg.core.synthetic import synthetic_smear

    folder = tmp_path / "pairs"
    folder.mkdir()
    for seed in range(5):
        sm = synthetic_smear((96, 128), n_wbc=1, seed=seed)
        mask = np.where(sm.nucleus > 0, 2, np.where(sm.cytoplasm > 0, 1, 0)).astype(np.uint8)
        cv2.imwrite(str(folder / f"s{seed}.png"), np.ascontiguousarray(sm.image[..., ::-1]))
        cv2.imwrite(str(folder / f"s{seed}_mask.png"), mask)
    assert main(["evaluate", "--model", tiny_model, "--data", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "records no training split" in captured.err and "seed 0" in captured.err
    assert "validation split (seed 0, 20%)" in captured.out

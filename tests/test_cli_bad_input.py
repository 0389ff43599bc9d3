"""Bad-input and fault corpus of the command line (issue 13): every case is exit status 2,
one line on stderr, and no user file half-written, replaced or written outside its folder.
"""
import errno
import os

import cv2
import numpy as np
import pytest

from napari_wbcseg.cli import main


def run(argv, capsys):
    """(exit status, stderr lines) of the CLI; argparse's usage errors exit via SystemExit."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip().splitlines()


def one_line(code, err, *words):
    assert code == 2, err
    assert len(err) == 1, err
    assert all(w in err[0] for w in words), err
    assert "Traceback" not in err[0]


def write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def field(tmp_path):
    from napari_wbcseg.core.synthetic import synthetic_smear

    return write_png(tmp_path / "in" / "field.png",
                     synthetic_smear(shape=(96, 128), n_wbc=1, seed=1).image)


def no_temp_files(folder):
    return not [p for p in folder.rglob(".*") if p.is_file()]


# ------------------------------------------------------------------ numbers and devices
@pytest.mark.parametrize("argv, words", [
    (["segment", "x.png", "--cell-diameter", "inf"], ["4..2000"]),
    (["segment", "x.png", "--cell-diameter", "1e308"], ["4..2000"]),
    (["segment", "x.png", "--cell-diameter", "0.001"], ["4..2000"]),
    (["segment", "x.png", "--cell-diameter", "nan"], ["4..2000"]),
    (["segment", "x.png", "--tile", "100000"], ["--tile"]),
    (["segment", "x.png", "--pixel-size", "nan"], ["--pixel-size"]),
    (["segment", "x.png", "--device", "bogus"], ["bogus", "cpu", "cuda"]),
    (["demo", "--seed", "-1"], ["--seed"]),
    (["demo", "--device", "bogus"], ["bogus", "cpu"]),
    (["demo", "--cell-diameter", "-3"], ["4..2000"]),
    (["evaluate", "--data", "d", "--device", "bogus"], ["bogus", "cpu"]),
    (["evaluate", "--data", "d", "--seed", "-1"], ["--seed"]),
    (["preprocess", "x.png", "--clip-limit", "inf"], ["--clip-limit"]),
    (["preprocess", "x.png", "--tiles", "0"], ["--tiles"]),
    (["preprocess", "x.png", "--gain", "nan"], ["--gain"]),
])
def test_out_of_range_arguments_are_one_line(tmp_path, capsys, argv, words):
    argv = argv[:1] + ["--out", str(tmp_path / "out")] + argv[1:] if argv[0] != "evaluate" \
        else argv
    code, err = run(argv, capsys)
    one_line(code, err, *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, words", [
    (["--crop", "100000"], ["crop", "2048"]),
    (["--patience", "-1"], ["patience"]),
    (["--minutes", "-1"], ["--minutes"]),
    (["--minutes", "nan"], ["--minutes"]),
    (["--lr", "nan"], ["lr"]),
    (["--lr", "inf"], ["lr"]),
    (["--epochs", "-1"], ["epochs"]),
    (["--steps", "-1"], ["steps_per_epoch"]),
    (["--batch", "-1"], ["batch_size"]),
    (["--seed", "-1"], ["seed"]),
    (["--synthetic", "-5"], ["--synthetic"]),
])
def test_train_settings_out_of_bounds_are_one_line(tmp_path, capsys, extra, words):
    code, err = run(["train", "--model", "wcsegnet-compact", "--data", str(tmp_path / "d"),
                     *extra], capsys)
    one_line(code, err, *words)


@pytest.mark.parametrize("extra", [["--seed", "-1"], ["--batch", "100000"],
                                   ["--minutes", "inf"], ["--lr", "nan"]])
def test_train_classifier_settings_out_of_bounds(tmp_path, capsys, extra):
    code, err = run(["train-classifier", "--data", str(tmp_path / "d"), *extra], capsys)
    one_line(code, err)


def test_unavailable_device_lists_the_available_ones(tmp_path, capsys, monkeypatch):
    from napari_wbcseg.inference import device

    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    for argv in (["segment", "x.png", "--out", str(tmp_path), "--device", "cuda"],
                 ["evaluate", "--data", "d", "--device", "mps"]):
        one_line(*run(argv, capsys), "available devices: cpu")


# ------------------------------------------------------------------ output faults
def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path, field, capsys):
    out = tmp_path / "taken"
    out.write_bytes(b"precious")
    for argv in (["segment", str(field)], ["preprocess", str(field)], ["demo", "--headless"]):
        one_line(*run([*argv, "--out", str(out)], capsys), "not a folder")
    assert out.read_bytes() == b"precious"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_out_folder_is_refused(tmp_path, field, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        one_line(*run(["preprocess", str(field), "--out", str(out)], capsys), "not writable")
    finally:
        out.chmod(0o755)


def test_unwritable_out_folder_is_refused_before_work(tmp_path, field, capsys, monkeypatch):
    from napari_wbcseg import cli_args

    monkeypatch.setattr(cli_args.os, "access", lambda path, mode: False)
    one_line(*run(["preprocess", str(field), "--out", str(tmp_path / "o")], capsys),
             "not writable")


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_segmenting_keeps_old_files(tmp_path, field, tiny_model, capsys,
                                                    monkeypatch):
    import tifffile

    out = tmp_path / "out"
    out.mkdir()
    old = out / "field_nucleus.tif"
    old.write_bytes(b"old labels")
    monkeypatch.setattr(tifffile, "imwrite", _full_disk)
    code, err = run(["segment", str(field), "--model", tiny_model, "--device", "cpu",
                     "--out", str(out)], capsys)
    one_line(code, err, "field_nucleus.tif", os.strerror(errno.ENOSPC))
    assert old.read_bytes() == b"old labels"
    assert no_temp_files(out) and not (out / "differential.csv").exists()


@pytest.mark.parametrize("fault", ["raises", "returns-false", "truncates-then-raises"])
def test_full_disk_while_preprocessing_keeps_the_old_png(tmp_path, field, capsys, monkeypatch,
                                                         fault):
    out = tmp_path / "out"
    old = write_png(out / "field_ahe-retinex.png", np.full((8, 8, 3), 7, np.uint8))
    before = old.read_bytes()

    def imwrite(path, img, *a):
        if fault == "returns-false":
            return False
        if fault == "truncates-then-raises":
            with open(path, "wb") as f:
                f.write(b"\x89PNG trunc")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cv2, "imwrite", imwrite)
    one_line(*run(["preprocess", str(field), "--out", str(out)], capsys),
             "field_ahe-retinex.png")
    assert old.read_bytes() == before and no_temp_files(out)


def test_full_disk_for_a_page_stack_keeps_the_old_tif(tmp_path, capsys, monkeypatch):
    import tifffile

    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), np.uint8),
                     photometric="rgb")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stack_ahe-retinex.tif").write_bytes(b"old stack")
    monkeypatch.setattr(tifffile, "imwrite", _full_disk)
    one_line(*run(["preprocess", str(src), "--out", str(out)], capsys), "stack_ahe-retinex.tif")
    assert (out / "stack_ahe-retinex.tif").read_bytes() == b"old stack" and no_temp_files(out)


def test_evaluate_csv_naming_a_folder_is_refused_before_work(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    one_line(*run(["evaluate", "--data", str(tmp_path / "missing"), "--csv", str(folder)],
                  capsys), "--csv", "folder")
    assert not list(folder.iterdir())


# ------------------------------------------------------------------ inputs
@pytest.mark.parametrize("command", ["segment", "preprocess"])
def test_inputs_with_the_same_stem_are_refused_before_work(tmp_path, capsys, command):
    image = np.full((32, 32, 3), 100, np.uint8)
    a = write_png(tmp_path / "a" / "cell.png", image)
    b = tmp_path / "b" / "Cell.bmp"
    b.parent.mkdir()
    cv2.imwrite(str(b), image)
    code, err = run([command, str(a), str(b), "--out", str(tmp_path / "out")], capsys)
    one_line(code, err, str(a), str(b), "same name")
    assert not (tmp_path / "out").exists()


def test_image_above_the_size_limit_is_refused(tmp_path, field, tiny_model, capsys,
                                              monkeypatch):
    from napari_wbcseg.inference import segment

    monkeypatch.setattr(segment, "MAX_MEGAPIXELS", 0.005)  # 96x128 = 0.012 MP
    out = tmp_path / "out"
    one_line(*run(["segment", str(field), "--model", tiny_model, "--device", "cpu",
                   "--out", str(out)], capsys), "megapixels", "crop or tile")
    assert not list(out.glob("field_*"))


def test_plane_above_the_size_limit_is_not_colour_corrected(tmp_path, field, capsys,
                                                            monkeypatch):
    from napari_wbcseg.core import batch

    monkeypatch.setattr(batch, "MAX_PLANE_MEGAPIXELS", 0.005)
    out = tmp_path / "out"
    one_line(*run(["preprocess", str(field), "--out", str(out)], capsys), "field.png",
             "megapixels", "crop or tile")
    assert not list(out.iterdir())


def test_constant_image_gives_no_cells_and_says_so(tmp_path, tiny_model, capsys):
    black = write_png(tmp_path / "black.png", np.zeros((96, 128, 3), np.uint8))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["segment", str(black), "--model", tiny_model, "--device", "cpu",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "no contrast" in captured.err and "black: 0 white cells" in captured.out
    assert len((out / "black_cells.csv").read_text().strip().splitlines()) == 1  # header


# ------------------------------------------------------------------ training inputs
@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "user-models"
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(folder))
    return folder


@pytest.mark.parametrize("name", ["../escaped", "a/b", "a\\b", ".hidden", "bad\x01name",
                                  "wcsegnet-compact", "WCSEGNET-COMPACT"])
def test_train_refuses_path_like_and_bundled_names(tmp_path, user_models, capsys, name):
    code, err = run(["train", "--model", "wcsegnet-compact", "--data", str(tmp_path / "d"),
                     "--name", name], capsys)
    one_line(code, err, "model name")
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("synthetic", ["0", "2"])
def test_train_on_empty_masks_is_refused_before_training(tmp_path, user_models, capsys,
                                                         synthetic):
    data = tmp_path / "empty"
    for i in range(4):
        write_png(data / f"f{i}.png", np.full((64, 64, 3), 120 + i, np.uint8))
        cv2.imwrite(str(data / f"f{i}_mask.png"), np.zeros((64, 64), np.uint8))
    code, err = run(["train", "--model", "wcsegnet-compact", "--data", str(data),
                     "--synthetic", synthetic, "--epochs", "1", "--steps", "1"], capsys)
    one_line(code, err, "no labelled cell", str(data))
    assert not user_models.exists() or not list(user_models.rglob("*.safetensors"))


def test_cut_short_jpeg_is_one_line_even_at_the_c_level(tmp_path, capfd):
    """libjpeg (inside OpenCV) writes its own warning to the process's stderr; the file is
    refused before OpenCV decodes it, so the user still reads one line."""
    from napari_wbcseg.core.synthetic import synthetic_smear

    image = np.tile(synthetic_smear(shape=(96, 128), n_wbc=1, seed=2).image, (4, 4, 1))
    data = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    code = main(["segment", str(tmp_path / "cut.jpg"), "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert code == 2 and "truncated" in err and len(err.strip().splitlines()) == 1, err

"""Test-time mirror augmentation: the mean over the four mirror images, mirrored back."""
import numpy as np
import pytest

from napari_wbcseg.inference.predictor import load_model
from napari_wbcseg.inference.segment import SegmentParams, segment


@pytest.fixture
def calls(monkeypatch):
    """The ``tta`` flag of every network run, in order."""
    from napari_wbcseg.inference.predictor import LoadedModel

    seen = []
    real = LoadedModel._forward
    monkeypatch.setattr(LoadedModel, "_forward",
                        lambda self, b: seen.append(self.tta) or real(self, b))
    return seen


@pytest.fixture
def batch():
    return np.random.default_rng(0).uniform(0, 255, (2, 3, 64, 96)).astype(np.float32)


def test_tta_is_the_mean_of_the_mirrored_predictions(tiny_model, batch):
    plain, tta = load_model(tiny_model, "cpu"), load_model(tiny_model, "cpu", tta=True)
    assert not plain.tta and tta.tta and tta.module is plain.module  # one cached network
    views = [plain(batch),
             plain(batch[..., ::-1])[..., ::-1],
             plain(batch[:, :, ::-1])[:, :, ::-1],
             plain(batch[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]]
    got = tta(batch)
    assert got.shape == views[0].shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, np.mean(views, axis=0), atol=1e-5)
    # a random network is not mirror-symmetric, so the average is not the plain output
    assert np.abs(got - views[0]).max() > 1e-3


def test_tta_output_of_a_mirrored_input_is_the_mirrored_output(tiny_model, batch):
    tta = load_model(tiny_model, "cpu", tta=True)
    np.testing.assert_allclose(tta(batch[..., ::-1])[..., ::-1], tta(batch), atol=1e-5)


def test_segment_with_tta_runs_the_network_on_four_views_of_each_tile(tiny_model, calls):
    from napari_wbcseg.core.synthetic import synthetic_smear
    from napari_wbcseg.schema import check_labels

    image = synthetic_smear(shape=(192, 256), n_wbc=2, seed=3).image
    kw = dict(model=tiny_model, device="cpu", tile=128, overlap=32, cell_diameter=None)
    segment(image, **kw)
    n_plain = len(calls)
    r = segment(image, tta=True, **kw)
    check_labels(r.nucleus, r.cytoplasm, r.cell_type)
    assert n_plain > 1 and calls[:n_plain] == [False] * n_plain
    assert calls[n_plain:] == [True] * (4 * n_plain)


def test_tta_must_be_a_boolean():
    with pytest.raises(ValueError, match="tta must be True or False"):
        SegmentParams(tta="yes")


def test_tta_changes_the_batch_checksum_only_when_on(tiny_model):
    from napari_wbcseg.batching.model_key import model_checksum

    plain = model_checksum(SegmentParams(model=tiny_model, classifier="none"))
    again = model_checksum(SegmentParams(model=tiny_model, classifier="none", tta=False))
    mirrored = model_checksum(SegmentParams(model=tiny_model, classifier="none", tta=True))
    assert plain[0] == again[0] != mirrored[0]
    assert "tta" not in plain[1]["settings"] and mirrored[1]["settings"]["tta"] is True


def test_cli_segment_and_evaluate_take_tta(tiny_model, tmp_path, calls, capsys):
    import cv2

    from napari_wbcseg.cli import main
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(96, 128), n_wbc=1, seed=0)
    img = tmp_path / "s0.png"
    cv2.imwrite(str(img), np.ascontiguousarray(sm.image[..., ::-1]))
    assert main(["segment", str(img), "--model", tiny_model, "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--tta"]) == 0
    assert calls and set(calls) == {True} and len(calls) % 4 == 0
    mask = np.where(sm.nucleus > 0, 2, np.where(sm.cytoplasm > 0, 1, 0)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "s0_mask.png"), mask)
    capsys.readouterr()
    assert main(["evaluate", "--model", tiny_model, "--data", str(tmp_path), "--split", "all",
                 "--device", "cpu", "--tta"]) == 0
    assert "test-time mirror augmentation (--tta)" in capsys.readouterr().out

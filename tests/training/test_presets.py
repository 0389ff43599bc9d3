"""Named recipes: the papers' numbers, valid for every architecture; encoder freezing."""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg.models import list_architectures
from napari_wbcseg.training.data.augment import augment
from napari_wbcseg.training.engine.loop import TrainConfig
from napari_wbcseg.training.engine.presets import PRESETS, check_config, describe, family_of, preset


@pytest.mark.parametrize("arch", list_architectures())
@pytest.mark.parametrize("name", PRESETS)
def test_every_architecture_has_every_preset(arch, name):
    from test_augment import coded_sample

    config = TrainConfig.from_dict(preset(name, arch))
    check_config(config)
    assert config.architecture == arch and config.patience == 10
    a = augment(coded_sample(64, 64), np.random.default_rng(0), **config.augment)
    assert a.shape == (64, 64)
    assert "\n" not in describe(config, preset_name=name)


@pytest.mark.parametrize("arch, expected", [
    ("wcsegnet", dict(optimizer="adam", lr=1e-4, batch_size=16, crop=128, imagenet=False)),
    ("wcsegnet-compact", dict(optimizer="adam", lr=1e-4, batch_size=16)),
    ("wbc-net", dict(optimizer="adam", batch_size=8)),
    ("cbam-unet-vgg16", dict(optimizer="adam", lr=1e-4, batch_size=2, epochs=100, imagenet=True,
                             freeze_encoder_fraction=0.5, preprocess="ahe-retinex",
                             mosaic_fraction=1.0, mosaic_grids=(2,))),
    ("leukocytemask", dict(optimizer="sgd", momentum=0.9, lr=1e-3, weight_decay=2e-4,
                           batch_size=2)),
    ("unet-resnet50", dict(optimizer="adam", lr=1e-3, imagenet=True,
                           freeze_encoder_fraction=1.0, crop=256)),
    ("unet-mobilenet", dict(optimizer="adam", lr=1e-3)),
])
def test_paper_numbers(arch, expected):
    p = preset("paper", arch)
    assert {k: p[k] for k in expected} == expected
    assert p["patience"] == 10 and p["steps_per_epoch"] == 0  # early stopping, full passes


def test_paper_augmentations():
    aug = {fam: preset("paper", arch)["augment"] for fam, arch in
           [("wcs", "wcsegnet"), ("wbc", "wbc-net"), ("zhu", "cbam-unet-vgg16"),
            ("fan", "leukocytemask"), ("unet", "unet-vgg16")]}
    assert aug["wcs"]["rotate"] == 40 and aug["wcs"]["shift"] == 0.2
    assert aug["wcs"]["zoom"] == (0.8, 1.2) and aug["wcs"]["flips"] == "h"
    assert 0 < aug["wcs"]["shear"] < 0.01  # Keras shear_range=0.2 is in degrees
    assert aug["wbc"]["flips"] == "h" and aug["wbc"]["rotate"] is True and aug["wbc"]["zoom"]
    assert not any(v for k, v in aug["zhu"].items())  # Zhu et al.: AHE-Retinex + mosaics only
    fan = aug["fan"]
    assert fan["flips"] == "hv" and fan["rotate"] is True and fan["elastic"]
    assert fan["blur"] > 0 and fan["gamma"] and not fan["brightness"]
    assert aug["unet"]["brightness"] > 0 and aug["unet"]["zoom"] and aug["unet"]["flips"] == "hv"
    for a in aug.values():  # nothing a paper does not name
        assert not (a["hue"] or a["saturation"] or a["noise"] or a["contrast"])


def test_fast_preset_is_the_cpu_schedule():
    p = preset("fast", "wcsegnet-compact")
    assert (p["optimizer"], p["schedule"], p["lr"], p["batch_size"], p["crop"],
            p["epochs"], p["steps_per_epoch"]) == ("adamw", "onecycle", 2e-3, 8, 192, 30, 60)


def test_unknown_names():
    with pytest.raises(ValueError, match="presets are"):
        preset("slow", "wcsegnet")
    with pytest.raises(ValueError):
        preset("paper", "no-such-net")
    assert family_of("unet-resnet152") == "unet"
    assert family_of("leukocytemask-compact") == "leukocytemask"


def test_generic_encoder_freezing_of_smp_unets():
    torch = pytest.importorskip("torch")
    from napari_wbcseg.models import create_model
    from napari_wbcseg.training.engine.optim import can_freeze, set_encoder_frozen

    model = create_model("unet-resnet18")
    assert can_freeze(model)
    model.train()
    set_encoder_frozen(model, True)
    enc = model.net.encoder
    assert not any(p.requires_grad for p in enc.parameters())
    assert all(p.requires_grad for p in model.net.decoder.parameters())
    assert not any(m.training for m in enc.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    model.train()
    set_encoder_frozen(model, False)
    assert all(p.requires_grad for p in enc.parameters())
    assert all(m.training for m in enc.modules())


def _tiny_run(config, **kw):
    from test_loop import TRAIN, VAL

    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.training.engine.loop import train_steps

    events = []
    return run_to_end(train_steps(TRAIN, VAL, config, **kw), events.append), events


def test_encoder_frozen_first_only_when_pretrained(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    from napari_wbcseg.models import create_model
    from napari_wbcseg.training.engine import loop

    base = dict(architecture="cbam-unet-vgg16-compact", epochs=4, steps_per_epoch=1,
                batch_size=2, crop=48, lr=1e-2, threads=1, freeze_encoder_fraction=0.5,
                patience=1, schedule="constant")
    torch.manual_seed(1)
    start = create_model("cbam-unet-vgg16-compact").state_dict()
    enc = [k for k in start if k.startswith("encoder.") and start[k].is_floating_point()]
    seen = []
    real = loop.batch_loss

    def spy(model, batch, **kw):
        seen.append({k: model.state_dict()[k].clone() for k in enc})
        return real(model, batch, **kw)

    monkeypatch.setattr(loop, "batch_loss", spy)
    # a constant validation score: no improvement after epoch 1
    monkeypatch.setattr(loop, "_score", lambda summary, with_classes=True: 0.5)
    result, events = _tiny_run(TrainConfig(**base), initial_state=start, checkpoint_dir=tmp_path)
    # epochs 1-2 frozen (encoder unchanged), early stopping waits for the thawed half and
    # gives it the full patience: epoch 3 thaws, epoch 4 would be the second without gain
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.stopped == "early-stopping"
    assert all(torch.equal(seen[2][k], start[k]) for k in enc)  # start of epoch 3: unchanged
    final = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert not all(torch.equal(final[k], start[k]) for k in enc)  # thawed in epoch 3
    # a random encoder is never frozen (and says so)
    seen.clear()
    result, events = _tiny_run(TrainConfig(**{**base, "patience": 10, "epochs": 1,
                                              "steps_per_epoch": 2}))
    assert any("not frozen" in getattr(e, "message", "") for e in events)
    assert not all(torch.equal(seen[1][k], seen[0][k]) for k in enc)

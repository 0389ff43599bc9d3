"""The optimiser of a run: its class and hyper-parameters, from each setting and preset."""
import math

import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg.training.engine.loop import TrainConfig  # noqa: E402
from napari_wbcseg.training.engine.optim import OPTIMIZERS, make_optimizer  # noqa: E402
from napari_wbcseg.training.engine.presets import preset  # noqa: E402


def _optimizer(config):
    return make_optimizer(torch.nn.Linear(3, 2), config)


def _group(opt):
    (group,) = opt.param_groups
    return group


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW),
                                       ("adam", torch.optim.Adam),
                                       ("sgd", torch.optim.SGD)])
def test_each_setting_gives_its_own_class(name, cls):
    config = TrainConfig(optimizer=name, lr=0.0125, weight_decay=0.003, momentum=0.7)
    opt = _optimizer(config)
    assert type(opt) is cls  # exact: AdamW subclasses Adam in recent torch
    g = _group(opt)
    assert g["lr"] == 0.0125 and g["weight_decay"] == 0.003
    if name == "sgd":
        assert g["momentum"] == 0.7 and g["nesterov"] is False
    else:
        assert "momentum" not in g
    if name == "adam":  # an L2 penalty in the gradient, not AdamW's decoupled decay
        assert not g.get("decoupled_weight_decay", False)


def test_every_listed_optimizer_is_covered_and_others_refused():
    assert set(OPTIMIZERS) == {"adamw", "adam", "sgd"}
    with pytest.raises(ValueError, match="optimizer must be one of"):
        _optimizer(TrainConfig(optimizer="rmsprop"))


@pytest.mark.parametrize("name, arch, cls, lr, weight_decay, momentum", [
    ("fast", "wcsegnet-compact", torch.optim.AdamW, 2e-3, 1e-4, None),
    ("fast", "leukocytemask-compact", torch.optim.AdamW, 2e-3, 1e-4, None),
    ("paper", "wcsegnet", torch.optim.Adam, 1e-4, 0.0, None),
    ("paper", "wbc-net-compact", torch.optim.Adam, 1e-3, 0.0, None),
    ("paper", "cbam-unet-vgg16", torch.optim.Adam, 1e-4, 0.0, None),
    ("paper", "leukocytemask", torch.optim.SGD, 1e-3, 2e-4, 0.9),  # Fan et al. Sec. 3.3
    ("paper", "unet-resnet18", torch.optim.Adam, 1e-3, 0.0, None),
])
def test_presets_build_the_papers_optimisers(name, arch, cls, lr, weight_decay, momentum):
    opt = _optimizer(TrainConfig.from_dict(preset(name, arch)))
    assert type(opt) is cls
    g = _group(opt)
    assert g["lr"] == pytest.approx(lr, rel=1e-12)
    assert g["weight_decay"] == pytest.approx(weight_decay, abs=1e-15)
    if momentum is not None:
        assert g["momentum"] == momentum


@pytest.mark.parametrize("total", [2, 3, 5, 9, 10, 11, 19, 20, 21, 100])
def test_onecycle_schedule_runs_for_any_short_run(total):
    """2 epochs x 5 batches (the Train dock allows it) divided by zero inside torch's
    OneCycleLR when the warm-up was exactly one step; every length must run to its end."""
    import torch

    from napari_wbcseg.training.engine.loop import TrainConfig
    from napari_wbcseg.training.engine.optim import make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, TrainConfig(architecture="wbc-net-compact", lr=1e-3,
                                            schedule="onecycle"), 1, total)
    lrs = []
    for _ in range(total - 1):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert all(map(math.isfinite, lrs)) and max(lrs) <= 1e-3 * (1 + 1e-6)

"""BatchNorm folding for prediction: every norm of the EfficientNet-Lite networks goes,
and the outputs stay those of the unfolded network."""
import copy

import pytest
import torch
from torch import nn

from napari_wbcseg.models import create_model
from napari_wbcseg.models.cell_classifier import create_classifier
from napari_wbcseg.models.fold_bn import fold_batchnorm


def _as_trained(model):
    gen = torch.Generator().manual_seed(3)
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model.eval()


def _norms(model):
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("build, shape", [
    (lambda: create_model("wbcseg-lite0"), (1, 3, 96, 64)),
    (lambda: create_classifier("cell-classifier-lite0", crop_size=64), (3, 5, 64, 64)),
])
def test_every_norm_folded_and_outputs_kept(build, shape):
    model = _as_trained(build())
    folded = copy.deepcopy(model)
    n = fold_batchnorm(folded)
    assert n == _norms(model) > 40 and _norms(folded) == 0
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model(x), folded(x)
    pairs = [(a[k], b[k]) for k in a] if isinstance(a, dict) else [(a, b)]
    for u, v in pairs:
        torch.testing.assert_close(u, v, atol=2e-4, rtol=1e-3)


def test_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(create_classifier("cell-classifier-lite0", crop_size=64).train())

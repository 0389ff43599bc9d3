"""Loaded networks as plain predictor callables, cached per (model, device).

The cache is what keeps a second click on Segment instant: a model is read from
its safe weight file once per device, never rebuilt per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..io.model_store import ModelEntry, find_model

# test-time augmentation: the input as it is and mirrored left-right, top-bottom and both
# (numpy axes of an (N, C, h, w) batch); 4 flips beat 2 on the inner selection split
TTA_FLIPS = ((), (3,), (2,), (2, 3))


class ModelLoadError(ValueError):
    """A model file that is corrupt, of an unknown architecture, or unusable here."""


class ModelOutputError(ValueError):
    """A network whose outputs are not finite (NaN/inf): broken weights, never 0 cells."""


@dataclass
class LoadedModel:
    entry: ModelEntry
    device: str
    module: object  # the torch module, in eval mode on ``device``
    num_classes: int
    size_multiple: int
    # average the probabilities over TTA_FLIPS (mirrored back): ~4x the network's time
    tta: bool = False

    @property
    def card(self) -> dict:
        return self.entry.card

    @property
    def native_cell_diameter(self) -> float:
        return float(self.card.get("native_cell_diameter_px", 80.0))

    @property
    def class_codes(self) -> tuple[int, ...]:
        classes = self.card.get("classes")
        if classes:
            return tuple(int(c["code"]) for c in classes)[: self.num_classes]
        return tuple(range(1, self.num_classes + 1))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 in 0..255 -> (N, 3 + K, h, w) probabilities.

        With ``tta`` the mean over the four mirror images of the batch, each mirrored back.
        Raises :class:`ModelOutputError` when the network's output is NaN/inf.
        """
        if not self.tta:
            return self._forward(batch)
        total = None
        for axes in TTA_FLIPS:
            probs = self._forward(np.flip(batch, axes) if axes else batch)
            probs = np.flip(probs, axes) if axes else probs
            total = probs if total is None else total + probs
        return np.ascontiguousarray(total / len(TTA_FLIPS))

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32) / 255.0)
        out = self.module.predict(x.to(self.device))
        probs = torch.cat([out["semantic"], out["cell_type"]], dim=1).float()
        # probabilities are in [0, 1], so their sum is finite exactly when all of them are
        # (a full isfinite pass cost ~10 ms a window)
        if not bool(torch.isfinite(probs.sum())):
            raise ModelOutputError(f"the model produced NaN/inf probabilities (model "
                                   f"{self.entry.name}): its weights are broken; retrain or "
                                   "use another model")
        return probs.cpu().numpy()


def load_model(name=None, device: str = "cpu", tta: bool = False) -> LoadedModel:
    """Load a model by name or weight-file path on a resolved device (module cached);
    ``tta`` averages each prediction over the input's four mirror images.

    Raises :class:`~napari_wbcseg.io.model_store.ModelNotFoundError` for an unknown name
    and :class:`ModelLoadError` for a corrupt file or one with NaN/inf weights.
    """
    entry = find_model(name)
    module = _module_cached(str(entry.weights), device)
    return LoadedModel(entry, device, module, int(module.num_classes), int(module.size_multiple),
                       tta=bool(tta))


@lru_cache(maxsize=8)
def _module_cached(weights: str, device: str):
    from ..models.weights import build_from_file

    try:
        module = build_from_file(weights)
    except (KeyError, ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot load model {weights}: {exc}") from None
    import torch

    bad = [k for k, v in module.state_dict().items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelLoadError(f"cannot load model {weights}: NaN/inf in its weights "
                             f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})")
    from .precision import resolve_precision

    module = module.inference_copy().to(device).eval()  # BatchNorm folded: ~10% faster
    module.precision = resolve_precision("auto", device, module.architecture)
    if device == "cpu":
        module = module.to(memory_format=torch.channels_last)
    return module


def clear_cache() -> None:
    _module_cached.cache_clear()

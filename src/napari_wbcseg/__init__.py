"""napari-wbcseg: white blood cell segmentation and classification for napari.

Light on purpose: importing this package never imports torch or Qt.
"""
from __future__ import annotations

__version__ = "0.4.0"

__all__ = ["__version__", "ahe_retinex", "batch", "clahe", "list_models", "msrcr", "segment",
           "synthetic_smear"]


def __getattr__(name):  # lazy re-exports keep ``import napari_wbcseg`` cheap
    if name in ("ahe_retinex", "clahe", "msrcr"):
        from .core import preprocessing

        return getattr(preprocessing, name)
    if name == "batch":
        from .batching.run import batch

        return batch
    if name == "segment":
        from .inference.segment import segment

        return segment
    if name == "list_models":
        from .io.model_store import list_models

        return list_models
    if name == "synthetic_smear":
        from .core.synthetic import synthetic_smear

        return synthetic_smear
    raise AttributeError(f"module 'napari_wbcseg' has no attribute {name!r}")

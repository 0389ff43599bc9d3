"""Names of user models: one file name in the model folder, never a bundled model's.

A name is what ``train --name`` and the Train dock save under (``NAME.safetensors`` and
``NAME.json`` in :func:`~napari_wbcseg.io.model_store.user_dir`).  A path-like name
(``../x``, ``a/b``, ``.hidden``, control characters) would write outside that folder,
and a bundled model's name would save a user model that the bundled one then hides.
"""
from __future__ import annotations

__all__ = ["check_model_name", "has_labelled_cell"]


def check_model_name(name, *, install: bool = True) -> str:
    """``name`` if it can name a new user model; ``ValueError`` (one line) otherwise.

    The rule is the Train dock's (:func:`~napari_wbcseg.io.model_exchange.check_name`); an
    existing user model of that name may be replaced, as ``train`` always did.  With
    ``install=False`` (``train --no-install --out DIR``) only the file-name rule applies:
    nothing is saved where a bundled model could hide it."""
    from ...io.model_exchange import check_name

    return check_name(name, overwrite=True, existing=install)


def has_labelled_cell(samples) -> bool:
    """True when at least one sample marks a cell pixel (cytoplasm, nucleus or cell; the
    ignored code 255 is no label)."""
    from ..data.sample import CELL, CYTOPLASM

    return any(bool(((s.semantic >= CYTOPLASM) & (s.semantic <= CELL)).any()) for s in samples)

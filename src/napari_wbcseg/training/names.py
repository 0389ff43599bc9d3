"""Names of user models: one file name in the model folder, never a bundled model's.

A name is what ``train --name`` and the Train dock save under (``NAME.safetensors`` and
``NAME.json`` in :func:`~napari_wbcseg.io.model_store.user_dir`).  A path-like name
(``../x``, ``a/b``, ``.hidden``, control characters) would write outside that folder,
and a bundled model's name would save a user model that the bundled one then hides.
"""
from __future__ import annotations

import re

__all__ = ["check_model_name", "has_labelled_cell"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def check_model_name(name) -> str:
    """``name`` if it can name a new user model; ``ValueError`` (one line) otherwise."""
    from ..io.model_store import bundled_dir

    text = str(name)
    if not _NAME.fullmatch(text) or ".." in text:
        raise ValueError(f"model name {text!r}: use letters, digits, '.', '_', '+' or '-' "
                         "(no path, not starting with '.'), at most 100 characters")
    bundled = {p.stem.casefold() for p in bundled_dir().glob("*.json")}
    if text.casefold() in bundled:
        raise ValueError(f"model name {text!r} is a bundled model's, which would hide the "
                         "new one; choose another --name")
    return text


def has_labelled_cell(samples) -> bool:
    """True when at least one sample marks a cell pixel (cytoplasm, nucleus or cell; the
    ignored code 255 is no label)."""
    from .sample import CELL, CYTOPLASM

    return any(bool(((s.semantic >= CYTOPLASM) & (s.semantic <= CELL)).any()) for s in samples)

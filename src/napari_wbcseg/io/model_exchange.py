"""Sharing user models: export to and import from a ``.safetensors`` file + JSON card.

An imported file is read with the safe loader and rebuilt through the registry before it
is copied (never unpickled, never executed).  Every file is written atomically
(:mod:`.atomic`), the card last (a model is listed once its card exists), so a full disk
never leaves a half-written model in the list.  The card gets the checks of
:mod:`.model_card`.
torch is imported only when a file is checked.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from .atomic import atomic_path, write_text_atomic
from .model_card import ModelCardError, check_card_matches_weights, read_model_card

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")


class ModelFileError(ValueError):
    """A model that cannot be saved, exported or imported; one-line message."""


def check_name(name: str, *, overwrite: bool = False, existing: bool = True) -> str:
    """``name`` if it can be a new user model (``ModelFileError`` saying why not).

    ``existing=False`` checks only the file-name rule, not the installed models."""
    from .model_store import model_entries

    name = str(name).strip()
    if not _NAME.fullmatch(name):  # fullmatch: '$' alone lets a trailing newline through
        raise ModelFileError(f"model name {name!r}: use 1-80 letters, digits, '.', '_', '+' "
                             "or '-', starting with a letter or digit")
    if not existing:
        return name
    # case-blind: on macOS and Windows disks 'A' and 'a' are one file
    same = [e for key, e in model_entries().items() if key.casefold() == name.casefold()]
    for entry in same:
        if entry.origin != "user" or not overwrite:
            raise ModelFileError(f"model name {name!r}: a {entry.origin} model called "
                                 f"{entry.name!r} exists; choose another name")
    return name


def _publish(staging: Path, name: str, folder: Path) -> None:
    """Move weights, then card, into ``folder`` (the card makes the model visible)."""
    weights, card = folder / f"{name}.safetensors", folder / f"{name}.json"
    os.replace(staging / weights.name, weights)
    try:
        os.replace(staging / card.name, card)
    except OSError:
        if not card.exists():
            weights.unlink(missing_ok=True)
        raise


def _models_changed() -> None:
    from ..inference.predictor import clear_cache

    clear_cache()  # a model saved again under its name must not be served from the cache


def export_model(name: str, dest) -> Path:
    """Copy model ``name`` (weights + card) to ``dest`` (a ``.safetensors`` path or folder)."""
    from .model_store import ModelNotFoundError, find_model

    try:
        entry = find_model(name)
    except ModelNotFoundError as exc:
        raise ModelFileError(str(exc)) from None
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{entry.name}.safetensors"
    elif dest.suffix != ".safetensors":
        dest = dest.with_name(dest.name + ".safetensors")
    card = dict(entry.card, name=dest.stem)
    card["weights"] = dict(card.get("weights") or {}, file=dest.name)
    try:
        with atomic_path(dest) as tmp:
            shutil.copyfile(entry.weights, tmp)
        write_text_atomic(dest.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    except OSError as exc:
        raise ModelFileError(f"could not export {name!r} to {dest}: {exc.strerror or exc}")
    return dest


def read_model_file(path) -> dict:
    """The card of the model file ``path`` after checking it safely (``ModelFileError``).

    The weights are read with the safe loader and rebuilt through the registry; the card
    beside them (``<stem>.json``, optional) must be well-formed and name the same
    architecture and settings and, when it records one, the file's checksum
    (:func:`.model_card.check_card_matches_weights`, also run for ``segment --model FILE``).
    """
    from ..models.weights import build_from_file

    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (.safetensors)")
    try:
        model = build_from_file(path)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path.name} is not a usable napari-wbcseg model: {exc}") from None
    meta = model.weights_metadata
    card_path = path.with_suffix(".json")
    try:
        card = read_model_card(card_path) if card_path.is_file() else None
        check_card_matches_weights(card or {}, path, card_path.name)
    except ModelCardError as exc:
        raise ModelFileError(str(exc)) from None
    if card is None:
        card = {"notes": f"imported without a model card on {time.strftime('%Y-%m-%d')}"}
    card.update(architecture=meta["architecture"], config=meta.get("config", {}))
    card.setdefault("native_cell_diameter_px", 80.0)
    return card


def import_model(path, *, name: str | None = None, folder=None) -> str:
    """Validate the model file ``path`` and copy it into the user models; returns its name
    (the file's name, with ``-2``, ``-3`` ... added if that name is taken)."""
    from .fetch import sha256_of
    from .model_store import model_entries, user_dir

    card = read_model_file(path)
    path = Path(path).with_suffix(".safetensors")
    base = re.sub(r"[^A-Za-z0-9._+-]+", "-", name or path.stem).strip(".-_") or "imported"
    taken, new, k = set(model_entries()), base, 2
    while new in taken:
        new, k = f"{base}-{k}", k + 1
    folder = Path(folder) if folder is not None else user_dir()
    card["name"] = new
    weights, card_path = folder / f"{new}.safetensors", folder / f"{new}.json"
    try:
        with atomic_path(weights) as tmp:
            shutil.copyfile(path, tmp)
            card["weights"] = dict(card.get("weights") or {}, file=weights.name,
                                   sha256=sha256_of(Path(tmp)), format="safetensors")
        try:  # the card last: it makes the model visible
            write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
        except OSError:
            weights.unlink(missing_ok=True)  # ``new`` was a free name: nothing else was there
            raise
    except OSError as exc:
        raise ModelFileError(f"could not import {path.name} into {folder}: "
                             f"{exc.strerror or exc}; nothing was added to the model list")
    _models_changed()
    return new


__all__ = ["ModelFileError", "check_name", "export_model", "import_model", "read_model_file"]

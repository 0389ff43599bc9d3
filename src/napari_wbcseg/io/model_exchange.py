"""Sharing user models: export to and import from a ``.safetensors`` file + JSON card.

An imported file is read with the safe loader and rebuilt through the registry before it
is copied (never unpickled, never executed).  Writes go through a hidden staging folder
beside the user models and are moved into place, the card last (a model is listed once
its card exists), so a full disk never leaves a half-written model in the list.
torch is imported only when a file is checked.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")


class ModelFileError(ValueError):
    """A model that cannot be saved, exported or imported; one-line message."""


def check_name(name: str, *, overwrite: bool = False) -> str:
    """``name`` if it can be a new user model (``ModelFileError`` saying why not)."""
    from .model_store import model_entries

    name = str(name).strip()
    if not _NAME.match(name):
        raise ModelFileError(f"model name {name!r}: use 1-80 letters, digits, '.', '_', '+' "
                             "or '-', starting with a letter or digit")
    entry = model_entries().get(name)
    if entry is not None and (entry.origin != "user" or not overwrite):
        raise ModelFileError(f"a {entry.origin} model called {name!r} exists; choose another "
                             "name")
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
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".export-", dir=dest.parent) as staging:
            shutil.copyfile(entry.weights, Path(staging) / dest.name)
            (Path(staging) / f"{dest.stem}.json").write_text(json.dumps(card, indent=2) + "\n",
                                                             encoding="utf-8")
            os.replace(Path(staging) / dest.name, dest)
            os.replace(Path(staging) / f"{dest.stem}.json", dest.with_suffix(".json"))
    except OSError as exc:
        raise ModelFileError(f"could not export {name!r} to {dest}: {exc.strerror or exc}")
    return dest


def read_model_file(path) -> dict:
    """The card of the model file ``path`` after checking it safely (``ModelFileError``).

    The weights are read with the safe loader and rebuilt through the registry; the card
    beside them (``<stem>.json``, optional) must name the same architecture and, when it
    records one, the file's checksum.
    """
    from .fetch import sha256_of
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
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ModelFileError(f"{card_path.name} is not a readable model card: {exc}") from None
        if not isinstance(card, dict):
            raise ModelFileError(f"{card_path.name} is not a model card (not a JSON object)")
        if card.get("architecture", meta["architecture"]) != meta["architecture"]:
            raise ModelFileError(f"{card_path.name} describes a {card.get('architecture')!r}, "
                                 f"but {path.name} holds a {meta['architecture']!r}")
        sha = (card.get("weights") or {}).get("sha256")
        if sha and sha != sha256_of(path):
            raise ModelFileError(f"{card_path.name} belongs to another weight file (checksum "
                                 f"differs from {path.name})")
    else:
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".import-{new}-", dir=folder) as staging:
            shutil.copyfile(path, Path(staging) / f"{new}.safetensors")
            card["weights"] = dict(card.get("weights") or {}, file=f"{new}.safetensors",
                                   sha256=sha256_of(Path(staging) / f"{new}.safetensors"),
                                   format="safetensors")
            (Path(staging) / f"{new}.json").write_text(json.dumps(card, indent=2) + "\n",
                                                       encoding="utf-8")
            _publish(Path(staging), new, folder)
    except OSError as exc:
        raise ModelFileError(f"could not import {path.name} into {folder}: "
                             f"{exc.strerror or exc}; nothing was added to the model list")
    _models_changed()
    return new


__all__ = ["ModelFileError", "check_name", "export_model", "import_model", "read_model_file"]

"""Where models live and what their cards say (no torch here).

A model is two files side by side: ``<name>.safetensors`` (weights, never
unpickled) and ``<name>.json`` (the model card).  Bundled models ship inside the
package (``napari_wbcseg/weights``); user models live in the user's data folder
(``$XDG_DATA_HOME/napari-wbcseg/models`` on Linux).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .model_card import (ModelCardError, WeightsHeaderError, check_card_matches_weights,
                         read_model_card)

WEIGHT_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"
DEFAULT_MODEL = "wbcseg-lite0"


class ModelNotFoundError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it one readable line
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    name: str
    weights: Path
    card: dict
    origin: str  # "bundled" or "user"

    @property
    def architecture(self) -> str:
        return self.card.get("architecture", "?")


def bundled_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "weights"


def user_dir() -> Path:
    env = os.environ.get("NAPARI_WBCSEG_MODELS")
    if env:
        return Path(env)
    import platformdirs  # honours XDG_DATA_HOME

    return Path(platformdirs.user_data_dir("napari-wbcseg")) / "models"


def _entries(folder: Path, origin: str) -> dict[str, ModelEntry]:
    found = {}
    if not folder.is_dir():
        return found
    for card_path in sorted(folder.glob(f"*{CARD_SUFFIX}")):
        weights = card_path.with_suffix(WEIGHT_SUFFIX)
        if not weights.is_file():
            continue
        try:
            card = read_model_card(card_path)
        except ValueError:
            continue  # a broken or malformed card: the model is not offered
        found[card_path.stem] = ModelEntry(card_path.stem, weights, card, origin)
    return found


def model_entries() -> dict[str, ModelEntry]:
    """All models with weights: bundled first, then user models (a user model may shadow none)."""
    entries = _entries(bundled_dir(), "bundled")
    for name, entry in _entries(user_dir(), "user").items():
        entries.setdefault(name, entry)
    return entries


def list_models() -> list[str]:
    return list(model_entries())


def find_model(name: str | os.PathLike | None) -> ModelEntry:
    """A model by registered name, or by the path of a ``.safetensors`` file with its card.

    A file's card (``<stem>.json``, optional) gets the checks ``import_model`` makes: its
    fields are well-formed and it names the architecture, settings and (when recorded)
    checksum of the weights beside it.  Raises :class:`ModelNotFoundError` saying why not.
    """
    if name is None:
        name = DEFAULT_MODEL
    path = Path(name)
    if path.suffix == WEIGHT_SUFFIX or path.is_file():
        card_path = path.with_suffix(CARD_SUFFIX)
        if not path.is_file():
            raise ModelNotFoundError(f"model file {path} not found")
        card = {}
        try:
            if card_path.is_file():
                card = read_model_card(card_path)
                check_card_matches_weights(card, path, card_path.name)
        except WeightsHeaderError:
            pass  # a broken weight file: loading it says why (ModelLoadError)
        except ModelCardError as exc:
            raise ModelNotFoundError(str(exc)) from None
        return ModelEntry(path.stem, path, card, "file")
    entries = model_entries()
    if str(name) not in entries:
        known = ", ".join(entries) or "none"
        raise ModelNotFoundError(f"unknown model {str(name)!r}; models with weights: {known}")
    return entries[str(name)]


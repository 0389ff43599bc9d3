"""Where per-cell classifiers live and which one serves a class table (no torch here).

A classifier is ``<name>.safetensors`` + ``<name>.json`` (its card, ``"kind":
"cell-classifier"``) in ``napari_wbcseg/weights/classifiers`` (bundled) or
``<user models>/classifiers``.  :func:`classifier_for` picks the one for a segmentation
model's class table: the newest user classifier with exactly that table, else the
bundled one.
"""
from __future__ import annotations

import json
from pathlib import Path

from .model_store import CARD_SUFFIX, WEIGHT_SUFFIX, ModelEntry, ModelNotFoundError, bundled_dir, user_dir

__all__ = ["bundled_classifier_dir", "classifier_entries", "classifier_for", "find_classifier",
           "same_classes", "user_classifier_dir"]

KIND = "cell-classifier"


def bundled_classifier_dir() -> Path:
    return bundled_dir() / "classifiers"


def user_classifier_dir() -> Path:
    return user_dir() / "classifiers"


def _entries(folder: Path, origin: str) -> list[ModelEntry]:
    found = []
    if not folder.is_dir():
        return found
    for card_path in sorted(folder.glob(f"*{CARD_SUFFIX}")):
        weights = card_path.with_suffix(WEIGHT_SUFFIX)
        if not weights.is_file() or weights.resolve().parent != folder.resolve():
            continue  # a link out of the folder is not followed
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("kind") == KIND:
            found.append(ModelEntry(card_path.stem, weights, card, origin))
    return found


def classifier_entries() -> list[ModelEntry]:
    """User classifiers (newest first), then the bundled ones."""
    user = sorted(_entries(user_classifier_dir(), "user"),
                  key=lambda e: e.weights.stat().st_mtime, reverse=True)
    return user + _entries(bundled_classifier_dir(), "bundled")


def _table(classes) -> tuple:
    return tuple((int(c["code"]), str(c["name"])) for c in classes or ())


def same_classes(a, b) -> bool:
    """Two class tables (lists of ``{"code", "name", ...}``) name the same classes."""
    return bool(a) and sorted(_table(a)) == sorted(_table(b))


def classifier_for(classes) -> ModelEntry | None:
    """The classifier that serves this class table, or None."""
    for entry in classifier_entries():
        if same_classes(entry.card.get("classes"), classes):
            return entry
    return None


def find_classifier(name) -> ModelEntry:
    """A classifier by name or by ``.safetensors`` path (``ModelNotFoundError``)."""
    path = Path(str(name))
    if path.suffix == WEIGHT_SUFFIX:
        if not path.is_file():
            raise ModelNotFoundError(f"classifier file {path} not found")
        card_path = path.with_suffix(CARD_SUFFIX)
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ModelNotFoundError(f"classifier {path} has no readable card "
                                     f"{card_path.name}") from None
        return ModelEntry(path.stem, path, card, "file")
    entries = classifier_entries()
    for entry in entries:
        if entry.name == str(name):
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise ModelNotFoundError(f"unknown classifier {str(name)!r}; installed: {known}")

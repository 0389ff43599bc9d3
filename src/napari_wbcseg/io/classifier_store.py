"""Where per-cell classifiers live and which one serves a class table (no torch here).

A classifier is ``<name>.safetensors`` + ``<name>.json`` (its card, ``"kind":
"cell-classifier"``) in ``napari_wbcseg/weights/classifiers`` (bundled) or
``<user models>/classifiers``.  :func:`classifier_for` picks the one for a segmentation
model's class table: the newest user classifier with exactly that table, else the
bundled one.
"""
from __future__ import annotations

from pathlib import Path

from .safe_json import load_json_file
from .model_store import CARD_SUFFIX, WEIGHT_SUFFIX, ModelEntry, ModelNotFoundError, bundled_dir, user_dir

__all__ = ["ClassifierCardError", "check_card", "check_name", "bundled_classifier_dir", "classifier_entries", "classifier_for", "find_classifier",
           "same_classes", "user_classifier_dir"]

KIND = "cell-classifier"
#: bounds on what a card may ask for (a colleague's file must not allocate without limit)
CROP_SIZES = (32, 512)
MAX_CLASSES = 254
MAX_MEMBERS = 8  # = models.cell_classifier.MAX_MEMBERS (no torch import here)


class ClassifierCardError(ValueError):
    """A classifier card that is malformed or asks for more than the bounds allow."""


def check_card(card, where: str = "classifier card") -> dict:
    """``card`` if it is a usable classifier card, else ``ClassifierCardError`` (one line).

    Checked: a JSON object of kind cell-classifier; ``classes`` a list of 2..254
    ``{"code": 1..254, "name": str}`` with distinct codes; ``config.crop_size`` an integer
    in 32..512, ``config.members`` (an ensemble's size) 1..8, and ``config.num_classes`` the
    number of classes; ``head_weights`` a mapping
    of model names to numbers in [0, 1]; ``temperature`` a positive number.
    """
    def bad(why):
        raise ClassifierCardError(f"{where}: {why}")

    if not isinstance(card, dict) or card.get("kind") != KIND:
        bad("not a cell-classifier card")
    classes = card.get("classes")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES:
        bad(f"'classes' must list 2 to {MAX_CLASSES} classes")
    for c in classes:
        if not (isinstance(c, dict) and type(c.get("code")) is int and 1 <= c["code"] <= 254
                and isinstance(c.get("name"), str) and c["name"]):
            bad("every class needs an integer 'code' in 1..254 and a 'name'")
    if len({c["code"] for c in classes}) != len(classes):
        bad("class codes must be distinct")
    config = card.get("config")
    if not isinstance(config, dict):
        bad("'config' must be a JSON object")
    crop = config.get("crop_size", 128)
    if type(crop) is not int or not CROP_SIZES[0] <= crop <= CROP_SIZES[1]:
        bad(f"config.crop_size must be an integer in {CROP_SIZES[0]}..{CROP_SIZES[1]}")
    members = config.get("members", 1)
    if type(members) is not int or not 1 <= members <= MAX_MEMBERS:
        bad(f"config.members must be an integer in 1..{MAX_MEMBERS}")
    if config.get("num_classes", len(classes)) != len(classes):
        bad(f"config.num_classes ({config.get('num_classes')!r}) differs from the "
            f"{len(classes)} classes listed")
    weights = card.get("head_weights", {})
    if not isinstance(weights, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for v in weights.values()):
        bad("'head_weights' must map model names to numbers in [0, 1]")
    t = card.get("temperature", 1.0)
    if not (isinstance(t, (int, float)) and 0 < t < 100):
        bad("'temperature' must be a positive number")
    return card


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().parent == folder.resolve()


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
        if not weights.is_file() or not _inside(weights, folder) or not _inside(card_path, folder):
            continue  # a link out of the folder is not followed
        try:
            card = check_card(load_json_file(card_path))
        except ValueError:
            continue  # unreadable or malformed: not offered (find_classifier says why)
        found.append(ModelEntry(card_path.stem, weights, card, origin))
    return found


def classifier_entries() -> list[ModelEntry]:
    """User classifiers (newest first), then the bundled ones."""
    user = sorted(_entries(user_classifier_dir(), "user"),
                  key=lambda e: e.weights.stat().st_mtime, reverse=True)
    return user + _entries(bundled_classifier_dir(), "bundled")


def _table(classes) -> tuple:
    try:
        return tuple((int(c["code"]), str(c["name"])) for c in classes or ())
    except (KeyError, TypeError, ValueError):
        return ()  # a malformed table matches nothing


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
            card = load_json_file(card_path)
        except ValueError as exc:
            raise ModelNotFoundError(f"classifier {path} has no readable card "
                                     f"{card_path.name} ({exc})") from None
        try:
            check_card(card, str(card_path))
        except ClassifierCardError as exc:
            raise ModelNotFoundError(str(exc)) from None
        return ModelEntry(path.stem, path, card, "file")
    entries = classifier_entries()
    for entry in entries:
        if entry.name == str(name):
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise ModelNotFoundError(f"unknown classifier {str(name)!r}; installed: {known}")


def check_name(name: str) -> str:
    """``name`` if it can name a classifier file in its folder (ValueError otherwise)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}", str(name)) or ".." in str(name):
        raise ValueError(f"classifier name {name!r}: use letters, digits, '.', '_', '+' or "
                         "'-' (no path), at most 100 characters")
    return str(name)

"""Checking a segmentation model's card, and that it belongs to its weights (no torch here).

A card comes from a colleague as often as from this plugin, so every field the plugin
uses is type- and range-checked once, when the card is read, and a wrong one gives a
:class:`ModelCardError` naming the field.  :func:`check_card_matches_weights` is the
check shared by ``import_model`` and loading a model straight from a file: the card
names the architecture and settings the weights were saved with and, when it records
one, the weight file's checksum.
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path

from .safe_json import UnsafeJSONError, load_json_file, loads_bounded

__all__ = ["DIAMETER_RANGE", "ModelCardError", "WeightsHeaderError", "check_card_matches_weights", "check_model_card",
           "read_model_card", "weights_metadata"]

#: native cell diameter a card may give, in pixels (segment rescales images by it)
DIAMETER_RANGE = (4.0, 1024.0)
MAX_CLASSES = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_HEADER = 100 << 20  # the safetensors format's own bound on its JSON header


class ModelCardError(ValueError):
    """A model card (or its weights' header) with a missing, malformed or out-of-range field."""


class WeightsHeaderError(ModelCardError):
    """A weight file whose safetensors header cannot be read."""


def check_model_card(card, where: str = "model card") -> dict:
    """``card`` if every field the plugin reads is well-formed, else ``ModelCardError``.

    Checked when present: ``name``/``architecture`` strings; ``config``, ``preprocessing``,
    ``training``, ``validation``, ``weights`` JSON objects; ``preprocessing.method`` a
    string; ``classes`` a list of up to 255 ``{"code": 1..255, "name": str}`` with distinct
    codes; ``native_cell_diameter_px`` a finite number in 4..1024; ``weights.sha256`` 64
    hex digits.
    """
    def bad(field, why):
        raise ModelCardError(f"{where}: field {field!r} {why}")

    if not isinstance(card, dict):
        raise ModelCardError(f"{where}: not a model card (not a JSON object)")
    for key in ("name", "architecture"):
        if key in card and not (isinstance(card[key], str) and card[key]):
            bad(key, "must be a non-empty string")
    for key in ("config", "preprocessing", "training", "validation", "weights"):
        if card.get(key) is not None and not isinstance(card[key], dict):
            bad(key, f"must be a JSON object, not {type(card[key]).__name__}")
    method = (card.get("preprocessing") or {}).get("method", "none")
    if not isinstance(method, str):
        bad("preprocessing.method", "must be a string")
    summary = (card.get("validation") or {}).get("summary")
    if summary is not None and not isinstance(summary, dict):
        bad("validation.summary", "must be a JSON object")
    _check_classes(card.get("classes"), bad)
    if "native_cell_diameter_px" in card:
        d = card["native_cell_diameter_px"]
        lo, hi = DIAMETER_RANGE
        if not (isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d)
                and lo <= d <= hi):
            bad("native_cell_diameter_px", f"must be a number of pixels in {lo:g}..{hi:g}, "
                                           f"got {d!r}")
    sha = (card.get("weights") or {}).get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        bad("weights.sha256", "must be 64 lower-case hex digits")
    return card


def _check_classes(classes, bad) -> None:
    if classes is None:
        return
    if not isinstance(classes, list) or len(classes) > MAX_CLASSES:
        bad("classes", f"must be a list of at most {MAX_CLASSES} classes")
    for c in classes:
        if not (isinstance(c, dict) and type(c.get("code")) is int and 1 <= c["code"] <= 255
                and isinstance(c.get("name"), str) and c["name"]):
            bad("classes", "needs an integer 'code' in 1..255 and a 'name' for every class")
    if len({c["code"] for c in classes}) != len(classes):
        bad("classes", "lists a class code twice")


def read_model_card(path) -> dict:
    """Read and check the card ``path`` (bounded JSON); ``ModelCardError`` naming the file."""
    path = Path(path)
    try:
        card = load_json_file(path)
    except UnsafeJSONError as exc:
        raise ModelCardError(f"model card {exc}") from None
    return check_model_card(card, path.name)


def weights_metadata(path) -> dict:
    """The napari-wbcseg metadata in a safetensors file's header, read without torch.

    ``{}`` for a plain safetensors file; ``WeightsHeaderError`` for an unreadable header.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise WeightsHeaderError(f"{path.name}: not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", head)
            if size > _MAX_HEADER or size > path.stat().st_size - 8:
                raise WeightsHeaderError(f"{path.name}: not a safetensors file (bad header size)")
            header = loads_bounded(fh.read(size), max_bytes=_MAX_HEADER)
        meta = (header.get("__metadata__") or {}) if isinstance(header, dict) else None
        if not isinstance(meta, dict):
            raise WeightsHeaderError(f"{path.name}: not a safetensors file (bad header)")
        if meta.get("format") != "napari-wbcseg":
            return {}
        out = loads_bounded(meta.get("metadata", "{}"))
    except OSError as exc:
        raise WeightsHeaderError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    except UnsafeJSONError as exc:
        raise WeightsHeaderError(f"{path.name}: corrupt header ({exc})") from None
    if not isinstance(out, dict):
        raise WeightsHeaderError(f"{path.name}: corrupt header (metadata is not a JSON object)")
    return out


def check_card_matches_weights(card: dict, weights, card_name: str = "model card") -> dict:
    """``ModelCardError`` unless ``card`` describes the weight file ``weights``.

    The card's ``architecture`` and ``config`` (when given) must equal those saved in the
    weights, and its ``weights.sha256`` (when recorded) the file's checksum.  Returns the
    weights' metadata.
    """
    from .fetch import sha256_of

    weights = Path(weights)
    meta = weights_metadata(weights)
    arch = meta.get("architecture")
    if "architecture" in card and arch is not None and card["architecture"] != arch:
        raise ModelCardError(f"{card_name} describes a {card['architecture']!r}, but "
                             f"{weights.name} holds a {arch!r}")
    if card.get("config") is not None and "config" in meta and card["config"] != meta["config"]:
        raise ModelCardError(f"{card_name}: field 'config' differs from the settings saved in "
                             f"{weights.name}")
    sha = (card.get("weights") or {}).get("sha256")
    if sha and sha != sha256_of(weights):
        raise ModelCardError(f"{card_name} belongs to another weight file (checksum differs "
                             f"from {weights.name})")
    return meta

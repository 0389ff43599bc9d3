"""Which models made a case's pre-classification: name, version and checksum (no torch).

The record goes into :attr:`.case.Case.models` and from there into the report.
"""
from __future__ import annotations

import hashlib
import re

from .errors import CaseError

_SHA256 = re.compile(r"[0-9a-f]{64}")


def model_record(name: str, kind: str) -> dict:
    """``{"name", "kind", "version", "sha256"}`` of an installed model or classifier.

    ``kind``: ``"segmentation"`` (:func:`..io.model_store.find_model`) or ``"classifier"``
    (:func:`..io.classifier_store.find_classifier`).  ``version`` is the card's
    ``version``, else its ``date``, else its training date ("" when it has none);
    ``sha256`` is the card's ``weights.sha256``, else the hash of the weights file.
    """
    from ..io.model_store import ModelNotFoundError, find_model

    if kind == "segmentation":
        find = find_model
    elif kind == "classifier":
        from ..io.classifier_store import find_classifier as find
    else:
        raise CaseError(f"model kind {str(kind)[:40]!r} is not 'segmentation' or 'classifier'")
    try:
        entry = find(name)
    except ModelNotFoundError as exc:
        raise CaseError(str(exc)) from None
    card = entry.card if isinstance(entry.card, dict) else {}
    return {"name": str(entry.name), "kind": kind, "version": _version(card),
            "sha256": _sha256(card, entry.weights)}


def _version(card: dict) -> str:
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    for v in (card.get("version"), card.get("date"), training.get("date")):
        if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip():
            text = str(v).strip()
            return text[:200] if text.isprintable() else ""
    return ""


def _sha256(card: dict, weights) -> str:
    w = card.get("weights") if isinstance(card.get("weights"), dict) else {}
    sha = w.get("sha256")
    if isinstance(sha, str) and _SHA256.fullmatch(sha.lower()):
        return sha.lower()
    h = hashlib.sha256()
    try:
        with open(weights, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise CaseError(f"{weights}: cannot be read for its checksum "
                        f"({exc.strerror or exc})") from None
    return h.hexdigest()

"""Saving a fine-tune as a user model (the second half of ``session.run``).

All or nothing: the weights and card are written into a hidden staging folder beside the
user models and moved into place, the card last (a model is listed once its card exists);
the classifier trained alongside is saved with it or not at all.  A fine-tune whose best
epoch did not beat the starting model is saved only on request, and its card says so.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ...io.model_exchange import ModelFileError, _models_changed, _publish, check_name


def save_model(result, prepared, name: str, *, folder=None,
               overwrite: bool = False, classifier=None, worse=None) -> Path:
    """Write the best weights as user model ``name``; returns the card path.

    ``classifier``: a trained ``session_classifier.ClassifierStage``, saved with the model
    into ``<folder>/classifiers``.  ``worse``: the :class:`WorseThanStart` comparison of a
    fine-tune saved although no epoch beat the starting model (its card notes it).
    All or nothing, the pair included (``ModelFileError``
    for a full disk or any other OSError)."""
    from ...io.atomic import write_text_atomic
    from ...io.model_store import user_dir
    from .bundle import write_model
    from .session_classifier import publish, unpublish, write_staged

    name = check_name(name, overwrite=overwrite)
    folder = Path(folder) if folder is not None else user_dir()
    base = prepared.base
    how = (f"fine-tuned from {base['name']}" if base else "trained from random weights")
    notes = f"Trained in the napari-wbcseg training widget ({how})"
    if worse is not None:
        notes += f". {worse.card_note()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".saving-{name}-", dir=folder) as staging:
            card_path = write_model(staging, name, result, data=prepared.data,
                                    preprocessing=prepared.config.preprocess,
                                    native_cell_diameter=prepared.native_cell_diameter,
                                    notes=notes)
            card = json.loads(card_path.read_text(encoding="utf-8"))
            card["training"]["base_model"] = base
            card["training"]["source"] = "napari-wbcseg training widget"
            card["training"]["starting_model_score"] = prepared.baseline
            if worse is not None:
                card["training"]["worse_than_start"] = worse.as_dict()
            trained = classifier is not None and classifier.trained
            card["training"]["classifier"] = classifier.name if trained else None
            if classifier is not None and classifier.note:
                card["training"]["classifier_note"] = classifier.note
            write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
            cls_folder = folder / "classifiers"
            cls_staging = write_staged(classifier, cls_folder) if trained else None
            try:
                if trained:
                    publish(cls_staging, classifier.name, cls_folder)
                try:
                    _publish(Path(staging), name, folder)
                except OSError:
                    if trained:
                        unpublish(classifier.name, cls_folder)
                    raise
            finally:
                if cls_staging is not None:
                    shutil.rmtree(cls_staging, ignore_errors=True)
    except OSError as exc:
        raise ModelFileError(f"could not save model {name!r} in {folder}: "
                             f"{exc.strerror or exc}; nothing was added to the model list")
    _models_changed()
    return folder / f"{name}.json"


class WorseThanStart:
    """No epoch of a fine-tune beat its starting model (same validation images, same score)."""

    def __init__(self, base: str, baseline: float, best: float, best_epoch: int):
        self.base, self.baseline, self.best, self.best_epoch = base, baseline, best, best_epoch

    def message(self) -> str:
        return (f"the fine-tune is not better than the starting model {self.base}: its best "
                f"validation score {self.best:.3f} (epoch {self.best_epoch}) does not beat the "
                f"starting model's {self.baseline:.3f} on the same images")

    def card_note(self) -> str:
        return (f"Saved on request although no epoch beat the starting model {self.base} "
                f"(validation score {self.best:.3f} against its {self.baseline:.3f})")

    def as_dict(self) -> dict:
        return {"starting_model": self.base, "starting_score": self.baseline,
                "best_score": self.best, "best_epoch": self.best_epoch}


def worse_than_start(result, prepared):
    """A :class:`WorseThanStart` when the best epoch does not beat the starting model's
    score, else None (also None without a starting model or its score)."""
    if prepared.baseline is None or prepared.base is None or not result.best_validation:
        return None
    if result.best_score > prepared.baseline:
        return None
    return WorseThanStart(prepared.base["name"], prepared.baseline, result.best_score,
                          result.best_epoch)


__all__ = ["WorseThanStart", "save_model", "worse_than_start"]

"""The train / evaluate protocol: which images choose, which images score (numpy only).

Three disjoint, group-aware parts (:func:`three_way_split`):

* **validation**: ``split_by_group(samples, val_fraction, seed)[1]``, the part
  ``napari-wbcseg evaluate`` scores.  No choice is made on it; it is scored once, at the
  end of training, and those numbers are free of selection.
* **inner validation**: ``inner_fraction`` of the rest, where the best epoch (and any
  other choice) is picked.  Its numbers are optimistic by construction.
* **inner training**: what the weights are fitted on.

:class:`SplitSpec` is what a model card records (``training.data.split_spec``) so that
``evaluate`` can rebuild the same validation part, and :func:`evaluation_plan` decides
what ``evaluate`` does when the user's seed or folders differ from the card's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..data.datasets import split_by_group

SYNTHETIC_PREFIX = "synthetic:"


@dataclass(frozen=True)
class SplitSpec:
    """Seed, fractions and data of a split.

    ``data``: the ``--data`` folders by the name of the resolved folder (basename, not
    the machine's absolute path, so cards stay portable), then ``"synthetic:N"`` when N
    synthetic smears were added.  Empty with a ``note`` for cards that predate this.
    """

    seed: int
    val_fraction: float = 0.2
    inner_fraction: float = 0.15
    data: tuple[str, ...] = ()
    note: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        for name in ("val_fraction", "inner_fraction"):
            v = float(getattr(self, name))
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
            object.__setattr__(self, name, v)

    @property
    def folders(self) -> tuple[str, ...]:
        return tuple(d for d in self.data if not d.startswith(SYNTHETIC_PREFIX))

    def to_card(self) -> dict:
        out = {"seed": self.seed, "val_fraction": self.val_fraction,
               "inner_fraction": self.inner_fraction, "data": list(self.data)}
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_card(cls, card: dict) -> "SplitSpec | None":
        """The card's spec; for older cards parsed from ``data["split"]`` text (seed and
        fraction; folders unknown, ``inner_fraction`` 0: epochs were picked on the
        validation split itself); None where the card says nothing of a split."""
        data = (card.get("training") or {}).get("data") or {}
        spec = data.get("split_spec")
        if isinstance(spec, dict) and "seed" in spec:
            return cls(seed=spec["seed"], val_fraction=spec.get("val_fraction", 0.2),
                       inner_fraction=spec.get("inner_fraction", 0.0),
                       data=tuple(spec.get("data", ())), note=spec.get("note", ""))
        text = data.get("split")
        seed = re.search(r"seed (\d+)", text) if isinstance(text, str) else None
        if seed is None:
            return None
        pct = re.search(r"(\d+)/(\d+)", text)
        frac = re.search(r"validation fraction ([0-9.]+)", text)
        val = int(pct.group(2)) / 100 if pct else float(frac.group(1)) if frac else 0.2
        return cls(seed=int(seed.group(1)), val_fraction=val, inner_fraction=0.0,
                   note=f"older card ({text!r}): its data folders are unknown and its "
                        "epochs were picked on the validation split itself")


def data_names(folders, synthetic: int = 0) -> tuple[str, ...]:
    """``SplitSpec.data`` for these ``--data`` folders plus ``synthetic`` smears."""
    names = []
    for f in folders:
        name = Path(f).resolve().name
        if name not in names:
            names.append(name)
    if synthetic:
        names.append(f"{SYNTHETIC_PREFIX}{int(synthetic)}")
    return tuple(names)


def three_way_split(samples, spec: SplitSpec):
    """``(inner_train, inner_val, validation)``, no group in two parts.

    The validation part is computed first, from all samples, exactly as ``evaluate``
    does, so nothing decided on the inner parts can move an image into or out of it.
    """
    train, validation = split_by_group(samples, spec.val_fraction, seed=spec.seed)
    inner_train, inner_val = split_by_group(train, spec.inner_fraction, seed=spec.seed)
    return inner_train, inner_val, validation


@dataclass
class EvaluationPlan:
    seed: int
    val_fraction: float
    warnings: list
    refusal: str | None = None
    inner_fraction: float = SplitSpec.inner_fraction  # of --split selection


def trained_sources(card: dict) -> set[str]:
    """Sample sources the card says the model was trained on (``synthetic`` left out:
    ``evaluate`` never loads synthetic smears)."""
    samples = ((card.get("training") or {}).get("data") or {}).get("samples") or {}
    def seen(c):  # fitted on ("train") or picked on ("selection")
        return not isinstance(c, dict) or c.get("train", 0) + c.get("selection", 0) > 0
    return {src for src, c in samples.items() if src != "synthetic" and seen(c)}


def evaluation_plan(card: dict, folders, sources, *, seed: int | None = None,
                    split: str = "validation") -> EvaluationPlan:
    """Seed and fraction for ``evaluate``, the warnings to print, and a refusal when the
    requested validation split would score images the model was trained on.

    Overlap = a ``--data`` folder of the same name as a training folder, or a sample
    source (``segmentation_WBC-1``, ``folder:NAME``, ...) the card lists as trained on.
    """
    spec = SplitSpec.from_card(card)
    name = card.get("name", "the model")
    names = set(data_names(folders))
    overlap = sorted((set(sources) & trained_sources(card))
                     | (names & set(spec.folders) if spec else set()))
    warnings: list[str] = []
    if spec is None:
        use = 0 if seed is None else seed
        warnings.append(f"{name}'s card records no training split (e.g. an imported model): "
                        f"using seed {use}; the scored images may include its training images")
        if split == "all" and overlap:
            warnings.append(_all_warning(overlap))
        if split == "selection":
            warnings.append(_no_inner_warning(name))
        return EvaluationPlan(use, 0.2, warnings)
    use = spec.seed if seed is None else seed
    if spec.note:
        warnings.append(f"{name}: {spec.note}; using its seed {spec.seed}" if seed is None
                        else f"{name}: {spec.note}")
    if split == "all":
        if overlap:
            warnings.append(_all_warning(overlap))
        return EvaluationPlan(use, spec.val_fraction, warnings)
    if use != spec.seed:
        if overlap:
            return EvaluationPlan(use, spec.val_fraction, warnings, refusal=(
                f"{name} was trained with seed {spec.seed} on {', '.join(overlap)}: the seed "
                f"{use} validation split would include its training images; leave out --seed "
                f"(or give --split all to score every image, knowingly)"))
        warnings.append(f"--seed {use} differs from the seed {spec.seed} {name} was trained "
                        "with (no overlap with its training data found)")
    if spec.folders and names != set(spec.folders):
        unseen = not overlap
        warnings.append(
            f"--data {', '.join(sorted(names))} differs from the folders {name} was trained "
            f"on ({', '.join(spec.folders)}): " + (
                "none of them was seen in training, --split all would score every image"
                if unseen else "the validation split is that of training only for the "
                "datasets both hold"))
    inner = spec.inner_fraction
    if split == "selection" and not inner:
        warnings.append(_no_inner_warning(name))
        inner = SplitSpec.inner_fraction
    return EvaluationPlan(use, spec.val_fraction, warnings, inner_fraction=inner)


def _no_inner_warning(name: str) -> str:
    return (f"{name}'s card records no inner selection split: the selection split of "
            f"`train` ({SplitSpec.inner_fraction:.0%} of the part outside validation) is "
            "scored, and those images were among its training images")


def card_blocks(result, validation_report: dict, spec: SplitSpec) -> tuple[dict, dict]:
    """``(selection, validation)`` blocks of a model card (:func:`.bundle.write_model`).

    ``selection``: the best epoch's numbers on the inner validation part (it was picked
    on them).  ``validation``: the one scoring of the untouched validation part."""
    from .evaluate import summary

    selection = {"split": "inner validation (training.data.split_spec.inner_fraction)",
                 "selection_free": False, "best_epoch": result.best_epoch,
                 "per_dataset": result.best_validation,
                 "summary": summary(result.best_validation)}
    if not result.best_validation:
        selection["note"] = "no inner validation images: epochs were ranked by training loss"
    validation = {"split": "validation (training.data.split_spec)", "selection_free": True,
                  "scored": "once, after training, with the best epoch's weights",
                  "per_dataset": validation_report, "summary": summary(validation_report)}
    if not validation_report:
        validation["note"] = (f"no validation images (seed {spec.seed}, fraction "
                              f"{spec.val_fraction:g}): nothing was held out")
    return selection, validation


def _all_warning(overlap) -> str:
    return (f"--split all scores every image, including the model's training images (it "
            f"was trained on {', '.join(overlap)}): these numbers are not held out")


__all__ = ["EvaluationPlan", "SplitSpec", "card_blocks", "data_names", "evaluation_plan",
           "three_way_split", "trained_sources"]

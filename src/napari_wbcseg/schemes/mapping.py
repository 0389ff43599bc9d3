"""Map one class table onto another (a model's onto a project's), by name.

A model trained on the 5-part table predicts "neutrophil"; a marrow project calls that
cell "segmented neutrophil".  Names are compared as :func:`.scheme.normalise_name` does,
through a small table of synonyms; what has no counterpart becomes unidentified, and
:meth:`ClassMapping.message` says so in one line.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..schema import UNIDENTIFIED, CellClass
from .scheme import ClassScheme, SchemeError, as_cell_class, normalise_name

__all__ = ["SYNONYMS", "ClassMapping", "map_classes"]

# each set: names of one cell type in different tables (normalised spelling)
SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(s) for s in (
    {"neutrophil", "segmented neutrophil", "segmented", "neutrophil segmented",
     "polymorphonuclear neutrophil", "seg"},
    {"band neutrophil", "band", "band cell", "stab", "neutrophil band"},
    {"blast", "myeloblast", "blast cell"},
    {"reactive lymphocyte", "atypical lymphocyte", "variant lymphocyte",
     "reactive/atypical lymphocyte"},
    {"nucleated red cell", "nucleated red blood cell", "nrbc", "normoblast", "erythroblast"},
    {"immature granulocyte", "ig", "immature granulocytes"},
    {"plasma cell", "plasmacyte"},
    {"smudge cell", "smudge", "basket cell"},
    {"unidentified", "unknown", "unclassified"},
))
_LISTED = 6  # names spelled out in a message before "and N more"


@dataclass(frozen=True)
class ClassMapping:
    """``mapping``: source code -> target code (255 where the source class has no target);
    ``unmapped``: source names without a target; ``missing``: target names no source
    class maps to (the model never predicts them)."""

    mapping: dict[int, int]
    unmapped: tuple[str, ...]
    missing: tuple[str, ...]
    renamed: tuple[tuple[str, str], ...]  # (source name, target name) matched by synonym
    source_names: tuple[str, ...] = ()  # in source order, unidentified left out
    source: str = "model"
    target: str = "this project"

    @property
    def identical(self) -> bool:
        """Every source code keeps its code, nothing is unmapped or renamed."""
        return (not self.unmapped and not self.renamed
                and all(a == b for a, b in self.mapping.items()))

    def message(self) -> str:
        """One line for a notification, e.g. "model classes neutrophil, lymphocyte mapped
        (neutrophil as segmented neutrophil); 'smudge cell' has no class in this project:
        shown as unidentified"."""
        if self.identical:
            return f"{self.source} classes match {self.target}'s"
        mapped = [n for n in self.source_names if n not in self.unmapped]
        parts = [f"{self.source} classes {_listing(mapped)} mapped" if mapped
                 else f"no {self.source} class has a class in {self.target}"]
        if self.renamed:
            parts[0] += " (" + _listing([f"{a} as {b}" for a, b in self.renamed]) + ")"
        if self.unmapped:
            names = _listing([repr(n) for n in self.unmapped])
            verb = "has" if len(self.unmapped) == 1 else "have"
            parts.append(f"{names} {verb} no class in {self.target}: shown as unidentified")
        return "; ".join(parts)

    def apply(self, codes) -> np.ndarray:
        """``codes`` (any integer array, e.g. a cell-type layer) with every source code
        replaced by its target code; 0 stays 0, codes the source lacks become 255."""
        codes = np.asarray(codes)
        if codes.size and (codes.min() < 0 or codes.max() > UNIDENTIFIED):
            raise SchemeError(f"class codes must be in 0..{UNIDENTIFIED}, got "
                              f"{int(codes.min())}..{int(codes.max())}")
        table = np.full(UNIDENTIFIED + 1, UNIDENTIFIED, np.uint8)
        table[0] = 0
        for a, b in self.mapping.items():
            table[a] = b
        return table[codes.astype(np.intp, copy=False)]


def map_classes(source: Sequence[CellClass] | ClassScheme, target: ClassScheme, *,
                source_label: str = "model", target_label: str = "this project") -> ClassMapping:
    """Map ``source`` classes (CellClass items, dicts or a scheme) onto ``target`` by name,
    then by synonym (:data:`SYNONYMS`); the rest map to unidentified (255)."""
    classes = source.classes if isinstance(source, ClassScheme) else \
        tuple(as_cell_class(c) for c in source)
    by_name: dict[str, CellClass] = {}
    for c in target.classes:  # plural or singular on either side: "eosinophils" = "eosinophil"
        key = normalise_name(c.name)
        by_name.setdefault(key, c)
        by_name.setdefault(key.rstrip("s"), c)
    mapping: dict[int, int] = {}
    unmapped, renamed, names, hit = [], [], [], set()
    for c in classes:
        if c.code == UNIDENTIFIED:
            mapping[c.code] = UNIDENTIFIED
            continue
        names.append(c.name)
        match = _match(normalise_name(c.name), by_name)
        if match is None:
            mapping[c.code] = UNIDENTIFIED
            unmapped.append(c.name)
            continue
        mapping[c.code] = match.code
        hit.add(match.code)
        if normalise_name(match.name) != normalise_name(c.name):
            renamed.append((c.name, match.name))
    missing = tuple(c.name for c in target.classes
                    if c.code not in hit and c.code != UNIDENTIFIED)
    return ClassMapping(mapping, tuple(unmapped), missing, tuple(renamed), tuple(names),
                        source_label, target_label)


def _match(name: str, by_name: dict[str, CellClass]) -> CellClass | None:
    for candidate in (name, name.rstrip("s")):  # "eosinophils" is "eosinophil"
        if candidate in by_name:
            return by_name[candidate]
    for group in SYNONYMS:
        if name in group or name.rstrip("s") in group:
            hits = [by_name[n] for n in sorted(group) if n in by_name]
            if hits:
                return hits[0]
    return None


def _listing(items: list[str]) -> str:
    if len(items) <= _LISTED:
        return ", ".join(items)
    return ", ".join(items[:_LISTED]) + f" and {len(items) - _LISTED} more"

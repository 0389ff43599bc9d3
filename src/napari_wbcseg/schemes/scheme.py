"""A class scheme: the class table one project counts with, validated once.

Every :class:`ClassScheme` that exists is valid (codes 1..255 unique, names unique
ignoring case, colours ``#rrggbb``, hotkeys one key of 0-9/a-z and unique), ends with
the reserved class 255 "unidentified", and says whether it counts a blood or a marrow
slide (the marrow report adds the myeloid:erythroid ratio and counts to 500).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from ..schema import UNIDENTIFIED, CellClass

__all__ = ["KINDS", "MAX_CLASSES", "SchemeError", "ClassScheme", "UNIDENTIFIED_CLASS",
           "as_cell_class", "check_class_rows", "myeloid_erythroid_ratio",
           "normalise_name", "scheme_from_classes"]

KINDS = ("blood", "marrow")
DEFAULT_TARGETS = {"blood": 100, "marrow": 500}  # cells per slide (ICSH: 500 in marrow)
MAX_CLASSES = 64  # besides unidentified; a gallery with more hotkeys than keys is unusable
MAX_NAME = 60
MAX_GROUP = 40
UNIDENTIFIED_CLASS = CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0", "", "u")
MYELOID, ERYTHROID = "myeloid", "erythroid"

_COLOUR = re.compile(r"#[0-9a-f]{6}")
_HOTKEY = re.compile(r"[0-9a-z]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SchemeError(ValueError):
    """A class table or scheme file that cannot be used; the message says why in one line."""


def normalise_name(name: str) -> str:
    """Name as compared: case, ``-``/``_`` and repeated spaces do not matter."""
    return " ".join(re.sub(r"[-_]+", " ", str(name)).lower().split())


def as_cell_class(c) -> CellClass:
    """A :class:`CellClass` from itself or a ``{code, name, color[, group, hotkey]}`` dict."""
    if isinstance(c, CellClass):
        return c
    if not isinstance(c, Mapping):
        raise SchemeError(f"class {str(c)[:80]!r} is neither a CellClass nor a mapping")
    if "code" not in c or "name" not in c:
        raise SchemeError(f"class {str(dict(c))[:80]!r} lacks a code or a name")
    code = c["code"]
    if not isinstance(code, int) or isinstance(code, bool):
        raise SchemeError(f"class code {str(code)[:20]!r} is not an integer")
    return CellClass(code, str(c["name"]), str(c.get("color", "#808080")),
                     str(c.get("group") or ""), str(c.get("hotkey") or "").lower())


def check_class_rows(rows: Iterable[tuple[CellClass, str]], *,
                     max_code: int = UNIDENTIFIED) -> None:
    """:class:`SchemeError` naming the place (``"line 7"``, ``"class 3"``) of the first
    bad row: code out of 1..max_code, bad name/colour/group/hotkey, or a duplicate code,
    name or hotkey.  Rows are ``(class, where)`` pairs; colours and hotkeys must already
    be lower case (the file reader normalises them)."""
    codes: dict[int, str] = {}
    names: dict[str, str] = {}
    keys: dict[str, str] = {}
    for c, where in rows:
        if not isinstance(c.code, int) or isinstance(c.code, bool) or not 1 <= c.code <= max_code:
            raise SchemeError(f"{where}: code {c.code!r} is out of range 1..{max_code}"
                              + (" (255 is reserved for unidentified)" if max_code < 255 else ""))
        name = normalise_name(c.name)
        if not name or len(c.name) > MAX_NAME or _CONTROL.search(c.name):
            raise SchemeError(f"{where}: class name {c.name[:80]!r} must be 1..{MAX_NAME} "
                              "printable characters")
        if not _COLOUR.fullmatch(c.color):
            raise SchemeError(f"{where}: colour {c.color[:20]!r} of {c.name!r} is not #rrggbb")
        if len(c.group) > MAX_GROUP or _CONTROL.search(c.group):
            raise SchemeError(f"{where}: group {c.group[:80]!r} must be at most {MAX_GROUP} "
                              "printable characters")
        if c.hotkey and not _HOTKEY.fullmatch(c.hotkey):
            raise SchemeError(f"{where}: hotkey {c.hotkey[:10]!r} of {c.name!r} must be one "
                              "of 0-9 or a-z")
        for seen, value, what in ((codes, c.code, "code"), (names, name, "name"),
                                  (keys, c.hotkey, "hotkey")):
            if value == "":
                continue
            if value in seen:
                raise SchemeError(f"{where}: duplicate {what} {value!r} (also on {seen[value]})")
            seen[value] = where


@dataclass(frozen=True)
class ClassScheme:
    """A validated class table; ``classes`` ends with unidentified (255)."""

    name: str
    classes: tuple[CellClass, ...]
    kind: str = "blood"

    def __post_init__(self):
        if (not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME
                or _CONTROL.search(self.name)):
            raise SchemeError(f"scheme name {str(self.name)[:80]!r} must be 1..{MAX_NAME} "
                              "printable characters")
        if self.kind not in KINDS:
            raise SchemeError(f"scheme {self.name!r}: kind {self.kind!r} is not one of "
                              f"{', '.join(KINDS)}")
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        if not classes or classes[-1].code != UNIDENTIFIED:
            raise SchemeError(f"scheme {self.name!r}: the last class must be {UNIDENTIFIED} "
                              "unidentified")
        if len(classes) - 1 > MAX_CLASSES:
            raise SchemeError(f"scheme {self.name!r}: {len(classes) - 1} classes, more than "
                              f"the {MAX_CLASSES} allowed")
        if len(classes) == 1:
            raise SchemeError(f"scheme {self.name!r}: no class besides unidentified")
        try:
            check_class_rows((c, f"class {i + 1}") for i, c in enumerate(classes))
        except SchemeError as exc:
            raise SchemeError(f"scheme {self.name!r}: {exc}") from None

    @cached_property
    def codes(self) -> tuple[int, ...]:
        return tuple(c.code for c in self.classes)

    @cached_property
    def by_code(self) -> dict[int, CellClass]:
        return {c.code: c for c in self.classes}

    @cached_property
    def by_hotkey(self) -> dict[str, CellClass]:
        return {c.hotkey: c for c in self.classes if c.hotkey}

    def group_of(self, code: int) -> str:
        """The class's group (lower case, may be empty); SchemeError for an unknown code."""
        try:
            return self.by_code[int(code)].group
        except KeyError:
            raise SchemeError(f"class code {code} is not in scheme {self.name!r}") from None

    @property
    def default_target(self) -> int:
        """Cells to count per slide: 100 in blood, 500 in marrow (ICSH 2015)."""
        return DEFAULT_TARGETS[self.kind]

    def __len__(self) -> int:
        return len(self.classes)


def scheme_from_classes(classes, name: str = "custom", kind: str = "blood") -> ClassScheme:
    """A scheme for a bare class table (a project's or a model's): CellClass objects or
    ``{code, name, color}`` dicts; unidentified (255) is added when missing and moved
    last.  Raises :class:`SchemeError` for a table that breaks the rules."""
    rows = [as_cell_class(c) for c in classes]
    if len(rows) > MAX_CLASSES + 1:  # before any further work on a huge table
        raise SchemeError(f"scheme {name!r}: {len(rows)} classes, more than the "
                          f"{MAX_CLASSES} allowed")
    unidentified = [c for c in rows if c.code == UNIDENTIFIED]
    rest = [c for c in rows if c.code != UNIDENTIFIED]
    if len(unidentified) > 1:
        raise SchemeError(f"scheme {name!r}: duplicate code {UNIDENTIFIED}")
    last = unidentified[0] if unidentified else UNIDENTIFIED_CLASS
    return ClassScheme(str(name), tuple(rest) + (last,), kind)


def myeloid_erythroid_ratio(counts: Mapping[int, int], scheme: ClassScheme) -> float | None:
    """Cells of group "myeloid" over cells of group "erythroid" (``counts``: class code
    -> cells), or None when no erythroid cell was counted (the ratio is undefined).

    Raises :class:`SchemeError` for a code the scheme lacks or a negative count.
    """
    totals = {MYELOID: 0, ERYTHROID: 0}
    for code, n in counts.items():
        group = scheme.group_of(code).strip().lower()
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise SchemeError(f"count {n!r} for class code {code} is not a whole number >= 0")
        if group in totals:
            totals[group] += n
    if totals[ERYTHROID] == 0:
        return None
    return totals[MYELOID] / totals[ERYTHROID]

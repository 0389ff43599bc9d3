"""The report as plain data: what the HTML and the PDF both render, and the signed JSON.

:class:`ReportData` holds numbers, strings and thumbnails (uint8 arrays) only, no
project or GUI objects, so the renderers can be tested with data built by hand and a
signed report's JSON (:meth:`ReportData.to_json`, pixels left out) says exactly what
was signed.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ..schema import CellClass

__all__ = ["AuditRow", "ClassRow", "ModelInfo", "ReportData", "ReportError", "Thumbnail",
           "safe_color"]


def safe_color(color: str, default: str = "#808080") -> str:
    """The class colour if it is ``#rrggbb``, else ``default`` (a class table is user data:
    its colour goes into CSS and PDF drawing commands)."""
    text = str(color)
    return text if re.fullmatch(r"#[0-9a-fA-F]{6}", text) else default


class ReportError(ValueError):
    """A report that cannot be made (empty case, bad reviewer, ...); one-line message."""


@dataclass(frozen=True)
class ClassRow:
    """One line of the differential: a class of the project's table."""
    code: int
    name: str
    color: str
    count: int
    percent: float | None = None  # of the counted cells; None when nothing was counted
    absolute: float | None = None  # 10^9/L, when the case has a WBC count


@dataclass
class Thumbnail:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    caption: str = ""  # e.g. "field 2, cell 14"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str  # "segmentation" / "classifier"
    version: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class AuditRow:
    image: str
    cell_id: int
    action: str
    from_class: str  # class names (or "" for none)
    to_class: str
    who: str
    when: str  # ISO time as recorded


@dataclass
class ReportData:
    case_id: str
    slide_id: str
    kind: str  # e.g. "blood" / "marrow"
    classes: tuple[CellClass, ...]
    rows: list[ClassRow]  # the table's classes in its order, unidentified not among them
    unidentified: int
    counted: int  # cells in the differential (classified, border cells left out)
    target: int | None = None
    reached: bool = False
    wbc_count: float | None = None  # 10^9/L, as entered for the case
    fields: int = 0
    border_left_out: int = 0
    # marrow: myeloid over erythroid cells (ICSH); None when not marrow or no erythroid cell
    me_ratio: float | None = None
    reviewed: int = 0
    cells: int = 0
    flags: list[str] = field(default_factory=list)
    galleries: dict[int, list[Thumbnail]] = field(default_factory=dict)  # code -> thumbnails
    gallery_totals: dict[int, int] = field(default_factory=dict)  # code -> cells of the class
    models: list[ModelInfo] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    notes: str = ""
    reviewer: str = ""
    signed_at: str | None = None  # ISO UTC; None: a draft
    version: int | None = None
    generated_at: str = ""

    @property
    def is_draft(self) -> bool:
        return self.signed_at is None

    @property
    def title(self) -> str:
        return f"White-cell differential - case {self.case_id}"

    def class_name(self, code: int) -> str:
        for c in self.classes:
            if c.code == code:
                return c.name
        return f"class {code}"

    def gallery_order(self) -> list[int]:
        """Codes with thumbnails, in the class table's order (unidentified last)."""
        order = [c.code for c in self.classes if self.galleries.get(c.code)]
        return sorted(order, key=lambda code: code == 255)

    def thumbnail_count(self) -> int:
        return sum(len(v) for v in self.galleries.values())

    def to_json(self) -> dict:
        """Everything but the pixels (a thumbnail count per class stays)."""
        return {
            "format": "napari-wbcseg-report", "version": 1,
            "case_id": self.case_id, "slide_id": self.slide_id, "kind": self.kind,
            "classes": [{"code": c.code, "name": c.name, "color": c.color}
                        for c in self.classes],
            "differential": [{"code": r.code, "name": r.name, "count": r.count,
                              "percent": r.percent, "absolute_1e9_per_l": r.absolute}
                             for r in self.rows],
            "unidentified": self.unidentified, "counted": self.counted,
            "target": self.target, "reached": self.reached,
            "wbc_count_1e9_per_l": self.wbc_count, "fields": self.fields,
            "me_ratio": self.me_ratio,
            "border_left_out": self.border_left_out, "reviewed": self.reviewed,
            "cells": self.cells, "flags": list(self.flags),
            "thumbnails": {str(k): len(v) for k, v in self.galleries.items()},
            "models": [asdict(m) for m in self.models],
            "audit": [asdict(a) for a in self.audit],
            "notes": self.notes, "reviewer": self.reviewer, "signed_at": self.signed_at,
            "report_version": self.version, "generated_at": self.generated_at,
        }

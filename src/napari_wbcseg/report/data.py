"""A case of the project -> :class:`.model.ReportData` (no Qt, no torch).

The counts are the review core's (:func:`..review.count_arrays`, the same rules as the
docks: border cells left out, unidentified cells outside the percentages).  Each field
is read once: while it is counted, its counted cells are cut out as thumbnails, up to
``max_per_class`` per class, in field order then cell id (the project keeps no
confidences, so there is no "lowest first" to follow), all at one physical scale.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..core.cell_thumbnails import cell_boxes, cell_thumbnail, thumbnail_scale
from ..core.image import ImageFormatError, as_rgb_uint8
from ..core.image_counts import image_counts
from ..io.project import ProjectError, load_entry, read_project
from ..review import CaseError, count_arrays, read_audit, read_cases
from ..schema import UNIDENTIFIED, CellClass
from .intervals import differential_flags
from .model import AuditRow, ClassRow, ModelInfo, ReportData, ReportError, Thumbnail

__all__ = ["THUMBNAIL_PX", "build_report_data", "check_reviewer", "now_utc"]

THUMBNAIL_PX = 96
#: the lab's reference intervals, kept in the project folder (same format as --intervals)
PROJECT_INTERVALS = "reference_intervals.csv"
MAX_PER_CLASS = 200  # a report is read by a person; more thumbnails than this help nobody


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Gallery:
    """Collects the thumbnails of the counted cells while the fields are read."""

    def __init__(self, classes, pixel_size_um, max_per_class: int):
        self.colors = {c.code: c.color for c in classes}
        self.known = set(self.colors)
        self.pixel_size_um = pixel_size_um
        self.max = max_per_class
        self.scale = None  # fixed by the first field with cells, kept for all
        self.thumbs: dict[int, list[Thumbnail]] = {}
        self.totals: dict[int, int] = {}

    def add_field(self, number: int, name: str, image, nucleus, cytoplasm, table) -> None:
        counted = table[~table["touches_border"].astype(bool)] if len(table) else table
        if not len(counted):
            return
        if self.scale is None:
            diameter = float(np.median(2 * np.sqrt(counted["cell_area_px"] / np.pi)))
            self.scale = (thumbnail_scale(THUMBNAIL_PX, pixel_size_um=self.pixel_size_um)
                          if self.pixel_size_um else
                          thumbnail_scale(THUMBNAIL_PX, cell_diameter_px=diameter))
        boxes = None
        rgb = None
        for cell_id, code in zip(counted.index, counted["class_code"]):
            code = int(code) if int(code) in self.known else UNIDENTIFIED
            self.totals[code] = self.totals.get(code, 0) + 1
            shown = self.thumbs.setdefault(code, [])
            if len(shown) >= self.max:
                continue
            if boxes is None:  # only for a field that adds a thumbnail
                boxes = cell_boxes(nucleus, cytoplasm)
                rgb = as_rgb_uint8(image, what=f"field {name!r}")
            thumb = cell_thumbnail(rgb, nucleus, cytoplasm, int(cell_id), size=THUMBNAIL_PX,
                                   scale=self.scale, outline=self.colors.get(code, "#a0a0a0"),
                                   bbox=boxes[int(cell_id)])
            shown.append(Thumbnail(thumb, f"field {number}, cell {int(cell_id)}"))


def check_reviewer(name, *, required: bool = True) -> str:
    """The reviewer's name stripped; ``ReportError`` unless it is one printable line of
    at most 200 characters (and not empty when ``required``: a signature needs a name)."""
    if not isinstance(name, str) or len(name) > 200 or not name.isprintable():
        raise ReportError(f"reviewer {str(name)[:80]!r}: give one printable line of at most "
                          "200 characters")
    name = name.strip()
    if required and not name:
        raise ReportError("signing needs the reviewer's name (--reviewer NAME)")
    return name


def _class_name(classes, code: int) -> str:
    if code == 0:
        return "(removed)"
    for c in classes:
        if c.code == code:
            return c.name
    return "unidentified" if code == UNIDENTIFIED else f"code {code}"


def build_report_data(project_dir, case_id: str, *, reviewer: str = "", intervals=None,
                      max_per_class: int = 24) -> ReportData:
    """The report of case ``case_id`` of the project, as a draft (``signed_at`` None).

    ``intervals``: ``{code: ReferenceInterval}`` (see :func:`.intervals.read_intervals`)
    or None for no reference flags.  Raises :class:`ReportError` for a project or case
    that cannot be read, an unknown case, or a case with no counted cells.
    """
    if not (isinstance(max_per_class, int) and 0 <= max_per_class <= MAX_PER_CLASS):
        raise ReportError(f"max_per_class must be a whole number in 0..{MAX_PER_CLASS}, "
                          f"got {max_per_class!r}")
    reviewer = check_reviewer(reviewer, required=False)
    try:
        project = read_project(project_dir)
        cases = read_cases(project_dir)
    except (ProjectError, CaseError) as exc:
        raise ReportError(str(exc)) from None
    case = cases.get(case_id)
    if case is None:
        known = ", ".join(sorted(cases)[:10]) or "none"
        raise ReportError(f"no case {str(case_id)[:80]!r} in {project_dir} (cases: {known})")
    classes: tuple[CellClass, ...] = tuple(project.classes)
    if intervals is None:
        intervals = project_intervals(project_dir, classes)
    gallery = _Gallery(classes, project.pixel_size_um, max_per_class)

    def fields():
        for number, name in enumerate(case.images, 1):
            try:
                entry = project.entry(name)
                data = load_entry(project_dir, entry)
            except ProjectError as exc:
                raise ReportError(f"case {case.case_id!r}: {exc}") from None
            reviewed = _reviewed_ids(entry, data.nucleus, data.cytoplasm)
            table = image_counts(data.nucleus, data.cytoplasm, data.cell_type,
                                 classes=classes).table
            try:
                gallery.add_field(number, name, data.image, data.nucleus, data.cytoplasm, table)
            except (ValueError, ImageFormatError) as exc:
                raise ReportError(f"case {case.case_id!r}, field {name!r}: {exc}") from None
            yield data.nucleus, data.cytoplasm, data.cell_type, reviewed

    try:
        count = count_arrays(fields(), classes, case.target, case.wbc_count)
        audit = read_audit(project_dir, case.images)
    except CaseError as exc:
        raise ReportError(str(exc)) from None
    if count.total + count.unidentified == 0:
        raise ReportError(f"case {case.case_id} has no counted cells: nothing to report")
    rows = [ClassRow(c.code, c.name, c.color, count.counts.get(c.code, 0),
                     count.percent.get(c.code) if count.total else None,
                     None if count.absolute is None else count.absolute.get(c.code))
            for c in classes if c.code != UNIDENTIFIED]
    me_ratio = _me_ratio(project, case, count.counts)
    flags = differential_flags(rows, intervals or {}, unidentified=count.unidentified,
                               counted=count.total, target=count.target)
    return ReportData(
        case_id=case.case_id, slide_id=case.slide_id, kind=case.kind, classes=classes,
        rows=rows, unidentified=count.unidentified, counted=count.total, target=count.target,
        reached=count.reached, wbc_count=case.wbc_count, fields=count.fields,
        border_left_out=count.border_left_out, me_ratio=me_ratio, reviewed=count.reviewed,
        cells=count.cells,
        flags=flags, galleries={k: v for k, v in gallery.thumbs.items() if v},
        gallery_totals=dict(gallery.totals),
        models=[ModelInfo(m["name"], m["kind"], m["version"], m["sha256"]) for m in case.models],
        audit=[AuditRow(e.image, e.cell_id, e.action, _class_name(classes, e.from_code),
                        _class_name(classes, e.to_code), e.who, e.when) for e in audit],
        notes=case.notes, reviewer=reviewer, generated_at=now_utc())


def project_intervals(project_dir, classes) -> dict:
    """The lab's reference intervals kept in the project (:data:`PROJECT_INTERVALS`), so
    that the GUI's reports flag as the CLI's do; ``{}`` when the project has none."""
    from .intervals import IntervalsError, read_intervals

    path = Path(project_dir) / PROJECT_INTERVALS
    if not path.is_file():
        return {}
    try:
        return read_intervals(path, classes)
    except IntervalsError as exc:
        raise ReportError(str(exc)) from None


def _me_ratio(project, case, counts) -> float | None:
    """The myeloid:erythroid ratio of a marrow case (groups of the project's table)."""
    if case.kind != "marrow":
        return None
    from ..schemes import SchemeError, myeloid_erythroid_ratio

    try:
        scheme = project.class_scheme()
        return myeloid_erythroid_ratio({k: int(v) for k, v in counts.items()
                                        if k in scheme.by_code}, scheme)
    except SchemeError:
        return None


def _reviewed_ids(entry, nucleus, cytoplasm) -> set[int]:
    """The cells of a field checked so far: all of them when the image is reviewed."""
    if not entry.reviewed:
        return set(entry.reviewed_cells or ())
    ids = np.union1d(np.unique(nucleus), np.unique(cytoplasm))
    return {int(i) for i in ids if i > 0}

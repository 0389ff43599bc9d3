"""What a project refuses (see :mod:`.project`, docs/schemes.md): label arrays that break
the schema or do not fit the image, class tables that break the scheme rules, and label
files whose class codes the project's table lacks."""
from __future__ import annotations

import numpy as np

from ..core.image import ImageFormatError, check_image
from ..schema import CellClass, LabelSchemaError, check_labels
from ..schemes import BUILTIN_NAMES, SchemeError, load_scheme
from ..schemes.scheme import KINDS, as_cell_class
from ..schemes.tables import table_scheme, unknown_codes

__all__ = ["LAYERS", "as_project_class", "check_arrays", "check_codes", "check_other_entries",
           "scheme_kind", "scheme_name", "set_classes", "set_scheme"]

LAYERS = ("nucleus", "cytoplasm", "cell_type")


def _error(message: str) -> ValueError:
    from .project import ProjectError  # defined there; that module imports this one

    return ProjectError(message)


def check_arrays(name, image, nucleus, cytoplasm, cell_type) -> None:
    try:
        check_image(image, what=f"{name!r} image")
    except ImageFormatError as exc:
        raise _error(str(exc)) from None
    hw = tuple(image.shape[:2])
    for key, arr in zip(LAYERS, (nucleus, cytoplasm, cell_type)):
        if arr.shape != hw:
            raise _error(f"{name!r}: {key} labels have shape {arr.shape}, "
                         f"the image is {hw[0]}x{hw[1]}")
    try:
        check_labels(nucleus, cytoplasm, cell_type)
    except LabelSchemaError as exc:
        raise _error(f"{name!r}: {exc}") from None


def as_project_class(c) -> CellClass:
    if isinstance(c, CellClass):
        return c
    code = c["code"]
    if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 255:
        raise ValueError(f"class code {code!r} is not an integer in 1..255")
    return as_cell_class(c)


def scheme_name(value) -> str | None:
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= 60):
        raise ValueError(f"scheme name {str(value)[:80]!r} is not a short text")
    return value


def scheme_kind(value) -> str | None:
    if value is not None and value not in KINDS:
        raise ValueError(f"scheme kind {str(value)[:20]!r} is not one of {', '.join(KINDS)}")
    return value


def set_scheme(project, scheme) -> None:
    try:
        chosen = load_scheme(scheme)
    except SchemeError as exc:
        raise _error(str(exc)) from None
    project.classes, project.scheme, project.scheme_kind = chosen.classes, chosen.name, chosen.kind


def set_classes(project, classes, name: str) -> None:
    """A new table; the old one (with its groups and hotkeys) stays when the new one has
    the same codes, names and colours, as the GUI's round trip of the table gives."""
    try:
        new = tuple(as_project_class(c) for c in classes)
        if new == project.classes:
            return
        scheme = table_scheme(new)
    except (TypeError, ValueError, KeyError) as exc:
        reason = str(exc).strip("'\"") or type(exc).__name__
        raise _error(f"{name!r}: bad class table ({reason})") from None
    builtin = scheme.name in BUILTIN_NAMES
    project.classes = scheme.classes if builtin else new
    project.scheme, project.scheme_kind = (scheme.name, scheme.kind) if builtin else (None, None)


def check_other_entries(project, old_classes, skip: str) -> None:
    """A table that drops codes must not orphan the cells of images already saved."""
    dropped = {c.code for c in old_classes} - {c.code for c in project.classes}
    if not dropped:
        return
    from .imread import read_image

    for e in project.entries:
        if e.name != skip and (project.path / e.cell_type).is_file():
            try:
                check_codes(e.cell_type, read_image(project.path / e.cell_type), project.classes)
            except ImageFormatError as exc:
                raise _error(f"{e.name!r}: cell_type file {e.cell_type}: {exc}") from None


def check_codes(rel: str, cell_type: np.ndarray, classes) -> None:
    bad = unknown_codes(cell_type, classes)
    if bad:
        listed = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise _error(f"{rel} uses class codes {listed} that the project's class "
                     "table does not have")

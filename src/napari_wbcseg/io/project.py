"""Annotation projects: images with their three label layers in one folder (numpy/tifffile only).

Layout (the GUI's project save/reopen and ``napari-wbcseg train --data`` both use it)::

    PROJECT/project.json
    PROJECT/images/<stem>.tif                 the image as shown (any dtype, HxW or HxWx3/4)
    PROJECT/labels/<stem>_nucleus.tif         cell id k on the nucleus of cell k
    PROJECT/labels/<stem>_cytoplasm.tif       cell id k on the cytoplasm of cell k
    PROJECT/labels/<stem>_cell_type.tif       class code on the whole cell

``project.json``::

    {"format": "napari-wbcseg-project", "version": 1,
     "scheme": "blood-5part", "scheme_kind": "blood",   # optional (docs/schemes.md)
     "classes": [{"code": 1, "name": "neutrophil", "color": "#9b30ff",
                  "group": "myeloid", "hotkey": "1"}, ...],
     "pixel_size_um": 0.1,                    # or null when unknown
     "images": [{"name": "smear 1", "image": "images/smear_1.tif",
                 "nucleus": "labels/smear_1_nucleus.tif",
                 "cytoplasm": "labels/smear_1_cytoplasm.tif",
                 "cell_type": "labels/smear_1_cell_type.tif",
                 "reviewed": true, "reviewed_cells": null}]}

``classes`` is the project's class table and the authority on codes; ``scheme`` names
where it came from (a built-in or a user's scheme file), absent in older projects
(read as the built-in whose table they carry, else "custom").  Every code in a
cell-type file must be in ``classes``.

Paths are relative to the project folder, with ``/``.  ``name`` is the image (layer)
name as the user sees it; ``<stem>`` is that name made safe for file names.  An image
is ``reviewed`` when every white cell in it has been checked and labelled (training
then trusts its background); ``reviewed_cells`` lists the cell ids checked so far in an
image that is not fully reviewed (null: none tracked).  Label files are written with
:func:`.writer.save_labels`; every file and ``project.json`` are replaced atomically
(:mod:`.atomic`), the labels before ``project.json``, and existing entries are never
dropped.  Paths read from ``project.json`` must stay inside the project folder.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.image import ImageFormatError
from ..schema import DEFAULT_CLASSES, CellClass
from ..schemes import ClassScheme, SchemeError
from ..schemes.tables import classes_to_json, table_scheme
from .atomic import atomic_path, write_text_atomic
from .project_checks import LAYERS
from .project_checks import as_project_class as _as_class
from .project_checks import check_arrays as _check
from .project_checks import check_codes as _check_codes
from .project_checks import check_other_entries as _check_other_entries
from .project_checks import scheme_kind as _scheme_kind
from .project_checks import scheme_name as _scheme_name
from .project_checks import set_classes as _set_classes
from .project_checks import set_scheme as _set_scheme
from .safe_json import UnsafeJSONError, load_json_file
from .writer import save_labels

FORMAT = "napari-wbcseg-project"
VERSION = 1
PROJECT_FILE = "project.json"


class ProjectError(ValueError):
    """A project folder that cannot be read or written; the message says why in one line."""


@dataclass
class ProjectEntry:
    name: str
    image: str  # paths relative to the project folder
    nucleus: str
    cytoplasm: str
    cell_type: str
    reviewed: bool = False
    reviewed_cells: tuple[int, ...] | None = None

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "image") + LAYERS}
        d["reviewed"] = bool(self.reviewed)
        d["reviewed_cells"] = None if self.reviewed_cells is None else list(self.reviewed_cells)
        return d


@dataclass
class Project:
    path: Path
    classes: tuple[CellClass, ...] = DEFAULT_CLASSES
    pixel_size_um: float | None = None
    entries: list[ProjectEntry] = field(default_factory=list)
    scheme: str | None = None  # name of the scheme ``classes`` came from; None: not recorded
    scheme_kind: str | None = None  # "blood" or "marrow"; None: the scheme's own

    def class_scheme(self) -> ClassScheme:
        """The project's table as a :class:`ClassScheme` (unidentified added if missing)."""
        try:
            return table_scheme(self.classes, self.scheme, self.scheme_kind)
        except SchemeError as exc:
            raise ProjectError(f"{self.path}: class table: {exc}") from None

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def entry(self, name: str) -> ProjectEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise ProjectError(f"{self.path}: no image called {name!r} in the project")

    def to_json(self) -> dict:
        scheme = {} if self.scheme is None else {"scheme": self.scheme,
                                                 "scheme_kind": self.scheme_kind}
        return {"format": FORMAT, "version": VERSION, **scheme,
                "classes": classes_to_json(self.classes),
                "pixel_size_um": self.pixel_size_um,
                "images": [e.to_json() for e in self.entries]}


@dataclass
class EntryData:
    image: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    cell_type: np.ndarray


def is_project(folder) -> bool:
    return (Path(folder) / PROJECT_FILE).is_file()


def read_project(project_dir) -> Project:
    """Parse ``project.json`` (files are not opened; see :func:`load_entry`).

    Raises :class:`ProjectError` for a file that is not a project, too large or too deeply
    nested (:mod:`.safe_json`), malformed, or with an entry path that is absolute or leads
    out of the project folder (``..``, or a symbolic link pointing elsewhere): such a
    project is refused whole, so nothing is ever read or deleted outside the folder.
    """
    folder = Path(project_dir)
    path = folder / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(f"{folder}: no {PROJECT_FILE}, so not a napari-wbcseg project folder")
    try:
        doc = load_json_file(path)
    except UnsafeJSONError as exc:
        raise ProjectError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ProjectError(f"{path}: unknown format {got!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{path}: bad format version {version!r}")
    if version > VERSION:
        raise ProjectError(f"{path}: format version {version} was written by a newer "
                           f"napari-wbcseg; this one reads version {VERSION}")
    try:
        classes = tuple(_as_class(c) for c in doc.get("classes") or DEFAULT_CLASSES)
        scheme, kind = _scheme_name(doc.get("scheme")), _scheme_kind(doc.get("scheme_kind"))
        table_scheme(classes, scheme, kind)  # a table that breaks the rules is refused
        pixel_size = _pixel_size(doc.get("pixel_size_um"))
        images = doc.get("images", [])
        if not isinstance(images, list):
            raise ValueError("'images' is not a list")
        entries = [_entry_from_json(e, folder) for e in images]
    except (TypeError, ValueError, KeyError) as exc:
        raise ProjectError(f"{path}: malformed project ({_msg(exc)})") from None
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ProjectError(f"{path}: image names appear twice")
    return Project(folder, classes, pixel_size, entries, scheme, kind)


def create_project(project_dir, scheme="blood-5part", *,
                   pixel_size_um: float | None = None) -> Project:
    """Start an empty project counting with ``scheme`` (a built-in name, a scheme file
    or a :class:`ClassScheme`); refuses a folder that already holds a project."""
    folder = Path(project_dir)
    if is_project(folder):
        raise ProjectError(f"{folder}: already a project; open it instead")
    project = Project(folder)
    _set_scheme(project, scheme)
    try:
        project.pixel_size_um = _pixel_size(pixel_size_um)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None
    _write_json(project)
    return project


def load_entry(project_dir, entry, *, check: bool = True, classes=None) -> EntryData:
    """The image and three label arrays of one entry (a :class:`ProjectEntry` or a name).

    With ``check`` the labels are validated against the schema, the image shape and the
    project's class table (``classes``; default: read from ``project.json``).
    """
    from .imread import read_image

    folder = Path(project_dir)
    if not isinstance(entry, ProjectEntry) or (check and classes is None):
        project = read_project(folder)
        classes = project.classes if classes is None else classes
        entry = entry if isinstance(entry, ProjectEntry) else project.entry(str(entry))
    arrays = {}
    for key in ("image",) + LAYERS:
        p = folder / getattr(entry, key)
        if not p.is_file():
            raise ProjectError(f"{entry.name!r}: {key} file {p} is missing")
        try:
            arrays[key] = read_image(p)
        except ImageFormatError as exc:
            raise ProjectError(f"{entry.name!r}: {key} file {p}: {exc}") from None
    data = EntryData(**arrays)
    if check:
        _check(entry.name, data.image, data.nucleus, data.cytoplasm, data.cell_type)
        _check_codes(entry.cell_type, data.cell_type, classes)
    return data


def save_image_entry(project_dir, name: str, image, nucleus, cytoplasm, cell_type, *,
                     reviewed: bool = False, reviewed_cells=None, classes=None,
                     scheme=None, pixel_size_um: float | None = None) -> ProjectEntry:
    """Add or replace the image ``name`` in the project (created if the folder has none).

    ``image=None`` keeps the image already saved for ``name``.  ``classes`` (CellClass
    objects or ``{code, name, color}`` dicts), or ``scheme`` (a built-in name, a scheme
    file or a :class:`ClassScheme`), and ``pixel_size_um`` replace the project's when
    given.  Cell-type codes must be in the class table, also those of the other images
    when a new table drops codes.  Raises ProjectError and leaves the project unchanged
    when the arrays break the schema.
    """
    folder = Path(project_dir)
    project = read_project(folder) if is_project(folder) else Project(folder)
    if classes is not None and scheme is not None:
        raise ProjectError(f"{name!r}: give a class table or a scheme, not both")
    old_classes = project.classes
    if scheme is not None:
        _set_scheme(project, scheme)
    if classes is not None:
        _set_classes(project, classes, name)
    _check_other_entries(project, old_classes, skip=str(name))
    if pixel_size_um is not None:
        try:
            project.pixel_size_um = _pixel_size(pixel_size_um)
        except ValueError as exc:
            raise ProjectError(str(exc)) from None
    name = str(name)
    if not name.strip():
        raise ProjectError("an image in a project needs a non-empty name")
    old = next((e for e in project.entries if e.name == name), None)
    if image is None:
        if old is None:
            raise ProjectError(f"{name!r}: no image given and none saved in {folder}")
        from .imread import read_image

        try:
            image_shape = read_image(folder / old.image).shape
        except ImageFormatError as exc:
            raise ProjectError(f"{name!r}: saved image {old.image}: {exc}") from None
    else:
        image = np.asarray(image)
        image_shape = image.shape
    labels = [np.asarray(a) for a in (nucleus, cytoplasm, cell_type)]
    _check(name, image if image is not None else np.zeros(image_shape, np.uint8), *labels)
    known = {c.code for c in project.classes} | {0}
    codes = set(np.unique(labels[2]).tolist()) - known
    if codes:
        raise ProjectError(f"{name!r}: cell type codes {sorted(codes)} are not in the "
                           "project's class table")

    stem = Path(old.image).stem if old else _unique_stem(name, project)
    entry = ProjectEntry(name, image=old.image if (old and image is None) else f"images/{stem}.tif",
                         **{k: f"labels/{stem}_{k}.tif" for k in LAYERS},
                         reviewed=bool(reviewed), reviewed_cells=_cells(reviewed_cells))
    # every file under a temporary name first; all are moved into place only when all
    # were written (one failure leaves the project as it was), then project.json
    with contextlib.ExitStack() as stack:
        if image is not None:
            _save_image(stack.enter_context(atomic_path(folder / entry.image)), image)
        for key, arr in zip(LAYERS, labels):
            tmp = stack.enter_context(atomic_path(folder / getattr(entry, key)))
            save_labels(tmp, arr, name=f"{name} {key.replace('_', ' ')}")
    if old is not None:
        project.entries[project.entries.index(old)] = entry
    else:
        project.entries.append(entry)
    _write_json(project)
    return entry


def set_reviewed(project_dir, name: str, reviewed: bool = True, *, cells=None) -> ProjectEntry:
    """Mark an image as (not) fully reviewed; ``cells`` sets the list of checked cell ids."""
    project = read_project(project_dir)
    entry = project.entry(name)
    entry.reviewed = bool(reviewed)
    if cells is not None:
        entry.reviewed_cells = _cells(cells)
    _write_json(project)
    return entry


def remove_entry(project_dir, name: str) -> None:
    """Drop an image from ``project.json`` and delete its files."""
    project = read_project(project_dir)
    entry = project.entry(name)
    project.entries.remove(entry)
    _write_json(project)
    for key in ("image",) + LAYERS:
        (project.path / getattr(entry, key)).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------

def _save_image(tmp, image: np.ndarray) -> None:
    import tifffile

    rgb = image.ndim == 3 and image.shape[-1] in (3, 4)
    tifffile.imwrite(tmp, image, photometric="rgb" if rgb else "minisblack",
                     compression="zlib", metadata=None)


def _write_json(project: Project) -> None:
    write_text_atomic(project.path / PROJECT_FILE, json.dumps(project.to_json(), indent=1) + "\n")


def _unique_stem(name: str, project: Project) -> str:
    base = re.sub(r"[^A-Za-z0-9._+()-]+", "_", name).strip("._") or "image"
    used = {Path(e.image).stem.lower() for e in project.entries}
    stem, k = base, 2
    while stem.lower() in used:
        stem, k = f"{base}-{k}", k + 1
    return stem


def _entry_from_json(e: dict, folder: Path) -> ProjectEntry:
    if not isinstance(e, dict):
        raise ValueError(f"image entry {str(e)[:80]!r} is not an object")
    missing = [k for k in ("name", "image") + LAYERS if not isinstance(e.get(k), str)]
    if missing:
        raise ValueError(f"image entry {str(e.get('name'))[:80]!r} lacks {', '.join(missing)}")
    for key in ("image",) + LAYERS:
        _check_inside(folder, e[key], f"image entry {e['name'][:80]!r}, {key}")
    return ProjectEntry(e["name"], e["image"], e["nucleus"], e["cytoplasm"], e["cell_type"],
                        reviewed=bool(e.get("reviewed", False)),
                        reviewed_cells=_cells(e.get("reviewed_cells")))


def _check_inside(folder: Path, rel: str, what: str) -> None:
    """``ValueError`` unless ``folder/rel`` is a relative path that stays in ``folder``
    (``..`` and symbolic links resolved)."""
    if not rel or "\0" in rel or Path(rel).is_absolute() or Path(rel).drive:
        raise ValueError(f"{what}: path {rel[:120]!r} must be relative to the project folder")
    root = folder.resolve()
    if not (folder / rel).resolve().is_relative_to(root):
        raise ValueError(f"{what}: path {rel[:120]!r} leads out of the project folder")


def _cells(cells) -> tuple[int, ...] | None:
    if cells is None:
        return None
    out = sorted({int(c) for c in cells})
    if out and out[0] < 1:
        raise ProjectError(f"reviewed cell ids must be positive, got {out[0]}")
    return tuple(out)


def _pixel_size(value) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"pixel size must be a positive number of micrometres, got {value!r}")
    return v


def _msg(exc: Exception) -> str:
    return str(exc).strip("'\"") or type(exc).__name__

"""Scheme files: one class per line of a small CSV (see docs/schemes.md).

::

    # name: my-marrow            optional; default: the file name without .csv
    # kind: marrow               optional; blood (default) or marrow
    code,name,colour,group,hotkey
    1,segmented neutrophil,#9b30ff,myeloid,1
    12,proerythroblast,#8b0000,erythroid,a

Lines starting with ``#`` are comments.  Codes are 1..254: 255 is unidentified, added
by itself with the hotkey ``u``.  ``group`` and ``hotkey`` may be left empty (and their
columns left out of the header).  The file is size-checked before it is read.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..io.safe_json import FileTooLarge, read_bounded
from ..schema import UNIDENTIFIED, CellClass
from .scheme import (KINDS, MAX_CLASSES, UNIDENTIFIED_CLASS, ClassScheme, SchemeError,
                     check_class_rows)

__all__ = ["MAX_FILE_BYTES", "parse_scheme_text", "read_scheme_file", "save_scheme",
           "scheme_to_csv"]

MAX_FILE_BYTES = 64 << 10  # 64 classes take about 3 KiB
COLUMNS = ("code", "name", "colour", "group", "hotkey")
_REQUIRED = COLUMNS[:3]
_DIRECTIVE = re.compile(r"#\s*(name|kind)\s*:\s*(.*?)\s*$", re.IGNORECASE)


def read_scheme_file(path) -> ClassScheme:
    """The scheme in a ``.csv`` file; :class:`SchemeError` naming the file (and line) if
    it is missing, too big, not UTF-8 or breaks a rule."""
    path = Path(path)
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except FileTooLarge as exc:
        raise SchemeError(f"{path}: {exc.size} bytes, more than the {MAX_FILE_BYTES} a "
                          "scheme file may have") from None
    except OSError as exc:
        raise SchemeError(f"{path}: cannot read the scheme file ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise SchemeError(f"{path}: more than the {MAX_FILE_BYTES} bytes a scheme file may have")
    try:
        text = data.decode("utf-8-sig")  # spreadsheet programs write a byte-order mark
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SchemeError(f"{path}: line {line}: not UTF-8 text (byte "
                          f"0x{data[exc.start]:02x})") from None
    return parse_scheme_text(text, source=str(path), default_name=path.stem)


def parse_scheme_text(text: str, *, source: str = "<scheme>",
                      default_name: str = "custom") -> ClassScheme:
    """Parse the text of a scheme file; errors read ``SOURCE: line N: problem``."""
    name, kind, header, rows = default_name, "blood", None, []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"line {number}"
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            directive = _DIRECTIVE.match(stripped)
            if directive and header is None:
                key, value = directive.group(1).lower(), directive.group(2)
                if key == "kind" and value.lower() not in KINDS:
                    _fail(source, where, f"kind {value[:20]!r} is not one of {', '.join(KINDS)}")
                if key == "name" and not value:
                    _fail(source, where, "empty scheme name")
                name, kind = (value, kind) if key == "name" else (name, value.lower())
            continue
        fields = [f.strip() for f in next(csv.reader(io.StringIO(stripped)))]
        if header is None:
            header = _header(fields, source, where)
            continue
        if len(rows) == MAX_CLASSES:
            _fail(source, where, f"more than {MAX_CLASSES} classes")
        rows.append((_row(fields, header, source, where), where))
    if not rows:
        _fail(source, "", "no class defined" + ("" if header else
                                                f" (expected a header {','.join(COLUMNS)})"))
    try:
        check_class_rows(rows, max_code=UNIDENTIFIED - 1)
        for c, where in rows:
            if c.hotkey == UNIDENTIFIED_CLASS.hotkey:
                raise SchemeError(f"{where}: hotkey 'u' is reserved for unidentified")
            if c.name.strip().lower() == UNIDENTIFIED_CLASS.name:
                raise SchemeError(f"{where}: name 'unidentified' is reserved for code 255")
    except SchemeError as exc:
        raise SchemeError(f"{source}: {exc}") from None
    return ClassScheme(name, tuple(c for c, _ in rows) + (UNIDENTIFIED_CLASS,), kind)


def _header(fields: list[str], source: str, where: str) -> list[str]:
    header = [f.lower().replace("color", "colour") for f in fields]
    if header != list(COLUMNS[:len(header)]) or len(header) < len(_REQUIRED):
        _fail(source, where, f"header {','.join(fields)[:80]!r} must be "
                             f"{','.join(COLUMNS)} (group and hotkey may be left out)")
    return header


def _row(fields: list[str], header: list[str], source: str, where: str) -> CellClass:
    if len(fields) > len(header):
        _fail(source, where, f"{len(fields)} fields, the header has {len(header)}")
    values = dict(zip(COLUMNS, fields + [""] * (len(COLUMNS) - len(fields))))
    if not re.fullmatch(r"[0-9]{1,6}", values["code"]):
        _fail(source, where, f"code {values['code'][:20]!r} is not a whole number")
    return CellClass(int(values["code"]), values["name"], values["colour"].lower(),
                     " ".join(values["group"].lower().split()), values["hotkey"].lower())


def _fail(source: str, where: str, problem: str):
    raise SchemeError(f"{source}: {where + ': ' if where else ''}{problem}")


def scheme_to_csv(scheme: ClassScheme) -> str:
    """The text of a scheme file that reads back as ``scheme``."""
    out = io.StringIO()
    out.write(f"# name: {scheme.name}\n# kind: {scheme.kind}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in scheme.classes:
        if c.code != UNIDENTIFIED:
            writer.writerow((c.code, c.name, c.color, c.group, c.hotkey))
    return out.getvalue()


def save_scheme(scheme: ClassScheme, path) -> Path:
    """Write ``scheme`` as a scheme file (atomically: an old file stays whole on failure)."""
    from ..io.atomic import write_text_atomic

    return write_text_atomic(Path(path), scheme_to_csv(scheme))

"""One entry point for a report file: the format follows the file's suffix."""
from __future__ import annotations

import errno
from pathlib import Path

from ..io.atomic import write_bytes_atomic
from .html import render_html
from .model import ReportData, ReportError
from .pdf import render_pdf

__all__ = ["FORMATS", "report_bytes", "report_format", "write_report"]

FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf"}


def report_format(path) -> str:
    """``"html"`` or ``"pdf"`` from the suffix of ``path``; ``ReportError`` otherwise."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ReportError(f"{path}: the report file must end in .pdf or .html")
    return fmt


def report_bytes(data: ReportData, fmt: str) -> bytes:
    """The report as ``fmt`` ("html", UTF-8, or "pdf")."""
    if fmt == "html":
        return render_html(data).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(data)
    raise ReportError(f"unknown report format {fmt!r}: html or pdf")


def write_report(data: ReportData, path) -> Path:
    """Render ``data`` in the format of ``path``'s suffix and write it atomically: a
    failed write (disk full) leaves any file already at ``path`` as it was and raises one
    :class:`ReportError` line."""
    path = Path(path)
    content = report_bytes(data, report_format(path))
    try:
        return write_bytes_atomic(path, content)
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or exc)
        raise ReportError(f"cannot write {path}: {reason}; nothing was written") from None

"""Signing: a case's report frozen as a numbered version inside the project.

``PROJECT/reports/<case_id>/v<N>/report.{html,pdf,json}``: the HTML and the PDF of the
same :class:`.model.ReportData` (reviewer and UTC signing time filled in), and the JSON
of that data without pixels plus the SHA-256 of the other two files.  The files are
made read-only (0444).  A signed version is never rewritten: the version folder is
claimed with an exclusive ``mkdir``, so a later signature (or two at once) gets the next
number and the old one stays.  Every file is written atomically, the JSON last, so a
version with a ``report.json`` is complete; a failed write (disk full) removes what it
had written of the new version and raises one :class:`.model.ReportError` line.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import write_bytes_atomic, write_text_atomic
from ..io.safe_json import UnsafeJSONError, load_json_file
from ..review import CaseError, check_case_id
from .data import build_report_data, check_reviewer, now_utc
from .html import render_html
from .model import ReportError
from .pdf import render_pdf

__all__ = ["REPORTS_DIR", "READ_ONLY", "SignedReport", "read_signed_json", "reports_folder",
           "sign_case", "signed_versions"]

REPORTS_DIR = "reports"
READ_ONLY = 0o444
NAMES = {"html": "report.html", "pdf": "report.pdf", "json": "report.json"}
MAX_VERSIONS = 10_000
_VERSION = re.compile(r"v([1-9][0-9]{0,5})")


@dataclass(frozen=True)
class SignedReport:
    version: int
    html_path: Path
    pdf_path: Path
    json_path: Path


def reports_folder(project_dir, case_id: str) -> Path:
    """``PROJECT/reports/<case_id>``; ``ReportError`` for a bad id or a folder that leads
    out of the project (a symbolic link)."""
    try:
        check_case_id(case_id)
    except CaseError as exc:
        raise ReportError(str(exc)) from None
    project = Path(project_dir)
    folder = project / REPORTS_DIR / case_id
    if not folder.resolve().is_relative_to(project.resolve()):
        raise ReportError(f"{folder} leads out of the project folder; not writing there")
    return folder


def _versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir()
                  if p.is_dir() and (m := _VERSION.fullmatch(p.name)))


def _signed(folder: Path, version: int) -> SignedReport:
    v = folder / f"v{version}"
    return SignedReport(version, v / NAMES["html"], v / NAMES["pdf"], v / NAMES["json"])


def signed_versions(project_dir, case_id: str) -> list[SignedReport]:
    """The complete signed versions of a case (those with their ``report.json``), oldest
    first."""
    folder = reports_folder(project_dir, case_id)
    return [s for s in map(lambda n: _signed(folder, n), _versions(folder))
            if s.json_path.is_file()]


def read_signed_json(report: SignedReport) -> dict:
    """The signed record of a version (bounded JSON read); ``ReportError`` if unreadable."""
    try:
        return load_json_file(report.json_path)
    except (UnsafeJSONError, OSError) as exc:
        raise ReportError(f"{report.json_path}: not readable ({exc})") from None


def _claim_version(folder: Path) -> int:
    """Create the next ``v<N>`` folder; an exclusive mkdir, so no two signers share one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {folder}: {exc.strerror or exc}") from None
    n = (_versions(folder) or [0])[-1] + 1
    for _ in range(100):
        if n > MAX_VERSIONS:
            break
        try:
            (folder / f"v{n}").mkdir()
            return n
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise ReportError(f"cannot create {folder / f'v{n}'}: {exc.strerror or exc}") \
                from None
    raise ReportError(f"{folder}: no free version number (at most {MAX_VERSIONS})")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign_case(project_dir, case_id: str, reviewer: str, *, intervals=None,
              max_per_class: int = 24) -> SignedReport:
    """Sign the report of ``case_id`` as ``reviewer``: a new read-only version.

    Raises :class:`ReportError` (nothing of the new version left behind) for an empty
    reviewer name, any reason :func:`.data.build_report_data` refuses, or a failed write.
    """
    reviewer = check_reviewer(reviewer, required=True)
    folder = reports_folder(project_dir, case_id)
    data = build_report_data(project_dir, case_id, reviewer=reviewer, intervals=intervals,
                             max_per_class=max_per_class)
    version = _claim_version(folder)
    signed = _signed(folder, version)
    try:
        data.version, data.signed_at = version, now_utc()
        html = render_html(data).encode("utf-8")
        pdf = render_pdf(data)
        for path, content in ((signed.html_path, html), (signed.pdf_path, pdf)):
            write_bytes_atomic(path, content)
            os.chmod(path, READ_ONLY)
        record = data.to_json()
        record["files"] = {NAMES["html"]: _sha256(html), NAMES["pdf"]: _sha256(pdf)}
        write_text_atomic(signed.json_path, json.dumps(record, indent=1) + "\n")
        os.chmod(signed.json_path, READ_ONLY)
    except BaseException as exc:
        _discard(signed)
        if isinstance(exc, OSError):
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or exc)
            raise ReportError(f"cannot write the signed report of case {case_id} in "
                              f"{folder}: {reason}; nothing was signed") from None
        raise
    return signed


def _discard(signed: SignedReport) -> None:
    """Remove the files of a version that failed part way, then its folder."""
    for path in (signed.json_path, signed.pdf_path, signed.html_path):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        signed.json_path.parent.rmdir()
    except OSError:
        pass


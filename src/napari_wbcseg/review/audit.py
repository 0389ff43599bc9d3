"""The audit trail: who changed which cell's class, from what to what, and when.

Stored in ``PROJECT/audit.json``, appended to and never edited::

    {"format": "napari-wbcseg-audit", "version": 1,
     "entries": [{"image": "field 1", "cell_id": 12, "action": "reclassify",
                  "from_code": 1, "to_code": 3, "who": "jdoe",
                  "when": "2026-12-02T09:41:07+00:00"}, ...]}

Actions and their codes: ``reclassify`` (to a class code 1..255), ``unidentified``
(to 255), ``delete`` (a non-white cell removed: to 0) and ``accept`` (the class was
checked and kept: to = from).  The GUI records entries in an :class:`AuditLog` as the
user edits and writes them with :meth:`AuditLog.flush` (one file rewrite per flush).
"""
from __future__ import annotations

import getpass
import numbers
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from ..schema import UNIDENTIFIED
from .errors import CaseError
from .store import project_names, read_list, write_list

AUDIT_FILE = "audit.json"
FORMAT = "napari-wbcseg-audit"
ACTIONS = ("reclassify", "unidentified", "delete", "accept", "restore")  # restore: an undone delete
MAX_ENTRIES = 150_000  # ~170 bytes each: within store.MAX_FILE_BYTES
MAX_CELL_ID = 2**63 - 1


def current_user() -> str:
    """The login name of whoever runs napari, ``"unknown"`` when the system has none."""
    try:
        name = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (containers): any failure
        return "unknown"
    return name if name and name.isprintable() and len(name) <= 200 else "unknown"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AuditEntry:
    image: str
    cell_id: int
    action: str
    from_code: int
    to_code: int  # 0 for delete
    who: str
    when: str  # ISO 8601 with a time zone (UTC when made here)

    def __post_init__(self):
        check_entry(self)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d) -> "AuditEntry":
        names = [f.name for f in fields(cls)]
        if not isinstance(d, dict) or set(d) != set(names):
            raise CaseError(f"an audit entry needs exactly {', '.join(names)}: {str(d)[:80]!r}")
        return cls(**d)


def check_entry(e: AuditEntry) -> None:
    """``CaseError`` unless every field of ``e`` has its type and range, and the codes
    fit the action."""
    if not isinstance(e.image, str) or not e.image or len(e.image) > 1000:
        raise CaseError(f"audit entry: image name {str(e.image)[:80]!r} is not a name")
    where = f"audit entry for {e.image[:80]!r}"
    if not _is_int(e.cell_id) or not 1 <= e.cell_id <= MAX_CELL_ID:
        raise CaseError(f"{where}: cell id {str(e.cell_id)[:40]!r} is not a positive integer")
    where += f" cell {e.cell_id}"
    if e.action not in ACTIONS:
        raise CaseError(f"{where}: action {str(e.action)[:40]!r} is not one of {ACTIONS}")
    for key in ("from_code", "to_code"):
        v = getattr(e, key)
        if not _is_int(v) or not 0 <= v <= 255:
            raise CaseError(f"{where}: {key} {str(v)[:40]!r} is not a class code 0..255")
    if e.from_code == 0:
        raise CaseError(f"{where}: from_code 0 is background, not a cell's class")
    want = {"delete": 0, "unidentified": UNIDENTIFIED, "accept": e.from_code,
            "restore": e.from_code}.get(e.action)
    if want is not None and e.to_code != want:
        raise CaseError(f"{where}: {e.action} must have to_code {want}, got {e.to_code}")
    if e.action == "reclassify" and e.to_code == 0:
        raise CaseError(f"{where}: reclassify to 0 is a delete")
    if not isinstance(e.who, str) or not e.who or len(e.who) > 200 or not e.who.isprintable():
        raise CaseError(f"{where}: reviewer {str(e.who)[:80]!r} is not a printable name")
    try:
        ok = isinstance(e.when, str) and len(e.when) <= 64
        when = datetime.fromisoformat(e.when) if ok else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise CaseError(f"{where}: time {str(e.when)[:80]!r} is not ISO 8601 with a time zone")


def read_audit(project_dir, images: Iterable[str] | None = None) -> list[AuditEntry]:
    """The trail in the order it was written; only the entries of ``images`` when given.

    Entries of images since removed from the project are kept (the trail is history).
    """
    path = Path(project_dir) / AUDIT_FILE
    out = []
    for d in read_list(path, FORMAT, "entries", MAX_ENTRIES):
        try:
            out.append(AuditEntry.from_json(d))
        except CaseError as exc:
            raise CaseError(f"{path}: {exc}") from None
    if images is not None:
        keep = set(images)
        out = [e for e in out if e.image in keep]
    return out


def append_audit(project_dir, entries: Iterable[AuditEntry]) -> None:
    """Add ``entries`` at the end of the trail (one atomic rewrite of ``audit.json``).

    Refuses the whole batch (nothing written) when an entry names an image that is not
    in the project or the trail would exceed :data:`MAX_ENTRIES`.
    """
    entries = list(entries)
    if not entries:
        return
    for e in entries:
        if not isinstance(e, AuditEntry):
            raise CaseError(f"append_audit takes AuditEntry objects, got {type(e).__name__}")
    names = set(project_names(project_dir))
    unknown = [e.image for e in entries if e.image not in names]
    if unknown:
        raise CaseError(f"audit entry for image {unknown[0][:80]!r}, which is not in the project")
    old = read_audit(project_dir)  # a corrupt trail is reported, never overwritten
    if len(old) + len(entries) > MAX_ENTRIES:
        raise CaseError(f"the audit trail would exceed {MAX_ENTRIES} entries; not written")
    write_list(Path(project_dir) / AUDIT_FILE, FORMAT, "entries",
               [e.to_json() for e in old + entries])


def last_actions(entries: Iterable[AuditEntry]) -> dict[tuple[str, int], AuditEntry]:
    """The latest entry per ``(image, cell_id)``: e.g. which cells stand accepted."""
    return {(e.image, e.cell_id): e for e in entries}


class AuditLog:
    """Entries the GUI records as the user edits, written by :meth:`flush`.

    A failed flush keeps the entries, so the next flush writes them.
    """

    def __init__(self, who: str | None = None):
        self.who = who or current_user()
        self._pending: list[AuditEntry] = []

    @property
    def pending(self) -> tuple[AuditEntry, ...]:
        return tuple(self._pending)

    def record(self, image: str, cell_id: int, action: str, from_code: int, to_code: int,
               *, when: str | None = None) -> AuditEntry:
        entry = AuditEntry(image, _plain(cell_id), action, _plain(from_code), _plain(to_code),
                           self.who, when or now_utc())
        self._pending.append(entry)
        return entry

    def flush(self, project_dir) -> int:
        """Append the pending entries of the project's images to its trail; returns how
        many.  Entries of images the project does not hold (yet) stay pending, so that one
        image closed before it was saved cannot block the trail of all the others."""
        if not self._pending:
            return 0
        names = set(project_names(project_dir))
        ready = [e for e in self._pending if e.image in names]
        if ready:
            append_audit(project_dir, ready)
        self._pending[:] = [e for e in self._pending if e.image not in names]
        return len(ready)


def _plain(v):
    """numpy integers (from label arrays) as ``int``; anything else as given, for checking."""
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)

"""One audit trail per napari viewer, shared by the Correct dock and the review gallery.

:func:`audit_log` gives the viewer's ``review.audit.AuditLog`` (made on first use, keyed on
the viewer itself, not on the proxy napari hands each plugin, and dropped when the
viewer's window closes).  Every dock of that viewer records into it;
:func:`flush_audit` writes its pending entries into a project: after each project save
of that viewer (``project_panel``) and before a report or signature (the case panel, in
its worker, after the project's files: :func:`take_pending` / :func:`put_back`).

:class:`EditTrail` is the Correct dock's side: the class changes and deletions of its own
edits (set class, delete, merge) and of their undo and redo, each recorded once, when it
happened on the layers.  The gallery's class keys go through those edits, so only its
*accept* is recorded by the gallery itself.
"""
from __future__ import annotations

import weakref
from collections import deque

from napari.utils.notifications import show_warning

from ..review.audit import AuditLog
from ..schema import UNIDENTIFIED

_LOGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
UNDO_LIMIT = 100  # as many steps as core.correction_state.UndoGroups keeps


def _unwrapped(viewer):
    """The viewer itself: napari hands each plugin widget its own proxy of it."""
    return getattr(viewer, "__wrapped__", viewer)


def audit_log(viewer) -> AuditLog:
    """The viewer's audit log (made on first use)."""
    key = _unwrapped(viewer)
    log = _LOGS.get(key)
    if log is None:
        log = _LOGS[key] = AuditLog()
        window = getattr(getattr(key, "window", None), "_qt_window", None)
        if window is not None:  # the window closing drops the log with its viewer
            ref = weakref.ref(key)
            window.destroyed.connect(lambda *_: _LOGS.pop(ref(), None) if ref() else None)
    return log


def has_log(viewer) -> bool:
    return _unwrapped(viewer) in _LOGS


def flush_audit(viewer, folder) -> int:
    """Append the viewer's pending entries to the project at ``folder``; how many.

    Raises ``review.CaseError`` (an image not in the project, a corrupt trail) or
    ``OSError``; the entries are then kept for the next flush."""
    log = _LOGS.get(_unwrapped(viewer))
    return log.flush(folder) if log is not None else 0


def flush_after_save(viewer, folder) -> int:
    """:func:`flush_audit` after a project save: a failure is one warning, entries kept."""
    try:
        return flush_audit(viewer, folder)
    except (ValueError, OSError) as exc:  # CaseError is a ValueError
        show_warning(f"Audit trail not saved: {exc}; kept for the next save")
        return 0


def take_pending(viewer) -> AuditLog | None:
    """Hand the viewer's pending entries over (to flush in a worker thread, after the
    project's files): the viewer records into a fresh log meanwhile.  None if none."""
    key = _unwrapped(viewer)
    log = _LOGS.get(key)
    if log is None or not log.pending:
        return None
    _LOGS[key] = AuditLog(log.who)
    return log


def put_back(viewer, taken: AuditLog | None) -> None:
    """The entries ``taken`` still holds (its flush failed) go back before those the
    viewer recorded since."""
    if taken is None or not taken.pending:
        return
    key = _unwrapped(viewer)
    merged = AuditLog(taken.who)
    for e in (*taken.pending, *(_LOGS[key].pending if key in _LOGS else ())):
        merged.record(e.image, e.cell_id, e.action, e.from_code, e.to_code, when=e.when)
    _LOGS[key] = merged


def action_of(to_code: int) -> str:
    return "delete" if to_code == 0 else "unidentified" if to_code == UNIDENTIFIED else "reclassify"


def written_code(edit) -> int | None:
    """The class code an edit wrote on the cell-type layer (set class, merge), else None."""
    if "cell_type" not in edit.changes:
        return None
    values = edit.changes["cell_type"][1]
    return int(values[0]) if values.size else None


def _codes(ls) -> dict:
    """Cell id -> class code of the layer set ``ls`` as last counted (the count's code)."""
    counts = ls.live.counts if ls.live.counts is not None else ls.live.current()
    return counts.table["class_code"]


class EditTrail:
    """The Correct dock's reclassifications: ``(cell, from, to)`` per step, 0 = gone.

    An undo (redo) records the reverse (the same) changes only when the layers show them:
    the step undone may be a brush stroke's, which is not one of these.  An undone
    delete (the cell is back) is a ``reclassify`` from its class to the same class."""

    def __init__(self, viewer):
        self._viewer = viewer
        self._undo: deque = deque(maxlen=UNDO_LIMIT)
        self._redo: deque = deque(maxlen=UNDO_LIMIT)

    def reset(self) -> None:
        """Another layer set (its own undo history) is attached."""
        self._undo.clear()
        self._redo.clear()

    def before(self, ls):
        return _codes(ls)

    def edited(self, ls, before, targets: dict) -> None:
        """An edit of ``ls`` succeeded: ``targets`` {cell: new code, 0 gone, None kept}."""
        changes = []
        for cid, to in targets.items():
            frm = int(before[cid]) if cid in before.index else 0
            if to is not None and frm and frm != to:
                changes.append((int(cid), frm, int(to)))
        self._redo.clear()
        if changes:
            self._undo.append((ls.name, tuple(changes)))
            self._record(ls.name, changes)

    def other_edit(self) -> None:
        """An edit that changes no class (fill, split): the redo steps are void."""
        self._redo.clear()

    def replayed(self, ls, forward: bool) -> None:
        """``ls`` just undid (``forward``: redid) one step."""
        stack, other = (self._redo, self._undo) if forward else (self._undo, self._redo)
        if not stack or stack[-1][0] != ls.name:
            return
        name, changes = stack[-1]
        now = _codes(ls)
        for cid, frm, to in changes:
            want = to if forward else frm
            if (int(now[cid]) if cid in now.index else 0) != want:
                return  # not this step's undo (e.g. a brush stroke's)
        stack.pop()
        other.append((name, changes))
        self._record(name, changes if forward else
                     [(cid, frm, frm) if to == 0 else (cid, to, frm) for cid, frm, to in changes])

    def _record(self, image: str, changes) -> None:
        log = audit_log(self._viewer)
        for cid, frm, to in changes:
            action = "restore" if to == frm else action_of(to)  # to == frm: an undone delete
            try:
                log.record(image, cid, action, frm, to)
            except ValueError as exc:  # a code the trail cannot hold (e.g. over 255)
                show_warning(f"Audit trail: {exc}; not recorded")

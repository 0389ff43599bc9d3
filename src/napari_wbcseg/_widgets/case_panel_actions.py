"""What the case panel's buttons do (a mixin of ``CasePanel``), off the GUI thread.

Each button first saves what the viewer shows: on the GUI thread a snapshot of the
layers (``project_panel.snapshot_for_project``), the project lock (held by the Correct
dock, so one window writes) and the viewer's pending audit entries (``viewer_audit``:
every reclassification of either dock); in a worker the project's files, those audit
entries (after the files: a new image is in the project by then), the case
(``review.save_case``) and then the draft report (``report.write_report``) or the signed
version (``report.sign_case``), so a report never misses an edit made before the click.  A report or signature of a case with no
counted cell is refused before anything is written.  Every failure is one notification.
"""
from __future__ import annotations

from pathlib import Path

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from ..io.project import ProjectError
from ..report import ReportError, build_report_data, check_reviewer, sign_case, write_report
from ..report.render import report_format
from ..report.sign import REPORTS_DIR
from ..review import Case, CaseError, count_arrays, model_record, save_case
from .correction_layers import find_layer_sets
from .project_panel import mark_saved, notify_project_saved, snapshot_for_project, write_project
from .viewer_audit import put_back, take_pending

KNOWN_ERRORS = (CaseError, ReportError, ProjectError, OSError)
WHAT = {"save": "Save case", "report": "Report", "sign": "Sign"}


def project_folder(viewer, dock) -> Path | None:
    """The project the viewer's images belong to: the Correct dock's (opened or saved
    there), else the one folder named by the label layers' metadata; None if unknown."""
    if dock is not None and getattr(dock, "project_dir", None):
        return Path(dock.project_dir)
    folders = {layer.metadata.get("project") for layers in find_layer_sets(viewer.layers).values()
               for layer in layers.values()} - {None}
    return Path(folders.pop()) if len(folders) == 1 else None


def layer_models(sets) -> list[tuple[str, str]]:
    """(name, kind) of the segmentation models and classifiers that made the open layers."""
    found = []
    for layers in sets.values():
        meta = layers["nucleus"].metadata
        for key, kind in (("model", "segmentation"), ("classifier", "classifier")):
            name = meta.get(key)
            if isinstance(name, str) and name and (name, kind) not in found:
                found.append((name, kind))
    return found


def _fields(entries) -> list[tuple]:
    return [(e["nucleus"], e["cytoplasm"], e["cell_type"], e["reviewed_cells"] or ())
            for e in entries]


def run_case_job(folder: Path, entries: list[dict], case: Case, models: list, action: str,
                 out=None, reviewer: str = "", audit=None):
    """Any thread: write the project, the ``audit`` log's entries (a ``review.AuditLog``
    no other thread records into), the case, then the report (``out``) or signature.
    Returns ``(saved image names, case, result)``; raises one of ``KNOWN_ERRORS``."""
    if action != "save":
        classes = entries[0]["classes"]
        count = count_arrays(_fields(entries), classes, case.target, case.wbc_count)
        if count.total + count.unidentified == 0:
            raise ReportError(f"case {case.case_id} has no counted cells (border cells are "
                              "left out): nothing to report; nothing was written")
    records = []
    for name, kind in models:
        try:
            records.append(model_record(name, kind))
        except CaseError:  # a model no longer installed: the case keeps what it had
            pass
    case.models = records or case.models
    saved = write_project(folder, entries)
    if audit is not None:  # before the case and report: the report prints the trail
        audit.flush(folder)
    case.images = list(saved)
    case = save_case(folder, case, replace=True)
    result = None
    if action == "report":
        data = build_report_data(folder, case.case_id, reviewer=reviewer)
        result = write_report(data, out)
    elif action == "sign":
        result = sign_case(folder, case.case_id, reviewer)
    return saved, case, result


class CaseActions:
    worker = None  # the running save / report / signature

    # ---- the buttons ------------------------------------------------------------------------
    def save_case(self):
        """Save the project and this case (returns the worker, or None when refused)."""
        return self._start("save")

    def make_report(self, path=None):
        """Save, then write a draft report at ``path`` (asked for when None)."""
        path = path or self._ask_report_path()
        if not path:
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".pdf")
        return self._start("report", out=path)

    def sign(self):
        """Save, ask to confirm, then sign the report as the reviewer (a new version)."""
        try:
            reviewer = check_reviewer(self.reviewer.value, required=True)
        except ReportError as exc:
            show_error(f"Sign: {exc}")
            return None
        case_id = self.case_id.value.strip()
        if not self._confirm(f"Sign the report of case {case_id or '(no id)'} as {reviewer}?"
                             "\n\nThe project and the case are saved first. A signed report "
                             "is read-only; signing again makes a new version."):
            return None
        return self._start("sign", reviewer=reviewer)

    # ---- the job ------------------------------------------------------------------------------
    def _prepare(self, action: str, out):
        """GUI thread: (folder, entries, sets, case, models), or None after one notification."""
        what = WHAT[action]
        dock = self.gallery.correction_dock(create=False)
        folder = project_folder(self.viewer, dock)
        if folder is None:
            show_error(f"{what}: save the images as a project first (Correct dock, "
                       "Save project...); a case belongs to a project")
            return None
        try:
            case = self.case_from_fields()
            if out is not None:
                report_format(out)
                if Path(out).resolve().is_relative_to((folder / REPORTS_DIR).resolve()):
                    raise ReportError(f"{out}: drafts go outside {folder / REPORTS_DIR}, "
                                      "which holds the signed versions")
            entries, skipped, sets = snapshot_for_project(self.viewer)
        except KNOWN_ERRORS as exc:
            show_error(f"{what}: {exc}")
            return None
        if skipped:
            show_error(f"{what}: no image layer for {skipped}; open them with their images")
            return None
        dock = dock or self.gallery.correction_dock(create=True)
        if getattr(dock, "project_worker", None) is not None:
            show_error(f"{what}: the Correct dock is still opening or saving the project; "
                       "try again when it is done")
            return None
        if not dock._lock_project(folder, what):
            return None
        return dock, folder, entries, sets, case, layer_models(sets)

    def _start(self, action: str, out=None, reviewer: str = ""):
        if self.worker is not None:
            show_info(f"{WHAT[action]}: the previous one is still running")
            return None
        prepared = self._prepare(action, out)
        if prepared is None:
            return None
        dock, folder, entries, sets, case, models = prepared
        what = WHAT[action]
        reviewer = reviewer or self.reviewer.value.strip()
        audit = take_pending(self.viewer)  # the worker writes these; new edits go to a new log

        def done(value):
            saved, case, result = value
            mark_saved(sets, saved, folder)
            dock.project_dir = folder
            notify_project_saved(self.viewer, folder)
            self.saved_case = case
            self._show_done(action, case, result)

        def errored(exc):
            show_error(f"{what}: {exc}" if isinstance(exc, KNOWN_ERRORS)
                       else f"{what} failed: {exc}")

        def finished():
            self.worker = None
            put_back(self.viewer, audit)  # what a failed job did not write: the next save
            self._set_busy(False)

        worker = thread_worker(run_case_job, start_thread=False, ignore_errors=True)(
            folder, entries, case, models, action, out, reviewer, audit)
        worker.returned.connect(lambda v: None if self.closed else done(v))
        worker.errored.connect(lambda exc: None if self.closed else errored(exc))
        worker.finished.connect(finished)
        self.worker = worker
        self._set_busy(True)
        worker.start()
        return worker

    def _show_done(self, action: str, case: Case, result) -> None:
        n = len(case.images)
        fields = f"{n} field{'s' if n != 1 else ''}"
        if action == "save":
            text = f"Saved case {case.case_id} ({fields}) in {case_folder(self)}"
        elif action == "report":
            text = f"Draft report of case {case.case_id} ({fields}) written to {result}"
        else:
            text = (f"Signed case {case.case_id} as {self.reviewer.value.strip()}: version "
                    f"{result.version}, {result.pdf_path} (read-only)")
        self.status.value = text
        show_info(text)

    def _set_busy(self, busy: bool) -> None:
        for button in (self.save_case_button, self.report_button, self.sign_button):
            button.enabled = not busy

    # ---- dialogs (replaced in tests) ------------------------------------------------------------
    def _ask_report_path(self) -> str:
        from qtpy.QtWidgets import QFileDialog

        start = str(Path.home() / f"{self.case_id.value.strip() or 'report'}.pdf")
        path, _ = QFileDialog.getSaveFileName(None, "Write a draft report", start,
                                              "PDF (*.pdf);;HTML (*.html)")
        return path

    def _confirm(self, question: str) -> bool:
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(None, "Sign the report", question)
        return answer == QMessageBox.StandardButton.Yes


def case_folder(panel) -> str:
    dock = panel.gallery.correction_dock(create=False)
    return str(project_folder(panel.viewer, dock) or "the project")

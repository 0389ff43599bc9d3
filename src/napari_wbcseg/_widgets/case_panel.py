"""The case panel of the review gallery: one slide's identifiers, target and WBC count,
and the buttons that save the case, write a draft report and sign it.

A case (``review.Case``) is one slide; its fields are the project images open in the
viewer.  The project folder is the one the Correct dock opened or saved (else the one
the layers' metadata names).  Opening a project restores its case here (the case whose
images are open), and its target into the gallery's count.  The work is done by
``case_panel_actions`` (a worker; one notification per failure).  See docs/review.md.
"""
from __future__ import annotations

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton, SpinBox
from napari.utils.notifications import show_warning

from ..io.project import ProjectError, read_project
from ..review import DEFAULT_TARGETS, KINDS, Case, CaseError, current_user, read_cases
from ..review.case import TARGET_RANGE, WBC_COUNT_MAX
from . import project_panel
from .case_panel_actions import CaseActions, project_folder
from .correction_layers import find_layer_sets
from .tooltips import apply_tooltips

CASE = {
    "case_id": "the case (one slide): 1-64 letters, digits, '.', '_' or '-'; saving under "
               "an id the project has replaces that case",
    "slide_id": "the slide's identifier as the lab writes it (printed on the report)",
    "kind": "blood or marrow: sets the target to 100 or 500 cells (any target may be set "
            "after, e.g. 200)",
    "case_target": "cells to count over the case's fields; the gallery's count follows it",
    "wbc_count": "the blood's white cell count in 10^9/L, for absolute counts on the "
                 "report; 0 = not given",
    "reviewer": "who reviews and signs the report (default: your login name)",
    "save_case_button": "save the project (labels, review marks, audit trail) and this case; "
                        "its fields are the project images open in the viewer",
    "report_button": "save the case, then write a draft report (.pdf or .html) where you "
                     "choose",
    "sign_button": "save the case, then sign its report as the reviewer: a new read-only "
                   "version in PROJECT/reports/<case>/ (earlier versions are kept)",
}


def _row(*widgets) -> Container:
    row = Container(layout="horizontal", labels=False, widgets=widgets)
    row.margins = (0, 0, 0, 0)
    return row


class CasePanel(CaseActions, Container):
    """Compact form for a narrow dock; ``gallery``: the review gallery it sits in."""

    def __init__(self, gallery):
        super().__init__(labels=True)
        self.margins = (0, 4, 0, 0)
        self.gallery = gallery
        self.viewer = gallery._viewer
        self.saved_case: Case | None = None  # as last saved or restored
        self.heading = Label(value="<b>Case and report</b>")
        self.heading.label = ""
        self.case_id = LineEdit(label="case")
        self.slide_id = LineEdit(label="slide")
        self.kind = ComboBox(label="kind", choices=list(KINDS), value=KINDS[0])
        self.case_target = SpinBox(label="target", value=DEFAULT_TARGETS[KINDS[0]],
                                   min=TARGET_RANGE[0], max=TARGET_RANGE[1])
        self.wbc_count = FloatSpinBox(label="WBC 10⁹/L", value=0.0, min=0.0,
                                      max=WBC_COUNT_MAX, step=0.1)
        self.reviewer = LineEdit(label="reviewer", value=current_user())
        self.save_case_button = PushButton(text="Save case")
        self.report_button = PushButton(text="Report...")
        self.sign_button = PushButton(text="Sign...")
        self.status = Label(value="")
        self.status.label = ""
        self.status.native.setWordWrap(True)
        self.buttons = _row(self.save_case_button, self.report_button, self.sign_button)
        self.buttons.label = ""
        self.extend([self.heading, self.case_id, self.slide_id, self.kind, self.case_target,
                     self.wbc_count, self.reviewer, self.buttons, self.status])
        apply_tooltips(self, CASE)
        self.kind.changed.connect(self._on_kind)
        self.case_target.changed.connect(self._to_gallery_target)
        if hasattr(gallery, "target"):
            gallery.target.changed.connect(self._from_gallery_target)
        self.save_case_button.changed.connect(lambda *_: self.save_case())
        self.report_button.changed.connect(lambda *_: self.make_report())
        self.sign_button.changed.connect(lambda *_: self.sign())
        project_panel.on_project_opened(self._on_project_opened, viewer=self.viewer)
        folder = project_folder(self.viewer, gallery.correction_dock(create=False))
        if folder is not None:  # a project opened before the gallery
            self.restore(folder)
        self._to_gallery_target(self.case_target.value)

    @property
    def closed(self) -> bool:
        return bool(getattr(self.gallery, "_closed", False))

    # ---- fields ------------------------------------------------------------------------------
    def _on_kind(self, kind) -> None:
        self.case_target.value = DEFAULT_TARGETS.get(kind, self.case_target.value)

    def _to_gallery_target(self, value) -> None:
        target = getattr(self.gallery, "target", None)
        if target is not None and target.value != value:
            target.value = value

    def _from_gallery_target(self, value) -> None:
        if self.case_target.value != value:
            self.case_target.value = value

    def case_from_fields(self) -> Case:
        """The case the fields describe (images filled in when saved); ``CaseError``."""
        case_id = self.case_id.value.strip()
        before = self.saved_case if self.saved_case and self.saved_case.case_id == case_id \
            else None
        wbc = float(self.wbc_count.value)
        return Case(case_id, self.slide_id.value.strip(), [], kind=self.kind.value,
                    target=int(self.case_target.value), wbc_count=wbc if wbc > 0 else None,
                    notes=before.notes if before else "",
                    models=list(before.models) if before else []).validate()

    def show_case(self, case: Case) -> None:
        self.saved_case = case
        self.case_id.value = case.case_id
        self.slide_id.value = case.slide_id
        self.kind.value = case.kind  # sets the kind's default target, replaced next
        self.case_target.value = case.target
        self.wbc_count.value = case.wbc_count or 0.0
        n = len(case.images)
        self.status.value = f"Case {case.case_id}: {n} field{'s' if n != 1 else ''}"

    # ---- the project -------------------------------------------------------------------------
    def _on_project_opened(self, folder) -> None:
        if self.closed:  # the gallery closed: stop listening
            project_panel.on_project_opened(self._on_project_opened, remove=True)
            return
        self.restore(folder)

    def restore(self, folder) -> Case | None:
        """Show the project's case whose images are open (most of them), if it has one;
        else the project's kind (blood or marrow, from its class scheme)."""
        try:
            cases = read_cases(folder)
        except CaseError as exc:
            show_warning(f"Case: {exc}")
            return None
        open_names = set(find_layer_sets(self.viewer.layers))
        best = max(cases.values(), key=lambda c: len(open_names & set(c.images)), default=None)
        if best is not None and open_names & set(best.images):
            self.show_case(best)
            return best
        try:
            kind = read_project(folder).class_scheme().kind
        except (ProjectError, OSError):
            return None
        if kind in KINDS:
            self.kind.value = kind
        return None


def add_case_panel(gallery) -> CasePanel:
    """Append a case panel to the review gallery dock (called by ``ReviewGallery``)."""
    panel = CasePanel(gallery)
    gallery.append(panel)
    gallery.case_panel = panel
    return panel

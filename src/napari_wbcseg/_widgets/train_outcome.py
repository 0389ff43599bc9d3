"""The end of a run in the Train dock: the question when a fine-tune is not better than its
starting model, and the notifications and status line of the outcome.

A run of the dock is started with ``if_worse="ask"``: when no epoch beats the starting
model, nothing is saved yet and :func:`ask_if_worse` asks whether to keep the starting
model (save nothing) or to save the fine-tune all the same.  Tests set the dock's
``worse_answer`` ("keep" / "save") instead of answering a dialog.
"""
from __future__ import annotations

KEEP, SAVE = "keep", "save"


def ask_if_worse(dock, worse) -> str:
    """``KEEP`` or ``SAVE``: the dock's ``worse_answer`` if set, else the user's answer."""
    if dock.worse_answer in (KEEP, SAVE):
        return dock.worse_answer
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox(dock.native)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Fine-tune not better than the starting model")
    text = worse.message()
    box.setText(f"{text[:1].upper()}{text[1:]}.")
    box.setInformativeText(f"Keep {worse.base} (nothing is saved), or save the fine-tune "
                           "anyway (its model card notes the lower score)?")
    keep = box.addButton(f"Keep {worse.base}", QMessageBox.ButtonRole.RejectRole)
    save = box.addButton("Save anyway", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    return SAVE if box.clickedButton() is save else KEEP  # closed without a choice: keep


def keep_starting_model(outcome) -> None:
    """The user kept the starting model: the run is not saved (its checkpoint stays)."""
    outcome.pending = None
    outcome.messages.append(f"{outcome.worse.message()}: nothing was saved; "
                            f"{outcome.worse.base} stays the model to use")


def report(dock, outcome, progress, notify) -> None:
    """Notifications (``notify``: show_info / show_warning / show_error of the dock) and
    the final status line of ``outcome``; the bar is full only for a run that did all
    its work (a stopped run keeps the share it did)."""
    show_info, show_warning, show_error = notify
    r = outcome.result
    for message in outcome.messages:
        show_warning(f"Train: {message}")
    ckpt = r.checkpoint if r is not None else None
    if outcome.error:
        show_error(f"Train: {outcome.error}" + (f" (the checkpoint {ckpt} is kept: free "
                                                "some space and press Resume)" if ckpt else ""))
    if outcome.saved:
        dock.refresh_models()
        also = (f" and its cell classifier {outcome.classifier!r}" if outcome.classifier
                else "")
        show_info(f"Train: saved model {outcome.name!r}{also}; it is in the Segment "
                  "widget's model list now")
        dock.model_to_export.value = outcome.name
        dock.name.value = dock._fresh_name()
    if r is None:
        dock.status.value = "stopped before training: nothing saved"
        return
    if r.stopped in ("finished", "early-stopping") and not outcome.error:
        dock.progress.max = dock.progress.value = max(progress.value, 1)
    best = (f"best validation score {r.best_score:.3f} at epoch {r.best_epoch}"
            if r.best_validation else f"best epoch {r.best_epoch}")
    if outcome.worse is not None:
        best += f", not above the starting model's {outcome.worse.baseline:.3f}"
    saved = f"saved as {outcome.name}" if outcome.saved else "not saved"
    if outcome.classifier:
        saved += f" (cell classifier {outcome.classifier})"
    how = (f"{progress.stopped_text()} ({r.seconds:.0f} s)" if r.stopped == "user" else
           f"{r.stopped} after {r.seconds:.0f} s")
    dock.status.value = f"{how}, {best}; {saved}"


def epoch_note(score: float, improved: bool, baseline: float | None) -> str:
    """" (best)" only for an epoch better than the earlier ones and the starting model."""
    if baseline is not None and not score > baseline:
        return f" (not above the starting model's {baseline:.3f})"
    return " (best)" if improved else ""

"""Adding a fresh result's label layers one step per event-loop turn.

Adding a 2048x1536 Labels layer costs napari ~0.1-0.2 s on the GUI thread (slicing, the
vispy node) and the cell type's outline ~0.1 s more, computed when the layer is first
shown.  Done in one turn, the three layers froze the viewer for ~0.7 s.  Here each layer
is added hidden and styled in one turn, and shown in a later one; a zero-delay timer runs
the next step, so paints and input are handled in between.  A step whose layers or source
image were removed meanwhile (or a closed viewer: its layers are cleared) drops the rest
and removes what it had added, so no partial set stays behind.
"""
from __future__ import annotations

from qtpy.QtCore import QTimer


class StagedLayers:
    """Add ``specs`` ([(kind, data, add_labels keywords, style(layer))]) to ``viewer``.

    ``start(done, dropped)`` runs the steps from ``parent``'s event loop (a timer owned by
    ``parent``: a deleted dock runs none and removes what was added) and calls ``done(layers)`` after the last one,
    or ``dropped()`` when ``wanted()`` turns false before a step; ``run_now()`` does every
    step at once (a result handed in without a running worker, e.g. from a script).
    """

    def __init__(self, viewer, specs, wanted=lambda: True, parent=None):
        self._viewer, self._wanted = viewer, wanted
        self.layers: dict = {}
        self._steps = [*(lambda s=s: self._add(*s) for s in specs),
                       *(lambda k=k: self._show(k) for k, *_ in specs)]
        self._done = self._dropped = None
        self._timer = None
        self._parent = parent
        self.active = False

    def _add(self, kind, data, kwargs, style) -> None:
        self.layers[kind] = style(self._viewer.add_labels(data, visible=False, **kwargs))

    def _show(self, kind) -> None:
        self.layers[kind].visible = True

    def run_now(self) -> dict:
        for step in self._steps:
            step()
        self._steps = []
        return self.layers

    def start(self, done, dropped) -> None:
        self._done, self._dropped, self.active = done, dropped, True
        self._timer = QTimer(self._parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._next)
        self._timer.start(0)
        if self._parent is not None:  # a deleted dock (its timer with it) leaves no partial set
            self._parent.destroyed.connect(self._on_destroyed)

    def _intact(self) -> bool:
        return self._wanted() and all(lay in self._viewer.layers for lay in self.layers.values())

    def _next(self) -> None:
        if not self.active:
            return
        if not self._intact():
            self.stop()
            self._dropped()
            return
        if self._steps:
            self._steps.pop(0)()
            self._timer.start(0)
            return
        self._release()
        self._done(self.layers)

    def stop(self) -> None:
        """Run no more steps and remove the layers added so far (they were never shown
        as a result: no count, no checksum)."""
        self._release()
        self._steps = []
        for layer in self.layers.values():
            if layer in self._viewer.layers:
                self._viewer.layers.remove(layer)
        self.layers = {}

    def _on_destroyed(self, *_) -> None:
        self._timer = self._parent = None  # deleted, the timer with it
        self.stop()

    def _release(self) -> None:
        if not self.active:
            return
        self.active = False
        if self._timer is not None:
            self._timer.stop()
        if self._parent is not None:
            self._parent.destroyed.disconnect(self._on_destroyed)


class StagedReplace(StagedLayers):
    """Write a new result into existing ``layers``, one layer per event-loop turn.

    ``writes``: ``[(kind, write())]``, each putting the new data, table and metadata into
    ``layers[kind]`` (~0.1 s of napari's slicing and painting per 2048x1536 layer, ~0.2 s
    for the cell type's outline: together in one turn they froze the viewer ~0.3 s).
    ``restore(kinds)`` puts back what the writes of ``kinds`` overwrote: a stop, or a layer
    or the source image removed before the last write, leaves the earlier set whole,
    never half old and half new.
    """

    def __init__(self, viewer, layers, writes, restore, wanted=lambda: True, parent=None):
        super().__init__(viewer, [], wanted, parent)
        self.layers = dict(layers)
        self._restore, self._written = restore, []
        self._steps = [lambda k=k, w=w: self._write(k, w) for k, w in writes]

    def _write(self, kind, write) -> None:
        write()
        self._written.append(kind)

    def stop(self) -> None:
        """Run no more writes and put back those done (on the layers still open)."""
        self._release()
        self._steps = []
        written, self._written = self._written, []
        self._restore([k for k in written if self.layers[k] in self._viewer.layers])

"""The files of one segmented field, shared by ``napari-wbcseg segment`` and ``batch``.

One function so the two paths cannot drift: ``<stem>_nucleus.tif``,
``<stem>_cytoplasm.tif``, ``<stem>_celltype.tif`` and ``<stem>_cells.csv``, each written
atomically (a crash leaves the old file or none, never half of one).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

LABEL_KINDS = ("nucleus", "cytoplasm", "celltype")


def field_output_names(stem: str) -> list[str]:
    """The names of the files :func:`segment_field_to_files` writes for ``stem``."""
    return [f"{stem}_{kind}.tif" for kind in LABEL_KINDS] + [f"{stem}_cells.csv"]


def segment_field_to_files(image, stem: str, params, out, on_event=None, *,
                           write_guard=None):
    """Segment ``image`` with ``params`` (SegmentParams) and write its files into ``out``.

    ``on_event`` receives each :class:`~napari_wbcseg.inference.segment.SegmentEvent`;
    ``write_guard(path)`` is a context manager around each write (the CLI's turns an
    OSError into its one-line error).  Returns the
    :class:`~napari_wbcseg.inference.segment.Segmentation`.
    """
    from ..core.batch import run_to_end
    from ..inference.segment import segment_steps

    result = run_to_end(segment_steps(image, params), on_event)
    write_field_files(result, stem, out, write_guard=write_guard)
    return result


def write_field_files(result, stem: str, out, *, write_guard=None) -> list[Path]:
    """Write the label TIFFs and the per-cell table of ``result``; the paths written."""
    from ..io.writer import save_labels

    guard = write_guard or (lambda _path: contextlib.nullcontext())
    out = Path(out)
    written = []
    for kind, arr in (("nucleus", result.nucleus), ("cytoplasm", result.cytoplasm),
                      ("celltype", result.cell_type)):
        path = out / f"{stem}_{kind}.tif"
        with guard(path):
            save_labels(path, arr, name=f"{stem} {kind}")
        written.append(path)
    written.append(write_cells_csv(result.table, stem, out, guard))
    return written


def write_cells_csv(table, stem: str, out, guard) -> Path:
    """``<stem>_cells.csv``: the per-cell table with the field's stem as first column."""
    from ..io.writer import save_table

    table = table.copy()
    table.insert(0, "image", stem)
    path = Path(out) / f"{stem}_cells.csv"
    with guard(path):
        save_table(path, table)
    return path

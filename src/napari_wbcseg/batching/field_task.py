"""The task run on a worker for one field (module level: workers unpickle it by name).

One field at a time per worker process (a lock): torch runs it on as many threads as the
worker has (``torch.set_num_threads``), so a worker of 2 threads is one field on 2 cores,
not two fields fighting over them.  The model stays cached in the worker process
(``inference.predictor``), bf16 follows ``inference.precision``'s automatic choice.

Every failure of the field becomes a ``failed`` summary with one line; a full disk is
flagged (``disk_full``) so the client stops the batch.
"""
from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path

from .field_outputs import field_output_names

_ONE_FIELD_AT_A_TIME = threading.Lock()
_threads_set: int | None = None
# test hook: a path; the first task that finds no file there creates it and kills its worker
KILL_ONCE_ENV = "NAPARI_WBCSEG_TEST_KILL_WORKER_ONCE"


def field_summary(result, stem: str, case: str, params) -> dict:
    """Cells, per-class counts (border cells left out, and all) and cells to check."""
    from dataclasses import replace

    diff = params.differential(result.table)
    with_border = replace(params, include_border_cells=True).differential(result.table)
    return {"stem": stem, "case": case, "status": "done", "error": "",
            "cells": int(len(result.table)),
            "counts": {str(r["class"]): int(r["count"]) for _, r in diff.iterrows()},
            "counts_with_border": {str(r["class"]): int(r["count"])
                                   for _, r in with_border.iterrows()},
            "border_left_out": int(diff.attrs["border_left_out"]),
            "to_check": int(diff.attrs.get("to_check", 0)),
            "seconds": round(float(result.timings.get("total_s", 0.0)), 3),
            "device": str(result.device), "model_name": str(result.model),
            "messages": [str(m) for m in result.messages][:20],
            "outputs": field_output_names(stem)}


def run_field(path: str, stem: str, case: str, params, out: str) -> dict:
    """Segment the field at ``path`` into ``out``; a small picklable summary."""
    with _ONE_FIELD_AT_A_TIME:
        _set_threads()
        _test_kill_hook()
        t0 = time.perf_counter()
        marker = None
        try:
            marker = _mark_in_flight(Path(out), stem)
            summary = _segment(Path(path), stem, case, params, Path(out))
        except OSError as exc:
            summary = _failed(stem, case, f"{Path(path).name}: {exc.strerror or exc}",
                              t0, disk_full=exc.errno == errno.ENOSPC)
        except (ValueError, KeyError) as exc:  # ImageFormatError, ModelNotFoundError, ...
            text = str(exc) if Path(path).name in str(exc) else f"{Path(path).name}: {exc}"
            summary = _failed(stem, case, text, t0)
        except Exception as exc:  # noqa: BLE001 - recorded as the field's error, not hidden
            summary = _failed(stem, case, f"{Path(path).name}: unexpected "
                              f"{type(exc).__name__}: {exc}", t0)
        finally:
            if marker is not None:
                with contextlib.suppress(OSError):
                    marker.unlink()
        summary["worker_pid"] = os.getpid()
        return summary


def in_flight_marker(out: Path, stem: str) -> Path:
    """``out/.wbcseg-in-flight-<stem>`` (a long stem by its hash: names stop at 255 bytes)."""
    if len(stem.encode("utf-8", "surrogateescape")) > 200:
        import hashlib

        stem = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return out / f".wbcseg-in-flight-{stem}"


def _mark_in_flight(out: Path, stem: str) -> Path:
    """Create ``stem``'s in-flight marker, first removing the temporary files of an attempt
    that died with its marker still there (killed mid-write).  Only then is the folder
    listed: after a lab's day of 6000 fields it holds 24000 files, and four listings a
    field cost 58 ms (``atomic_path`` removes its own temporary file on any exception)."""
    marker = in_flight_marker(out, stem)
    if marker.exists():
        remove_leftovers(out, stem)
    out.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return marker


def _segment(path: Path, stem: str, case: str, params, out: Path) -> dict:
    lazy = None
    try:
        from .large_field import open_lazy_field, segment_large_field
    except ImportError:  # no large-field support: every field is read whole
        open_lazy_field = segment_large_field = None
    if open_lazy_field is not None:
        lazy = open_lazy_field(path)
    if lazy is not None:
        result = segment_large_field(lazy, params, out, stem)
    else:
        from ..io.imread import read_image

        from .field_outputs import segment_field_to_files

        result = segment_field_to_files(read_image(path), stem, params, out)
    return field_summary(result, stem, case, params)


def _failed(stem, case, error: str, t0: float, disk_full: bool = False) -> dict:
    return {"stem": stem, "case": case, "status": "failed",
            "error": " ".join(error.split())[:500], "disk_full": disk_full,
            "seconds": round(time.perf_counter() - t0, 3), "outputs": []}


def sweep_in_flight(out: Path, stems) -> int:
    """At the end of a batch: the in-flight markers and temporary files of ``stems``, left
    by attempts that were cancelled or killed (a batch stopped by a full disk or Ctrl-C);
    one listing of the folder.  Returns the number of files removed."""
    stems = list(stems)
    markers = {in_flight_marker(out, s).name for s in stems}
    outputs = {name for s in stems for name in field_output_names(s)}
    removed = 0
    try:
        entries = list(os.scandir(out))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        # atomic_path's temporary files: ".<output name>.<random><output suffix>"
        if name in markers or (name.startswith(".") and name[1:].rsplit(".", 2)[0] in outputs):
            with contextlib.suppress(OSError):
                os.remove(entry.path)
                removed += 1
    return removed


def remove_leftovers(out: Path, stem: str) -> None:
    """Delete temporary files of ``stem`` left by a killed writer (``atomic_path``'s
    ``.<name>.<random><suffix>`` beside each output); lists the folder."""
    for name in field_output_names(stem):
        for tmp in out.glob(f".{_glob_escape(name)}.*"):
            try:
                tmp.unlink()
            except OSError:
                pass


def _glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def _set_threads() -> None:
    """torch threads = this worker's thread count (once per process)."""
    global _threads_set
    n = _worker_threads()
    if n and n != _threads_set:
        import torch

        torch.set_num_threads(n)
        _threads_set = n


def _worker_threads() -> int | None:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None  # not on a dask worker (tests calling run_field directly)


def _test_kill_hook() -> None:
    marker = os.environ.get(KILL_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)  # the worker dies mid-task, as an OOM kill would

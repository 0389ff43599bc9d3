"""``batch(inputs, out, ...)``: many fields through ``segment``'s code on dask.distributed.

One task per field; the client alone writes the manifest (after each finished field) and
the summaries.  A failed field is recorded with its line and the batch goes on; a worker
lost mid-task is retried by dask (``distributed.scheduler.allowed-failures``); a full disk
stops the batch (:class:`DiskFullError`); Ctrl-C cancels the rest.  Either way the
manifest is a complete file listing the fields finished so far.
"""
from __future__ import annotations

import errno
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BatchError, DiskFullError

SEGMENT_OPTIONS = ("device", "preprocess", "cell_diameter", "pixel_size_um", "tile",
                   "classifier", "class_threshold", "include_border_cells", "classes", "tta",
                   "coarse_pass")


@dataclass(frozen=True)
class BatchEvent:
    kind: str  # "start" (message: the dashboard address or ""), "field", "end"
    done: int
    total: int
    message: str = ""
    entry: dict | None = None


@dataclass
class BatchResult:
    out: Path
    entries: list = field(default_factory=list)  # manifest entries of this batch's fields
    done: int = 0  # segmented in this run
    skipped: int = 0  # already done with the same input and model
    failed: list = field(default_factory=list)  # the failed entries
    dashboard: str = ""
    summary_csv: Path | None = None
    stopped: str = ""  # why the batch stopped early ("" = it ran to the end)


def batch(inputs, out, *, workers=None, threads_per_worker=None, scheduler=None, model=None,
          case_from: str = "folder", progress=None, scheduler_timeout_s: float = 10.0,
          **segment_options) -> BatchResult:
    """Segment every field of ``inputs`` (files, folders, globs) into ``out``.

    ``scheduler``: None (a LocalCluster of ``workers`` x ``threads_per_worker``, by default
    one single-threaded worker per core), a scheduler address (``tcp://host:8786``), a
    ``distributed.Client`` or a cluster object (dask-jobqueue's ``SLURMCluster``).
    ``segment_options`` are :class:`~napari_wbcseg.inference.segment.SegmentParams` fields
    (``device``, ``cell_diameter``, ``classifier``, ``class_threshold``, ``classes``, ...).
    ``progress(BatchEvent)`` is called at the start and after each field.

    Raises (all ``ValueError``): :class:`BatchError` for bad inputs or settings,
    :class:`SchedulerUnreachableError`, :class:`ModelMissingOnWorkerError`,
    :class:`BatchLockedError` (another batch writes into ``out``), :class:`DiskFullError`.
    """
    from ..inference.segment import SegmentParams
    from .fields import plan_fields
    from .lock import BatchLock
    from .manifest import Manifest

    unknown = sorted(set(segment_options) - set(SEGMENT_OPTIONS))
    if unknown:
        raise TypeError(f"batch() got unknown options: {', '.join(unknown)}")
    try:
        params = SegmentParams(model=model, **segment_options)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    out = _out_dir(out)
    with BatchLock(out):
        manifest = Manifest.load(out)
        fields = plan_fields(inputs, case_from, manifest.stems_by_input())
        checksum, model_info = _model_checksum(params)
        result = BatchResult(out)
        todo, keys = [], {}
        for f in fields:
            keys[f.stem] = _input_key(f.path, manifest.entries.get(f.stem))
            if manifest.is_current(f.stem, keys[f.stem]["input_sha256"], checksum):
                manifest.entries[f.stem]["case"] = f.case  # --case-from may have changed
                result.skipped += 1
            else:
                todo.append(f)
        try:
            if todo:
                _run(todo, keys, params, checksum, model_info, manifest, result, progress,
                     scheduler, workers, threads_per_worker, scheduler_timeout_s, len(fields))
        finally:
            _flush(manifest, result)
            if todo:
                from .field_task import sweep_in_flight

                sweep_in_flight(out, [f.stem for f in todo])
            result.entries = [manifest.entries[f.stem] for f in fields
                              if f.stem in manifest.entries]
            result.failed = [e for e in result.entries if e.get("status") == "failed"]
        if result.stopped:
            raise DiskFullError(result.stopped, result)
        from .summary import write_summaries

        try:
            result.summary_csv = write_summaries(out, manifest, params, model_info)
        except OSError as exc:
            raise DiskFullError(f"{out}: cannot write the summaries ({exc.strerror or exc}); "
                                "the fields are done and in manifest.json", result) from None
    if progress is not None:
        progress(BatchEvent("end", len(fields), len(fields)))
    return result


def _run(todo, keys, params, checksum, model_info, manifest, result, progress, scheduler,
         workers, threads_per_worker, timeout_s, total) -> None:
    from distributed import as_completed

    from .cluster import BatchClient
    from .field_task import run_field

    with BatchClient(scheduler, workers, threads_per_worker, timeout_s) as bc:
        result.dashboard = bc.dashboard
        clf = params.classifier if str(params.classifier).endswith(".safetensors") else \
            (model_info["classifier"] if model_info["classifier_sha256"] else "")
        label = f"model {model_info['model']}" + (f" / classifier {clf}" if clf else "")
        bc.check_model(label, (params.model, clf, model_info["model_sha256"],
                               model_info["classifier_sha256"]))
        if progress is not None:
            progress(BatchEvent("start", result.skipped, total, result.dashboard))
        run = uuid.uuid4().hex[:8]
        futures = {bc.client.submit(run_field, str(f.path), f.stem, f.case, params,
                                    str(manifest.out), key=f"wbcseg-{run}-{f.stem}",
                                    pure=False): f for f in todo}
        finished = 0
        try:
            for fut in as_completed(list(futures)):
                f = futures.pop(fut)
                summary = _summary(fut, f)
                if summary.get("disk_full"):
                    result.stopped = (f"{manifest.out}: the disk is full ({summary['error']}); "
                                      "the batch stopped, manifest.json lists the fields done")
                    break
                entry = dict(summary, input=str(f.path), model=checksum, **keys[f.stem])
                entry.pop("disk_full", None)
                try:
                    manifest.record(f.stem, entry)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    result.stopped = (f"{manifest.out}: the disk is full; the batch stopped, "
                                      "manifest.json lists the fields done before")
                    break
                result.done += summary["status"] == "done"
                finished += 1
                if progress is not None:
                    progress(BatchEvent("field", result.skipped + finished, total, f.stem,
                                        entry))
        finally:  # Ctrl-C, a full disk: nothing more is started
            if futures:
                bc.client.cancel(list(futures))


def _summary(fut, f) -> dict:
    """The task's summary, or a failed one when the task itself raised (a worker lost more
    often than dask retries, an exception that could not be pickled)."""
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - recorded as the field's one-line error
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        return {"stem": f.stem, "case": f.case, "status": "failed",
                "error": f"{f.path.name}: {text}", "outputs": [], "seconds": 0.0}


def _flush(manifest, result) -> None:
    try:
        manifest.save()
    except OSError as exc:
        if not result.stopped:
            result.stopped = (f"{manifest.path}: cannot be written ({exc.strerror or exc}); "
                              "it lists the fields done before")


def _model_checksum(params):
    from .model_key import model_checksum

    try:
        return model_checksum(params)
    except (KeyError, ValueError, OSError) as exc:
        raise BatchError(str(exc).strip("'\"")) from None


def _input_key(path: Path, entry: dict | None) -> dict:
    """size, mtime and sha256 of an input; the sha256 of an unchanged file (same size and
    mtime as its manifest entry) is reused instead of reading it again."""
    from .manifest import sha256_path

    try:
        st = path.stat()
    except OSError:
        return {"input_sha256": "", "input_size": -1, "input_mtime_ns": -1}
    key = {"input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}
    if entry and all(entry.get(k) == v for k, v in key.items()) and entry.get("input_sha256"):
        return dict(key, input_sha256=entry["input_sha256"])
    try:
        return dict(key, input_sha256=sha256_path(path))
    except OSError:
        return dict(key, input_sha256="")


def _out_dir(out) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BatchError(f"{out}: the folder is not writable")
    return out

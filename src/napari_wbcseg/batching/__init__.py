"""Batch segmentation of many fields on dask.distributed (no Qt; dask imported lazily).

:func:`napari_wbcseg.batch` (``run.batch``) runs one task per field on a LocalCluster or
an existing scheduler; every field goes through :func:`.field_outputs.segment_field_to_files`,
the same code as ``napari-wbcseg segment``.  A manifest makes reruns skip finished fields.
See ``docs/batch.md``.
"""
from __future__ import annotations

from .errors import (BatchError, BatchLockedError, DiskFullError, ModelMissingOnWorkerError,
                     SchedulerUnreachableError)

__all__ = ["BatchError", "BatchLockedError", "DiskFullError", "ModelMissingOnWorkerError",
           "SchedulerUnreachableError", "batch"]


def __getattr__(name):
    if name == "batch":
        from .run import batch

        return batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

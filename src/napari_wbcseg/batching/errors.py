"""The batch's errors: each a ``ValueError`` with a one-line message (the CLI prints it)."""
from __future__ import annotations


class BatchError(ValueError):
    """A batch that cannot start or had to stop; the message says why in one line."""


class SchedulerUnreachableError(BatchError):
    """The dask scheduler address given does not answer."""


class ModelMissingOnWorkerError(BatchError):
    """The model (or classifier) cannot be found on some workers; the message names them."""


class BatchLockedError(BatchError):
    """Another batch is writing into the same output folder."""


class DiskFullError(BatchError):
    """The output folder ran out of space: the batch stopped, the manifest lists what is done.

    ``result`` is the :class:`~.run.BatchResult` of the fields finished before the stop.
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result

"""One batch per output folder: ``OUT/.wbcseg-batch-lock``, the project lock's mechanism
(O_CREAT|O_EXCL; a lock of a dead process on this host is taken over)."""
from __future__ import annotations

from ..review.errors import CaseError
from ..review.lock import ProjectLock, ProjectLockedError
from .errors import BatchError, BatchLockedError

BATCH_LOCK_FILE = ".wbcseg-batch-lock"


class BatchLock(ProjectLock):
    """``with BatchLock(out): ...``; :class:`BatchLockedError` when another batch holds it."""

    def __init__(self, out_dir):
        super().__init__(out_dir)
        self.path = self.project_dir / BATCH_LOCK_FILE

    def acquire(self) -> "BatchLock":
        try:
            return super().acquire()
        except ProjectLockedError as exc:
            raise BatchLockedError(str(exc)) from None
        except CaseError as exc:
            raise BatchError(str(exc)) from None

    def _refusal(self, holder) -> str:
        if holder is None:
            return (f"{self.project_dir} is locked by an unreadable {BATCH_LOCK_FILE}; if no "
                    "other batch writes there, delete that file")
        return (f"another batch is writing into {self.project_dir} (pid "
                f"{str(holder.get('pid'))[:20]} on {str(holder.get('host'))[:100]}, since "
                f"{str(holder.get('since'))[:40]}); wait for it or choose another --out")

"""One writer per project: a lock file ``PROJECT/.wbcseg-lock`` made with O_CREAT|O_EXCL.

The file holds ``{"pid", "host", "since", "token"}`` of its holder.  A second
:class:`ProjectLock` (another napari window, another process, or another object in the
same process: the lock is held per object) is refused with :class:`ProjectLockedError`.
A lock left by a process that is gone (same host, pid not alive) is taken over; a lock
from another host is honoured, since its pid cannot be checked from here.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from pathlib import Path

from ..io.safe_json import UnsafeJSONError, load_json_file
from .audit import now_utc
from .errors import CaseError

LOCK_FILE = ".wbcseg-lock"
_MAX_LOCK_BYTES = 4096


class ProjectLockedError(CaseError):
    """The project is held by another writer; the message names it."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (assumed so where it cannot be told)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return True
    return True


class ProjectLock:
    """``with ProjectLock(folder): ...`` or :meth:`acquire` / :meth:`release`."""

    def __init__(self, project_dir):
        self.project_dir = Path(project_dir)
        self.path = self.project_dir / LOCK_FILE
        self._token: str | None = None

    @property
    def held(self) -> bool:
        return self._token is not None

    def acquire(self) -> "ProjectLock":
        if self.held:
            return self
        token = uuid.uuid4().hex
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_utc(),
                "token": token}
        try:  # a project about to be saved for the first time has no folder yet
            self.project_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseError(f"{self.project_dir}: cannot create the project folder "
                            f"({exc.strerror or exc})") from None
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if not self._stale(holder):
                    raise ProjectLockedError(self._refusal(holder)) from None
                if self._holder() == holder:  # still the dead one (not just taken over)
                    self.path.unlink(missing_ok=True)
                continue
            except OSError as exc:
                raise CaseError(f"{self.path}: cannot create the lock file "
                                f"({exc.strerror or exc})") from None
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(json.dumps(info) + "\n")
            except OSError as exc:  # disk full: leave no empty lock behind
                self.path.unlink(missing_ok=True)
                raise CaseError(f"{self.path}: cannot write the lock file "
                                f"({exc.strerror or exc})") from None
            self._token = token
            return self
        raise ProjectLockedError(self._refusal(self._holder()))

    def release(self) -> None:
        """Remove the lock file if this object holds it (a taken-over lock is left alone)."""
        if not self.held:
            return
        holder = self._holder()
        if isinstance(holder, dict) and holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def __enter__(self) -> "ProjectLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -----------------------------------------------------------------------------------

    def _holder(self) -> dict | None:
        """The lock file's content; None when it is unreadable (being written, or corrupt)."""
        try:
            d = load_json_file(self.path, max_bytes=_MAX_LOCK_BYTES)
        except UnsafeJSONError:
            return None
        return d if isinstance(d, dict) else None

    @staticmethod
    def _stale(holder: dict | None) -> bool:
        if holder is None:
            return False  # cannot tell: refuse rather than risk two writers
        pid = holder.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            return False
        return holder.get("host") == socket.gethostname() and not pid_alive(pid)

    def _refusal(self, holder: dict | None) -> str:
        if holder is None:
            return (f"{self.project_dir} is locked by an unreadable {LOCK_FILE}; if no other "
                    "napari window has this project open, delete that file")
        return (f"{self.project_dir} is open for writing in another napari window "
                f"(pid {str(holder.get('pid'))[:20]} on {str(holder.get('host'))[:100]}, "
                f"since {str(holder.get('since'))[:40]})")

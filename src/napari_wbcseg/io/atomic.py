"""The one atomic-write helper: a temporary file in the same folder, then ``os.replace``.

A crash, a full disk or a failing encoder never leaves a half-written file under the
final name, and an existing file there stays whole.  Files get ``0666 & ~umask`` (as
``open`` would), not ``mkstemp``'s 0600, so colleagues on a lab share can read them.

* :func:`atomic_path` - a context manager yielding a temporary path to write to by any
  means (tifffile, cv2, safetensors, torch.save); it replaces the target only when the
  block ends without an exception and the temporary file is non-empty.
* :func:`write_text_atomic` / :func:`write_bytes_atomic` - the common cases.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic", "file_mode"]


def file_mode() -> int:
    """``0666 & ~umask``: the mode a plain ``open(path, "w")`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None, allow_empty: bool = False):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    ``suffix`` is the temporary file's extension (default: the target's), for writers
    that choose the format from it (``cv2.imwrite``).  The parent folder is created.
    Raises :class:`OSError` when the writer produced nothing (an encoder that returns
    False without raising), unless ``allow_empty``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=ext, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        if not allow_empty and os.path.getsize(tmp) == 0:
            raise OSError(f"nothing was written to {path}")
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(path, data: bytes) -> Path:
    path = Path(path)
    with atomic_path(path, allow_empty=True) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text_atomic(path, text: str, encoding: str = "utf-8") -> Path:
    path = Path(path)
    with atomic_path(path, allow_empty=True) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return path

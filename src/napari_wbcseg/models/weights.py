"""Safe model weight files: safetensors, never pickle.

A weight file is a `safetensors <https://github.com/huggingface/safetensors>`_ file
(tensors + a string header; loading it never runs code) whose header holds

* ``"format": "napari-wbcseg"``, ``"format_version": "1"``;
* ``"metadata"``: JSON with at least ``architecture`` (a registry name) and
  ``config`` (the keywords that rebuild it), plus whatever the caller adds
  (class table, training data, metrics, ...), ``storage_dtype`` and
  ``sha256`` (of the tensor bytes, in key order: catches corruption that leaves
  the header intact).

:func:`build_from_file` rebuilds the model through the registry.  Every failure
to read or rebuild gives a one-line ``ValueError`` (``FileNotFoundError`` for a
missing path).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..io.atomic import atomic_path
from ..io.safe_json import UnsafeJSONError, loads_bounded

FORMAT = "napari-wbcseg"
FORMAT_VERSION = "1"
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}

__all__ = ["FORMAT", "FORMAT_VERSION", "build_from_file", "load_weights", "save_weights"]


def _safetensors():
    try:
        from safetensors import safe_open
        from safetensors.torch import save_file
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("reading and writing model weights needs the 'safetensors' "
                          "package: pip install 'safetensors>=0.4'") from exc
    return safe_open, save_file


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous().reshape(-1)
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(model: torch.nn.Module, path, metadata: dict | None = None, *,
                 dtype: str = "float32") -> Path:
    """Write ``model``'s state dict and ``metadata`` to ``path`` (safetensors).

    ``architecture`` and ``config`` are taken from the model (``model.architecture``,
    ``model.config``) unless ``metadata`` gives them.  ``dtype="float16"`` stores
    floating-point tensors in half precision (half the file size; converted back to
    float32 on load).  The file is written to a temporary name and renamed, so a
    crash never leaves a half-written file at ``path``.  Returns the path.
    """
    _, save_file = _safetensors()
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(STORAGE_DTYPES)}, got {dtype!r}")
    meta = dict(metadata or {})
    arch = getattr(model, "architecture", "") or meta.get("architecture")
    if meta.get("architecture", arch) != arch:
        raise ValueError(f"metadata says architecture {meta['architecture']!r} but the model "
                         f"is {arch!r}")
    if not arch:
        raise ValueError("the model has no 'architecture' name; pass metadata={'architecture': "
                         "<registry name>, 'config': {...}}")
    meta["architecture"] = arch
    meta.setdefault("config", getattr(model, "config", {}))
    meta["storage_dtype"] = dtype

    store = STORAGE_DTYPES[dtype]
    tensors = {}
    for key, t in model.state_dict().items():
        t = t.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(store)
        tensors[key] = t.contiguous().clone()  # clone: safetensors refuses shared storage
    meta["sha256"] = _digest(tensors)
    try:
        header = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "metadata": json.dumps(meta, sort_keys=True)}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None

    path = Path(path)
    with atomic_path(path) as tmp:  # 0666 & ~umask: a model file is for sharing
        save_file(tensors, tmp, metadata=header)
    return path


def load_weights(path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``path`` -> ``(state_dict, metadata)``; floating tensors come back as float32.

    Never unpickles.  A plain safetensors file without napari-wbcseg metadata loads
    with ``metadata == {}``.  Raises ``ValueError`` (one line) for a file that is not
    a readable safetensors file, fails its checksum or has a broken header.
    """
    safe_open, _ = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError and others
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path} is not a readable weight file (safetensors): {reason}") from None

    metadata: dict = {}
    if header.get("format") == FORMAT:
        if header.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} has weight format version {header.get('format_version')!r};"
                             f" this napari-wbcseg reads version {FORMAT_VERSION}")
        try:  # the header is the file author's: bounded in size and nesting
            metadata = loads_bounded(header.get("metadata", "{}"))
        except UnsafeJSONError as exc:
            raise ValueError(f"{path} has corrupt metadata: {exc}") from None
        if not isinstance(metadata, dict):
            raise ValueError(f"{path} has corrupt metadata: not a JSON object")
        expected = metadata.get("sha256")
        if expected is not None and _digest(tensors) != expected:
            raise ValueError(f"{path} is corrupt: the tensor checksum does not match")
    state = {key: (t.to(torch.float32) if t.is_floating_point() else t)
             for key, t in tensors.items()}
    return state, metadata


def build_from_file(path, *, map_location="cpu"):
    """Rebuild the model saved in ``path`` through the registry and load its weights.

    The model is returned in eval mode on ``map_location``, with the file's metadata
    as ``model.weights_metadata``.  Raises a one-line ``ValueError`` for a corrupt
    file, an unknown architecture, a bad config or weights that do not fit.
    """
    from . import create_model

    state, meta = load_weights(path)
    arch = meta.get("architecture")
    if not arch:
        raise ValueError(f"{path} does not say which architecture it holds "
                         "(no napari-wbcseg metadata)")
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"{path} has corrupt metadata: config is not a JSON object")
    try:
        model = create_model(arch, **config)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: cannot build the model: {exc}") from None

    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape", wrong)) if keys]
        raise ValueError(f"{path}: weights do not fit {arch!r}: " + "; ".join(parts))
    model.load_state_dict(state)
    model.weights_metadata = meta
    return model.to(map_location).eval()

"""The built-in schemes (CSV files shipped beside this module) and :func:`load_scheme`."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from .scheme import ClassScheme, SchemeError
from .scheme_file import parse_scheme_text, read_scheme_file

__all__ = ["BUILTIN_NAMES", "DEFAULT_SCHEME", "builtin_schemes", "load_scheme"]

BUILTIN_NAMES = ("blood-5part", "blood-extended", "marrow-icsh")
DEFAULT_SCHEME = "blood-5part"


@lru_cache(maxsize=1)
def _builtins() -> tuple[ClassScheme, ...]:
    here = resources.files(__package__)
    return tuple(parse_scheme_text(here.joinpath(f"{name}.csv").read_text("utf-8"),
                                   source=f"built-in scheme {name}", default_name=name)
                 for name in BUILTIN_NAMES)


def builtin_schemes() -> dict[str, ClassScheme]:
    """``{"blood-5part": ..., "blood-extended": ..., "marrow-icsh": ...}`` (a new dict each
    call; the schemes are frozen)."""
    return {s.name: s for s in _builtins()}


def load_scheme(name_or_path) -> ClassScheme:
    """A built-in scheme by name, or the scheme in a ``.csv`` file (see docs/schemes.md).

    Raises :class:`SchemeError` (one line) for an unknown name or a bad file.
    """
    if isinstance(name_or_path, ClassScheme):
        return name_or_path
    builtins = builtin_schemes()
    if isinstance(name_or_path, str) and name_or_path in builtins:
        return builtins[name_or_path]
    path = Path(name_or_path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise SchemeError(f"{str(name_or_path)[:200]}: neither a built-in scheme "
                          f"({', '.join(BUILTIN_NAMES)}) nor a .csv scheme file")
    return read_scheme_file(path)

"""Reference intervals a lab configures for its differential, and the report's flags.

The lab file is a small CSV, one row per class named as in the project's class table::

    # adult peripheral blood (example; replace with your lab's own)
    class,low_percent,high_percent,low_abs,high_abs
    neutrophil,40,75,2.0,7.5
    basophil,0,1,,

``low_abs`` / ``high_abs`` are in 10^9/L and may be left empty (as may the percentages).
Lines starting with ``#`` and blank lines are skipped.  The file is bounded (size, rows)
before it is parsed, and every problem is one :class:`IntervalsError` line naming the
file and the line.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..schema import UNIDENTIFIED

__all__ = ["COLUMNS", "IntervalsError", "MAX_BYTES", "MAX_ROWS", "ReferenceInterval",
           "differential_flags", "read_intervals"]

COLUMNS = ("class", "low_percent", "high_percent", "low_abs", "high_abs")
MAX_BYTES = 64 << 10  # a lab file is a few hundred bytes
MAX_ROWS = 256  # codes are 1..254, so more rows than that cannot all be classes


class IntervalsError(ValueError):
    """A reference-interval file that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class ReferenceInterval:
    code: int
    name: str
    low_percent: float | None = None
    high_percent: float | None = None
    low_abs: float | None = None  # 10^9/L
    high_abs: float | None = None


def read_intervals(path, classes) -> dict[int, ReferenceInterval]:
    """``{class code: ReferenceInterval}`` from the lab file ``path``.

    ``classes`` is the project's class table (``schema.CellClass`` tuple).  Raises
    :class:`IntervalsError` for a missing, too large or non-UTF-8 file, a wrong header,
    an unknown or repeated class name, a value that is not a finite non-negative number,
    a percentage over 100, or a low limit above its high one.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IntervalsError(f"{path}: cannot read the reference intervals "
                             f"({exc.strerror or exc})") from None
    if not path.is_file():
        raise IntervalsError(f"{path}: not a file")
    if size > MAX_BYTES:
        raise IntervalsError(f"{path}: {size} bytes is too large for a reference-interval "
                             f"file (at most {MAX_BYTES})")
    try:
        text = path.read_bytes()[:MAX_BYTES + 1].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IntervalsError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise IntervalsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return parse_intervals(text, classes, source=str(path))


def parse_intervals(text: str, classes, *, source: str = "intervals") -> dict[int, ReferenceInterval]:
    """:func:`read_intervals` on text already read."""
    by_name = {c.name.strip().lower(): c for c in classes if c.code != UNIDENTIFIED}
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise IntervalsError(f"{source}: no header line ({','.join(COLUMNS)})")
    if len(lines) > MAX_ROWS + 1:
        raise IntervalsError(f"{source}: {len(lines) - 1} rows, at most {MAX_ROWS}")
    rows = list(csv.reader(io.StringIO("\n".join(ln for _, ln in lines))))
    header = [h.strip().lower() for h in rows[0]]
    if tuple(header) != COLUMNS:
        raise IntervalsError(f"{source}: line {lines[0][0]}: the header must be "
                             f"{','.join(COLUMNS)}, got {','.join(header)[:120]}")
    out: dict[int, ReferenceInterval] = {}
    for (number, _), row in zip(lines[1:], rows[1:]):
        where = f"{source}: line {number}"
        if len(row) != len(COLUMNS):
            raise IntervalsError(f"{where}: {len(row)} values, expected {len(COLUMNS)}")
        name = row[0].strip()
        cls = by_name.get(name.lower())
        if cls is None:
            known = ", ".join(c.name for c in by_name.values())
            raise IntervalsError(f"{where}: unknown class {name[:60]!r}; the project's "
                                 f"classes are {known}")
        if cls.code in out:
            raise IntervalsError(f"{where}: class {cls.name!r} appears twice")
        lp, hp, la, ha = (_number(v, col, where) for v, col in zip(row[1:], COLUMNS[1:]))
        for v, col in ((lp, "low_percent"), (hp, "high_percent")):
            if v is not None and v > 100:
                raise IntervalsError(f"{where}: {col} {v:g} is over 100")
        for low, high, what in ((lp, hp, "percent"), (la, ha, "abs")):
            if low is not None and high is not None and low > high:
                raise IntervalsError(f"{where}: low_{what} {low:g} is above high_{what} {high:g}")
        out[cls.code] = ReferenceInterval(cls.code, cls.name, lp, hp, la, ha)
    return out


def _number(value: str, column: str, where: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        v = float(value)
    except ValueError:
        raise IntervalsError(f"{where}: {column} {value[:40]!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise IntervalsError(f"{where}: {column} {value[:40]!r} must be a finite number >= 0")
    return v


def _range(low, high, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}{unit}"
    return f">= {low:g}{unit}" if low is not None else f"<= {high:g}{unit}"


def _outside(value: float, low, high) -> str | None:
    if low is not None and value < low:
        return "below"
    if high is not None and value > high:
        return "above"
    return None


def differential_flags(rows, intervals, *, unidentified: int, counted: int,
                       target: int | None) -> list[str]:
    """One-line flags for the report, in reading order.

    ``rows`` are :class:`.data.ClassRow` (name, percent, absolute); ``intervals`` maps a
    class code to its :class:`ReferenceInterval` (or is empty).  Absolute flags only
    appear for rows with an absolute count (a WBC count was given).
    """
    flags = []
    for row in rows:
        ref = intervals.get(row.code)
        if ref is None:
            continue
        if row.percent is not None and (side := _outside(row.percent, ref.low_percent,
                                                          ref.high_percent)):
            flags.append(f"{row.name} {row.percent:.1f}% {side} the reference interval "
                         f"{_range(ref.low_percent, ref.high_percent, '%')}")
        if row.absolute is not None and (side := _outside(row.absolute, ref.low_abs,
                                                           ref.high_abs)):
            flags.append(f"{row.name} {row.absolute:.2f} x10^9/L {side} the reference "
                         f"interval {_range(ref.low_abs, ref.high_abs, ' x10^9/L')}")
    if unidentified:
        flags.append(f"{unidentified} unidentified cell{'s' if unidentified != 1 else ''} left")
    if target and counted < target:
        flags.append(f"target not reached: {counted} of {target}")
    return flags

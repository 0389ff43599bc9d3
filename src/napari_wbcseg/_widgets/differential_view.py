"""How both docks show a differential count: its table and a line about the cells
left out (cut by the image border) and the cells to check (low confidence).

The counting rule itself lives in ``core.measurements.differential_count``; this
module only formats its result, so the Segment and Correct docks never disagree.
"""
from __future__ import annotations

EMPTY_COUNTS = {"class": [], "count": [], "percent": []}


def counts_value(diff) -> dict:
    """Columns for a magicgui ``Table``: class, count, percent, then ``border left out``
    when some cell was left out and ``to check`` when ``diff`` has that column."""
    value = {
        "class": list(diff["class"]),
        "count": [int(c) for c in diff["count"]],
        "percent": [f"{p:.1f} %" for p in diff["percent"]],
    }
    if diff.attrs.get("border_left_out", 0):
        value["border left out"] = [int(c) for c in diff["border_left_out"]]
    if "to_check" in diff:
        value["to check"] = [int(c) for c in diff["to_check"]]
    return value


def summary_line(diff, table=None) -> str:
    """E.g. '2 border cells left out; 3 cells below 0.50 confidence to check'.

    ``table``: the per-cell table, to say how many border cells were counted when
    the differential kept them."""
    left_out = int(diff.attrs.get("border_left_out", 0))
    on_border = (int(table["touches_border"].sum())
                 if table is not None and "touches_border" in table else left_out)
    if left_out:
        parts = [f"{left_out} border cell{'s' * (left_out != 1)} left out"]
    elif on_border:
        parts = [f"{on_border} border cell{'s' * (on_border != 1)} counted"]
    else:
        parts = ["no cell cut by the border"]
    if "to_check" in diff.attrs:
        n = int(diff.attrs["to_check"])
        parts.append(f"{n} cell{'s' * (n != 1)} below {diff.attrs['check_below']:.2f} "
                     "confidence to check")
    return "; ".join(parts)

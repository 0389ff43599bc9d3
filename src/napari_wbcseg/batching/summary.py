"""The batch's summaries, from the manifest (fields skipped as done included):
``summary.csv`` (a row per field), ``differential.csv`` (all done fields, as ``segment``
writes it), ``cases/<case>_differential.csv`` and ``summary.html``.  All written atomically.
"""
from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

MAX_TABLE_BYTES = 256 << 20  # a field's cells.csv is kilobytes
BASE_COLUMNS = ["stem", "case", "input", "status", "cells", "to_check", "border_left_out",
                "seconds", "device", "error"]


def summary_rows(manifest) -> tuple[list[str], list[dict]]:
    """Columns and rows of summary.csv: the base columns, then a count per class (border
    cells left out) and ``<class>_with_border``, classes in the order first seen."""
    classes: dict[str, None] = {}
    for e in manifest.entries.values():
        classes.update(dict.fromkeys(e.get("counts") or {}))
    columns = BASE_COLUMNS + list(classes) + [f"{c}_with_border" for c in classes]
    rows = []
    for stem in sorted(manifest.entries):
        e = manifest.entries[stem]
        row = {c: e.get(c, "") for c in BASE_COLUMNS}
        row["stem"] = stem
        for c in classes:
            row[c] = (e.get("counts") or {}).get(c, 0 if e.get("status") == "done" else "")
            row[f"{c}_with_border"] = (e.get("counts_with_border") or {}).get(
                c, 0 if e.get("status") == "done" else "")
        rows.append(row)
    return columns, rows


def read_cells(manifest, stem: str):
    """The field's ``<stem>_cells.csv`` (inside the output folder, size bounded)."""
    import pandas as pd

    for p in manifest.output_paths(stem) or []:
        if p.name == f"{stem}_cells.csv":
            if p.stat().st_size > MAX_TABLE_BYTES:
                raise OSError(f"{p.name} is larger than {MAX_TABLE_BYTES} bytes")
            return pd.read_csv(p)
    return None


def write_summaries(out, manifest, params, model_info: dict) -> Path:
    """Write every summary file; the path of summary.csv."""
    import pandas as pd

    from ..io.atomic import write_text_atomic
    from ..io.writer import save_table
    from .fields import safe_name

    out = Path(out)
    columns, rows = summary_rows(manifest)
    summary_csv = out / "summary.csv"
    save_table(summary_csv, pd.DataFrame(rows, columns=columns).set_index("stem"))
    by_case: dict[str, list] = {}
    for stem in sorted(manifest.entries):
        e = manifest.entries[stem]
        if e.get("status") == "done":
            table = read_cells(manifest, stem)
            if table is not None:
                by_case.setdefault(str(e.get("case") or "unassigned"), []).append(table)
    diffs = {case: params.differential(tables) for case, tables in by_case.items()}
    if diffs:
        save_table(out / "differential.csv",
                   params.differential([t for ts in by_case.values() for t in ts]))
    for case, diff in diffs.items():
        save_table(out / "cases" / f"{safe_name(case)}_differential.csv", diff)
    write_text_atomic(out / "summary.html", summary_html(manifest, diffs, model_info))
    return summary_csv


def summary_html(manifest, diffs: dict, model_info: dict) -> str:
    """A short page: counts per case (border cells left out), the failures, model, date."""
    esc = html.escape
    entries = manifest.entries
    done = sum(e.get("status") == "done" for e in entries.values())
    failed = {s: e for s, e in sorted(entries.items()) if e.get("status") == "failed"}
    classes: list[str] = []
    for diff in diffs.values():
        classes += [str(c) for c in diff["class"] if str(c) not in classes]
    parts = ["<html><head><meta charset='utf-8'><title>Batch summary</title><style>"
             "body{font-family:sans-serif;margin:16px}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             ".name{text-align:left}.bad{color:#a00;text-align:left}</style>"
             "</head><body>",
             "<h2>Batch summary</h2>",
             f"<p>{done} field(s) done, {len(failed)} failed; model "
             f"<b>{esc(str(model_info.get('model', '?')))}</b> "
             f"(sha256 {esc(str(model_info.get('model_sha256', ''))[:12])}), classifier "
             f"{esc(str(model_info.get('classifier', '')))}; "
             f"{esc(_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'))}</p>",
             "<h3>Counts per case</h3><p>Cells cut by the field border are left out.</p>"]
    if diffs:
        parts.append("<table><tr><th class='name'>case</th><th>fields</th><th>cells</th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in classes) + "<th>to check</th></tr>")
        for case, diff in sorted(diffs.items()):
            n_fields = sum(e.get("case") == case and e.get("status") == "done"
                           for e in entries.values())
            by_name = dict(zip(diff["class"].astype(str), zip(diff["count"], diff["percent"])))
            cells = "".join(
                f"<td>{by_name[c][0]} ({by_name[c][1]:.0f}%)</td>" if c in by_name else "<td></td>"
                for c in classes)
            parts.append(f"<tr><td class='name'>{esc(case)}</td><td>{n_fields}</td>"
                         f"<td>{diff.attrs['total']}</td>{cells}"
                         f"<td>{diff.attrs.get('to_check', 0)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No field was segmented.</p>")
    parts.append(f"<h3>Failures ({len(failed)})</h3>")
    if failed:
        parts.append("<table><tr><th class='name'>field</th><th class='name'>error</th></tr>" + "".join(
            f"<tr><td class='name'>{esc(s)}</td><td class='bad'>"
            f"{esc(str(e.get('error', '')))}</td></tr>" for s, e in failed.items())
            + "</table>")
    else:
        parts.append("<p>None.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

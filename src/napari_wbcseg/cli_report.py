"""``napari-wbcseg report``: a case of an annotation project as a PDF or HTML report.

Without ``--sign`` the file is a draft (DRAFT on every page).  With ``--sign`` the
report is also signed into the project (``PROJECT/reports/<case>/v<N>/``, read-only, a
new version each time) and ``--out`` receives a copy of the signed file.  Every bad input
is one ``error:`` line and exit 2, with nothing half-written.
"""
from __future__ import annotations

from pathlib import Path

from .cli_args import check_out_file, int_range


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="write a case's report (PDF or HTML), optionally signed",
        description="Write the report of a reviewed case of an annotation project: the "
        "differential (counts, %%, absolute counts from the case's WBC count), flags "
        "against the lab's reference intervals, per-class cell galleries, the models with "
        "their checksums, the reviewer and the audit trail.  The --out suffix (.pdf or "
        ".html) chooses the format.  --sign also stores a read-only signed version in "
        "PROJECT/reports/<case>/v<N>/ (a later signature makes v<N+1>).")
    p.add_argument("project", metavar="PROJECT", help="annotation project folder")
    p.add_argument("--case", required=True, metavar="ID", help="case id in the project")
    p.add_argument("--out", required=True, metavar="FILE.pdf|FILE.html",
                   help="report file to write; its suffix (.pdf or .html) is the format")
    p.add_argument("--intervals", metavar="CSV", default=None,
                   help="the lab's reference intervals: class,low_percent,high_percent,"
                   "low_abs,high_abs (absolute in 10^9/L; see "
                   "docs/examples/reference_intervals.csv) (default: PROJECT/reference_intervals.csv "
                   "if the project has one, which the GUI's reports use too; else no interval "
                   "flags)")
    p.add_argument("--reviewer", metavar="NAME", default="",
                   help="reviewer's name printed on the report (default: none; required "
                   "with --sign)")
    p.add_argument("--max-per-class", metavar="N", type=int_range(0, 200), default=24,
                   help="thumbnails shown per class, 0..200 (default 24)")
    p.add_argument("--sign", action="store_true",
                   help="also sign: store a read-only version in PROJECT/reports/ "
                   "(default: off, the report is a draft)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .cli import CliError
    from .io.project import ProjectError, read_project
    from .report import (IntervalsError, ReportError, build_report_data, read_intervals,
                         report_format, sign_case, write_report)
    from .report.sign import REPORTS_DIR
    from .io.atomic import write_bytes_atomic

    out = Path(args.out)
    try:
        fmt = report_format(out)
    except ReportError as exc:
        raise CliError(f"--out {exc}") from None
    check_out_file(out, "--out")
    project_dir = Path(args.project)
    reports = (project_dir / REPORTS_DIR).resolve()
    if out.resolve().is_relative_to(reports):
        raise CliError(f"--out {out} is inside {project_dir / REPORTS_DIR}, where signed "
                       "reports are kept; write the file elsewhere")
    try:
        classes = read_project(project_dir).classes
        intervals = read_intervals(args.intervals, classes) if args.intervals else None
        if args.sign:
            signed = sign_case(project_dir, args.case, args.reviewer, intervals=intervals,
                               max_per_class=args.max_per_class)
            source = signed.pdf_path if fmt == "pdf" else signed.html_path
            try:
                write_bytes_atomic(out, source.read_bytes())
            except OSError as exc:
                raise CliError(f"signed as v{signed.version} in {source.parent}, but cannot "
                               f"write {out}: {exc.strerror or exc}") from None
            print(f"case {args.case}: signed v{signed.version} by {args.reviewer.strip()} "
                  f"({source.parent}); wrote {out}")
            return 0
        data = build_report_data(project_dir, args.case, reviewer=args.reviewer,
                                 intervals=intervals, max_per_class=args.max_per_class)
        write_report(data, out)
    except (ProjectError, IntervalsError, ReportError) as exc:
        raise CliError(str(exc)) from None
    print(f"case {args.case}: draft report ({data.counted} cells, {len(data.flags)} "
          f"flag{'s' if len(data.flags) != 1 else ''}) written to {out}")
    return 0

"""Cases: one slide, many fields (project images), saved in ``PROJECT/cases.json``.

A case groups the images of one slide so that their cells are counted together up to
a target (100 or 200 for blood, 500 for marrow).  ``cases.json``::

    {"format": "napari-wbcseg-cases", "version": 1,
     "cases": [{"case_id": "C-001", "slide_id": "S 17/2024", "images": ["field 1", ...],
                "kind": "blood", "target": 100, "wbc_count": 7.2, "notes": "",
                "models": [{"name": "wbcseg-lite0", "kind": "segmentation",
                            "version": "2026-12-01", "sha256": "879e..."}]}]}

Every field is checked when read and when saved; a case may only name images of the
project (:func:`save_case`).  :func:`read_cases` refuses a file naming an image that
is no longer in the project (say which), but :func:`save_case` can still replace such
a case, so a stale case can always be repaired.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import CaseError
from .store import project_names, read_list, write_list

CASES_FILE = "cases.json"
FORMAT = "napari-wbcseg-cases"
KINDS = ("blood", "marrow")
DEFAULT_TARGETS = {"blood": 100, "marrow": 500}  # 200 is the other usual blood target
TARGET_RANGE = (1, 10_000)
WBC_COUNT_MAX = 10_000.0  # 10^9/L; far above any leukaemia, below any typo of units
MODEL_KINDS = ("segmentation", "classifier")
MAX_CASES = 10_000
MAX_IMAGES = 10_000  # fields per case
MAX_TEXT = 10_000  # characters of notes
MAX_MODELS = 16
_CASE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Case:
    """One slide: ``images`` are the names of its fields in the project."""

    case_id: str
    slide_id: str
    images: list[str] = field(default_factory=list)
    kind: str = "blood"
    target: int = 100
    wbc_count: float | None = None  # 10^9/L, for absolute counts
    notes: str = ""
    models: list[dict] = field(default_factory=list)  # see model_record

    def validate(self) -> "Case":
        """``self`` with its fields checked (``CaseError`` naming the first bad one)."""
        check_case_id(self.case_id)
        where = f"case {self.case_id!r}"
        self.slide_id = _line(self.slide_id, f"{where}: slide id", 200)
        if not self.slide_id.strip():
            raise CaseError(f"{where}: the slide id is empty")
        if not isinstance(self.images, (list, tuple)) or len(self.images) > MAX_IMAGES:
            raise CaseError(f"{where}: images must be a list of at most {MAX_IMAGES} names")
        self.images = [_line(n, f"{where}: image name", 1000) for n in self.images]
        if len(set(self.images)) != len(self.images):
            raise CaseError(f"{where}: an image appears twice")
        if self.kind not in KINDS:
            raise CaseError(f"{where}: kind {str(self.kind)[:40]!r} is not one of {KINDS}")
        if not _is_int(self.target) or not TARGET_RANGE[0] <= self.target <= TARGET_RANGE[1]:
            raise CaseError(f"{where}: target {str(self.target)[:40]!r} is not a whole number "
                            f"in {TARGET_RANGE[0]}..{TARGET_RANGE[1]}")
        if self.wbc_count is not None:
            ok = (isinstance(self.wbc_count, (int, float)) and not isinstance(self.wbc_count, bool)
                  and math.isfinite(self.wbc_count) and 0 < self.wbc_count <= WBC_COUNT_MAX)
            if not ok:
                raise CaseError(f"{where}: WBC count {str(self.wbc_count)[:40]!r} is not a "
                                f"number of 10^9/L in (0, {WBC_COUNT_MAX:g}]")
            self.wbc_count = float(self.wbc_count)
        if not isinstance(self.notes, str) or len(self.notes) > MAX_TEXT:
            raise CaseError(f"{where}: notes must be text of at most {MAX_TEXT} characters")
        if not isinstance(self.models, (list, tuple)) or len(self.models) > MAX_MODELS:
            raise CaseError(f"{where}: models must be a list of at most {MAX_MODELS} records")
        self.models = [check_model_record(m, where) for m in self.models]
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d) -> "Case":
        if not isinstance(d, dict):
            raise CaseError(f"a case is not an object: {str(d)[:80]!r}")
        if not isinstance(d.get("case_id"), str):
            raise CaseError(f"a case has no case_id: {str(d)[:80]!r}")
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise CaseError(f"case {d['case_id'][:64]!r}: unknown fields {sorted(unknown)[:5]}")
        missing = [k for k in ("slide_id", "images") if k not in d]
        if missing:
            raise CaseError(f"case {d['case_id'][:64]!r}: lacks {', '.join(missing)}")
        return cls(**d).validate()


def check_case_id(case_id) -> str:
    if not isinstance(case_id, str) or not _CASE_ID.fullmatch(case_id):
        raise CaseError(f"case id {str(case_id)[:80]!r}: use 1 to 64 letters, digits, '.', "
                        "'_' or '-'")
    return case_id


def check_model_record(m, where: str = "model record") -> dict:
    """A ``{"name", "kind", "version", "sha256"}`` record, checked (``CaseError``)."""
    if not isinstance(m, dict) or set(m) != {"name", "kind", "version", "sha256"}:
        raise CaseError(f"{where}: a model record needs exactly name, kind, version, sha256")
    name = _line(m["name"], f"{where}: model name", 200)
    if m["kind"] not in MODEL_KINDS:
        raise CaseError(f"{where}: model kind {str(m['kind'])[:40]!r} is not one of {MODEL_KINDS}")
    version = _line(m["version"], f"{where}: model version", 200)
    sha = m["sha256"]
    if not isinstance(sha, str) or not (sha == "" or _SHA256.fullmatch(sha)):
        raise CaseError(f"{where}: model {name!r}: sha256 must be 64 lower-case hex digits")
    return {"name": name, "kind": m["kind"], "version": version, "sha256": m["sha256"]}


def read_cases(project_dir) -> dict[str, Case]:
    """The project's cases by id (``{}`` when none were saved); ``CaseError`` for a
    corrupt or oversized file, or a case naming an image the project no longer has."""
    cases = _load(project_dir)
    names = set(project_names(project_dir))
    for case in cases.values():
        missing = [n for n in case.images if n not in names]
        if missing:
            raise CaseError(f"{_path(project_dir)}: case {case.case_id!r} names image "
                            f"{missing[0][:80]!r}, which is not in the project")
    return cases


def save_case(project_dir, case: Case, *, replace: bool = False) -> Case:
    """Add ``case`` (or replace the case of its id with ``replace=True``); returns it checked.

    Refuses (``CaseError``, nothing written) a bad field, an image that is not in the
    project, or an id already used when not replacing.
    """
    case = Case(**{k: getattr(case, k) for k in Case.__dataclass_fields__}).validate()
    names = set(project_names(project_dir))
    missing = [n for n in case.images if n not in names]
    if missing:
        raise CaseError(f"case {case.case_id!r}: image {missing[0][:80]!r} is not in the project")
    cases = _load(project_dir)
    if case.case_id in cases and not replace:
        raise CaseError(f"case {case.case_id!r} exists already in {_path(project_dir)}")
    cases[case.case_id] = case
    _write(project_dir, cases)
    return case


def remove_case(project_dir, case_id: str) -> None:
    """Drop a case (its images and their labels stay in the project)."""
    cases = _load(project_dir)
    if check_case_id(case_id) not in cases:
        raise CaseError(f"no case {case_id!r} in {_path(project_dir)}")
    del cases[case_id]
    _write(project_dir, cases)


# ---------------------------------------------------------------------------------------

def _path(project_dir) -> Path:
    return Path(project_dir) / CASES_FILE


def _load(project_dir) -> dict[str, Case]:
    path = _path(project_dir)
    cases: dict[str, Case] = {}
    for d in read_list(path, FORMAT, "cases", MAX_CASES):
        try:
            case = Case.from_json(d)
        except TypeError as exc:  # a field of the wrong shape that validate() did not name
            raise CaseError(f"{path}: malformed case ({exc})") from None
        except CaseError as exc:
            raise CaseError(f"{path}: {exc}") from None
        if case.case_id in cases:
            raise CaseError(f"{path}: case {case.case_id!r} appears twice")
        cases[case.case_id] = case
    return cases


def _write(project_dir, cases: dict[str, Case]) -> None:
    write_list(_path(project_dir), FORMAT, "cases", [c.to_json() for c in cases.values()])


def _line(value, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        raise CaseError(f"{what} {str(value)[:80]!r}: must be one line of at most {limit} "
                        "characters")
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)

"""The lab's reference-interval file and the report's flags."""
import pytest

from napari_wbcseg.report import (ClassRow, IntervalsError, ReferenceInterval,
                                  differential_flags, read_intervals)
from napari_wbcseg.report import intervals as intervals_module
from napari_wbcseg.schema import DEFAULT_CLASSES

from report_projects import EXAMPLE

HEADER = "class,low_percent,high_percent,low_abs,high_abs\n"


def write(tmp_path, body, header=HEADER):
    path = tmp_path / "ref.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_the_shipped_example_reads_with_the_default_table():
    ref = read_intervals(EXAMPLE, DEFAULT_CLASSES)
    assert sorted(ref) == [1, 2, 3, 4, 5]
    assert ref[1] == ReferenceInterval(1, "neutrophil", 40, 75, 2.0, 7.0)


def test_comments_blank_lines_and_empty_limits(tmp_path):
    path = write(tmp_path, "# a comment\n\nBasophil,,2,,\n", header="# lab X\n" + HEADER)
    ref = read_intervals(path, DEFAULT_CLASSES)
    assert ref == {5: ReferenceInterval(5, "basophil", None, 2.0, None, None)}


@pytest.mark.parametrize("body, words", [
    ("blast,0,5,,\n", ["line 2", "unknown class 'blast'", "neutrophil"]),
    ("neutrophil,75,40,,\n", ["line 2", "low_percent 75 is above high_percent 40"]),
    ("neutrophil,40,75,7,2\n", ["low_abs 7 is above high_abs 2"]),
    ("neutrophil,forty,75,,\n", ["low_percent 'forty' is not a number"]),
    ("neutrophil,40,nan,,\n", ["high_percent 'nan' must be a finite number"]),
    ("neutrophil,-1,75,,\n", ["must be a finite number >= 0"]),
    ("neutrophil,40,175,,\n", ["high_percent 175 is over 100"]),
    ("neutrophil,40,75\n", ["3 values, expected 5"]),
    ("neutrophil,40,75,,\nneutrophil,40,75,,\n", ["line 3", "appears twice"]),
    ("unidentified,0,5,,\n", ["unknown class 'unidentified'"]),
])
def test_bad_rows_are_one_line_naming_the_line(tmp_path, body, words):
    with pytest.raises(IntervalsError) as exc:
        read_intervals(write(tmp_path, body), DEFAULT_CLASSES)
    msg = str(exc.value)
    assert "\n" not in msg and "ref.csv" in msg
    for w in words:
        assert w in msg, msg


def test_a_wrong_header_missing_file_and_big_file_are_refused(tmp_path, monkeypatch):
    with pytest.raises(IntervalsError, match="the header must be"):
        read_intervals(write(tmp_path, "neutrophil,40,75,,\n", header="name,lo,hi,a,b\n"),
                       DEFAULT_CLASSES)
    with pytest.raises(IntervalsError, match="cannot read"):
        read_intervals(tmp_path / "missing.csv", DEFAULT_CLASSES)
    with pytest.raises(IntervalsError, match="not a file"):
        read_intervals(tmp_path, DEFAULT_CLASSES)
    monkeypatch.setattr(intervals_module, "MAX_BYTES", 60)
    with pytest.raises(IntervalsError, match="too large"):
        read_intervals(write(tmp_path, "neutrophil,40,75,,\n" * 3), DEFAULT_CLASSES)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(IntervalsError, match="not a UTF-8"):
        read_intervals(tmp_path / "bin.csv", DEFAULT_CLASSES)


def rows(percent, absolute=None):
    return [ClassRow(1, "neutrophil", "#9b30ff", 78, percent, absolute),
            ClassRow(2, "lymphocyte", "#ffd700", 12, 12.0, 0.5)]


def test_flags_above_below_and_absolute():
    ref = read_intervals(EXAMPLE, DEFAULT_CLASSES)
    flags = differential_flags(rows(78.0, 5.07), ref, unidentified=3, counted=87, target=100)
    assert flags == ["neutrophil 78.0% above the reference interval 40-75%",
                     "lymphocyte 12.0% below the reference interval 20-45%",
                     "lymphocyte 0.50 x10^9/L below the reference interval 1-3 x10^9/L",
                     "3 unidentified cells left", "target not reached: 87 of 100"]


def test_no_flags_within_the_intervals_and_no_absolute_flags_without_a_count():
    ref = {1: ReferenceInterval(1, "neutrophil", 40, 80, 9.0, 10.0)}
    assert differential_flags(rows(78.0, None), ref, unidentified=0, counted=100,
                              target=100) == []
    assert differential_flags(rows(78.0, None), {}, unidentified=1, counted=100,
                              target=100) == ["1 unidentified cell left"]

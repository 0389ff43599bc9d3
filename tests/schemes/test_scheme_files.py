"""Scheme files: every rule a user's CSV can break gets one line naming file and line."""
import pytest

from napari_wbcseg.schema import UNIDENTIFIED
from napari_wbcseg.schemes import (MAX_CLASSES, MAX_FILE_BYTES, SchemeError, load_scheme,
                                   read_scheme_file, save_scheme)

HEADER = "code,name,colour,group,hotkey\n"
MARROW_14 = """# my marrow table
# name: my-marrow
# kind: marrow
code,name,colour,group,hotkey
1,segmented neutrophil,#9B30FF,myeloid,1
2,lymphocyte,#ffd700,lymphoid,2
3,monocyte,#1e64ff,monocytic,3
4,eosinophil,#00c800,myeloid,4
5,basophil,#ff2020,myeloid,5
6,band neutrophil,#d58cff,myeloid,6
7,blast,#e6007e,myeloid,7
8,promyelocyte,#ff8c00,myeloid,8
9,myelocyte,#ffb070,myeloid,9
10,metamyelocyte,#7fff00,myeloid,0
11,"plasma cell, mature",#00ced1,lymphoid,P
12,proerythroblast,#800000,Erythroid,a
13,basophilic erythroblast,#a0522d,erythroid,b
14,polychromatic erythroblast,#e07b39,erythroid,
"""


def _write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_a_14_class_marrow_file_round_trips(tmp_path):
    scheme = read_scheme_file(_write(tmp_path, MARROW_14))
    assert scheme.name == "my-marrow" and scheme.kind == "marrow" and len(scheme) == 15
    assert scheme.classes[-1].code == UNIDENTIFIED and scheme.by_hotkey["u"].code == UNIDENTIFIED
    assert scheme.by_code[11].name == "plasma cell, mature"  # a quoted comma
    assert scheme.by_hotkey["p"].code == 11 and scheme.by_code[1].color == "#9b30ff"
    assert scheme.group_of(12) == "erythroid" and scheme.by_code[14].hotkey == ""
    assert scheme.default_target == 500
    again = read_scheme_file(save_scheme(scheme, tmp_path / "copy.csv"))
    assert again == scheme
    assert [(c.group, c.hotkey) for c in again.classes] == [(c.group, c.hotkey)
                                                             for c in scheme.classes]
    assert load_scheme(str(tmp_path / "copy.csv")) == scheme


def test_short_header_and_byte_order_mark_are_accepted(tmp_path):
    scheme = read_scheme_file(_write(tmp_path, b"\xef\xbb\xbfcode,name,color\n7,blast,#e6007e\n",
                                     name="plain.csv"))
    assert scheme.name == "plain" and scheme.kind == "blood" and scheme.codes == (7, 255)
    assert scheme.group_of(7) == "" and scheme.default_target == 100


@pytest.mark.parametrize("body, problem", [
    ("1,a,#000001,,1\n1,b,#000002,,2\n", r"line 3: duplicate code 1 \(also on line 2\)"),
    ("1,a,#000001,,1\n2,b,#000002,,1\n", r"line 3: duplicate hotkey '1' \(also on line 2\)"),
    ("1,Blast,#000001,,1\n2,blast ,#000002,,2\n", r"line 3: duplicate name 'blast'"),
    ("1,a,#00000g,,1\n", r"line 2: colour '#00000g' of 'a' is not #rrggbb"),
    ("1,a,red,,1\n", r"line 2: colour 'red'"),
    ("0,a,#000001,,\n", r"line 2: code 0 is out of range 1..254"),
    ("255,a,#000001,,\n", r"line 2: code 255 is out of range 1..254 \(255 is reserved"),
    ("1.5,a,#000001,,\n", r"line 2: code '1.5' is not a whole number"),
    ("1,a,#000001,,ab\n", r"line 2: hotkey 'ab' of 'a' must be one of 0-9 or a-z"),
    ("1,a,#000001,,u\n", r"line 2: hotkey 'u' is reserved for unidentified"),
    ("1,Unidentified,#000001,,\n", r"line 2: name 'unidentified' is reserved"),
    ("1,,#000001,,\n", r"line 2: class name '' must be"),
    ("1,a,#000001,,,extra\n", r"line 2: 6 fields, the header has 5"),
    ("", r"no class defined"),
    ("# only a comment\n", r"no class defined"),
])
def test_each_broken_rule_names_file_and_line(tmp_path, body, problem):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(SchemeError, match=problem) as info:
        read_scheme_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_bad_header_kind_and_encoding(tmp_path):
    with pytest.raises(SchemeError, match=r"line 1: header 'name,code' must be"):
        read_scheme_file(_write(tmp_path, "name,code\nblast,7\n"))
    with pytest.raises(SchemeError, match=r"no class defined \(expected a header"):
        read_scheme_file(_write(tmp_path, "\n\n"))
    with pytest.raises(SchemeError, match=r"line 1: kind 'liver' is not one of blood, marrow"):
        read_scheme_file(_write(tmp_path, "# kind: liver\n" + HEADER + "1,a,#000001,,\n"))
    with pytest.raises(SchemeError, match=r"line 3: not UTF-8 text \(byte 0xe9\)"):
        read_scheme_file(_write(tmp_path, HEADER.encode() + b"1,a,#000001,,\n"
                                          b"2,caf\xe9,#000002,,\n"))


def test_too_many_classes_and_too_big_a_file(tmp_path):
    rows = "".join(f"{k},class {k},#0000{k:02x},,\n" for k in range(1, MAX_CLASSES + 2))
    too_many = rf"line {MAX_CLASSES + 2}: more than {MAX_CLASSES} classes"
    with pytest.raises(SchemeError, match=too_many):
        read_scheme_file(_write(tmp_path, HEADER + rows))
    big = _write(tmp_path, HEADER + "#" * MAX_FILE_BYTES + "\n1,a,#000001,,\n")
    with pytest.raises(SchemeError, match=rf"bytes, more than the {MAX_FILE_BYTES}"):
        read_scheme_file(big)


def test_unknown_names_and_missing_files_are_refused(tmp_path):
    with pytest.raises(SchemeError, match="neither a built-in scheme .*blood-5part"):
        load_scheme("marrow")
    with pytest.raises(SchemeError, match="neither a built-in scheme"):
        load_scheme(tmp_path / "absent.csv")
    with pytest.raises(SchemeError, match="cannot read the scheme file"):
        read_scheme_file(tmp_path / "absent.csv")

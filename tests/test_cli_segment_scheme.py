"""`napari-wbcseg segment --scheme`: cell types written in a project's class table."""
import csv

import cv2
import numpy as np

from napari_wbcseg.cli import main


def _field(tmp_path):
    from napari_wbcseg.core.synthetic import synthetic_smear

    img = tmp_path / "field.png"
    cv2.imwrite(str(img), cv2.cvtColor(synthetic_smear(shape=(128, 160), n_wbc=2, seed=3).image,
                                       cv2.COLOR_RGB2BGR))
    return img


def test_segment_writes_the_scheme_codes_and_names(tmp_path, tiny_model, capsys):
    """A custom two-class table: the model's classes map by name, the rest is 255, and
    the differential lists the table's classes; a warning says what was not mapped."""
    scheme = tmp_path / "mine.csv"
    scheme.write_text("code,name,colour,group,hotkey\n40,eosinophil,#00c800,,e\n"
                      "41,neutrophil,#9b30ff,,n\n")
    out = tmp_path / "out"
    assert main(["segment", str(_field(tmp_path)), "--model", tiny_model, "--out", str(out),
                 "--device", "cpu", "--classifier", "none", "--scheme", str(scheme)]) == 0
    from napari_wbcseg.io.imread import read_image

    codes = set(np.unique(read_image(out / "field_celltype.tif")).tolist()) - {0}
    assert codes <= {40, 41, 255}
    rows = list(csv.DictReader((out / "differential.csv").open()))
    assert {r["class"] for r in rows} >= {"eosinophil", "neutrophil"}
    assert not {r["class"] for r in rows} & {"lymphocyte", "monocyte", "basophil"}
    said = capsys.readouterr()
    assert "'lymphocyte', 'monocyte', 'basophil' have no class" in said.out + said.err


def test_a_bad_scheme_is_one_line_and_exit_2(tmp_path, tiny_model, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,colour,group,hotkey\n1,a,#000000,,x\n1,b,#ffffff,,y\n")
    out = tmp_path / "out"
    assert main(["segment", str(_field(tmp_path)), "--model", tiny_model, "--out", str(out),
                 "--scheme", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "duplicate" in err[0] and "bad.csv" in err[0]
    assert not out.exists()

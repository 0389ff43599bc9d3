"""Projects with cases for the report tests: synthetic smears (real-looking cells with
exact labels), any class table, a case over the fields and an audit trail."""
from pathlib import Path

import numpy as np

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import save_image_entry
from napari_wbcseg.review import AuditEntry, Case, append_audit, save_case
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, CellClass

CLASSES14 = tuple(CellClass(k, f"marrow type {k}", "#%02x%02x%02x" % (
    (k * 53) % 256, (k * 97) % 256, (k * 151) % 256)) for k in range(1, 15)) + (
    CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0"),)
SHA = "ab" * 32
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "reference_intervals.csv"


def make_case_project(folder, classes=DEFAULT_CLASSES, *, n_fields=2, n_wbc=4,
                      codes=None, case_id="C-001", wbc_count=6.5, target=100,
                      audit=True):
    """``folder`` with ``n_fields`` smears whose cells get ``codes`` in turn (default:
    the table's named codes), a case over all of them and, with ``audit``, two
    reclassifications and an accept in the trail.  Returns the codes given per field."""
    named = [c.code for c in classes if c.code != UNIDENTIFIED]
    codes = list(codes or named)
    given, k = [], 0
    for f in range(n_fields):
        sm = synthetic_smear((240, 320), n_wbc=n_wbc, seed=f, pixel_size_um=0.25,
                             rbc_density=0.3)
        cell_type = np.zeros_like(sm.cell_type)
        field_codes = {}
        for cell_id in sorted(sm.classes):
            code = codes[k % len(codes)]
            k += 1
            cell_type[(sm.nucleus == cell_id) | (sm.cytoplasm == cell_id)] = code
            field_codes[cell_id] = code
        given.append(field_codes)
        save_image_entry(folder, f"field {f + 1}", sm.image, sm.nucleus, sm.cytoplasm,
                         cell_type, classes=classes, pixel_size_um=0.25,
                         reviewed=(f == 0))
    images = [f"field {f + 1}" for f in range(n_fields)]
    save_case(folder, Case(case_id, "S-17/2024", images, kind="blood", target=target,
                           wbc_count=wbc_count, notes="thin smear, good stain",
                           models=[{"name": "wbcseg-lite0", "kind": "segmentation",
                                    "version": "2026-12-01", "sha256": SHA}]))
    if audit:
        first = given[0]
        cell = sorted(first)[0]
        append_audit(folder, [
            AuditEntry("field 1", cell, "reclassify", named[-1], first[cell], "dr.who",
                       "2026-12-02T09:41:07+00:00"),
            AuditEntry("field 1", sorted(first)[1], "accept", first[sorted(first)[1]],
                       first[sorted(first)[1]], "dr.who", "2026-12-02T09:42:00+00:00")])
    return given

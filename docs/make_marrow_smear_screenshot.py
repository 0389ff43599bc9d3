"""Render docs/images/synthetic_marrow.png: one synthetic field with every class of the
built-in "marrow-icsh" scheme, each cell labelled with its class name (no Qt, OpenCV only).

    .venv/bin/python docs/make_marrow_smear_screenshot.py
"""
from pathlib import Path

import cv2
import numpy as np

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.schemes import builtin_schemes

OUT = Path(__file__).resolve().parent / "images" / "synthetic_marrow.png"


def main() -> Path:
    names = {c.code: c.name for c in builtin_schemes()["marrow-icsh"].classes}
    s = synthetic_smear((720, 1100), n_wbc=16, seed=1, scheme="marrow-icsh", rbc_density=0.35)
    img = np.ascontiguousarray(s.image[..., ::-1])
    ids = np.where(s.nucleus > 0, s.nucleus, s.cytoplasm)
    for cid, code in s.classes.items():
        ys, xs = np.nonzero(ids == cid)
        text = f"{code} {names[code]}"
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)
        x, y = min(int(xs.min()), img.shape[1] - w - 4), min(int(ys.max()) + 14,
                                                              img.shape[0] - 4)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                    cv2.LINE_AA)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), img)
    return OUT


if __name__ == "__main__":
    print(main())

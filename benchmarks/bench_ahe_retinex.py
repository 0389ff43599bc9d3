"""Time AHE-Retinex on one full-size field and compare it with the exact reference.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_ahe_retinex.py [--image PATH] [--repeats 11]
                                                          [--order ahe-first] [--no-reference]

By default the first ``*.jpg`` (sorted) in ``../shared/data/BCISC/original-images/neut/``
next to the repository is used; without it a smooth synthetic 2048x1536 RGB field.
The reference (``tests/reference_msrcr.py``, exact float64 Gaussians at full
resolution) takes about half a minute to a minute on a 2048x1536 field.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_DIR = SHARED / "data" / "BCISC" / "original-images" / "neut"
TARGET_S = 0.25

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from napari_wbcseg.core import preprocessing as pp  # noqa: E402


def synthetic_field(h: int = 1536, w: int = 2048, seed: int = 0) -> np.ndarray:
    """Random but smooth RGB field with a vignette, roughly like a stained smear."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 230, size=(h // 64, w // 64, 3)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.normal(0, 25, size=(h // 8, w // 8, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.35 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    return np.clip((field + fine) * vignette[..., None], 0, 255).astype(np.uint8)


def load_field(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        candidates = sorted(DEFAULT_DIR.glob("*.jpg")) if DEFAULT_DIR.is_dir() else []
        if not candidates:
            return synthetic_field(), "synthetic 2048x1536 (shared data not found)"
        path = str(candidates[0])
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"could not read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(path)


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def fmt(times: list[float]) -> str:
    return (f"median {np.median(times):.4f} s  min {min(times):.4f} s  "
            f"max {max(times):.4f} s  (n={len(times)})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", help="RGB image to use (default: first BCISC neut *.jpg)")
    ap.add_argument("--repeats", type=int, default=11, help="timed runs after one warm-up")
    ap.add_argument("--order", default="ahe-first", choices=pp.ORDERS)
    ap.add_argument("--no-reference", action="store_true", help="skip the slow exact comparison")
    args = ap.parse_args(argv)

    rgb, source = load_field(args.image)
    print(f"image: {source}  shape {rgb.shape}")
    load = f", load avg {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
          f"cpus {os.cpu_count()}, opencv threads {cv2.getNumThreads()}{load}")

    total = timed(lambda: pp.ahe_retinex(rgb, order=args.order), args.repeats)
    print(f"ahe_retinex ({args.order}): {fmt(total)}")

    # per-stage breakdown (cheap: a few more runs of the pieces)
    n = max(3, args.repeats // 2)
    eq = pp.clahe(rgb)
    img = cv2.LUT(eq, pp._PLUS1_LUT)
    stages = {
        "clahe (V channel)": lambda: pp.clahe(rgb),
        "msrcr (all)": lambda: pp.msrcr(eq),
        "  of which surround pyramid": lambda: pp._mean_log_surround(img, (15.0, 80.0, 250.0)),
    }
    for name, fn in stages.items():
        print(f"  stage {name:28s} median {np.median(timed(fn, n)):.4f} s")

    med = float(np.median(total))
    verdict = "PASS" if med <= TARGET_S else "FAIL"
    print(f"VERDICT: {verdict} - median {med:.3f} s vs target {TARGET_S:.2f} s "
          f"({med / TARGET_S:.0%} of budget)")

    if not args.no_reference:
        from reference_msrcr import reference_ahe_retinex, reference_msrcr

        t0 = time.perf_counter()
        ref = reference_ahe_retinex(rgb, order=args.order)
        t_ref = time.perf_counter() - t0
        fast = pp.ahe_retinex(rgb, order=args.order)
        d = np.abs(fast.astype(np.int16) - ref.astype(np.int16))
        hist = np.bincount(d.ravel(), minlength=3)
        print(f"vs exact reference ({t_ref:.1f} s): max abs diff {d.max()} levels, "
              f"mean {d.mean():.4f}; share of values off by 0/1/2+: "
              f"{hist[0] / d.size:.4f} / {hist[1] / d.size:.4f} / {hist[2:].sum() / d.size:.4f}")
        if args.order == "ahe-first":  # MSRCR stage alone, on the same equalised input
            d2 = np.abs(pp.msrcr(eq).astype(np.int16) - reference_msrcr(eq).astype(np.int16))
            print(f"msrcr stage alone: max abs diff {d2.max()} levels, mean {d2.mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

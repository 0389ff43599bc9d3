"""``napari-wbcseg`` command line: demo, colour correction, segmentation, models, training.

Errors are one line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cli_args import (OneLineParser, add_coarse_pass_option, add_device_option, add_tta_option,
                       check_out_dir,
                       finite_float, int_range, seed, unique_stems, writing)

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _add_preprocess_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default="ahe-retinex", choices=["ahe-retinex", "clahe", "msrcr"],
                   help="ahe-retinex (default): both steps, as Zhu et al.; clahe or msrcr: "
                   "one of them only")
    p.add_argument("--order", default="ahe-first", choices=["ahe-first", "retinex-first"],
                   help="which step of ahe-retinex runs first (default: ahe-first)")
    p.add_argument("--clip-limit", metavar="LIMIT", type=finite_float(0, 1000), default=2.0,
                   help="CLAHE clip limit, 0..1000 (0 = plain AHE; default 2)")
    p.add_argument("--tiles", metavar="N", type=int_range(1, 1024), default=8,
                   help="CLAHE tile grid, N x N tiles, 1..1024 (default 8)")
    p.add_argument("--sigmas", metavar="PX,PX,...", default="15,80,250",
                   help="Retinex Gaussian scales in pixels, comma-separated (default 15,80,250)")
    p.add_argument("--gain", metavar="ALPHA",
                   type=finite_float(0, 1e6, low_open=True), default=46.0,
                   help="colour-restoration gain alpha, > 0 (default 46)")
    p.add_argument("--offset", metavar="BETA",
                   type=finite_float(0, 1e6, low_open=True), default=125.0,
                   help="colour-restoration offset beta, > 0 (default 125)")


def _params(args):
    from .core.preprocessing import AheRetinexParams

    try:
        sigmas = tuple(float(s) for s in args.sigmas.split(",") if s.strip())
    except ValueError:
        raise CliError(f"--sigmas must be numbers separated by commas, got {args.sigmas!r}") from None
    try:
        return AheRetinexParams(method=args.method, order=args.order, clip_limit=args.clip_limit,
                                tile_grid=(args.tiles, args.tiles), sigmas=sigmas,
                                gain=args.gain, offset=args.offset)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _save_rgb(path: Path, rgb) -> None:
    """Write an RGB PNG atomically: a failure (full disk) keeps any old file whole."""
    import cv2

    from .io.atomic import atomic_path

    with writing(path), atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"the PNG encoder failed for {path}")


def _save_rgb_stack(path: Path, stack) -> None:
    import tifffile

    from .io.atomic import atomic_path

    with writing(path), atomic_path(path, suffix=".tif") as tmp:
        tifffile.imwrite(tmp, stack, photometric="rgb", compression="zlib")


def cmd_preprocess(args) -> int:
    from .core.batch import preprocess_planes, run_to_end
    from .core.image import ImageFormatError
    from .io.imread import read_image

    params = _params(args)
    stems = unique_stems(args.images)
    out_dir = check_out_dir(args.out)
    failures = 0
    for i, (name, stem) in enumerate(zip(args.images, stems), 1):
        src = Path(name)
        try:
            data = read_image(src)
            rgb = data.ndim >= 3 and data.shape[-1] in (3, 4)
            result = run_to_end(preprocess_planes(data, params, rgb))
        except (ImageFormatError, ValueError) as exc:
            print(f"error: {exc}" if src.name in str(exc) else f"error: {src.name}: {exc}",
                  file=sys.stderr)
            failures += 1
            continue
        target = out_dir / f"{stem}_{params.method}"
        if result.ndim == 3:
            written = target.with_suffix(".png")
            _save_rgb(written, result)
        else:  # a page stack stays one file
            written = target.with_suffix(".tif")
            _save_rgb_stack(written, result)
        print(f"[{i}/{len(args.images)}] {src.name} -> {written}")
    return EXIT_BAD_INPUT if failures else 0


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_demo(args) -> int:
    """Segment the synthetic smear (or a named field) with the default network.

    With a display: napari with the image, the ground truth (synthetic smear) and the
    Segment widget running.  Without one: the label TIFFs, tables, the differential
    count and ``<stem>_overlay.png`` (outlines in the cell-type colours) are written to
    ``--out``, and on the synthetic smear the whole-cell Dice and the cell-type accuracy
    against its ground truth are printed.
    """
    from .core.image import ImageFormatError

    _check_device(args.device)
    truth = None
    if args.image:
        from .io.imread import read_image

        try:
            image = read_image(args.image)
        except ImageFormatError as exc:
            raise CliError(str(exc)) from None
        name = Path(args.image).stem
    else:
        from .core.synthetic import synthetic_smear

        truth = synthetic_smear(seed=args.seed)
        image, name = truth.image, "synthetic smear"

    if args.headless or not has_display():
        from .core.metrics import dice
        from .inference.segment import SegmentParams

        from .inference.predictor import ModelLoadError
        from .io.model_store import ModelNotFoundError

        try:
            params = SegmentParams(model=args.model, device=args.device,
                                   cell_diameter=args.cell_diameter)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        out = check_out_dir(args.out)
        stem = name.replace(" ", "_")
        if image.ndim == 3 and image.shape[-1] == 3:
            _save_rgb(out / f"{stem}.png", image)
        try:
            result = _segment_and_save(image, stem, params, out, "[1/1]")
        except (ImageFormatError, ModelNotFoundError, ModelLoadError, ValueError) as exc:
            raise CliError(str(exc)) from None
        from .io.writer import save_table

        with writing(out / "differential.csv"):
            save_table(out / "differential.csv", result.differential)
        from .cli_demo import cell_type_accuracy, save_overlay

        with writing(out / f"{stem}_overlay.png"):
            picture = out / f"{stem}_overlay.png"
            if save_overlay(picture, image, result):
                print(f"overlay (outlines in the cell-type colours) -> {picture}")
        print(result.differential.to_string())
        if truth is not None:
            cells = (result.nucleus > 0) | (result.cytoplasm > 0)
            truth_cells = (truth.nucleus > 0) | (truth.cytoplasm > 0)
            right, total = cell_type_accuracy(truth, result.cell_type)
            print(f"whole-cell Dice vs the generator's ground truth: {dice(cells, truth_cells):.3f}"
                  f"; cell-type accuracy: {right} of {total} cells right "
                  f"({right / max(total, 1):.0%})")
        print(f"no display: results written to {out}/")
        return 0

    import napari

    viewer = napari.Viewer(title="napari-wbcseg demo")
    if truth is not None:
        from .io.sample_data import synthetic_sample

        for data, kwargs, kind in synthetic_sample(seed=args.seed):
            getattr(viewer, f"add_{kind}")(data, visible=kind == "image", **kwargs)
    else:
        viewer.add_image(image, name=name, rgb=image.ndim == 3 and image.shape[-1] in (3, 4))
    _, widget = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    widget.image.value = viewer.layers[name]
    if args.model:
        widget.model.value = args.model
    widget.device.value = args.device
    widget.cell_diameter.value = args.cell_diameter if isinstance(args.cell_diameter, float) else 0
    widget.run()
    napari.run()
    return 0


def _segment_and_save(image, stem: str, params, out: Path, counter: str):
    """Run one image through the shared per-field writer with a terminal bar."""
    from .batching.field_outputs import segment_field_to_files

    bar = None

    def show(ev):
        nonlocal bar
        if ev.stage == "predict" and ev.total > 1:
            bar = bar or _progress_bar(ev.total, f"{counter} {stem}")
            if bar is not None:
                bar.n = ev.done
                bar.refresh()

    try:
        result = segment_field_to_files(image, stem, params, out, show, write_guard=writing)
    finally:
        if bar is not None:
            bar.close()
    for msg in result.messages:
        print(f"note: {msg}", file=sys.stderr)
    print(f"{counter} {stem}: {len(result.table)} white cells "
          f"({result.timings['total_s']:.1f} s on {result.device}, model {result.model})")
    return result


def _progress_bar(total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # plain counter
        return None
    return tqdm(total=total, desc=desc, unit="tile", leave=False, file=sys.stderr)


def cmd_segment(args) -> int:
    from .core.image import ImageFormatError
    from .inference.predictor import ModelLoadError
    from .inference.segment import SegmentParams
    from .io.imread import read_image
    from .io.model_store import ModelNotFoundError
    from .io.writer import save_table

    try:
        classes = None
        if args.scheme:
            from .schemes import load_scheme

            classes = load_scheme(args.scheme)  # SchemeError is a ValueError: one line
        params = SegmentParams(model=args.model, device=args.device, preprocess=args.preprocess,
                               cell_diameter=args.cell_diameter, pixel_size_um=args.pixel_size,
                               tile=args.tile, classifier=args.classifier,
                               class_threshold=args.threshold,
                               include_border_cells=args.include_border_cells, classes=classes,
                               tta=args.tta, coarse_pass=args.coarse_pass)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stems = unique_stems(args.images)
    try:  # a wrong model or device is one error, not one per image
        from .inference.device import resolve_device
        from .io.model_store import find_model

        find_model(args.model)
        device = resolve_device(args.device)
        if args.classifier not in ("auto", "none"):  # loaded once here, not once per image
            from .inference.classify import load_classifier

            load_classifier(args.classifier, device)
    except (ModelNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    out = check_out_dir(args.out)
    tables, failures = [], 0
    for i, (name, stem) in enumerate(zip(args.images, stems), 1):
        src = Path(name)
        try:
            result = _segment_and_save(read_image(src), stem, params, out,
                                       f"[{i}/{len(args.images)}]")
        except (ImageFormatError, ModelNotFoundError, ModelLoadError, ValueError) as exc:
            print(f"error: {exc}" if src.name in str(exc) else f"error: {src.name}: {exc}",
                  file=sys.stderr)
            failures += 1
            continue
        tables.append(result.table)
    if tables:
        diff = params.differential(tables)
        with writing(out / "differential.csv"):
            save_table(out / "differential.csv", diff)
        left_out = (f"; {diff.attrs['border_left_out']} cut by the image border left out "
                    "(--include-border-cells counts them)" if diff.attrs["border_left_out"] else "")
        print(f"differential count of {diff.attrs['total']} cells{left_out}; "
              f"{diff.attrs['to_check']} below {args.threshold:g} confidence to check "
              f"-> {out / 'differential.csv'}")
    if failures and not tables and len(args.images) > 1:  # one image: its line says it all
        raise CliError(f"no image could be segmented ({failures} failed)")
    return EXIT_BAD_INPUT if failures else 0


def cmd_models(args) -> int:
    from .io.model_store import DEFAULT_MODEL, model_entries

    entries = model_entries()
    if not entries:
        print("no models with weights found")
        return 0
    print(f"  {'name':28} {'architecture':26} {'origin':8} {'cell Dice':>9} {'class acc':>9}")
    for name, e in entries.items():
        val = e.card.get("validation", {}).get("summary", {})
        dice = val.get("cell_dice")
        acc = val.get("class_accuracy")
        cells = [("-" if v is None else format(v, ".3f")) for v in (dice, acc)]
        mark = "*" if name == DEFAULT_MODEL else " "
        print(f"{mark} {name:28} {e.architecture:26} {e.origin:8} {cells[0]:>9} {cells[1]:>9}")
    if DEFAULT_MODEL in entries:
        print(f"* default model (used when --model is not given): {DEFAULT_MODEL}")
    else:
        print(f"note: the default model {DEFAULT_MODEL} has no weights here")
    return 0


def cmd_architectures(args) -> int:
    from .models import architecture_info, list_architectures

    for name in list_architectures():
        info = architecture_info(name)
        print(f"{name:26} {info.get('description', '')}")
    return 0


def _check_device(name: str) -> str:
    """The device ``name`` resolved here; ``CliError`` listing the valid ones."""
    from .inference.device import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _diameter(text: str):
    """'auto', 'native' (None) or pixels within ``inference.segment.CELL_DIAMETER_RANGE_PX``."""
    if text in ("auto", "native"):
        return None if text == "native" else "auto"
    from .inference.segment import CELL_DIAMETER_RANGE_PX

    lo, hi = CELL_DIAMETER_RANGE_PX
    try:
        return finite_float(lo, hi)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected {lo:g}..{hi:g} pixels, 'auto' or "
                                         f"'native', got {text!r}") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="napari-wbcseg",
                           description="White blood cell segmentation tools: colour "
                           "correction, segmentation into nucleus and cytoplasm, cell types, "
                           "training and evaluation.  `napari-wbcseg COMMAND --help` "
                           "describes each command.")
    parser.add_argument("--version", action="version", version=f"napari-wbcseg {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="segment the synthetic smear (or --image) in napari; files when headless",
        description="Segment the plugin's synthetic smear (or --image) with the default "
        "network.  With a display: napari with the Segment widget.  Without one (or with "
        "--headless): label TIFFs, tables, the differential count and an overlay picture in "
        "--out; on the synthetic smear, whole-cell Dice and cell-type accuracy against its "
        "ground truth are printed.")
    demo.add_argument("--image", metavar="FILE",
                      help="use this image instead of the synthetic smear (default: the smear)")
    demo.add_argument("--model", default=None, help="model name or .safetensors file "
                      "(default: the bundled default; see `napari-wbcseg models`)")
    add_device_option(demo)
    demo.add_argument("--cell-diameter", metavar="PX|auto|native", type=_diameter, default="auto",
                      help="typical white-cell diameter in pixels (4..2000), 'auto' (default: "
                      "estimated from the red cells) or 'native' (the model's own scale)")
    demo.add_argument("--out", default="wbcseg-demo", metavar="DIR",
                      help="output folder when headless (default: wbcseg-demo)")
    demo.add_argument("--headless", action="store_true",
                      help="write files even with a display (default: napari when there is one)")
    demo.add_argument("--seed", metavar="N", type=seed, default=0,
                      help="seed of the synthetic smear, 0..2**32-1 (default 0)")
    demo.set_defaults(func=cmd_demo)

    pre = sub.add_parser(
        "preprocess", help="colour-correct images into an output folder",
        description="Colour-correct images (AHE-Retinex, CLAHE or MSRCR) into --out as "
        "<stem>_<method>.png (a multi-page TIFF stays one .tif).  The originals are never "
        "modified.")
    pre.add_argument("images", nargs="+", metavar="IMAGE",
                     help="image files: PNG, JPEG, BMP or TIFF")
    pre.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    _add_preprocess_options(pre)
    pre.set_defaults(func=cmd_preprocess)

    seg = sub.add_parser(
        "segment", help="segment white cells; labels, per-cell table, differential",
        description="Segment the white cells of each image into nucleus and cytoplasm and "
        "type them.  Writes <stem>_nucleus.tif, <stem>_cytoplasm.tif, <stem>_celltype.tif and "
        "<stem>_cells.csv per image, and one differential.csv, into --out.")
    seg.add_argument("images", nargs="+", metavar="IMAGE",
                     help="image files: PNG, JPEG, BMP or TIFF")
    seg.add_argument("--model", default=None, help="model name or .safetensors file "
                     "(default: the bundled default; see `napari-wbcseg models`)")
    seg.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    add_device_option(seg)
    seg.add_argument("--preprocess", default="model", choices=["model", "ahe-retinex", "none"],
                     help="colour correction before the network (default: model = as the "
                     "model was trained)")
    seg.add_argument("--cell-diameter", metavar="PX|auto|native", type=_diameter, default="auto",
                     help="typical white-cell diameter in pixels (4..2000), 'auto' (default: estimated "
                     "from the red cells) or 'native' (the model's own scale, no resizing)")
    seg.add_argument("--pixel-size", metavar="UM",
                     type=finite_float(0, 1000, low_open=True), default=None,
                     help="um per pixel (0..1000), for the table's areas in um^2 "
                     "(default: none, pixels only)")
    seg.add_argument("--tile", metavar="PX", type=int_range(64, 8192), default=512,
                     help="side of the square tiles the network sees, in pixels at the "
                     "model's scale, 64..8192 (default 512); smaller uses less memory; an image "
                     "that fits one window of 1.5x that side is predicted whole")
    seg.add_argument("--classifier", metavar="auto|none|NAME", default="auto",
                     help="per-cell classifier: auto (the one installed for the model's "
                     "classes, default), none (the network's own cell-type head), or a name "
                     "or .safetensors file (see `napari-wbcseg classifiers`)")
    seg.add_argument("--threshold", metavar="P", type=_fraction, default=0.5,
                     help="calibrated confidence below which a cell is 'unidentified' "
                     "(0..1, default 0.5; classifier only); cells below it are counted "
                     "as 'to_check' in differential.csv")
    seg.add_argument("--scheme", metavar="NAME|FILE.csv", default=None,
                     help="class table of the cell types written: a built-in scheme "
                     "(blood-5part, blood-extended, marrow-icsh) or a scheme file (default: "
                     "the model's classes); the classifier installed for it is used, else "
                     "the model's classes are mapped onto it by name and what cannot be "
                     "mapped is 'unidentified' (255), with a warning")
    seg.add_argument("--include-border-cells", action="store_true",
                     help="count cells cut by the image border in differential.csv (default: "
                     "left out, as hematologists count; the per-image *_cells.csv always lists "
                     "them, with touches_border)")
    add_tta_option(seg)
    add_coarse_pass_option(seg)
    seg.set_defaults(func=cmd_segment)

    models = sub.add_parser(
        "models", help="list models with weights (bundled and user)",
        description="List the segmentation models with weights (bundled and user), with "
        "their validation whole-cell Dice and cell-type accuracy; * marks the default.")
    models.set_defaults(func=cmd_models)
    archs = sub.add_parser("architectures", help="list network architectures",
                           description="List the network architectures `train --model` "
                           "accepts, with a one-line description of each.")
    archs.set_defaults(func=cmd_architectures)

    from .cli_evaluate import add_parser as add_evaluate_parser
    from .cli_train import add_parser as add_train_parser
    from .cli_classifier import add_parsers as add_classifier_parsers
    from .cli_report import add_parser as add_report_parser
    from .cli_batch import add_parser as add_batch_parser
    from .cli_reproduce import add_parser as add_reproduce_parser
    add_train_parser(sub)
    add_reproduce_parser(sub)
    add_evaluate_parser(sub)
    add_classifier_parsers(sub)
    add_report_parser(sub)
    add_batch_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in model cards
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

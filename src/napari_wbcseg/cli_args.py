"""Reusable pieces of the command line: argument types with bounds, a parser whose errors
are one line, and the checks of output paths made before any work starts.

Every refusal is one line on stderr and exit status 2 (argparse errors exit through
``SystemExit(2)``, the checks here raise :class:`napari_wbcseg.cli.CliError`).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")  # plus cuda:N (inference.device)
SEED_MAX = 2**32 - 1  # numpy's seed range


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (``prog: error: ...``), exit status 2."""

    def error(self, message):
        text = " ".join(str(message).split())
        sys.stderr.write(f"{self.prog}: error: {text} (see {self.prog} --help)\n")
        raise SystemExit(2)


def finite_float(lo: float | None = None, hi: float | None = None, *, low_open: bool = False):
    """argparse type: a finite number in [lo, hi] (``(lo, hi]`` with ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        too_low = lo is not None and (value <= lo if low_open else value < lo)
        if not math.isfinite(value) or too_low or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected a finite number {_range(lo, hi, low_open)}"
                                             f", got {text!r}")
        return value
    return parse


def int_range(lo: int | None = 0, hi: int | None = None):
    """argparse type: a whole number in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {_range(lo, hi)}, "
                                             f"got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected a whole number {_range(lo, hi)}, "
                                             f"got {text!r}")
        return value
    return parse


def _range(lo, hi, low_open=False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if low_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{'>' if low_open else '>='} {lo:g}"
    return f"<= {hi:g}" if hi is not None else ""


def device_name(text: str) -> str:
    """argparse type: a device name's spelling (whether it exists here is checked later)."""
    name = text.strip().lower()
    if name in DEVICE_NAMES or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; choose one of: "
                                     f"{', '.join(DEVICE_NAMES)}, cuda:N")


seed = int_range(0, SEED_MAX)

DEVICE_HELP = ("compute device: auto (default: CUDA, then Apple MPS, then the CPU), cpu, "
               "cuda, cuda:N (GPU number N) or mps; one that is not here is refused")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--device`` of every subcommand: same spelling check, default and help."""
    parser.add_argument("--device", type=device_name, default="auto",
                        metavar="auto|cpu|cuda|cuda:N|mps",
                        help=DEVICE_HELP)


def add_tta_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--tta`` of segment, batch and evaluate."""
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the network's probabilities "
                        "over the image and its three mirror images (the network runs four "
                        "times, a field takes about 2.5x longer; a few tenths of a Dice point "
                        "better, see docs/segmentation.md)")


def add_coarse_pass_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--no-coarse-pass`` of segment and batch."""
    parser.add_argument("--no-coarse-pass", dest="coarse_pass", action="store_false",
                        help="predict every window of an image that needs many (default: find "
                        "the cells at 0.7x first and predict at full scale only around them, "
                        "about 1.6x faster on such images; see docs/segmentation.md)")


def check_out_dir(path, flag: str = "--out") -> Path:
    """Create the output folder ``path``; ``CliError`` for a file, or a folder that cannot
    be written, before any work is done."""
    from .cli import CliError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CliError(f"{flag} {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") \
            from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"{flag} {path}: the folder is not writable")
    return path


def check_out_file(path, flag: str) -> Path:
    """``CliError`` when the output file ``path`` names a folder or sits in an unwritable one."""
    from .cli import CliError

    path = Path(path)
    if path.is_dir():
        raise CliError(f"{flag} {path} is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"{flag} {path}: {parent} is not a writable folder")
    return path


@contextlib.contextmanager
def writing(what):
    """Turn an OSError while writing ``what`` (full disk, permissions) into one ``CliError``."""
    from .cli import CliError

    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"cannot write {what}: {reason}; nothing more was written") from None


def unique_stems(paths) -> list[str]:
    """Output stems for ``paths``; ``CliError`` listing inputs whose outputs would collide.

    Outputs are named after the input's stem, so ``a/cell.bmp`` and ``b/cell.png`` would
    overwrite each other's files: they are refused (compared without case, as on macOS
    and Windows) before any work.
    """
    from .cli import CliError

    seen: dict[str, list[str]] = {}
    for p in paths:
        seen.setdefault(Path(p).stem.casefold(), []).append(str(p))
    clashes = [names for names in seen.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(names) for names in clashes)
        raise CliError(f"inputs with the same name would write the same output files: "
                       f"{listed}; rename them or run them separately")
    return [Path(p).stem for p in paths]


__all__ = ["DEVICE_HELP", "OneLineParser", "add_device_option", "check_out_dir",
           "check_out_file", "device_name", "finite_float", "int_range", "seed",
           "unique_stems", "writing"]

"""Errors of generator workers that always reach the dock's ``errored`` handler.

superqt's generator worker takes a ``RuntimeError`` raised by the generator for "the
worker object was deleted": it ends without emitting ``errored`` or ``finished``, so the
dock would wait for ever (torch reports out-of-memory and most of its failures as
RuntimeError).  :func:`reported` re-raises those as :class:`WorkerFailure`.
"""
from __future__ import annotations

import functools


class WorkerFailure(Exception):
    """A ``RuntimeError`` of a worker's generator; ``original`` is the error itself."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


def reported(generator_function):
    """``generator_function`` whose RuntimeErrors come out as :class:`WorkerFailure`."""
    @functools.wraps(generator_function)
    def wrapper(*args, **kwargs):
        try:
            return (yield from generator_function(*args, **kwargs))
        except RuntimeError as exc:
            raise WorkerFailure(exc) from exc
    return wrapper


def one_line(exc: BaseException) -> str:
    """The error's message on one line (its type's name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def original(exc: BaseException) -> BaseException:
    return exc.original if isinstance(exc, WorkerFailure) else exc

"""The one error type of the review package (a ``ValueError`` with a one-line message)."""
from __future__ import annotations


class CaseError(ValueError):
    """A case, audit entry or review file that cannot be read or written; says why in one line."""

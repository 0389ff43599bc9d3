"""Class schemes: the class table a project counts with (see docs/schemes.md).

Built-ins: ``blood-5part`` (the default, :data:`napari_wbcseg.schema.DEFAULT_CLASSES`),
``blood-extended`` and ``marrow-icsh``; or a user's small CSV file.  Plain Python (no
Qt, no torch): the docks, training, the classifier and the report take a
:class:`ClassScheme` (or its ``classes``) as a parameter.
"""
from __future__ import annotations

from .builtin import BUILTIN_NAMES, DEFAULT_SCHEME, builtin_schemes, load_scheme
from .mapping import ClassMapping, map_classes
from .scheme import (MAX_CLASSES, ClassScheme, SchemeError, myeloid_erythroid_ratio,
                     scheme_from_classes)
from .scheme_file import MAX_FILE_BYTES, read_scheme_file, save_scheme, scheme_to_csv

__all__ = ["BUILTIN_NAMES", "DEFAULT_SCHEME", "MAX_CLASSES", "MAX_FILE_BYTES", "ClassMapping",
           "ClassScheme", "SchemeError", "builtin_schemes", "load_scheme", "map_classes",
           "myeloid_erythroid_ratio", "read_scheme_file", "save_scheme", "scheme_from_classes",
           "scheme_to_csv"]

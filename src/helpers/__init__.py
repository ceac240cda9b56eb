"""Helpers for the demand-analytics notebooks: warehouse, ingestion, data quality, pipeline."""

import sys as _sys

__version__ = "0.1.0"

# jsonschema (under nbformat, so under papermill, nbconvert, Ploomber's notebook tasks and plotly's
# notebook renderer) imports its optional IRI format checker, rfc3987-syntax 1.1.0, which compiles
# about 35 Lark grammars at import: 2.5-5 s of every process that reads a notebook, every kernel that
# sets the plotly renderer included (python-jsonschema/jsonschema#1428). No schema here uses the
# "iri" formats, and jsonschema skips a format whose checker is absent, so the import is left out
# (a module set to None in sys.modules raises ImportError, which jsonschema expects).
if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)

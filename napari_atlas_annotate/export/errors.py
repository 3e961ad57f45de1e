"""The error export raises for bad input (a ``ValueError``, so the CLI prints it cleanly)."""

from __future__ import annotations


class ExportError(ValueError):
    """An export that cannot be done as asked: which case or file, what is wrong, what to do."""

"""Long lists of case ids as people read them in a command's output or a summary.

A project of 20,000 cases must not print 20,000 names on a line or 20,000 lines of the same
reason: the first few ids and a count, with the full list where it is kept (``--json``,
an export's provenance file).
"""

from __future__ import annotations


def first_ids(ids: list[str], shown: int = 5) -> str:
    """``a, b, c, d, e and 12 more`` (``-`` for none)."""
    if not ids:
        return "-"
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")

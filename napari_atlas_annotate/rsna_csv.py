"""Reading RSNA 2024 lumbar spine CSVs strictly: every data row has the header's number
of fields, the header holds the columns a reader needs, and every problem is one
:class:`RsnaFileError` naming the file and line, what is wrong and what to do.

Used by the scorer (``models/rsna_files.py``: solutions and submissions) and by the
readers of a dataset's own CSVs (``spine_grades.py``: train.csv, the label coordinates and
the series descriptions), so a row with a stray or missing comma is refused by both
instead of being read with its grades shifted by a column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path


class RsnaFileError(ValueError):
    """An RSNA CSV that cannot be read as what it is given for (the message says why)."""


class NotTextError(RsnaFileError):
    """The file given as a CSV is not text at all (a label map or an image, say)."""


def csv_rows(
    path: str | Path, what: str, expected: Sequence[str], needs: str = ""
) -> Iterator[tuple[int, dict]]:
    """``(line, {column: text})`` of each non-blank data row of a CSV; its header must
    hold ``expected`` (other columns are ignored; ``needs`` says in words what the file
    needs when one is missing). Every problem is an RsnaFileError."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise RsnaFileError(
                    f"{path}: the file is empty; a {what} starts with the header "
                    f"{','.join(expected[:4])}{',...' if len(expected) > 4 else ''}."
                )
            names = [h.strip() for h in header]
            check_header(path, what, names, expected, needs)
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(names):
                    raise RsnaFileError(
                        f"{path}, line {reader.line_num}: {len(cells)} fields where the header "
                        f"has {len(names)}; fix the row (a stray or missing comma?)."
                    )
                yield reader.line_num, dict(zip(names, cells, strict=True))
    except RsnaFileError:
        raise
    except UnicodeDecodeError:
        raise NotTextError(
            f"{path}: not a text CSV file (it is not UTF-8); give the {what} CSV itself."
        ) from None
    except csv.Error as exc:
        raise RsnaFileError(
            f"{path}, line {reader.line_num}: cannot be read as CSV ({exc}); fix or re-export it."
        ) from None
    except IsADirectoryError:
        raise RsnaFileError(f"{path}: is a folder; give the {what} CSV file in it.") from None
    except FileNotFoundError:
        raise RsnaFileError(f"{path}: no such file; check the path.") from None
    except OSError as exc:
        raise RsnaFileError(
            f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions."
        ) from None


def check_header(
    path: Path, what: str, names: list[str], expected: Sequence[str], needs: str = ""
) -> None:
    """Refuse a header naming a column twice or lacking one of ``expected``."""
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise RsnaFileError(
            f"{path}: column {twice[0]} appears more than once in the header; keep one."
        )
    missing = [c for c in expected if c not in names]
    if not missing:
        return
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    hint = ""
    if what == "solution" and "row_id" in names:
        hint = " (this looks like a submission: give the solution first, then submissions)"
    elif what == "submission" and "study_id" in names:
        hint = " (this looks like a train.csv solution: give it first, then submissions)"
    raise RsnaFileError(
        f"{path}: no column {shown} ({len(missing)} of the {len(expected)} a {what} needs: "
        f"{needs or ','.join(expected)}){hint}; rename the columns or re-export the file."
    )

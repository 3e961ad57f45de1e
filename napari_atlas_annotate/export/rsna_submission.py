"""The grader's proposals as an RSNA 2024 lumbar ``submission.csv``.

``atlas-annotate export PROJECT --format rsna-submission --out DIR`` writes, from each spine
case's latest ``proposal`` grades version (the grader's three probabilities per cell, stored
with the proposal by :mod:`napari_atlas_annotate.models.spine_proposals`):

* ``submission.csv``: ``row_id,normal_mild,moderate,severe``, 25 rows per study, ``row_id``
  = ``<study_id>_<condition>_<level>`` spelled as in Kaggle's ``sample_submission.csv``
  (``4003253_spinal_canal_stenosis_l1_l2``). Rows are ordered as the sample submission
  orders them: by study_id, then by ``<condition>_<level>`` alphabetically
  (``left_neural_foraminal_narrowing_l1_l2`` first, ``spinal_canal_stenosis_l5_s1`` last);
  Kaggle's scorer joins on ``row_id``, so the order does not change a score.
* ``submission_models.csv``: ``study_id,model_version,proposal_version``: the registered
  grader version that made each study's proposal and the project's id of that proposal
  version, so a score can be traced to a model round.

Probabilities are written exactly as stored (shortest round-trip decimal of each float):
they are *not* renormalised. The grader's softmax rows sum to one up to float rounding, and
the RSNA metric (Kaggle's and :func:`~napari_atlas_annotate.models.rsna_metric.rsna_score`)
normalises each row itself.

``study_id`` is the one ``--format rsna`` writes for the same case and options
(:func:`.rsna.study_id`): with ``keep_identifiers`` a case added from an RSNA folder keeps
its study_id (its case id), otherwise the integer pseudonym of the case's exported name; so
the submission scores against that export's ``train.csv`` row for row.

A case without a proposal, or whose latest proposal lacks probabilities for a cell, is
skipped and listed with the command that proposes it; it never becomes a row of zeros. When
no case has a usable proposal nothing is written and the error says how to get one.
``--status`` does not apply (proposals are exported, not graded versions).

Examples
--------
>>> result = export_project(project, "rsna-submission", "sub")  # doctest: +SKIP
>>> (result.root / "submission.csv").read_text().splitlines()[0]  # doctest: +SKIP
'row_id,normal_mild,moderate,severe'
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

from ..grade_sheet import GradeSheet
from ..project import Project
from ..spine_grades import CONDITIONS, GRADE_KEYS, GRADES, LEVELS, column_name
from .errors import ExportError
from .rsna import _atomic_via, study_id
from .selection import Selection, Skipped

FORMAT = "rsna-submission"
#: What the export records as its selection status (provenance, audit trail).
STATUS = "proposal"
SUBMISSION_CSV = "submission.csv"
MODELS_CSV = "submission_models.csv"
SUBMISSION_COLUMNS: tuple[str, ...] = ("row_id", *(GRADE_KEYS[g] for g in GRADES))
MODELS_COLUMNS: tuple[str, ...] = ("study_id", "model_version", "proposal_version")
#: ``<condition>_<level>`` in the sample submission's order.
CELL_ORDER: tuple[tuple[str, str], ...] = tuple(
    sorted(((c, lv) for c in CONDITIONS for lv in LEVELS), key=lambda cell: column_name(*cell))
)


def row_id(sid: int, condition: str, level: str) -> str:
    """Kaggle's ``row_id`` of one cell of a study."""
    return f"{sid}_{column_name(condition, level)}"


def _unusable_cells(sheet: GradeSheet) -> list[str]:
    """Cells of ``sheet`` without three finite, non-negative probabilities of positive sum."""
    bad = []
    for cell in CELL_ORDER:
        p = sheet.probabilities.get(cell)
        ok = (
            p is not None
            and len(p) == 3
            and all(math.isfinite(v) and v >= 0 for v in p)
            and sum(p) > 0
        )
        if not ok:
            bad.append(column_name(*cell))
    return bad


def _propose_hint(project: Project, case_id: str, again: bool) -> str:
    verb = "propose it again" if again else "propose it"
    return (
        f"{verb} with the project's grader: `atlas-annotate propose {project.folder} "
        f"--cases {case_id}` (or `atlas-annotate propose {project.folder}` for every case "
        "still to be graded), then export again"
    )


def select_proposals(project: Project) -> tuple[list[Selection], list[Skipped]]:
    """Each case's latest grades proposal (in project order), and the cases skipped: no
    proposal, or a latest proposal without usable probabilities for every cell."""
    chosen, skipped = [], []
    for case in project.cases():
        version = project.latest_version(case.id, kinds=("proposal",), content="grades")
        if version is None:
            skipped.append(
                Skipped(case.id, "no grader proposal", _propose_hint(project, case.id, False))
            )
            continue
        bad = _unusable_cells(project.read_grades(version))
        if bad:
            by = f" by {version.model_version}" if version.model_version else ""
            skipped.append(
                Skipped(
                    case.id,
                    f"its latest proposal (version {version.id}{by}) has no usable "
                    f"probabilities for {len(bad)} of 25 cells ({', '.join(bad[:3])}"
                    f"{', ...' if len(bad) > 3 else ''})",
                    _propose_hint(project, case.id, True),
                )
            )
            continue
        chosen.append(Selection(case.id, version))
    return chosen, skipped


def nothing_proposed(project: Project, skipped: list[Skipped]) -> ExportError:
    """The error for a project none of whose cases has a usable proposal."""
    folder = project.folder
    if not skipped:
        return ExportError(
            f"project {folder} has no cases; add them with `atlas-annotate add {folder} ...`."
        )
    return ExportError(
        f"no case of {folder} has a grader proposal with probabilities for all 25 cells "
        f"({len(skipped)} case{'s' if len(skipped) != 1 else ''}); nothing to export. "
        f"Propose them first: `atlas-annotate propose {folder}` (add --all to include final "
        "cases), then export again."
    )


class SubmissionTable:
    """Rows of ``submission.csv`` and ``submission_models.csv``, filled case by case."""

    def __init__(self, keep_identifiers: bool = False) -> None:
        self.keep_identifiers = keep_identifiers
        self.probabilities: dict[int, dict[tuple[str, str], list[float]]] = {}
        self.models: dict[int, tuple[str, int]] = {}

    def add(self, project: Project, sel: Selection, name: str | None = None) -> int:
        """Add a case's proposal (``name``: its exported name); returns its study_id."""
        case = project.case(sel.case_id)
        sid = study_id(case, self.keep_identifiers, name)
        if sid in self.probabilities:
            raise ExportError(
                f"case {case.id}: study_id {sid} is already used by another case of the "
                "export; two cases cannot share a row_id. Export without --keep-identifiers, "
                "or remove the duplicate case."
            )
        sheet = project.read_grades(sel.version)
        self.probabilities[sid] = {cell: list(sheet.probabilities[cell]) for cell in CELL_ORDER}
        self.models[sid] = (sel.version.model_version or "", sel.version.id)
        return sid

    def rows(self) -> list[list[str]]:
        """``submission.csv`` rows (without the header), in the sample submission's order."""
        return [
            [row_id(sid, *cell), *(repr(float(p)) for p in self.probabilities[sid][cell])]
            for sid in sorted(self.probabilities)
            for cell in CELL_ORDER
        ]

    def write(self, root: Path) -> list[Path]:
        models = [[sid, *self.models[sid]] for sid in sorted(self.models)]
        return [
            _atomic_via(
                root / SUBMISSION_CSV, lambda p: _write_csv(p, SUBMISSION_COLUMNS, self.rows())
            ),
            _atomic_via(root / MODELS_CSV, lambda p: _write_csv(p, MODELS_COLUMNS, models)),
        ]


def _write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


__all__ = [
    "FORMAT",
    "MODELS_CSV",
    "SUBMISSION_COLUMNS",
    "SUBMISSION_CSV",
    "SubmissionTable",
    "nothing_proposed",
    "row_id",
    "select_proposals",
]

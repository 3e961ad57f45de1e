"""Who said what per grade cell of a lumbar study, disputed cells first (GUI-free).

What the lead adjudicating a spine case needs per cell (condition x level): each reader's
grade and point, the consensus grade and point (what *Finalize* stores when the cell is
left on the consensus: :func:`~napari_atlas_annotate.review.adjudication.compose_grades`
with no decisions), whether the readers disagree, and the series the cell is read on.
Cells come disputed first, the widest disagreement (Normal/Mild against Severe) first, then
in sheet order (condition, then level cranial to caudal).

A cell is *disputed* when its readers gave it different grades (a reader who left it
ungraded takes no side), the rule :meth:`~.metrics.GradeAgreement.disputed_cells` and
:func:`~.adjudication.finalize_agreed` use.

Examples
--------
>>> from napari_atlas_annotate.grade_sheet import GradeSheet
>>> alice, bob = GradeSheet(), GradeSheet()
>>> alice.set_grade("spinal_canal_stenosis", "l4_l5", "Moderate")
>>> bob.set_grade("spinal_canal_stenosis", "l4_l5", "Severe")
>>> first = cell_opinions({"alice": alice, "bob": bob})[0]
>>> first.key, first.disputed, first.series
('spinal_canal_stenosis_l4_l5', True, 'Sagittal T2/STIR')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..grade_sheet import GradeSheet, LevelPoint
from ..spine_grades import CONDITION_DISPLAY, GRADES, LEVEL_DISPLAY, SERIES_FOR_CONDITION
from .adjudication import compose_grades

__all__ = ["CellOpinions", "cell_opinions"]


@dataclass(frozen=True)
class CellOpinions:
    """One grade cell as the readers and the consensus have it.

    Attributes
    ----------
    condition, level
        The cell (snake_case names).
    grades
        ``{reader: grade or None}`` for every reader compared.
    points
        ``{reader: LevelPoint}`` for the readers who placed a point.
    consensus_grade, consensus_point
        What the cell gets when the lead leaves it on the consensus.
    """

    condition: str
    level: str
    grades: dict[str, str | None]
    points: dict[str, LevelPoint]
    consensus_grade: str | None
    consensus_point: LevelPoint | None

    @property
    def key(self) -> str:
        """``"<condition>_<level>"``: the cell's name in decisions and train.csv."""
        return f"{self.condition}_{self.level}"

    @property
    def title(self) -> str:
        """``"Spinal Canal Stenosis L4/L5"``."""
        return f"{CONDITION_DISPLAY[self.condition]} {LEVEL_DISPLAY[self.level]}"

    @property
    def series(self) -> str:
        """The series the condition is read on (``"Sagittal T1"`` for the foramina)."""
        return SERIES_FOR_CONDITION[self.condition]

    @property
    def disputed(self) -> bool:
        """Whether the readers gave the cell different grades."""
        return len({g for g in self.grades.values() if g is not None}) > 1

    @property
    def spread(self) -> int:
        """How many grades apart the readers are (0 agreed, 2 Normal/Mild vs Severe)."""
        ranks = [GRADES.index(g) for g in self.grades.values() if g is not None]
        return max(ranks) - min(ranks) if ranks else 0

    @property
    def ungraded(self) -> list[str]:
        """Readers who left the cell without a grade."""
        return [who for who, g in self.grades.items() if g is None]

    def focus_point(self) -> LevelPoint | None:
        """The point to show the cell at: the consensus point, else any reader's."""
        if self.consensus_point is not None:
            return self.consensus_point
        return next(iter(self.points.values()), None)

    def summary(self, series_name: Callable[[LevelPoint], str] | None = None) -> str:
        """One line: ``"Spinal Canal Stenosis L4/L5 (disputed): alice Moderate (Sagittal
        T2/STIR #8), bob Severe (no point); consensus Moderate"``.

        ``series_name`` names a point's series (default: as the point names it, which for
        points imported from RSNA's CSVs is a series_id).
        """
        name = series_name or (lambda point: point.series)
        said = []
        for who, grade in self.grades.items():
            point = self.points.get(who)
            where = f"{name(point)} #{point.instance}" if point is not None else "no point"
            said.append(f"{who} {grade or 'not graded'} ({where})")
        state = "disputed" if self.disputed else "agreed"
        return (
            f"{self.title} ({state}): {', '.join(said)}; "
            f"consensus {self.consensus_grade or 'not graded'}"
        )


def cell_opinions(sheets: Mapping[str, GradeSheet], case_id: str = "") -> list[CellOpinions]:
    """Every grade cell of a study with its readers' grades and points, disputed first.

    Parameters
    ----------
    sheets
        ``{reader: GradeSheet}`` (:func:`~.cases.load_opinions` of a spine case).
    case_id
        Named in errors.

    Returns
    -------
    list of CellOpinions
        All 25 cells: disputed ones first (widest disagreement first), then the rest; ties
        in sheet order.

    Raises
    ------
    ProjectError
        When a reader's name is also a grade (see :func:`~.adjudication.compose_grades`).
    """
    consensus, _ = compose_grades(sheets, {}, case_id)
    cells = [
        CellOpinions(
            condition,
            level,
            {who: sheet.grades.get((condition, level)) for who, sheet in sheets.items()},
            {
                who: sheet.points[(condition, level)]
                for who, sheet in sheets.items()
                if (condition, level) in sheet.points
            },
            consensus.grades.get((condition, level)),
            consensus.points.get((condition, level)),
        )
        for condition, level in GradeSheet.cells()
    ]
    return sorted(cells, key=lambda c: (not c.disputed, -c.spread))  # stable: sheet order

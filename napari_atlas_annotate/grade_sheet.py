"""GradeSheet: one lumbar study's 5 conditions x 5 levels of grades, probabilities and points.

This is what a radiologist edits in the grade sheet, what the grader proposes, what review
compares and what the RSNA export writes. Plain data, JSON round-trippable.

Examples
--------
>>> sheet = GradeSheet()
>>> sheet.set_grade("spinal_canal_stenosis", "l4_l5", "Severe")
>>> sheet.grade("spinal_canal_stenosis", "l4_l5")
'Severe'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .spine_grades import CONDITIONS, GRADES, LEVELS

Cell = tuple[str, str]  # (condition, level)


def _check_cell(condition: str, level: str) -> None:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")


@dataclass
class LevelPoint:
    """Where a condition is seen at a level: a pixel (x, y) of one slice of one series."""

    series: str  # SeriesDescription, e.g. "Sagittal T2/STIR"
    instance: int  # 1-based slice number in that series (RSNA instance_number)
    x: float
    y: float


@dataclass
class GradeSheet:
    grades: dict[Cell, str | None] = field(default_factory=dict)
    probabilities: dict[Cell, list[float]] = field(default_factory=dict)
    points: dict[Cell, LevelPoint] = field(default_factory=dict)

    @staticmethod
    def cells() -> list[Cell]:
        return [(c, lv) for c in CONDITIONS for lv in LEVELS]

    def grade(self, condition: str, level: str) -> str | None:
        _check_cell(condition, level)
        return self.grades.get((condition, level))

    def set_grade(self, condition: str, level: str, grade: str | None) -> str | None:
        """Set a cell's grade; returns the previous value (for the edit log)."""
        _check_cell(condition, level)
        if grade is not None and grade not in GRADES:
            raise ValueError(f"grade must be one of {GRADES} or None, not {grade!r}")
        old = self.grades.get((condition, level))
        self.grades[(condition, level)] = grade
        return old

    def cycle_grade(self, condition: str, level: str) -> str:
        """Next grade in Normal/Mild -> Moderate -> Severe -> Normal/Mild (one click)."""
        current = self.grade(condition, level)
        nxt = GRADES[0] if current is None else GRADES[(GRADES.index(current) + 1) % len(GRADES)]
        self.set_grade(condition, level, nxt)
        return nxt

    def set_point(self, condition: str, level: str, point: LevelPoint | None) -> LevelPoint | None:
        _check_cell(condition, level)
        old = self.points.get((condition, level))
        if point is None:
            self.points.pop((condition, level), None)
        else:
            self.points[(condition, level)] = point
        return old

    def is_complete(self) -> bool:
        return all(self.grades.get(cell) is not None for cell in self.cells())

    def to_dict(self) -> dict:
        return {
            "grades": {f"{c}_{lv}": g for (c, lv), g in sorted(self.grades.items())},
            "probabilities": {
                f"{c}_{lv}": [float(p) for p in ps]
                for (c, lv), ps in sorted(self.probabilities.items())
            },
            "points": {
                f"{c}_{lv}": {"series": p.series, "instance": p.instance, "x": p.x, "y": p.y}
                for (c, lv), p in sorted(self.points.items())
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> GradeSheet:
        lookup = {f"{c}_{lv}": (c, lv) for c, lv in cls.cells()}

        def cell(key: str) -> Cell:
            if key not in lookup:
                raise ValueError(f"unknown grade cell {key!r}")
            return lookup[key]

        sheet = cls()
        for key, grade in data.get("grades", {}).items():
            sheet.set_grade(*cell(key), grade)
        for key, probs in data.get("probabilities", {}).items():
            sheet.probabilities[cell(key)] = [float(p) for p in probs]
        for key, p in data.get("points", {}).items():
            sheet.points[cell(key)] = LevelPoint(p["series"], int(p["instance"]), p["x"], p["y"])
        return sheet

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GradeSheet:
        return cls.from_dict(json.loads(text))

"""Row types of the project database, as plain dataclasses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class ImageRef:
    """One image of a case: a NIfTI file, a DICOM file or folder (``series`` picks one,
    ``stack`` one stack of a series holding several at different angles, 1-based)."""

    path: str
    description: str = ""
    series: str | None = None
    stack: int | None = None

    def to_json(self, path: str | None = None) -> dict:
        """The stored form (``stack`` only when set, so older projects read the same)."""
        out = {"path": self.path if path is None else path, "description": self.description}
        out["series"] = self.series
        if self.stack is not None:
            out["stack"] = self.stack
        return out


@dataclass
class Case:
    id: str
    task: str
    images: list[ImageRef]
    truth: dict = field(default_factory=dict)
    source: str = ""
    position: int = 0
    uncertainty: float | None = None

    @classmethod
    def from_row(cls, row) -> Case:
        return cls(
            id=row["id"],
            task=row["task"],
            images=[ImageRef(**i) for i in json.loads(row["images"])],
            truth=json.loads(row["truth"]) if row["truth"] else {},
            source=row["source"] or "",
            position=row["position"],
            uncertainty=row["uncertainty"],
        )


@dataclass
class LabelVersion:
    """A stored label (mask or grade sheet) of a case: who, when, what kind, which model."""

    id: int
    case_id: str
    annotator: str | None
    kind: str  # proposal | corrected | final | imported
    content: str  # mask | grades
    path: str
    sha256: str
    model_version: str | None
    parent_id: int | None
    last_event_id: int | None
    created_at: float
    note: str | None

    @classmethod
    def from_row(cls, row) -> LabelVersion:
        return cls(**{k: row[k] for k in row.keys()})

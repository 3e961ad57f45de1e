"""``project.json``: what kind of campaign a project folder holds."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..classes import ABDOMEN_ATLAS_CLASSES
from ..io.atomic import write_text
from .errors import ProjectError

CONFIG_NAME = "project.json"
DATABASE_NAME = "project.sqlite"
TASKS = ("organs", "spine")


def task_phrase(task: str) -> str:
    """``task`` as a project kind in a sentence: 'an organs project', 'a spine project'."""
    article = "an" if task[:1].lower() in "aeiou" else "a"
    return f"{article} {task} project"


@dataclass
class ProjectConfig:
    """Settings fixed when the project is created.

    ``classes`` are the organ label names in id order (id = index + 1; 0 is background).
    ``label_tolerance`` is part of the annotation protocol: how many voxels off annotators
    may leave an organ border instead of repainting it (0: every voxel is corrected). Each
    retraining round's held-out check allows for it (see
    :func:`~napari_atlas_annotate.training.round.train_round`).
    """

    name: str
    task: str
    classes: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    format_version: int = 1
    label_tolerance: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ProjectError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.task == "organs" and not self.classes:
            self.classes = list(ABDOMEN_ATLAS_CLASSES)
        if len(set(self.classes)) != len(self.classes):
            raise ProjectError(f"class names must be unique; got {self.classes}")
        if len(self.classes) > 65535:
            raise ProjectError("at most 65535 classes are supported")
        if not isinstance(self.label_tolerance, int) or self.label_tolerance < 0:
            raise ProjectError(
                f"label_tolerance must be a whole number of voxels >= 0, not "
                f"{self.label_tolerance!r}"
            )

    @property
    def class_ids(self) -> dict[str, int]:
        return {name: i + 1 for i, name in enumerate(self.classes)}

    def save(self, folder: Path) -> None:
        write_text(Path(folder) / CONFIG_NAME, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> ProjectConfig:
        path = Path(folder) / CONFIG_NAME
        if not Path(folder).is_dir():
            raise ProjectError(
                f"{folder}: no such folder. Create a project with "
                "'atlas-annotate init PROJECT --task organs|spine'."
            )
        if not path.exists():
            raise ProjectError(
                f"{folder}: not an annotation project (no {CONFIG_NAME}). Create one with "
                "'atlas-annotate init PROJECT --task organs|spine', or pick the project folder."
            )
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ProjectError(f"{path}: unreadable project settings ({exc}).") from exc
        except ProjectError as exc:
            raise ProjectError(f"{path}: {exc}. Fix it in that file.") from exc

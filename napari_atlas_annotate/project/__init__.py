"""The on-disk annotation project (GUI-free): config, cases, label versions, edit log."""

from .config import ProjectConfig, task_phrase
from .edit_log import EditEvent, LabelDiff, diff_labels, replay
from .errors import ProjectError
from .records import Case, ImageRef, LabelVersion
from .store import Project

__all__ = [
    "Case",
    "EditEvent",
    "ImageRef",
    "LabelDiff",
    "LabelVersion",
    "Project",
    "ProjectConfig",
    "ProjectError",
    "diff_labels",
    "task_phrase",
    "replay",
]

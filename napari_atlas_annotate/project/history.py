"""A case's history: every label version with what went into it, and the audit trail.

The project keeps every version (proposals, readers' corrections, imports, finals) as an
immutable file, every edit in the log and every decision in the audit trail. This puts them
together for one case, oldest first, so a lead or an ML engineer can answer "what happened
to this case?": which model proposed it, who corrected what and how long it took, what the
lead decided, and where each version's file is (to compare it, or to bring it back with
``atlas-annotate import``).

For a version made by a reader, the edits folded into it are theirs logged after their
previous version of the case (up to the version's ``last_event_id``). For a mask version,
``changed_voxels`` counts the voxels whose label differs from its parent version's, and
``classes`` the voxels of each class in it.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .records import LabelVersion
from .store import Project


@dataclass
class VersionHistory:
    """One label version of a case and what went into it."""

    version: LabelVersion
    edits: int = 0
    active_seconds: float = 0.0
    tools: dict[str, int] = field(default_factory=dict)  # edits per tool, most used first
    changed_voxels: int | None = None  # differing from the parent (masks with a parent)
    classes: dict[str, int] = field(default_factory=dict)  # voxels per class (masks)
    # per class changed from the parent: (voxels gained, voxels lost)
    class_changes: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        v = self.version
        return {
            "version": v.id,
            "kind": v.kind,
            "content": v.content,
            "annotator": v.annotator,
            "model_version": v.model_version,
            "parent": v.parent_id,
            "at": utc(v.created_at),
            "note": v.note,
            "path": v.path,
            "sha256": v.sha256,
            "edits": self.edits,
            "active_seconds": round(self.active_seconds, 1),
            "tools": self.tools,
            "changed_voxels": self.changed_voxels,
            "classes": self.classes,
            "class_changes": {k: list(v) for k, v in self.class_changes.items()},
        }


def _name(project: Project, label: int) -> str:
    names = project.classes
    return names[label - 1] if 0 < label <= len(names) else f"label {label}"


def utc(t: float) -> str:
    """``2026-11-24T06:01:02+00:00``."""
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")


def case_history(project: Project, case_id: str) -> tuple[list[VersionHistory], list[dict]]:
    """The versions of ``case_id`` (oldest first, with their edits and voxel counts) and
    its audit records (``{"action", "actor", "at", "detail"}``, oldest first).

    Raises
    ------
    ProjectError
        No such case (the error lists the known ones), or a version's file is missing.
    """
    project.case(case_id)
    versions = project.versions(case_id)
    by_id = {v.id: v for v in versions}
    masks: dict[int, np.ndarray] = {}

    def mask(version: LabelVersion) -> np.ndarray:
        if version.id not in masks:
            if len(masks) > 2:  # hold a few full volumes at most: a version and its parent
                masks.pop(next(iter(masks)))
            masks[version.id] = project.read_mask(version)
        return masks[version.id]

    out = []
    last_event: dict[str, int | None] = {}  # reader -> last event folded in so far
    for version in versions:
        entry = VersionHistory(version)
        reader = version.annotator
        if reader is not None and version.last_event_id is not None:
            events = project.events(
                case_id, reader, after_id=last_event.get(reader), up_to_id=version.last_event_id
            )
            entry.edits = len(events)
            entry.active_seconds = float(sum(e.active_seconds for e in events))
            entry.tools = dict(Counter(e.tool for e in events).most_common())
            last_event[reader] = version.last_event_id
        if version.content == "mask":
            labels = mask(version)
            entry.classes = {
                _name(project, i): int(n)
                for i, n in enumerate(np.bincount(labels.ravel()))
                if i and n
            }
            parent = by_id.get(version.parent_id) if version.parent_id else None
            if parent is not None and parent.content == "mask":
                before = mask(parent)
                changed = labels != before
                entry.changed_voxels = int(np.count_nonzero(changed))
                now, was = labels[changed], before[changed]
                gained, lost = np.bincount(now), np.bincount(was)
                for i in sorted((set(np.unique(now)) | set(np.unique(was))) - {0}):
                    g = int(gained[i]) if i < len(gained) else 0
                    lo = int(lost[i]) if i < len(lost) else 0
                    entry.class_changes[_name(project, int(i))] = (g, lo)
        out.append(entry)
    audit = [
        {"action": r["action"], "actor": r["actor"], "at": utc(r["t"]), "detail": r["detail"]}
        for r in project.audit_trail(case_id)
    ]
    return out, audit

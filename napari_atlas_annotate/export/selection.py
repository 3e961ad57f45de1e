"""Which label version of each case an export takes.

``status="final"``: the case's latest ``final`` version. ``status="corrected"``: the latest
``final`` version, else the latest ``corrected`` one (whoever submitted it). Cases with
neither are skipped, and the reason is kept for the manifest and the summary.

Examples
--------
>>> chosen, skipped = select_versions(project, "corrected")  # doctest: +SKIP
>>> [(s.case_id, s.version.kind, s.version.annotator) for s in chosen]  # doctest: +SKIP
[('case0', 'final', 'lead'), ('case1', 'corrected', 'ann')]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..project import LabelVersion, Project
from .errors import ExportError

STATUSES = ("final", "corrected")


@dataclass(frozen=True)
class Selection:
    """A case and the label version to export for it."""

    case_id: str
    version: LabelVersion

    @property
    def annotator(self) -> str | None:
        return self.version.annotator


@dataclass(frozen=True)
class Skipped:
    """A case left out of an export, and why."""

    case_id: str
    reason: str


def select_versions(project: Project, status: str) -> tuple[list[Selection], list[Skipped]]:
    """The version to export per case (in project order) and the cases skipped.

    Parameters
    ----------
    project
        The project.
    status
        ``"final"`` or ``"corrected"`` (see the module docstring).
    """
    if status not in STATUSES:
        raise ExportError(f"status must be one of {STATUSES}, not {status!r}")
    content = "grades" if project.task == "spine" else "mask"
    chosen, skipped = [], []
    for case in project.cases():
        version = project.current_final(case.id, content)
        if version is None and status == "corrected":
            version = project.latest_version(case.id, kinds=("corrected",), content=content)
        if version is None:
            wanted = "final" if status == "final" else "final or corrected"
            skipped.append(Skipped(case.id, f"no {wanted} {content} version"))
        else:
            chosen.append(Selection(case.id, version))
    return chosen, skipped

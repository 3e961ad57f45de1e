"""Which label version of each case an export takes.

``status="final"``: the case's latest ``final`` version (unless a lead reopened it).
``status="corrected"``: the latest ``final`` version, else the newest ``corrected`` or
``imported`` version (whoever submitted or imported it: labels brought in with
``atlas-annotate import`` count as an annotator's labels, as they do for training and
review). ``status="any"``: as ``corrected``, else the case's latest model proposal, the way
AbdomenAtlas released its CTs (AI labels everywhere, radiologist-revised where reviewed);
``provenance.json`` marks each case's label kind and model version, and the summary counts
the unreviewed ones. Cases with none of these are skipped, and the reason is kept for the
manifest and the summary. When no case qualifies, :func:`nothing_to_export` says what the
project has and what to do instead.

Examples
--------
>>> chosen, skipped = select_versions(project, "corrected")  # doctest: +SKIP
>>> [(s.case_id, s.version.kind, s.version.annotator) for s in chosen]  # doctest: +SKIP
[('case0', 'final', 'lead'), ('case1', 'corrected', 'ann'), ('case2', 'imported', 'ts')]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..project import LabelVersion, Project
from .errors import ExportError

STATUSES = ("final", "corrected", "any")
#: Version kinds ``status="corrected"`` falls back to when a case has no final version.
CORRECTED_KINDS = ("corrected", "imported")
#: What ``status="any"`` takes when a case has none of those either.
PROPOSAL_KIND = "proposal"


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
    """A case left out of an export, why (``reason``: kept in the provenance) and what to
    do about it (``hint``: the command, for the summary only)."""

    case_id: str
    reason: str
    hint: str = ""
    #: what the case has instead, for summing up many: ``"labels"`` (annotators' labels,
    #: not final), ``"proposal"`` (only the model's), ``"nothing"``, or ``""``
    has: str = ""


def _content(project: Project) -> str:
    return "grades" if project.task == "spine" else "mask"


def select_versions(project: Project, status: str) -> tuple[list[Selection], list[Skipped]]:
    """The version to export per case (in project order) and the cases skipped.

    Parameters
    ----------
    project
        The project.
    status
        ``"final"``, ``"corrected"`` or ``"any"`` (see the module docstring).
    """
    if status not in STATUSES:
        raise ExportError(f"status must be one of {STATUSES}, not {status!r}")
    content = _content(project)
    chosen, skipped = [], []
    for case in project.cases():
        version = project.current_final(case.id, content)
        if version is None and status != "final":
            version = project.latest_version(case.id, kinds=CORRECTED_KINDS, content=content)
        if version is None and status == "any":
            version = project.latest_version(case.id, kinds=(PROPOSAL_KIND,), content=content)
        if version is None:
            skipped.append(_skipped(project, case.id, status, content))
        else:
            chosen.append(Selection(case.id, version))
    return chosen, skipped


def _skipped(project: Project, case_id: str, status: str, content: str) -> Skipped:
    """Why ``case_id`` has no version to export, and what it has and which command gives
    it one."""
    folder = project.folder
    wanted = {
        "final": "final",
        "corrected": "final, corrected or imported",
        "any": "final, corrected, imported or proposed",
    }[status]
    reason = f"no {wanted} {content} version"
    labelled = project.versions(case_id, kinds=CORRECTED_KINDS, content=content)
    lead, why = _reopened(project, case_id, content)
    if lead:  # the lead's free text stays out of the reason, which goes into provenance
        reason = f"its final {content} version was reopened by {lead}"
    told = f"reopened because: {why}; " if why else ""
    if status == "final" and labelled:
        kinds = " and ".join(sorted({v.kind for v in labelled}))
        who = ", ".join(sorted({v.annotator or "?" for v in labelled}))
        return Skipped(
            case_id,
            reason,
            f"{told}it has {kinds} labels by {who}: a lead finalizes them with `atlas-annotate "
            f"review {folder} --finalize {case_id} --lead NAME`, or export with --status "
            "corrected",
            has="labels",
        )
    proposed = project.versions(case_id, kinds=(PROPOSAL_KIND,), content=content)
    has = "only a model proposal" if proposed else "nothing yet"
    if not proposed:
        unreviewed = (
            f", or the helper model proposes it with `atlas-annotate propose {folder} "
            f"--cases {case_id}`"
        )
    elif status != "any":
        unreviewed = ", or export the proposal as it is with --status any"
    else:
        unreviewed = ""
    return Skipped(
        case_id,
        reason,
        f"{told}it has {has}: an annotator {'corrects' if proposed else 'labels'} it in "
        f"`atlas-annotate open {folder} --annotator NAME`, or labels made elsewhere come in with "
        f"`atlas-annotate import {folder} LABELS --case {case_id} --annotator NAME`{unreviewed}",
        has="proposal" if proposed else "nothing",
    )


def _reopened(project: Project, case_id: str, content: str) -> tuple[str, str]:
    """(lead, reason) when a lead withdrew the case's latest final version, else empty."""
    final = project.latest_version(case_id, kinds=("final",), content=content)
    if final is None:
        return "", ""
    for record in reversed(project.audit_trail(case_id)):
        detail = record["detail"]
        if record["action"] == "reopen" and detail.get("final_version") == final.id:
            return record["actor"], detail.get("reason") or ""
    return "", ""


def nothing_to_export(project: Project, status: str) -> ExportError:
    """The error for an export no case qualifies for, with what the project does have
    and the command that gets it exported."""
    content = _content(project)
    cases = project.cases()
    folder = project.folder
    if not cases:
        return ExportError(
            f"project {folder} has no cases; add them with `atlas-annotate add {folder} ...`."
        )
    corrected = [
        c.id for c in cases if project.latest_version(c.id, kinds=CORRECTED_KINDS, content=content)
    ]

    def count(n: int) -> str:
        return f"{n} case{'s' if n != 1 else ''} {'has' if n == 1 else 'have'}"

    if status == "final" and corrected:
        return ExportError(
            f"no case has a final {content} version; {count(len(corrected))} corrected or "
            f"imported labels: export them with --status corrected, or finalize them with "
            f"`atlas-annotate review {folder} --finalize ...`."
        )
    n_cases = f"{len(cases)} case{'s' if len(cases) != 1 else ''} in the project"
    if status == "any":
        return ExportError(
            f"no case has a {content} version yet, not even a model proposal ({n_cases}); "
            f"nothing to export. Let the helper model propose with `atlas-annotate propose "
            f"{folder}`, or bring labels in with `atlas-annotate import {folder} ...`."
        )
    proposed = [
        c.id for c in cases if project.latest_version(c.id, kinds=(PROPOSAL_KIND,), content=content)
    ]
    unreviewed = (
        f" To export the model's proposals as they are ({count(len(proposed))} one), use "
        "--status any: provenance.json marks them as unreviewed."
        if proposed
        else ""
    )
    return ExportError(
        f"no case has a final, corrected or imported {content} version yet ({n_cases}); "
        f"nothing to export. Annotators submit corrections in `atlas-annotate open {folder} "
        f"--annotator NAME`, and labels made elsewhere come in with `atlas-annotate import "
        f"{folder} ...`.{unreviewed}"
    )

"""Adjudication by the annotation lead: compose the final label, store it, audit it, reopen.

Decisions name, per class (organ projects) or per grade cell (spine projects), where the
final value comes from:

* an annotator's name: take that annotator's latest submitted/imported label;
* ``"consensus"`` (majority vote) or ``"staple"`` (masks only);
* ``"painted"`` (masks only): the class as the lead painted it in ``painted``;
* one of the grades (``"Normal/Mild"``, ``"Moderate"``, ``"Severe"``, grades only): the
  lead's own grade for that cell.

Classes or cells without a decision take the consensus, or the source named by the key
``"all"`` (``{"all": "alice"}``: alice's whole label, ``{"all": "alice", "liver": "bob"}``:
alice's but bob's liver). When two classes claim the same voxel, a class the lead
painted keeps it, then a class taken from a reader (or STAPLE) over one taken from the
consensus (``--take liver=bob`` gives bob's whole liver, also where the consensus has
another organ), otherwise the lower class id; the number of such voxels is recorded in the
version note.

``finalize`` stores a version of kind ``final`` (annotator = the lead, note = the decisions
as JSON) and an audit record ``finalize``; :func:`finalize_agreed` does that with the
consensus for every case whose readers agree well enough (the lead's batch step: accept
what nobody disputes, adjudicate the rest by hand); ``reopen`` records an audit ``reopen`` naming
the final version it withdraws. A final version stays in the store forever (versions are
immutable): "the case is final" means its latest final version has not been reopened,
which :func:`current_final` answers from the audit trail.

Examples
--------
>>> v = finalize(project, "case01", "lead", {"liver": "alice", "spleen": "consensus"})
...                                                           # doctest: +SKIP
>>> reopen(project, "case01", "lead", "spleen tip missed by both")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..grade_sheet import GradeSheet
from ..project import LabelVersion, Project, ProjectError
from ..spine_grades import GRADES
from .cases import class_names, grade_consensus, load_opinions, mask_consensus, review_case
from .readers import ReviewIndex, annotator_versions, task_content

CONSENSUS = "consensus"
STAPLE = "staple"
PAINTED = "painted"
#: Decision key naming the source of every class or cell not named otherwise.
ALL = "all"
#: Why :func:`finalize_agreed` leaves a case that needs nothing from the lead now (the
#: other reasons are disputes to adjudicate).
ALREADY_FINAL, NO_LABELS, ONE_READER = "already final", "no submitted labels", "one reader only"


def current_final(project: Project, case_id: str) -> LabelVersion | None:
    """The case's latest ``final`` version, or ``None`` if none or it was reopened."""
    return project.current_final(case_id, task_content(project))


def final_decisions(version: LabelVersion) -> dict[str, str]:
    """The per-class or per-cell sources a final version was composed from (its note)."""
    try:
        note = json.loads(version.note or "{}")
    except json.JSONDecodeError:
        return {}
    decisions = note.get("decisions") if isinstance(note, dict) else None
    return dict(decisions) if isinstance(decisions, dict) else {}


def _check_sources(case_id: str, decisions: Mapping[str, str], allowed: set[str], what: str):
    for key, source in decisions.items():
        if source not in allowed:
            raise ProjectError(
                f"case {case_id}: decision {key!r} -> {source!r} is not possible; choose one of "
                f"{', '.join(sorted(allowed))}."
            )


def compose_mask(
    masks: Mapping[str, np.ndarray],
    classes: list[str],
    decisions: Mapping[str, str],
    *,
    painted: np.ndarray | None = None,
    case_id: str = "",
    consensus: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """The final label map from per-class decisions, and a summary for the version note.

    ``consensus``: the majority vote of ``masks`` when the caller has it already (about
    0.1 s of a 512x512x300 CT not counted again).

    Returns
    -------
    labels
        uint8/uint16 label map on the annotators' grid.
    summary
        ``{"decisions": {class: source}, "overlap_voxels": int, "overlap_by_class":
        {class: voxels of its source another class had taken first}}`` (classes that lost
        none left out).
    """
    unknown = [c for c in decisions if c not in classes]
    if unknown:
        raise ProjectError(
            f"case {case_id}: decisions name unknown classes {unknown}; classes are {classes}."
        )
    allowed = set(masks) | {CONSENSUS, STAPLE} | ({PAINTED} if painted is not None else set())
    _check_sources(case_id, decisions, allowed, "class")
    shape = next(iter(masks.values())).shape
    if painted is not None and np.shape(painted) != shape:
        raise ProjectError(
            f"case {case_id}: painted label shape {np.shape(painted)} is not the case grid {shape}."
        )
    full = {c: decisions.get(c, CONSENSUS) for c in classes}
    sources: dict[str, np.ndarray] = dict(masks)
    if CONSENSUS in full.values():
        sources[CONSENSUS] = consensus if consensus is not None else mask_consensus(masks)
    if STAPLE in full.values():
        sources[STAPLE] = mask_consensus(masks, "staple")
    if painted is not None:
        sources[PAINTED] = np.asarray(painted)
    dtype = np.uint8 if len(classes) < 256 else np.uint16
    out = np.zeros(shape, dtype)
    flat, labelled = out.reshape(-1), {}
    overlap, lost = 0, {}

    # The lead's painted classes first (their own paint wins), then the classes taken from
    # a reader or STAPLE (a choice over the default), then the consensus'; class order within.
    def claims_first(value_name: tuple[int, str]) -> tuple[int, int]:
        source = full[value_name[1]]
        return (0 if source == PAINTED else 2 if source == CONSENSUS else 1, value_name[0])

    order = sorted(enumerate(classes, start=1), key=claims_first)
    for value, name in order:
        source = full[name]
        if source not in labelled:  # a source's labelled voxels, found once (a CT's 78
            # million voxels compared once per source instead of once per class)
            values = np.asarray(sources[source]).reshape(-1)
            where = np.flatnonzero(values)
            labelled[source] = (where, values[where])
        where, values = labelled[source]
        claim = where[values == value]
        free = flat[claim] == 0
        taken = int(claim.size - np.count_nonzero(free))
        overlap += taken
        if taken:
            lost[name] = taken
        flat[claim[free]] = value
    return out, {"decisions": full, "overlap_voxels": overlap, "overlap_by_class": lost}


def compose_grades(
    sheets: Mapping[str, GradeSheet], decisions: Mapping[str, str], case_id: str = ""
) -> tuple[GradeSheet, dict]:
    """The final grade sheet from per-cell decisions (``"<condition>_<level>"`` keys).

    A cell taken from an annotator also takes that annotator's point for it; a consensus
    cell, or one the lead grades, takes the point of a reader who gave that grade (any
    reader's if none placed one).
    """
    ambiguous = set(sheets) & set(GRADES)
    if ambiguous:
        raise ProjectError(f"case {case_id}: annotator names {ambiguous} look like grades.")
    cells = {f"{c}_{lv}": (c, lv) for c, lv in GradeSheet.cells()}
    unknown = [k for k in decisions if k not in cells]
    if unknown:
        raise ProjectError(
            f"case {case_id}: unknown grade cells {unknown}; use '<condition>_<level>' names "
            "such as 'spinal_canal_stenosis_l4_l5'."
        )
    _check_sources(case_id, decisions, set(sheets) | {CONSENSUS} | set(GRADES), "cell")
    consensus = grade_consensus(dict(sheets))
    out = GradeSheet()
    full = {}
    for key, cell in cells.items():
        source = decisions.get(key, CONSENSUS)
        full[key] = source
        if source in GRADES or source == CONSENSUS:
            grade = source if source in GRADES else consensus.grades.get(cell)
            out.set_grade(*cell, grade)
            # the point of a reader who gave that grade, else of any reader (the level's
            # place does not depend on its grade)
            placed = [s for s in sheets.values() if cell in s.points]
            agreeing = [s for s in placed if s.grades.get(cell) == grade]
            if placed:
                out.points[cell] = (agreeing or placed)[0].points[cell]
        else:
            out.set_grade(*cell, sheets[source].grades.get(cell))
            if cell in sheets[source].points:
                out.points[cell] = sheets[source].points[cell]
    return out, {"decisions": full}


def edited_classes(before: np.ndarray, after: np.ndarray) -> dict[int, tuple[int, int]]:
    """Which classes the lead changed when editing a label map, and how.

    Returns
    -------
    dict
        ``{label value: (voxels gained, voxels lost)}`` for every class whose voxels differ
        between ``before`` and ``after`` (background left out).
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"edited map shape {after.shape} is not {before.shape}")
    changed = before != after
    gained = np.bincount(after[changed].astype(np.int64).ravel())
    lost = np.bincount(before[changed].astype(np.int64).ravel())
    size = max(len(gained), len(lost))
    gained, lost = np.pad(gained, (0, size - len(gained))), np.pad(lost, (0, size - len(lost)))
    return {v: (int(gained[v]), int(lost[v])) for v in range(1, size) if gained[v] or lost[v]}


def keep_consensus_edits(
    decisions: Mapping[str, str],
    classes: Sequence[str],
    consensus: np.ndarray,
    edited: np.ndarray,
    case_id: str = "",
) -> dict[str, str]:
    """Decisions that keep the lead's edits of the consensus map.

    A class taken from the consensus (the default) whose voxels the lead changed on the
    consensus map is taken as painted (:data:`PAINTED`, with ``edited`` as ``painted`` in
    :func:`finalize`), so the edits are what becomes final. A class the lead painted more
    of but takes from elsewhere would lose that paint: refused, naming the class.

    Raises
    ------
    ProjectError
        When painted voxels of a class would be dropped by its decision.
    """
    out = dict(decisions)
    dropped = []
    for value, (gained, _lost) in edited_classes(consensus, edited).items():
        if value > len(classes):
            raise ProjectError(
                f"case {case_id}: label value {value} painted on the consensus is not one of the "
                f"project's {len(classes)} classes; erase it, then finalize."
            )
        name = classes[value - 1]
        source = out.get(name, CONSENSUS)
        if source in (CONSENSUS, PAINTED):
            out[name] = PAINTED
        elif gained:
            dropped.append(f"{name} ({gained} voxel(s) painted, taken from {source})")
    if dropped:
        raise ProjectError(
            f"case {case_id}: your edits of the consensus would be lost for "
            f"{'; '.join(dropped)}. Take these classes from the consensus to keep the edits, "
            "or undo them."
        )
    return out


def finalize(
    project: Project,
    case_id: str,
    lead: str,
    decisions: Mapping[str, str] | None = None,
    *,
    painted: np.ndarray | None = None,
    comment: str = "",
    opinions: dict | None = None,
    consensus: np.ndarray | None = None,
    on_composed: Callable[[np.ndarray | GradeSheet], None] | None = None,
) -> LabelVersion:
    """Compose, store (kind ``final``) and audit the lead's adjudication of a case.

    Parameters
    ----------
    project, case_id
        The case; it needs at least one annotator's submitted or imported label.
    lead
        Who decides (recorded as the version's annotator, with role ``lead``).
    decisions
        ``{class name or grade cell: source}`` (see module notes); missing entries take
        the consensus, or the source of the key ``"all"`` if given.
    painted
        The lead's own label map, used for classes decided ``"painted"``.
    comment
        Free text kept in the note and the audit record.
    opinions
        The readers' labels if already read (:func:`.cases.load_opinions`).
    consensus
        Their majority vote, if already counted from exactly ``opinions`` (masks).
    on_composed
        Called with the final label map or grade sheet before it is stored (a viewer
        showing the case again need not read it back from its file).

    Returns
    -------
    LabelVersion
        The new final version; the case's current final version, unchanged and with no new
        audit record, when this lead already finalized exactly this (a second click).
    """
    decisions = dict(decisions or {})
    project.case(case_id)  # an unknown case says so, with the known ids
    versions = annotator_versions(project, case_id)
    if not versions:
        raise ProjectError(
            f"case {case_id}: no annotator has submitted or imported labels; nothing to adjudicate."
        )
    if ALL in decisions:  # the source of everything not named
        default = decisions.pop(ALL)
        grades = task_content(project) == "grades"
        extra = set(GRADES) if grades else {STAPLE} | ({PAINTED} if painted is not None else set())
        allowed = set(versions) | {CONSENSUS} | extra
        if default not in allowed:
            raise ProjectError(
                f"case {case_id}: all -> {default!r} is not possible; choose one of "
                f"{', '.join(sorted(allowed))}."
            )
        keys = (
            [f"{c}_{lv}" for c, lv in GradeSheet.cells()]
            if task_content(project) == "grades"
            else project.classes
        )
        decisions = {key: decisions.get(key, default) for key in keys}
    project.ensure_annotator(lead, role="lead")
    used = {who: v.id for who, v in versions.items()}
    opinions = load_opinions(project, versions) if opinions is None else opinions
    before = current_final(project, case_id)
    if task_content(project) == "grades":
        sheet, summary = compose_grades(opinions, decisions, case_id)
        note = json.dumps({**summary, "sources": used, "comment": comment})
        if on_composed is not None:
            on_composed(sheet)
        version = project.save_grades_version(
            case_id, sheet, kind="final", annotator=lead, note=note
        )
    else:
        classes = class_names(project, opinions)[: len(project.classes)]
        if consensus is None and painted is not None:  # counted once for both uses
            consensus = mask_consensus(opinions, "majority")
        labels, summary = compose_mask(
            opinions, classes, decisions, painted=painted, case_id=case_id, consensus=consensus
        )
        if painted is not None:  # what the lead's own paint changed, per class
            changed = edited_classes(consensus, painted)
            summary["painted_voxels"] = {
                classes[v - 1]: {"added": g, "removed": r}
                for v, (g, r) in changed.items()
                if v <= len(classes) and summary["decisions"][classes[v - 1]] == PAINTED
            }
        note = json.dumps({**summary, "sources": used, "comment": comment})
        if on_composed is not None:
            on_composed(labels)
        version = project.save_mask_version(
            case_id, labels, kind="final", annotator=lead, note=note
        )
    if before is not None and version.id == before.id and _finalize_recorded(project, version):
        return version  # already final as decided
    # (a final stored by a process that ended before its audit record gets it now)
    project.record_audit(
        case_id, lead, "finalize", version=version.id, sources=used, comment=comment, **summary
    )
    return version


def _finalize_recorded(project: Project, version: LabelVersion) -> bool:
    """Whether the audit trail has the lead's finalize record of final ``version``."""
    return any(
        r["action"] == "finalize" and r["detail"].get("version") == version.id
        for r in project.audit_trail(version.case_id)
    )


@dataclass(frozen=True)
class FinalizeOutcome:
    """What :func:`finalize_agreed` did with one case.

    ``agreement`` is ``1 - disagreement`` of the case's review (lowest pairwise Dice over
    the classes someone labelled, or lowest pairwise overall kappa), ``None`` with a single
    reader; ``version`` is the new final version, or ``None`` with the ``reason`` why not.
    """

    case_id: str
    readers: tuple[str, ...]
    agreement: float | None
    version: LabelVersion | None = None
    reason: str = ""


def finalize_agreed(
    project: Project,
    lead: str,
    min_agreement: float,
    *,
    case_ids: Sequence[str] | None = None,
    single_reader: bool = False,
    comment: str = "",
) -> list[FinalizeOutcome]:
    """Finalize with the readers' consensus every case whose readers agree enough.

    Parameters
    ----------
    project, lead
        The project and the lead who decides (recorded on each final version).
    min_agreement
        A case with two or more readers is finalized when its agreement (lowest pairwise
        Dice, or kappa for grades; see :mod:`.cases`) is at least this (0..1). A grade
        case whose readers gave any cell different grades is never finalized here: a
        consensus of two would settle it silently (to the milder grade), so it is left
        for the lead with the cells named.
    case_ids
        Cases to consider (default: all). Cases already final are left as they are.
    single_reader
        Also finalize cases that only one reader labelled (their label becomes final).
    comment
        Kept in each final version's note and audit record.

    Returns
    -------
    list of FinalizeOutcome
        One per case considered, in project order.
    """
    if not 0.0 <= float(min_agreement) <= 1.0:
        raise ProjectError(f"the agreement threshold must be within 0..1, not {min_agreement}.")
    index = ReviewIndex(project)  # as it stood before: each case is looked at once
    ids = list(dict.fromkeys(case_ids)) if case_ids else index.case_ids
    outcomes = []
    for case_id in ids:
        if not index.knows(case_id):
            project.case(case_id)  # says the case is unknown, with the known ids
        versions = index.readers(case_id)
        readers = tuple(versions)
        if index.final_id(case_id) is not None:
            outcomes.append(FinalizeOutcome(case_id, readers, None, reason=ALREADY_FINAL))
            continue
        if not readers:
            outcomes.append(FinalizeOutcome(case_id, readers, None, reason=NO_LABELS))
            continue
        agreement = None
        if len(readers) == 1 and not single_reader:
            outcomes.append(FinalizeOutcome(case_id, readers, None, reason=ONE_READER))
            continue
        opinions = None  # read once, for the check (unless kept) and the final
        if len(readers) == 1 or not index.is_kept(case_id, versions, False):
            opinions = load_opinions(project, versions)
        if len(readers) > 1:
            review = review_case(project, case_id, opinions=opinions, distances=False)
            agreement = 1.0 - review.disagreement
            disputed = review.grades.disputed_cells() if review.grades is not None else []
            if disputed:
                shown = ", ".join(disputed[:3]) + (", ..." if len(disputed) > 3 else "")
                outcomes.append(
                    FinalizeOutcome(
                        case_id,
                        readers,
                        agreement,
                        reason=f"readers grade {len(disputed)} cell(s) differently ({shown})",
                    )
                )
                continue
            if agreement < min_agreement:
                outcomes.append(
                    FinalizeOutcome(
                        case_id,
                        readers,
                        agreement,
                        reason=f"readers disagree ({agreement:.3f} < {min_agreement:g})",
                    )
                )
                continue
        note = comment or f"readers agree at {min_agreement:g} or better: consensus accepted"
        version = finalize(project, case_id, lead, {}, comment=note, opinions=opinions)
        outcomes.append(FinalizeOutcome(case_id, readers, agreement, version))
    return outcomes


def decision_history(
    project: Project, case_id: str, records: list[dict] | None = None
) -> list[dict]:
    """The lead's decisions on a case, oldest first, from the audit trail (``records``:
    the case's ``finalize`` and ``reopen`` records if already read).

    Returns
    -------
    list of dict
        ``{"action": "finalize" | "reopen", "by", "at" (UTC, ISO 8601), "version"}`` and,
        for ``finalize``, ``"decisions"`` (the classes or cells not taken from the
        consensus), ``"painted_voxels"`` and ``"comment"``; for ``reopen``, ``"reason"``.
    """
    import datetime

    out = []
    for record in project.audit_trail(case_id) if records is None else records:
        if record["action"] not in ("finalize", "reopen"):
            continue
        detail = record["detail"]
        at = datetime.datetime.fromtimestamp(record["t"], datetime.UTC)
        entry = {
            "action": record["action"],
            "by": record["actor"],
            "at": at.isoformat(timespec="seconds"),
            "version": detail.get("version", detail.get("final_version")),
        }
        if record["action"] == "finalize":
            decided = detail.get("decisions", {})
            entry["decisions"] = {k: v for k, v in decided.items() if v != CONSENSUS}
            entry["n_decided"] = len(decided)  # classes or cells in all
            entry["painted_voxels"] = detail.get("painted_voxels", {})
            entry["comment"] = detail.get("comment", "")
        else:
            entry["reason"] = detail.get("reason", "")
        out.append(entry)
    return out


def describe_decision(entry: dict) -> str:
    """One line for a :func:`decision_history` entry, e.g. ``final v12 by dr_wu ...``."""
    when = entry["at"].replace("T", " ")[:16]
    if entry["action"] == "reopen":
        return f"reopened v{entry['version']} by {entry['by']} {when} UTC: {entry['reason']}"
    decided = entry["decisions"]
    common, count = Counter(decided.values()).most_common(1)[0] if decided else ("", 0)
    if count > 1 and count > len(decided) / 2 and len(decided) == entry.get("n_decided"):
        if common != PAINTED:  # one source for nearly everything: say so, then the rest
            decided = {ALL: common, **{k: v for k, v in decided.items() if v != common}}
    painted = entry["painted_voxels"]
    taken = [
        f"{key}: {source}"
        + (
            f" (+{painted[key]['added']}/-{painted[key]['removed']} voxels)"
            if key in painted
            else ""
        )
        for key, source in decided.items()
    ]
    what = "; ".join(taken) if taken else "all from the consensus"
    comment = f" - {entry['comment']}" if entry["comment"] else ""
    return f"final v{entry['version']} by {entry['by']} {when} UTC: {what}{comment}"


def reopen(project: Project, case_id: str, lead: str, reason: str) -> None:
    """Send a final case back for annotation; the final version stays in the store.

    Raises
    ------
    ProjectError
        When the case has no current final version, or no reason is given.
    """
    project.case(case_id)  # an unknown case is said as such, with the project's cases
    if not reason or not reason.strip():
        raise ProjectError(f"case {case_id}: say why it is reopened (reason is required).")
    final = current_final(project, case_id)
    if final is None:
        raise ProjectError(f"case {case_id} is not final; there is nothing to reopen.")
    project.ensure_annotator(lead, role="lead")
    project.record_audit(case_id, lead, "reopen", final_version=final.id, reason=reason.strip())

"""Each reader's labels against the final ones the lead decided: who needs feedback where.

The review's pairwise agreement says where readers differ. Once a lead has adjudicated,
the final labels say which of them the adjudication kept: a reader whose liver the lead
redrew in most cases, or whose foraminal grades were overruled, needs feedback there,
which is how a campaign's lead (AbdomenAtlas's, RSNA's) keeps readers calibrated between
rounds.

Every current final version made here names the readers' versions it was decided from
(its ``sources``); a final stored otherwise (an older project, a script) is compared with
each reader's latest opinion made before it. Each is compared with the final:

- organs: the (reader label, final label) voxel pairs (:func:`.metrics.label_pair_counts`),
  giving Dice per class and the millilitres the final changed;
- grades: per condition, the confusion of the reader's grades with the final's, giving the
  share of cells the final kept and the quadratic-weighted kappa.

A final version never changes, nor does a reader's version, so each pair is counted once
and kept in the project (table ``final_agreement``); only finals new since the last call
read label files (about 0.9 s a 512x512x300 CT case read by two). A final with no
reader's opinion before it is counted as such and left out.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..case_lists import first_ids
from ..project import LabelVersion, Project, ProjectError
from ..project.database import transaction
from ..spine_grades import CONDITIONS, GRADES, LEVELS
from .cases import ReviewCancelled
from .kappa import kappa_from_confusion
from .metrics import dice_from_counts, label_pair_counts
from .readers import OPINION_KINDS, latest_by_reader, task_content

#: ``progress(done, total, case_id)`` after each final case whose files had to be read.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ReaderVsFinal:
    """One reader's version of a case against the case's final version.

    ``counts``: organs, ``(k, k)`` voxel pairs (reader's label, final label) over labels
    ``0..k-1``; grades, ``(len(CONDITIONS), 3, 3)`` confusion of the reader's grades
    (rows) with the final's (columns), cells both graded. ``voxel_ml``: one voxel's volume
    (organs; 0 for grades).
    """

    case_id: str
    reader: str
    version_id: int
    final_id: int
    counts: np.ndarray
    voxel_ml: float = 0.0


@dataclass
class ReaderSummary:
    """What the finals say about one reader (see :func:`summarise`)."""

    reader: str
    #: grade sheets (spine projects) rather than label maps
    grades: bool = False
    cases: list[str] = field(default_factory=list)
    #: organs: median Dice per class over the cases where the reader or the final has it
    dice: dict[str, float] = field(default_factory=dict)
    #: organs: mean millilitres per case where the final differs from the reader's labels
    changed_ml_per_case: float | None = None
    #: grades: cells both graded, and the share the final kept as the reader graded them
    cells: int = 0
    kept_share: float | None = None
    #: grades: quadratic-weighted kappa against the final, all conditions and per condition
    kappa: float | None = None
    kappa_by_condition: dict[str, float | None] = field(default_factory=dict)

    def weakest(self) -> tuple[str, float] | None:
        """The class (organs) or condition (grades) where the reader agrees least with the
        finals, and that agreement."""
        scores = self.kappa_by_condition if self.grades else self.dice
        known = [(v, k) for k, v in scores.items() if v is not None and not math.isnan(v)]
        if not known:
            return None
        value, name = min(known)
        return name, value

    def to_dict(self, digits: int = 4) -> dict:
        def r(v):
            return None if v is None or math.isnan(v) else round(float(v), digits)

        out = {"reader": self.reader, "cases": len(self.cases), "case_ids": list(self.cases)}
        if not self.grades:
            out["dice"] = {k: r(v) for k, v in self.dice.items()}
            out["changed_ml_per_case"] = r(self.changed_ml_per_case)
        else:
            out["cells"] = self.cells
            out["kept_share"] = r(self.kept_share)
            out["kappa"] = r(self.kappa)
            out["kappa_by_condition"] = {k: r(v) for k, v in self.kappa_by_condition.items()}
        return out


@dataclass
class FinalAgreement:
    """Every reader against the current finals (:func:`compare_with_finals`)."""

    content: str
    classes: list[str]
    pairs: list[ReaderVsFinal]
    finals: int
    #: current finals with no reader's opinion before them: nothing to compare them with
    unsourced: list[str] = field(default_factory=list)
    #: cases whose final or reader's file could not be read: why (left out)
    unreadable: dict[str, str] = field(default_factory=dict)

    def summaries(self) -> list[ReaderSummary]:
        return summarise(self)


def compare_with_finals(
    project: Project,
    *,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    keep: bool = True,
) -> FinalAgreement:
    """Each reader's version against each current final it was decided from.

    Pairs counted before are read from the project; the others are counted from the label
    files (or grade sheets) and kept, unless ``keep`` is False or the project is read-only.
    ``cancel()`` is asked before each case read; True raises
    :class:`~.cases.ReviewCancelled` (what was counted is kept).
    """
    content = task_content(project)
    finals = project.current_finals(content)
    by_id = {v.id: v for v in project.versions(kinds=("final",), content=content)}
    kept = _kept(project)
    opinions: dict[str, list[LabelVersion]] = {}
    for v in project.versions(kinds=OPINION_KINDS, content=content):
        opinions.setdefault(v.case_id, []).append(v)
    pairs: list[ReaderVsFinal] = []
    unsourced: list[str] = []
    todo: list[tuple[str, LabelVersion, dict[str, int]]] = []
    for case_id, final_id in finals.items():
        sources = _sources(by_id[final_id]) or {
            who: v.id
            for who, v in latest_by_reader(
                v for v in opinions.get(case_id, []) if v.id < final_id
            ).items()
        }
        if not sources:
            unsourced.append(case_id)
            continue
        missing = {}
        for reader, version_id in sources.items():
            found = kept.get((final_id, version_id))
            if found is None:
                missing[reader] = version_id
            else:
                counts, voxel_ml = found
                pairs.append(ReaderVsFinal(case_id, reader, version_id, final_id, counts, voxel_ml))
        if missing:
            todo.append((case_id, by_id[final_id], missing))
    classes = list(project.classes)
    unreadable: dict[str, str] = {}
    for done, (case_id, final, missing) in enumerate(todo, start=1):
        if cancel is not None and cancel():
            raise ReviewCancelled("comparing the readers with the finals was cancelled")
        try:
            new = _count_case(project, case_id, final, missing, content, len(classes))
        except (ProjectError, OSError, ValueError) as exc:  # a damaged file: say so, go on
            unreadable[case_id] = str(exc)
        else:
            pairs.extend(new)
            if keep:
                _keep(project, new)
        if progress is not None:
            progress(done, len(todo), case_id)
    # a case with an unreadable file is left out whole, also its readers counted before
    pairs = sorted(
        (p for p in pairs if p.case_id not in unreadable), key=lambda p: (p.case_id, p.reader)
    )
    return FinalAgreement(content, classes, pairs, len(finals), sorted(unsourced), unreadable)


def summary_lines(agreement: FinalAgreement, project_folder: str) -> list[str]:
    """The readers against the finals as a lead reads them: a heading, one line per reader
    (cases, ml changed and weakest class; or cells kept, kappa and weakest condition), and
    the finals left out for want of readers."""
    if not agreement.finals:
        return [
            "no final case yet: a lead finalizes cases in the review dock or with "
            f"'atlas-annotate review {project_folder} --finalize CASE --lead NAME' (or "
            "--finalize-agreed); then each reader is compared with the finals."
        ]
    grades = agreement.content == "grades"

    def what(n: int) -> str:
        return ("study" if n == 1 else "studies") if grades else ("case" if n == 1 else "cases")

    lines = [
        f"readers against the lead's final labels ({agreement.finals} final "
        f"{what(agreement.finals)}):"
    ]
    summaries = agreement.summaries()
    width = max((len(s.reader) for s in summaries), default=0) + 2
    for s in summaries:
        weakest = s.weakest()
        if weakest is not None and weakest[1] >= 1.0:  # the finals kept all of it
            weakest = None
        if grades:
            kept = "-" if s.kept_share is None else f"{100 * s.kept_share:.0f} %"
            kappa = "-" if s.kappa is None else f"{s.kappa:.3f}"
            low = f"; lowest kappa: {weakest[0]} {weakest[1]:.3f}" if weakest else ""
            detail = f"{s.cells} cells, {kept} kept as graded, kappa {kappa}{low}"
        else:
            ml = "-" if s.changed_ml_per_case is None else f"{s.changed_ml_per_case:.1f}"
            low = f"; lowest median Dice: {weakest[0]} {weakest[1]:.3f}" if weakest else ""
            detail = f"the final changed {ml} ml a case{low}"
        lines.append(f"{s.reader:<{width}}{len(s.cases):>5} {what(len(s.cases))}: {detail}")
    if agreement.unsourced:
        lines.append(
            f"{len(agreement.unsourced)} final {what(len(agreement.unsourced))} with no "
            f"reader's labels before the final, left out: {first_ids(agreement.unsourced)}"
        )
    if agreement.unreadable:
        lines.append(
            f"{len(agreement.unreadable)} final {what(len(agreement.unreadable))} left out "
            f"with a file that could not be read: {first_ids(list(agreement.unreadable))}"
        )
    return lines


def summarise(agreement: FinalAgreement) -> list[ReaderSummary]:
    """One :class:`ReaderSummary` per reader, by name."""
    readers: dict[str, list[ReaderVsFinal]] = {}
    for pair in agreement.pairs:
        readers.setdefault(pair.reader, []).append(pair)
    out = []
    for reader in sorted(readers):
        rows = readers[reader]
        grades = agreement.content == "grades"
        summary = ReaderSummary(reader, grades, cases=[p.case_id for p in rows])
        if grades:
            _grade_summary(summary, rows)
        else:
            _mask_summary(summary, rows, agreement.classes)
        out.append(summary)
    return out


def _mask_summary(summary: ReaderSummary, rows: list[ReaderVsFinal], classes: list[str]):
    per_class: dict[str, list[float]] = {name: [] for name in classes}
    changed = []
    for pair in rows:
        counts = pair.counts
        present = (counts.sum(axis=0)[1:] + counts.sum(axis=1)[1:]) > 0
        for name, dice, there in zip(classes, dice_from_counts(counts), present, strict=False):
            if there:
                per_class[name].append(dice)
        off = int(counts.sum() - np.trace(counts))
        changed.append(off * pair.voxel_ml)
    summary.dice = {name: float(np.median(v)) for name, v in per_class.items() if v}
    summary.changed_ml_per_case = float(np.mean(changed)) if changed else None


def _grade_summary(summary: ReaderSummary, rows: list[ReaderVsFinal]):
    total = np.sum([p.counts for p in rows], axis=0)
    summary.cells = int(total.sum())
    if summary.cells:
        summary.kept_share = float(sum(np.trace(m) for m in total)) / summary.cells
    summary.kappa = kappa_from_confusion(total.sum(axis=0))
    summary.kappa_by_condition = {
        condition: kappa_from_confusion(total[i]) for i, condition in enumerate(CONDITIONS)
    }


def _sources(final: LabelVersion) -> dict[str, int]:
    """``{reader: version id}`` the final was decided from (its note's ``sources``)."""
    try:
        note = json.loads(final.note or "{}")
    except ValueError:
        return {}
    sources = note.get("sources") if isinstance(note, dict) else None
    if not isinstance(sources, dict):
        return {}
    return {str(k): int(v) for k, v in sources.items() if isinstance(v, int)}


def _count_case(
    project: Project,
    case_id: str,
    final: LabelVersion,
    readers: dict[str, int],
    content: str,
    n_classes: int,
) -> list[ReaderVsFinal]:
    out = []
    if content == "grades":
        decided = project.read_grades(final)
        for reader, version_id in readers.items():
            sheet = project.read_grades(project.version(version_id))
            counts = np.zeros((len(CONDITIONS), len(GRADES), len(GRADES)), np.int64)
            for i, condition in enumerate(CONDITIONS):
                for level in LEVELS:
                    a, b = sheet.grade(condition, level), decided.grade(condition, level)
                    if a is not None and b is not None:
                        counts[i, GRADES.index(a), GRADES.index(b)] += 1
            out.append(ReaderVsFinal(case_id, reader, version_id, final.id, counts))
        return out
    labels = project.read_mask(final)
    _, affine = project.mask_grid(final)
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine)[:3, :3]))) / 1000.0
    k = max(n_classes, int(labels.max(initial=0)))
    for reader, version_id in readers.items():
        theirs = project.read_mask(project.version(version_id))
        k_case = max(k, int(theirs.max(initial=0)))
        counts = label_pair_counts(theirs, labels, k_case)
        # outside the maps' foreground box every voxel is background in both
        counts[0, 0] += labels.size - int(counts.sum())
        out.append(ReaderVsFinal(case_id, reader, version_id, final.id, counts, voxel_ml))
    return out


def _kept(project: Project) -> dict[tuple[int, int], tuple[np.ndarray, float]]:
    rows = project._db.execute("SELECT final_id, version_id, counts, voxel_ml FROM final_agreement")
    return {
        (int(r["final_id"]), int(r["version_id"])): (
            np.asarray(json.loads(r["counts"]), np.int64),
            float(r["voxel_ml"]),
        )
        for r in rows
    }


def _keep(project: Project, pairs: list[ReaderVsFinal]) -> None:
    try:
        with transaction(project._db):
            project._db.executemany(
                "INSERT OR REPLACE INTO final_agreement(final_id, version_id, counts, voxel_ml)"
                " VALUES (?, ?, ?, ?)",
                [
                    (p.final_id, p.version_id, json.dumps(p.counts.tolist()), p.voxel_ml)
                    for p in pairs
                ],
            )
    except sqlite3.OperationalError:  # a read-only project: counted again next time
        pass

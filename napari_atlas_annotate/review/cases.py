"""Review of a project's cases: whose labels to compare, their agreement, and the ranking.

A case is reviewable when at least two annotators have a submitted label for it: each
annotator's latest version of kind ``corrected`` or ``imported`` (the task's content:
masks for organ projects, grade sheets for spine projects). ``final`` versions are the
adjudicated result, not an annotator's opinion, and ``proposal`` versions are the model's,
so neither takes part. Cases are ranked by disagreement, largest first:
``1 - min pairwise Dice`` over the classes someone labelled (organs) or
``1 - min pairwise overall kappa`` (spine); equal scores go to the larger disputed volume
(organs: millilitres the annotators labelled differently) or the more disputed grade
cells (spine), then to the case id.

Examples
--------
>>> with Project("campaign") as project:                  # doctest: +SKIP
...     reviews = review_project(project)
...     print(reviews[0].case_id, reviews[0].disagreement)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from ..grade_sheet import GradeSheet
from ..project import LabelVersion, Project, ProjectError
from ..spine_grades import GRADES
from .agreement_cache import keep_agreement
from .consensus import majority_vote, staple
from .metrics import GradeAgreement, MaskAgreement, grade_agreement, mask_agreement
from .readers import ReviewIndex, task_content


def load_masks(project: Project, versions: dict[str, LabelVersion]) -> dict[str, np.ndarray]:
    return {who: project.read_mask(v) for who, v in versions.items()}


def load_sheets(project: Project, versions: dict[str, LabelVersion]) -> dict[str, GradeSheet]:
    return {who: project.read_grades(v) for who, v in versions.items()}


def load_opinions(project: Project, versions: dict[str, LabelVersion]) -> dict:
    """Each reader's label map (organ projects) or grade sheet (spine projects)."""
    if task_content(project) == "grades":
        return load_sheets(project, versions)
    return load_masks(project, versions)


def class_names(project: Project, masks: dict[str, np.ndarray]) -> list[str]:
    """The project's classes, extended with ``label_<i>`` if a mask holds higher values."""
    names = project.classes
    highest = max((int(m.max()) for m in masks.values() if m.size), default=0)
    return names + [f"label_{i}" for i in range(len(names) + 1, highest + 1)]


def too_few_readers(
    case_id: str, readers: list[str], project: str, final_id: int | None = None
) -> str:
    """Why a case with fewer than two readers is not reviewed, and what to do about it
    (the commands name the ``project`` folder); ``final_id``: its current final version."""
    if final_id is not None:
        who = f"one reader, {readers[0]}" if readers else "no reader's labels"
        return (
            f"final (version {final_id}) with {who}: nothing to compare or decide; to send "
            f"it back: 'atlas-annotate review {project} --reopen {case_id} --lead NAME "
            "--reason TEXT'"
        )
    if not readers:
        return (
            "no annotator has submitted or imported labels yet; nothing to compare (it is "
            "still in the annotation queue)"
        )
    return (
        f"only {readers[0]} submitted labels; a review compares at least two annotators: "
        "have a second annotator submit, or import another reader's labels with "
        f"'atlas-annotate import {project} --case {case_id} --annotator NAME LABELS'. To "
        f"accept {readers[0]}'s labels as they are: 'atlas-annotate review {project} --finalize "
        f"{case_id} --lead NAME'"
    )


@dataclass
class CaseReview:
    """Agreement of one case's annotators.

    Attributes
    ----------
    case_id
    versions
        ``{annotator: LabelVersion}`` compared.
    masks, grades
        The agreement (one of them, by task).
    disagreement
        Ranking score, larger = more disputed (see module notes).
    final_version
        Id of the case's current final version, if adjudicated.
    history
        The lead's decisions so far (:func:`.adjudication.decision_history`).
    """

    case_id: str
    versions: dict[str, LabelVersion]
    masks: MaskAgreement | None = None
    grades: GradeAgreement | None = None
    disagreement: float = 0.0
    final_version: int | None = None
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def annotators(self) -> list[str]:
        return list(self.versions)

    @property
    def notes(self) -> dict[str, str]:
        """``{annotator: note}``: what readers wrote for the lead with the labels compared
        (submitted versions only: an import's note says where it came from, not what the
        reader thought)."""
        return {who: v.note for who, v in self.versions.items() if v.kind == "corrected" and v.note}

    def dispute_size(self) -> float:
        """How much is disputed: millilitres labelled differently (organs) or the number
        of grade cells graded differently (spine); breaks ties of the ranking score."""
        if self.masks is not None:
            return self.masks.total_disputed_ml
        if self.grades is not None:
            return float(len(self.grades.disputed_cells()))
        return 0.0

    def to_dict(self, digits: int = 4) -> dict:
        out: dict = {
            "id": self.case_id,
            "annotators": self.annotators,
            "versions": {who: v.id for who, v in self.versions.items()},
            "notes": self.notes,
            "disagreement": round(self.disagreement, digits),
            "final_version": self.final_version,
            "history": self.history,
        }
        if self.masks is not None:
            masks = self.masks.to_dict()
            out["disputed_ml"] = round(masks["disputed_ml"], digits)
            out["classes"] = _rounded(masks["classes"], digits)
        if self.grades is not None:
            grades = self.grades.to_dict()
            out["kappa"] = _rounded(grades["kappa"], digits)
            out["confusion"] = grades["confusion"]
            out["disputed_cells"] = grades["disputed_cells"]
            out["cells"] = grades["cells"]
        return out


def _rounded(value, digits: int):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _review_of(project: Project, case_id: str, index: ReviewIndex) -> CaseReview:
    """A case's review with who is compared and the lead's decisions, before any metric
    (the project database's part of :func:`review_case`), from ``index``."""
    from .adjudication import decision_history

    if not index.knows(case_id):
        project.case(case_id)  # says the case is unknown, with the known ids
    versions = index.readers(case_id)
    if len(versions) < 2:
        final = index.final_id(case_id)
        why = too_few_readers(case_id, list(versions), str(project.folder), final)
        raise ProjectError(f"case {case_id}: {why}")
    return CaseReview(
        case_id,
        versions,
        final_version=index.final_id(case_id),
        history=decision_history(project, case_id, records=index.decision_records(case_id)),
    )


def compare_masks(
    project: Project,
    versions: dict[str, LabelVersion],
    distances: bool,
    opinions: dict | None = None,
) -> MaskAgreement:
    """The metrics of the readers' label maps (read from their files unless ``opinions``
    are given). It reads files only, never the project database, so several cases can be
    compared at once in threads (numpy, torch and scipy let go of the GIL)."""
    opinions = load_opinions(project, versions) if opinions is None else opinions
    _, affine = project.mask_grid(next(iter(versions.values())))  # not the image
    return mask_agreement(opinions, affine, class_names(project, opinions), distances=distances)


def _ranked(review: CaseReview, masks: MaskAgreement) -> CaseReview:
    review.masks = masks
    review.disagreement = 1.0 - masks.min_dice()
    return review


def review_case(
    project: Project,
    case_id: str,
    *,
    opinions: dict | None = None,
    distances: bool = True,
    index: ReviewIndex | None = None,
) -> CaseReview:
    """Agreement metrics of a case with at least two annotators.

    ``opinions`` are the readers' labels already read (:func:`load_opinions`), so a caller
    that goes on to use them reads them once; ``distances=False`` leaves HD95 out (the
    ranking uses Dice only); ``index`` is the project's :class:`ReviewIndex` if read
    (else the case's is read).

    Raises
    ------
    ProjectError
        When the case is unknown or fewer than two annotators submitted labels for it.
    """
    index = ReviewIndex(project, case_id) if index is None else index
    review = _review_of(project, case_id, index)
    versions = review.versions
    if task_content(project) == "grades":
        opinions = load_opinions(project, versions) if opinions is None else opinions
        review.grades = grade_agreement(opinions)
        review.disagreement = 1.0 - review.grades.min_kappa()
        return review
    masks = index.kept_agreement(case_id, versions, distances)
    if masks is None:  # these versions were not compared before
        masks = compare_masks(project, versions, distances, opinions)
        keep_agreement(project, case_id, versions, distances, masks)
    return _ranked(review, masks)


class ReviewCancelled(RuntimeError):
    """Raised by :func:`review_project` when its ``cancel`` callable says stop."""


def review_project(
    project: Project,
    case_ids: Sequence[str] | None = None,
    *,
    distances: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    skip_unreadable: bool = False,
    threads: int = 1,
    index: ReviewIndex | None = None,
) -> tuple[list[CaseReview], list[dict]]:
    """Reviews of every reviewable case, most disputed first, and the skipped cases.

    ``distances=False`` leaves HD95 out (the ranking needs Dice only). Metrics computed
    once for a case's versions are kept (:mod:`.agreement_cache`), also those of the cases
    compared before a ``cancel``. ``progress(done, total, case_id)`` is called after each
    case; ``cancel()`` is asked between cases and raises :class:`ReviewCancelled`. With
    ``skip_unreadable`` a case whose labels cannot be compared (a label file missing or
    damaged, maps on different grids) is skipped with the reason instead of stopping the
    whole review (the review dock lists the others). ``threads`` > 1 compares that many
    organ cases not compared before at once (:func:`compare_masks`; the database is read
    and written by the calling thread only). The database is read once for all cases
    (:class:`ReviewIndex`; pass ``index`` if the caller has just read it).

    Returns
    -------
    reviews
        Sorted by ``disagreement`` (descending), then case id.
    skipped
        ``[{"id", "annotators", "reason"}]`` for cases with fewer than two annotators, and
        (``skip_unreadable``) ``[{"id", "annotators", "reason", "unreadable": True}]``.
    """
    index = ReviewIndex(project) if index is None else index
    ids = list(case_ids) if case_ids else index.case_ids
    reviews, skipped, pending = [], [], []
    done = 0

    def step(case_id: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(ids), case_id)

    def stop_if_asked() -> None:
        if cancel is not None and cancel():
            raise ReviewCancelled(f"stopped after comparing {done} of {len(ids)} case(s)")

    def unreadable(case_id: str, versions: dict, exc: Exception) -> None:
        if not skip_unreadable:
            raise exc
        skipped.append(
            {"id": case_id, "annotators": list(versions), "reason": str(exc), "unreadable": True}
        )

    for case_id in ids:
        stop_if_asked()
        if not index.knows(case_id):
            project.case(case_id)  # says the case is unknown, with the known ids
        versions = index.readers(case_id)
        if len(versions) < 2:
            final = index.final_id(case_id)
            reason = too_few_readers(case_id, list(versions), str(project.folder), final)
            skipped.append(
                {"id": case_id, "annotators": list(versions), "reason": reason, "final": final}
            )
        elif (
            threads > 1
            and task_content(project) == "mask"
            and not index.is_kept(case_id, versions, distances)
        ):
            pending.append(_review_of(project, case_id, index))  # compared below, in threads
            continue
        else:
            try:
                reviews.append(review_case(project, case_id, distances=distances, index=index))
            except (ProjectError, ValueError, OSError) as exc:
                unreadable(case_id, versions, exc)
        step(case_id)
    if pending:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="review") as pool:
            running = {
                pool.submit(compare_masks, project, r.versions, distances): r for r in pending
            }
            try:
                for future in as_completed(running):
                    review = running[future]
                    try:
                        masks = future.result()
                    except (ProjectError, ValueError, OSError) as exc:
                        unreadable(review.case_id, review.versions, exc)
                    else:
                        keep_agreement(project, review.case_id, review.versions, distances, masks)
                        reviews.append(_ranked(review, masks))
                    step(review.case_id)
                    stop_if_asked()
            finally:
                for future in running:
                    future.cancel()  # what has not started (cancel, an error) is not run
    reviews.sort(key=lambda r: (-r.disagreement, -r.dispute_size(), r.case_id))
    return reviews, skipped


def uncompared_cases(
    project: Project, *, distances: bool = False, index: ReviewIndex | None = None
) -> dict[str, int]:
    """Organ cases read by two or more annotators whose metrics (with HD95 if
    ``distances``) are not kept yet, and each one's voxels (from a label file's header):
    what a ranking would still have to count. Spine projects: none (grade sheets are
    compared in no time). ``index``: the project's :class:`ReviewIndex` if read."""
    if task_content(project) == "grades":
        return {}
    index = ReviewIndex(project) if index is None else index
    todo = {}
    for case_id in index.case_ids:
        versions = index.readers(case_id)
        if len(versions) < 2 or index.is_kept(case_id, versions, distances):
            continue
        shape, _ = project.mask_grid(next(iter(versions.values())))
        todo[case_id] = int(np.prod(shape))
    return todo


# -- consensus of a case --------------------------------------------------------------------
def mask_consensus(masks: dict[str, np.ndarray], method: str = "majority") -> np.ndarray:
    """Consensus label map: ``"majority"`` vote or ``"staple"`` (see :mod:`.consensus`)."""
    maps = list(masks.values())
    if method == "majority":
        return majority_vote(maps)
    if method == "staple":
        return staple(maps)
    raise ValueError(f"consensus method must be 'majority' or 'staple', not {method!r}")


def grade_consensus(sheets: dict[str, GradeSheet]) -> GradeSheet:
    """Per cell the most common grade; a tie goes to the milder grade (as background wins
    a tie for masks); cells nobody graded stay empty."""
    out = GradeSheet()
    for cell in GradeSheet.cells():
        said = [s.grades.get(cell) for s in sheets.values()]
        votes = Counter(g for g in said if g is not None)
        if votes:
            top = max(votes.values())
            out.set_grade(*cell, next(g for g in GRADES if votes.get(g) == top))
    return out

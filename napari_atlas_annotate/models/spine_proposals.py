"""Proposals for a spine project's cases: grade each lumbar MRI study with the project's
active grader, store the sheet as a ``proposal`` grades version naming the grader, and
record the case's uncertainty for the annotation queue.

A case's study is its images, one series each, named by the image's description (else the
series' own SeriesDescription). The stored sheet names each point's series by that name, so
the grade sheet finds it among the case's series; :meth:`SpineStudy.to_canonical` turns a
sheet's point series (description, series number as RSNA files use, SeriesInstanceUID or
folder name) back into the grader's names for training.

Uncertainty of a proposal: the mean over its cells of the normalised entropy of the three
grade probabilities, 0 (sure) to 1 (uniform). There is no uncertainty map file for spine
proposals (``CaseProposal.uncertainty_path`` is None): the per-cell probabilities are in the
proposal itself.

Examples
--------
>>> results = propose_spine_cases(project, device="cpu")     # doctest: +SKIP
>>> [(r.case_id, round(r.uncertainty, 3)) for r in results]  # doctest: +SKIP
[('958546395', 0.214), ...]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..grade_sheet import GradeSheet
from ..project import Project, ProjectError, task_phrase
from ..stacks import CaseImages, stack_key
from ..volume import Volume
from .grader import grade_study, load_grader, match_series, resolve_device
from .grader_net import GraderNet
from .inference import CancelFlag, InferenceCancelled
from .proposals import CaseProposal
from .registry import active_record, install_starter

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class LoadedGrader:
    """A registered grader version, loaded on a device."""

    version: str
    model: GraderNet
    device: str


@dataclass
class SpineStudy:
    """One case's series and the names its points may use for them.

    Attributes
    ----------
    series
        ``{name: Volume}``: each image's description (made unique) and its volume.
    aliases
        ``{any name a point may use: key of series}`` (description, SeriesDescription,
        series number, SeriesInstanceUID, folder/file name).
    canonical
        ``{key of series: the grader's series name}`` for the series the grader uses.
    point_names
        ``{key of series: the name points on it use}`` where that differs from the key:
        each stack of a series acquired as several (``"Axial T2 (stack 2/3)"``) is keyed
        apart, while points on any of them name the series and pick the stack by instance.
    """

    case_id: str
    series: dict[str, Volume]
    aliases: dict[str, str] = field(default_factory=dict)
    canonical: dict[str, str] = field(default_factory=dict)
    point_names: dict[str, str] = field(default_factory=dict)

    def from_canonical(self, sheet: GradeSheet) -> GradeSheet:
        """A copy of a grader's sheet whose points name this study's series."""
        own = {v: self.point_names.get(k, k) for k, v in self.canonical.items()}
        return _rename_points(sheet, own)

    def to_canonical(self, sheet: GradeSheet) -> GradeSheet:
        """A copy of ``sheet`` whose points name the grader's series (others unchanged)."""
        names = {a: self.canonical[k] for a, k in self.aliases.items() if k in self.canonical}
        return _rename_points(sheet, names)


def _rename_points(sheet: GradeSheet, names: Mapping[str, str]) -> GradeSheet:
    out = GradeSheet(dict(sheet.grades), {c: list(p) for c, p in sheet.probabilities.items()})
    for cell, point in sheet.points.items():
        name = names.get(point.series, point.series)
        out.points[cell] = dataclasses.replace(point, series=name)
    return out


def load_spine_study(project: Project, case_id: str) -> SpineStudy:
    """Load every image of a spine case as a named series.

    Raises
    ------
    ProjectError
        When the case has no images, an image cannot be read, or no series is a Sagittal
        T2/STIR (the grader finds the disc levels on it).
    """
    case = project.case(case_id)
    if not case.images:
        raise ProjectError(f"case {case_id}: has no images; add its study folder again.")
    series: dict[str, Volume] = {}
    aliases: dict[str, str] = {}
    point_names: dict[str, str] = {}
    images = CaseImages(project, case_id)  # the stacks of a series read from one scan
    for i, ref in enumerate(case.images):
        volume = images.load(i)
        meta = volume.metadata or {}
        name = ref.description or str(meta.get("series_description") or "") or f"series {i + 1}"
        if ref.stack is not None:
            point_names[stack_key(name, meta)] = name
            name = stack_key(name, meta)
        base, k = name, 1
        while name in series:
            k += 1
            name = f"{base} ({k})"
        series[name] = volume
        names = {name, ref.description, ref.series, Path(ref.path).name}
        names |= {meta.get("series_description"), meta.get("series_uid")}
        if meta.get("series_number") is not None:
            names.add(str(meta["series_number"]))
        for alias in names:
            if alias:
                aliases.setdefault(str(alias), name)
    try:
        matched = match_series(series)
    except ValueError as exc:
        raise ProjectError(f"case {case_id}: {exc}") from None
    canonical = {
        own: canon for canon, vol in matched.items() for own, v in series.items() if v is vol
    }
    return SpineStudy(case_id, series, aliases, canonical, point_names)


def load_active_grader(project: Project, device: str = "auto") -> LoadedGrader:
    """The project's active grader (the packaged starter is installed when there is none)."""
    if project.task != "spine":
        raise ProjectError(
            f"{project.folder} is {task_phrase(project.task)}; graders are for spine projects."
        )
    record = active_record(project, "spine") or install_starter(project, "spine")
    dev = str(resolve_device(device))
    try:
        model = load_grader(project.resolve(record.path), device=dev)
    except ValueError as exc:
        raise ProjectError(
            f"active grader {record.version}: {exc}. Roll back to another version with "
            "'atlas-annotate models PROJECT --rollback VERSION'."
        ) from None
    return LoadedGrader(record.version, model, dev)


def sheet_uncertainty(sheet: GradeSheet) -> float:
    """Mean normalised entropy (0..1) of the sheet's cell probabilities; NaN without any."""
    probs = [np.asarray(p, float) for p in sheet.probabilities.values()]
    if not probs:
        return float("nan")
    p = np.clip(np.stack(probs), 0.0, None)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    logs = np.log(np.where(p > 0, p, 1.0))
    entropy = -(p * logs).sum(axis=1) / np.log(p.shape[1])
    return float(np.clip(entropy.mean(), 0.0, 1.0))


def propose_spine_case(
    project: Project,
    case_id: str,
    loaded: LoadedGrader | None = None,
    *,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> CaseProposal:
    """Grade one spine case with the active grader, store the proposal, set uncertainty.

    Parameters
    ----------
    loaded
        A grader from :func:`load_active_grader` (loaded here when None).
    progress
        ``progress(done, total, message)`` after loading and after grading.
    cancel
        Polled before grading; raises :class:`~.inference.InferenceCancelled`.

    Returns
    -------
    CaseProposal
        With ``uncertainty_path`` None (spine proposals carry their own probabilities).
    """
    t0 = time.perf_counter()
    loaded = loaded if loaded is not None else load_active_grader(project, device)
    study = load_spine_study(project, case_id)
    if progress is not None:
        progress(1, 2, f"{case_id}: loaded {len(study.series)} series")
    if cancel is not None and cancel():
        raise InferenceCancelled("proposal cancelled")
    sheet = study.from_canonical(grade_study(study.series, loaded.model, loaded.device))
    uncertainty = sheet_uncertainty(sheet)
    version = project.save_grades_version(
        case_id,
        sheet,
        kind="proposal",
        model_version=loaded.version,
        note=f"uncertainty {uncertainty:.4f}",
    )
    project.set_uncertainty(case_id, uncertainty)
    if progress is not None:
        progress(2, 2, f"{case_id}: graded")
    return CaseProposal(
        case_id,
        version.id,
        loaded.version,
        uncertainty,
        round(time.perf_counter() - t0, 3),
        None,
    )


def propose_spine_cases(
    project: Project,
    case_ids: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    every: bool = False,
) -> list[CaseProposal]:
    """Propose spine cases with the active grader.

    Parameters
    ----------
    case_ids
        Cases to propose (always proposed). Default: the cases still to be graded without
        a proposal from the active grader
        (:func:`~.proposals.cases_needing_proposal`), or every case when ``every`` is True.
    progress
        ``progress(done, total, message)`` after each case.
    cancel
        Polled before each case; raises :class:`~.inference.InferenceCancelled` (cases
        done so far keep their proposals).

    Raises
    ------
    ~.proposals.ProposalBatchError
        After the batch, when some studies could not be loaded (the others are proposed).
    """
    from .proposals import batch_case_ids, check_case_ids, propose_each

    check_case_ids(project, case_ids)
    loaded = load_active_grader(project, device)
    ids = batch_case_ids(project, case_ids, loaded.version, every)
    return propose_each(
        project, ids, lambda cid: propose_spine_case(project, cid, loaded, cancel=cancel), progress
    )

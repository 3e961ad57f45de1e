"""Training data from a project: the latest submitted labels per case, on the model grid,
with the voxels radiologists corrected (from the edit log) marked for extra loss weight.

Which label of a case counts: its current ``final`` version if a lead finalised it (one the
lead reopened, i.e. sent back as wrong, does not count), else the latest ``corrected`` or
``imported`` version (any annotator), as for the spine grader and ``export --status
corrected``. The corrected voxels are the
union of the changed voxels of the edit events that led to that version since its proposal
(events on the version's chain of parents, up to the version's ``last_event_id``); a version
without logged events (imported, or finalised by a lead) is compared with the proposal it
was based on instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..models.bundle import ModelBundle
from ..models.intensity import finite, normalise_intensity
from ..models.model_grid import ModelGrid
from ..project import LabelVersion, Project
from ..volume import Volume
from .organs import TrainingCancelled, TrainingCase

if TYPE_CHECKING:
    from .case_cache import CaseCache

LABEL_KINDS = ("corrected", "imported")


def prepare_case(
    case_id: str,
    image: Volume,
    labels: np.ndarray,
    spacing: Sequence[float],
    window: Sequence[float],
    corrected: np.ndarray | None = None,
) -> TrainingCase:
    """Move an image, its label map and a corrected-voxel mask onto the model grid."""
    if tuple(labels.shape) != image.shape:
        raise ValueError(
            f"case {case_id}: label shape {labels.shape} does not match image {image.shape}"
        )
    grid = ModelGrid.for_image(image.shape, image.affine, spacing)
    x = normalise_intensity(grid.image_to_model(finite(image.array)), tuple(window))
    y = grid.labels_to_model(np.asarray(labels, np.uint8))
    c = grid.fraction_to_model(corrected) if corrected is not None else None
    return TrainingCase(case_id, x, y, c)


def training_versions(project: Project) -> dict[str, LabelVersion]:
    """The label version that counts for each case that has one (see module docs)."""
    chosen: dict[str, LabelVersion] = {}
    finals = project.current_finals("mask")  # a final a lead reopened does not count
    for case in project.cases():
        if case.id in finals:
            version = project.version(finals[case.id])
        else:
            version = project.latest_version(case.id, kinds=LABEL_KINDS, content="mask")
        if version is not None:
            chosen[case.id] = version
    return chosen


def _proposal_of(project: Project, version: LabelVersion) -> tuple[list[int], int | None]:
    """Ids of ``version``'s parent chain and the first proposal on it (or None)."""
    chain, proposal = [], None
    current: LabelVersion | None = version
    seen = set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        chain.append(current.id)
        if current.kind == "proposal":
            proposal = current.id
            break
        current = project.version(current.parent_id) if current.parent_id else None
    return chain, proposal


def corrected_voxels(
    project: Project, version: LabelVersion, labels: np.ndarray | None = None
) -> np.ndarray | None:
    """Boolean image-grid mask of the voxels corrected on the way to ``version``.

    None when there is neither an edit log nor a proposal to compare with.
    """
    chain, proposal_id = _proposal_of(project, version)
    events = []
    if version.annotator:
        events = [
            e
            for e in project.events(
                version.case_id, version.annotator, up_to_id=version.last_event_id
            )
            if e.base_version_id in chain and e.diff is not None
        ]
    if events:
        shape, _ = project.grid(version.case_id)
        mask = np.zeros(shape, bool)
        for event in events:
            mask[event.diff.slices] |= event.diff.changed
        return mask
    if proposal_id is not None and proposal_id != version.id:
        before = project.read_mask(project.version(proposal_id))
        after = project.read_mask(version) if labels is None else labels
        return before != after
    return None


def holdout_split(
    case_ids: Sequence[str], fraction: float = 0.2, max_held: int | None = None
) -> tuple[list[str], list[str]]:
    """Split case ids into (train, held-out) by a hash of each id (stable across rounds).

    A case is held out when its hash falls below ``fraction``; with two or more cases at
    least one is held out and at least one is kept for training. With ``max_held``, only
    that many of them (the lowest hashes) are held out and the rest train: as a project
    grows, a held-out case may move to training, never the other way, so no model is
    scored on a case it was trained on.
    """
    ids = sorted(case_ids)
    score = {c: int(hashlib.sha1(c.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for c in ids}
    held = [c for c in ids if score[c] < fraction]
    if max_held is not None and len(held) > max_held:
        kept = set(sorted(held, key=score.__getitem__)[:max_held])
        held = [c for c in held if c in kept]
    if len(ids) >= 2 and not held:
        held = [min(ids, key=score.__getitem__)]
    if len(held) == len(ids) and len(ids) >= 2:
        held = held[:-1]
    train = [c for c in ids if c not in held]
    return train, held


def label_snapshot_hash(versions: dict[str, LabelVersion]) -> str:
    """One hash of the label versions a model was trained on (case id + content hash)."""
    text = "\n".join(f"{cid}:{v.sha256}" for cid, v in sorted(versions.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_version(
    project: Project, bundle: ModelBundle, case_id: str, version: LabelVersion
) -> TrainingCase:
    """Read a case's image and the label ``version`` and move them onto ``bundle``'s grid,
    with the voxels corrected on the way to the version."""
    image = project.load_image(case_id)
    labels = project.read_mask(version)
    corrected = corrected_voxels(project, version, labels)
    return prepare_case(case_id, image, labels, bundle.spacing, bundle.window, corrected)


def project_cases(
    project: Project,
    bundle: ModelBundle,
    versions: dict[str, LabelVersion],
    progress: Callable[[int, int, str], None] | None = None,
    cache: CaseCache | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[TrainingCase]:
    """Each case's image and chosen label on ``bundle``'s model grid, in case-id order.

    With a ``cache`` (:class:`~.case_cache.CaseCache`), cases prepared before are
    memory-mapped from it and new ones stored in it; without, each is prepared in memory.
    ``cancel`` is checked before each case (:class:`~.organs.TrainingCancelled`): a first
    round prepares every labelled case, seconds each.
    """
    out = []
    items = sorted(versions.items())
    for i, (case_id, version) in enumerate(items):
        if cancel is not None and cancel():
            raise TrainingCancelled("training cancelled while loading cases")
        if cache is not None:
            out.append(cache.get(version, bundle))
        else:
            out.append(prepare_version(project, bundle, case_id, version))
        if progress is not None:
            progress(i + 1, len(items), "loading cases")
    return out

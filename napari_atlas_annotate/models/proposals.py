"""Proposals for a project's cases: run the active model, store the label as a
``proposal`` version naming the model, record the case's uncertainty for the queue.

Uncertainty map convention (for the annotator dock): next to each proposal version file
``labels/<case>/proposal-model-<hash>.nii.gz`` lies ``...-<hash>.uncertainty.nii.gz``, a
float32 NIfTI at model resolution (3 mm) whose affine places it exactly over the image
(:meth:`ModelGrid.model_affine`); values are normalised softmax entropy, 0 (sure) to 1.
:func:`uncertainty_path` gives that path for a version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.nifti import save_nifti
from ..project import LabelVersion, Project, ProjectError
from ..project.store import mask_sha256, mask_version_path
from ..volume import Volume
from .inference import CancelFlag, LoadedModel, load_model, propose_organs
from .registry import active_model

UNCERTAINTY_SUFFIX = ".uncertainty.nii.gz"


@dataclass
class CaseProposal:
    """The stored outcome of proposing one case.

    ``unchanged`` is True when the model proposed exactly what its latest proposal for the
    case already held: ``version_id`` is then that version, nothing new was stored.
    """

    case_id: str
    version_id: int
    model_version: str
    uncertainty: float
    seconds: float
    uncertainty_path: str | None
    unchanged: bool = False
    #: What the user should check about the proposal ("" when nothing): an image whose
    #: values do not look like HU, or a model that labelled no organ.
    warning: str = ""


class ProposalBatchError(ProjectError):
    """Some cases of a batch could not be proposed; the others were, and are stored.

    Attributes
    ----------
    proposals
        The cases that were proposed, in batch order.
    failures
        ``{case id: message}`` of the cases that were not (why, and what to do).
    """

    def __init__(self, proposals: list[CaseProposal], failures: dict[str, str]) -> None:
        self.proposals = list(proposals)
        self.failures = dict(failures)
        total = len(self.proposals) + len(self.failures)
        super().__init__(
            f"{len(self.failures)} of {total} case(s) could not be proposed (the other "
            f"{len(self.proposals)} were proposed and stored):\n" + "\n".join(failures.values())
        )


def propose_each(
    project: Project,
    case_ids: Sequence[str],
    propose_one: Callable[[str], CaseProposal],
    progress: Callable[[int, int, str], None] | None = None,
) -> list[CaseProposal]:
    """Run ``propose_one`` on every case, going on past cases that cannot be proposed.

    A case whose ``propose_one`` raises :class:`ProjectError` (its image is missing or
    unreadable, say) is recorded and the batch goes on; cancelling and other errors stop it.

    Returns
    -------
    list of CaseProposal
        One per case, ``unchanged`` set where the proposal was already stored.

    Raises
    ------
    ProposalBatchError
        After the whole batch, when any case failed; it carries the proposals made.
    """
    out: list[CaseProposal] = []
    failures: dict[str, str] = {}
    for i, cid in enumerate(case_ids):
        before = project.latest_version(cid, kinds=("proposal",))
        try:
            result = propose_one(cid)
        except ProjectError as exc:
            message = str(exc)
            failures[cid] = (
                message if message.startswith(f"case {cid}") else f"case {cid}: {message}"
            )
            done = f"could not propose {cid}"
        else:
            result.unchanged = before is not None and before.id == result.version_id
            out.append(result)
            done = f"proposed {cid}" + (" (unchanged)" if result.unchanged else "")
        if progress is not None:
            progress(i + 1, len(case_ids), done)
    if failures:
        raise ProposalBatchError(out, failures)
    return out


def uncertainty_path(project: Project, version: LabelVersion | str) -> Path:
    """Path of the uncertainty map saved with a proposal version, or with the version
    to be stored at ``version`` (a path relative to the project); it may not exist."""
    path = str(project.folder / (version if isinstance(version, str) else version.path))
    stem = path[: -len(".nii.gz")] if path.endswith(".nii.gz") else path
    return Path(stem + UNCERTAINTY_SUFFIX)


def propose_case(
    project: Project,
    case_id: str,
    loaded: LoadedModel,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelFlag | None = None,
    save_uncertainty: bool = True,
    image: Volume | None = None,
) -> CaseProposal:
    """Propose one case with ``loaded``, store it, set the case's uncertainty."""
    t0 = time.perf_counter()
    image = image if image is not None else project.load_image(case_id)
    proposal = propose_organs(image, loaded, progress=progress, cancel=cancel)
    # The map and the queue's score are stored before the version: a batch stopped in
    # between leaves the case without this model's proposal, so running it again redoes
    # the case, where it left a proposal without its score or map for good.
    saved = None
    if save_uncertainty and proposal.uncertainty_map is not None:
        rel = mask_version_path(case_id, "proposal", None, mask_sha256(proposal.labels))
        path = uncertainty_path(project, rel)
        if not path.exists():
            affine = proposal.grid.model_affine(image.affine)
            save_nifti(Volume(proposal.uncertainty_map.astype(np.float32), affine), path)
        saved = str(path.relative_to(project.folder))
    project.set_uncertainty(case_id, proposal.uncertainty)
    version = project.save_mask_version(
        case_id,
        proposal.labels,
        kind="proposal",
        model_version=proposal.model_version,
        note=f"uncertainty {proposal.uncertainty:.4f}"
        + ("; borders snapped to image edges" if proposal.borders_refined else ""),
        reference=image,
    )
    return CaseProposal(
        case_id,
        version.id,
        proposal.model_version,
        proposal.uncertainty,
        round(time.perf_counter() - t0, 3),
        saved,
        warning=_proposal_warning(image, proposal.labels),
    )


def _proposal_warning(image: Volume, labels: np.ndarray) -> str:
    """What to check about an organ proposal: the image's values, or an empty proposal."""
    from .intensity import hounsfield_doubt

    doubt = hounsfield_doubt(image.array)
    if doubt:
        return f"the image has {doubt}"
    if not labels.any():
        return "the model labelled no organ: check that the image is an abdominal CT, in HU."
    return ""


def cases_needing_proposal(project: Project, model_version: str) -> list[str]:
    """Ids of the cases a batch proposal with ``model_version`` is for: those not final
    whose latest proposal is by another model (or that have none).

    After a retraining round promotes a model, that is every case still to be annotated;
    a batch that was stopped goes on where it stopped. Final cases are done: a proposal
    would change nothing anyone works on.
    """
    content = "grades" if project.task == "spine" else "mask"
    out = []
    for case in project.cases():
        if project.current_final(case.id, content) is not None:
            continue
        latest = project.latest_version(case.id, kinds=("proposal",), content=content)
        if latest is None or latest.model_version != model_version:
            out.append(case.id)
    return out


def check_case_ids(project: Project, case_ids: Sequence[str] | None) -> None:
    """Fail on an unknown case id before any model is loaded, naming every unknown one
    (and the project's ids, as :meth:`Project.case` does)."""
    known = {case.id for case in project.cases()}
    unknown = [cid for cid in case_ids or () if cid not in known]
    if len(unknown) > 1:
        raise ProjectError(
            f"no cases {', '.join(repr(c) for c in unknown)} in project {project.folder}; "
            "'atlas-annotate status PROJECT --all' lists its cases."
        )
    for cid in unknown:
        project.case(cid)  # its own message, with the ids it knows


def batch_case_ids(
    project: Project, case_ids: Sequence[str] | None, model_version: str, every: bool
) -> list[str]:
    """The cases a proposal batch runs on: ``case_ids``, else every case with ``every``,
    else :func:`cases_needing_proposal`."""
    if case_ids:
        return list(case_ids)
    if every:
        return [c.id for c in project.cases()]
    return cases_needing_proposal(project, model_version)


def propose_cases(
    project: Project,
    case_ids: Sequence[str] | None = None,
    device: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelFlag | None = None,
    *,
    save_uncertainty: bool = True,
    every: bool = False,
) -> list[CaseProposal]:
    """Propose ``case_ids`` with the project's active model.

    Default: the cases still to be annotated that have no proposal from the active model
    (:func:`cases_needing_proposal`); every case with ``every``. A case whose image cannot
    be loaded does not stop the batch: the others are proposed, then
    :class:`ProposalBatchError` says which failed and why (see :func:`propose_each`).
    """
    if project.task != "organs":
        raise ProjectError(f"{project.folder}: proposals here are for organs projects only.")
    check_case_ids(project, case_ids)
    loaded = load_model(active_model(project), device)
    ids = batch_case_ids(project, case_ids, loaded.version, every)
    return propose_each(
        project,
        ids,
        lambda cid: propose_case(
            project, cid, loaded, cancel=cancel, save_uncertainty=save_uncertainty
        ),
        progress,
    )

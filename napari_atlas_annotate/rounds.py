"""One entry point per step of the annotation loop, whatever the project's task.

:func:`propose` runs the project's active helper model on cases and stores proposals;
:func:`retrain` runs one round of training on the submitted labels and promotes the new
model only when it beats the active one on held-out cases. Organ projects use the organ
segmentation model (:mod:`.models.proposals`, :mod:`.training.round`), spine projects the
lumbar grader (:mod:`.models.spine_proposals`, :mod:`.training.spine_round`).

Both are plain functions (progress callback ``progress(done, total, message)``, cancel
flag), safe to call from a worker thread; the dock, the demo and the CLI call them alike.
This module imports no GUI toolkit, and torch only when a function runs.

Examples
--------
>>> proposals = propose(project, device="cpu")            # doctest: +SKIP
>>> result = retrain(project, device="cpu", epochs=2)     # doctest: +SKIP
>>> print(describe_round(result))                         # doctest: +SKIP
round 1: trained spine-round1 on 2 case(s) in 3 s; 1 held-out case: RSNA score ...
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .project import Project, ProjectError

if TYPE_CHECKING:
    from .models.proposals import CaseProposal
    from .training.round import RoundResult

ProgressCallback = Callable[[int, int, str], None]
CancelFlag = Callable[[], bool]

TASKS = ("organs", "spine")


def _check_task(project: Project) -> str:
    if project.task not in TASKS:
        raise ProjectError(
            f"{project.folder}: task {project.task!r} has no helper model (known: "
            f"{', '.join(TASKS)})."
        )
    return project.task


def propose(
    project: Project,
    case_ids: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    every: bool = False,
) -> list[CaseProposal]:
    """Propose cases with the project's active model and store the proposals.

    Parameters
    ----------
    project
        An open organs or spine project (the packaged starter model is installed the first
        time one is needed).
    case_ids
        Cases to propose. Default: the cases still to be annotated (not final) without a
        proposal from the active model: after a promoted round, all of them; after a
        stopped batch, the rest (:func:`~.models.proposals.cases_needing_proposal`).
    every
        Without ``case_ids``: propose every case, final ones included.
    device
        ``'auto'`` (CUDA when available), ``'cpu'`` or ``'cuda'``.
    progress
        ``progress(done, total, message)`` after each case.
    cancel
        Returns True to stop; raises ``InferenceCancelled`` (proposals stored so far stay).

    Returns
    -------
    list of CaseProposal
        One per proposed case: version id, model version, uncertainty (0..1), seconds, and
        whether it only repeated the model's stored proposal (``unchanged``).

    Raises
    ------
    ~.models.proposals.ProposalBatchError
        When some cases could not be loaded: raised after the others were proposed, it
        names each failed case and why, and carries the proposals made.
    """
    if _check_task(project) == "spine":
        from .models.spine_proposals import propose_spine_cases

        return propose_spine_cases(
            project, case_ids, device=device, progress=progress, cancel=cancel, every=every
        )
    from .models.proposals import propose_cases

    return propose_cases(
        project, case_ids, device=device, progress=progress, cancel=cancel, every=every
    )


def retrain(
    project: Project,
    *,
    device: str = "auto",
    epochs: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> RoundResult:
    """Run one round of training on the project's submitted labels or grade sheets.

    The new model is registered (``<task>-round<N>``) and becomes active only when it beats
    the active one on held-out cases (organs: mean Dice, higher; spine: RSNA score, lower).

    Parameters
    ----------
    device
        ``'auto'``, ``'cpu'`` or ``'cuda'``.
    epochs
        Training epochs (each task's default when None).
    progress
        ``progress(done, total, stage)`` while loading, training and validating.
    cancel
        Returns True to stop; raises ``TrainingCancelled``, the round is recorded as
        cancelled and the active model is unchanged.

    Returns
    -------
    RoundResult
        For spine projects a :class:`~.training.spine_round.SpineRoundResult`
        (``rsna_score_old``, ``rsna_score_new``, ``metrics``; no Dice).
    """
    if _check_task(project) == "spine":
        from .training.spine_round import train_spine_round

        return train_spine_round(
            project, device=device, epochs=epochs, progress=progress, cancel=cancel
        )
    from .training.round import train_round

    return train_round(project, device=device, epochs=epochs, progress=progress, cancel=cancel)


#: Below this many held-out cases a round's verdict is flagged as a weak check.
FEW_HOLDOUT_CASES: int = 3

#: Held-out case ids a round's line names (``train --json`` and ``models --json`` have all).
HELD_OUT_NAMED: int = 10


def held_out_dice_name(label_tolerance: int) -> str:
    """How a round's held-out Dice is named: plain, or with the label borders left out."""
    if not label_tolerance:
        return "Dice"
    return f"Dice off the label borders (+-{2 * int(label_tolerance)} voxels)"


def describe_round(
    result: RoundResult, project_folder: str | None = None, *, active_version: str | None = None
) -> str:
    """What a round did, for either task: scores, verdict, and how to override a kept model.

    A model that was not promoted is still registered; the text names the command that
    activates it anyway (``project_folder`` fills in the path). With fewer than
    :data:`FEW_HOLDOUT_CASES` held-out cases the verdict is flagged as resting on little.
    For a past round, ``active_version`` (the model active now) tells where a later
    rollback or round overrode the verdict.
    """
    rsna_old = getattr(result, "rsna_score_old", None)
    reason = str(getattr(result, "metrics", {}).get("status", ""))
    refused = not result.promoted and reason.startswith("kept previous: ")
    if not result.promoted:
        verdict = f"kept {result.previous_version}"
        if rsna_old is None and not refused:  # organs: promoted only on a higher Dice
            verdict += f" ({result.model_version}'s Dice is not higher)"
    elif active_version in (None, result.model_version):
        verdict = "promoted (now active)"
    else:
        verdict = f"promoted (no longer active: {active_version} is)"
    if refused:  # e.g. too few held-out studies to judge a grader at all
        verdict += f" ({reason.removeprefix('kept previous: ')})"
    n_held = len(result.holdout_cases)
    held = f"{n_held} held-out case{'' if n_held == 1 else 's'}"
    models = f" ({result.previous_version} -> {result.model_version})"
    if rsna_old is not None:
        score = (
            f"{held}: RSNA score {rsna_old:.3f} -> {result.rsna_score_new:.3f}{models} (lower wins)"
        )
    else:
        dice = held_out_dice_name(result.label_tolerance)
        score = f"{held}: {dice} {result.dice_old:.3f} -> {result.dice_new:.3f}"
        if not math.isnan(result.voxels_to_edit_new):
            score += (
                f", voxels to edit per case {result.voxels_to_edit_old:.0f} -> "
                f"{result.voxels_to_edit_new:.0f}"
            )
        score += models
    names = ", ".join(result.holdout_cases[:HELD_OUT_NAMED])
    if n_held > HELD_OUT_NAMED:
        names += f", ... ({n_held - HELD_OUT_NAMED} more)"
    text = (
        f"round {result.round}: trained {result.model_version} on {len(result.train_cases)} "
        f"case(s) in {result.seconds:.0f} s, held out: {names or 'none'}; {score}: {verdict}"
    )
    if n_held < FEW_HOLDOUT_CASES and not refused:
        text += f". Only {held} decided this, a weak check"
    if not result.promoted and active_version == result.model_version:
        text += f". {result.model_version} was made active later (rollback)."
    elif not result.promoted:
        folder = shlex.quote(project_folder) if project_folder else "PROJECT"
        text += (
            f". To use the new model anyway: atlas-annotate models {folder} "
            f"--rollback {result.model_version}"
        )  # ends with a command to copy: no full stop after it
    else:
        text += "."
    return text

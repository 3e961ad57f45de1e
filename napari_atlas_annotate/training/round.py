"""One round of retraining: fine-tune the active organ model on the submitted labels,
validate against the old model on held-out cases (the proposals each would hand a
radiologist: image grid, cleanup, borders snapped), promote only if it is better.

:func:`train_round` is a plain function (progress callback, cancel flag), safe to run in a
worker thread; the ``train`` command and the campaign call it the same way.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..models.bundle import ModelBundle, save_bundle
from ..models.devices import select_device, set_cpu_threads
from ..models.inference import LoadedModel
from ..models.registry import (
    active_model,
    finish_round,
    list_models,
    model_folder,
    register_model,
)
from ..project import Project, ProjectError
from .case_cache import CaseCache
from .dataset import holdout_split, label_snapshot_hash, project_cases, training_versions
from .organs import TrainingCancelled, TrainSettings, evaluate_proposals, fine_tune
from .round_lock import training_round

#: Most held-out cases a round scores both models on (see :func:`train_round`): enough to
#: compare two models' mean Dice, few enough to keep validation near 15 minutes on 2 CPU
#: threads (50 cases x 2 models x about 8 s for a 512x512x300 CT).
MAX_HOLDOUT_CASES = 50

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class RoundResult:
    """What a round of training did.

    Attributes
    ----------
    round
        Round number (row id in the project's ``rounds`` table).
    model_version
        The newly trained version (registered whether promoted or not).
    promoted
        True when it beat the previous model on the held-out cases and is now active.
    previous_version
        The model that was active before (and still is, when not promoted).
    dice_new, dice_old
        Mean Dice of new and old model's proposals on the held-out cases (each case's own
        grid, after cleanup and border refinement; with a ``label_tolerance``, outside the
        labels' uncertain border band, see :func:`~.organs.evaluate_proposals`).
    dice_per_class
        Per-class Dice of the new model on the held-out cases.
    voxels_to_edit_new, voxels_to_edit_old
        Wrong voxels per held-out case of each model's proposals (what a radiologist would
        repaint); NaN where not measured.
    label_tolerance
        The annotators' border tolerance (voxels) the held-out Dice allowed for.
    train_cases, holdout_cases
        Case ids used for training and for validation.
    seconds
        Wall time of the whole round.
    """

    round: int
    model_version: str
    promoted: bool
    previous_version: str
    dice_new: float
    dice_old: float
    dice_per_class: dict
    train_cases: list[str]
    holdout_cases: list[str]
    seconds: float
    training: dict = field(default_factory=dict)
    voxels_to_edit_new: float = math.nan
    voxels_to_edit_old: float = math.nan
    label_tolerance: int = 0
    #: What the round recorded (its verdict, ``status``, with the reason when it could
    #: not judge the model).
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain fields for JSON; scores that were not measured (NaN) become None."""
        return nan_to_none(asdict(self))


def nan_to_none(values: dict) -> dict:
    """``values`` with NaN floats as None (valid JSON), in nested dicts too."""
    return {
        k: nan_to_none(v)
        if isinstance(v, dict)
        else None
        if isinstance(v, float) and math.isnan(v)
        else v
        for k, v in values.items()
    }


#: Why a round with no case held out of its training keeps the previous model.
NOT_JUDGED = (
    "no held-out case to judge it on (the one labelled case was trained on); a model is "
    "promoted only when it beats the old one on cases it was not trained on: submit a "
    "second case"
)


@contextmanager
def failures_recorded(
    project: Project, round_id: int, folder: Path | None = None
) -> Iterator[None]:
    """Finish round ``round_id`` as cancelled or failed (with the error) if the block raises.

    The exception still propagates; the active model is left as it was. ``folder`` is the
    round's model folder: written before the model is judged, it is removed again unless
    the model was registered, so a stopped round leaves no unjudged model behind.
    """
    try:
        yield
    except BaseException as exc:
        if folder is not None and folder.exists() and not _registered(project, folder.name):
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, TrainingCancelled):
            finish_round(project, round_id, None, {"status": "cancelled"})
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C in `atlas-annotate train`
            finish_round(
                project, round_id, None, {"status": "cancelled", "reason": "interrupted (Ctrl-C)"}
            )
        else:
            error = str(exc) or type(exc).__name__
            finish_round(project, round_id, None, {"status": "failed", "error": error})
        raise


def check_model_folder_free(folder: Path) -> None:
    """Raise :class:`ProjectError` when a round's model folder is already there.

    A round's folder is named by its round number, which comes from the project database;
    a database put back from a backup (or made again) numbers rounds anew, and the folder
    of a model it does not know may hold one trained before. It is left alone.
    """
    if folder.exists():
        raise ProjectError(
            f"{folder}: a model folder of this name is already there, but the project's "
            "database does not list it (was the database put back from a backup?). Nothing "
            "was trained, and the folder was left as it is. Keep it with 'atlas-annotate "
            f"models PROJECT --register {folder}', or move it out of models/, then train again."
        )


def _registered(project: Project, version: str) -> bool:
    return any(r.version == version for r in list_models(project))


def train_round(
    project: Project,
    device: str = "auto",
    epochs: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    max_minutes: float | None = None,
    settings: TrainSettings | None = None,
    threads: int | None = None,
    holdout_fraction: float = 0.2,
    max_holdout_cases: int = MAX_HOLDOUT_CASES,
    label_tolerance: int | None = None,
) -> RoundResult:
    """Fine-tune the active organ model on the project's submitted labels (one round).

    Parameters
    ----------
    project
        An organs project with at least one submitted (corrected/final/imported) mask.
    device
        ``'auto'``, ``'cpu'`` or ``'cuda'``.
    epochs
        Training epochs (``settings.iterations_per_epoch`` iterations each).
    progress
        ``progress(done, total, stage)`` while loading, training and validating.
    cancel
        Callable returning True to stop; raises :class:`TrainingCancelled`, the round is
        recorded as cancelled and the active model is unchanged.
    max_minutes
        Stop training (and still validate) after this many minutes.
    settings
        Full training settings (``epochs``/``max_minutes`` override theirs when given).
    holdout_fraction
        Share of labelled cases held out for validation, chosen by a hash of the case id.
    max_holdout_cases
        At most this many are held out (:data:`MAX_HOLDOUT_CASES`); in a large project
        the rest train. Each held-out case is proposed by both models, about 8 s each for
        a 512x512x300 CT on 2 CPU threads, so a fifth of 2,000 labelled cases would add
        almost two hours to every round.
    label_tolerance
        How many voxels off the annotators leave an organ border instead of repainting it
        (0: they correct every voxel; default: the project's ``label_tolerance``). Their
        labels then keep the old model's borders, which plain Dice would reward; the
        held-out Dice then leaves out voxels within twice this of a label border
        (:func:`~.organs.evaluate_proposals`).
    """
    t0 = time.perf_counter()
    if project.task != "organs":
        raise ProjectError(f"{project.folder}: training here is for organs projects only.")
    if label_tolerance is None:
        label_tolerance = project.config.label_tolerance
    if label_tolerance < 0:
        raise ValueError(f"label_tolerance must be >= 0 voxels, not {label_tolerance}")
    set_cpu_threads(threads)
    settings = copy.deepcopy(settings) if settings is not None else TrainSettings()
    if epochs is not None:
        settings.epochs = int(epochs)
    if max_minutes is not None:
        settings.max_minutes = float(max_minutes)
    torch_device = select_device(device)
    versions = training_versions(project)
    if not versions:
        raise ProjectError(
            f"{project.folder}: no submitted labels to train on yet. Correct and submit some "
            "proposals (or import labels) first."
        )
    parent = active_model(project)
    train_ids, holdout_ids = holdout_split(list(versions), holdout_fraction, max_holdout_cases)
    if not train_ids:  # a single labelled case: train on it, validate on it
        train_ids = holdout_ids
    with training_round(project) as round_id:
        version = f"organs-round{round_id}"
        folder = model_folder(project, version)
        in_the_way = folder.exists()  # never this round's to remove
        with failures_recorded(project, round_id, None if in_the_way else folder):
            check_model_folder_free(folder)
            # held-out cases are scored on their own grids (below), so only training cases
            # are prepared on the model grid
            cache = CaseCache(project)
            train = project_cases(
                project, parent, {c: versions[c] for c in train_ids}, progress, cache, cancel
            )
            held = holdout_ids or train_ids

            network = parent.load_network(torch_device)
            stats = fine_tune(network, train, settings, torch_device, progress, cancel)
            metadata = parent.derived_metadata(
                version=version,
                round=round_id,
                training={
                    "cases": train_ids,
                    "holdout_cases": holdout_ids,
                    "label_versions": {c: versions[c].id for c in sorted(versions)},
                    "label_snapshot": label_snapshot_hash(versions),
                    "settings": _settings_dict(settings),
                    "history": stats,
                    "device": str(torch_device),
                },
            )
            save_bundle(folder, network, metadata)
            old = LoadedModel(parent, parent.load_network(torch_device), torch_device)
            new = LoadedModel(ModelBundle.load(folder), network, torch_device)
            # each held-out case is read once and proposed by both models
            old_eval, new_eval = evaluate_proposals(
                [old, new],
                _labelled(project, versions, held, progress, cancel),
                label_tolerance=label_tolerance,
            )
            # judged only on cases it was not trained on: a single labelled case is both
            judged = bool(holdout_ids) and not set(holdout_ids) & set(train_ids)
            promoted = judged and _better(new_eval["mean_dice"], old_eval["mean_dice"])
            metrics = {
                "status": "promoted"
                if promoted
                else "kept previous"
                if judged
                else f"kept previous: {NOT_JUDGED}",
                "mean_dice": new_eval["mean_dice"],
                "dice_per_class": new_eval["dice_per_class"],
                "voxels_to_edit_per_case": new_eval["voxels_to_edit_per_case"],
                "previous_version": parent.version,
                "previous_mean_dice": old_eval["mean_dice"],
                "previous_voxels_to_edit_per_case": old_eval["voxels_to_edit_per_case"],
                "holdout_cases": holdout_ids,
                "train_cases": train_ids,
                "label_tolerance": int(label_tolerance),
            }
            _write_metrics(folder, metrics)
            register_model(
                project, folder, round_number=round_id, metrics=metrics, activate=promoted
            )
        finish_round(project, round_id, version, metrics)
    cache.prune()  # entries of superseded label versions
    return RoundResult(
        round=round_id,
        model_version=version,
        promoted=promoted,
        previous_version=parent.version,
        dice_new=new_eval["mean_dice"],
        dice_old=old_eval["mean_dice"],
        dice_per_class=new_eval["dice_per_class"],
        train_cases=train_ids,
        holdout_cases=holdout_ids,
        seconds=round(time.perf_counter() - t0, 2),
        training=stats,
        voxels_to_edit_new=new_eval["voxels_to_edit_per_case"],
        voxels_to_edit_old=old_eval["voxels_to_edit_per_case"],
        label_tolerance=int(label_tolerance),
        metrics=metrics,
    )


def _labelled(
    project: Project,
    versions: dict,
    case_ids: list[str],
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
):
    """``(case_id, image, labels)`` of ``case_ids`` on their own grids, one at a time.

    Reports ``progress(done, total, 'validating')`` and checks ``cancel`` before each case
    (validation proposes each one with both models: minutes on a real project).
    """
    total = len(case_ids)
    for done, case_id in enumerate(case_ids):
        if cancel is not None and cancel():
            raise TrainingCancelled("training cancelled while validating")
        if progress is not None:
            progress(done, total, "validating")
        yield case_id, project.load_image(case_id), project.read_mask(versions[case_id])
    if progress is not None:
        progress(total, total, "validating")


def _better(new: float, old: float) -> bool:
    if math.isnan(new):
        return False
    return math.isnan(old) or new > old


def _settings_dict(settings: TrainSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def _write_metrics(folder, metrics: dict) -> None:
    import json

    path = folder / "configs" / "metadata.json"
    data = json.loads(path.read_text())
    data["metrics"] = metrics
    path.write_text(json.dumps(data, indent=2))

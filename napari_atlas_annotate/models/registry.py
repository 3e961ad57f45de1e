"""The project's model registry: which helper model versions exist, which one is active.

Each round's model is a MONAI-bundle-shaped folder ``PROJECT/models/<version>/`` registered
in the project's ``models`` table (version, task, path, round, created_at, metrics, active).
Exactly one model per task is active; proposals name the version that made them, and
rolling back is switching the active flag to an earlier version (nothing is deleted).
Rounds of training are rows of the ``rounds`` table (started_at, finished_at,
model_version, metrics JSON).

A project that has no model yet gets the packaged starter model copied in as
``<task>-starter`` (round 0) the first time one is needed.

Spine projects register lumbar grader bundles (:mod:`.grader`, metadata task
``spine_grading``): their registry version is the metadata's ``model_version`` (else the
folder name); load them with :func:`.grader.load_grader` from the record's path.

Examples
--------
>>> bundle = active_model(project)                         # doctest: +SKIP
>>> [m.version for m in list_models(project)]              # doctest: +SKIP
['organs-starter', 'organs-round1']
>>> rollback(project, "organs-starter")                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..project import Project, ProjectError, task_phrase
from ..project.database import transaction
from .bundle import (
    METADATA_PATH,
    WEIGHTS_PATH,
    ModelBundle,
    ModelBundleError,
    ModelMismatchError,
    load_state_checked,
    read_weights,
    save_bundle,
)
from .organ_model import STARTER_FOLDER

MODELS_DIR = "models"
STARTERS = {"organs": STARTER_FOLDER, "spine": Path(__file__).parent / "starter" / "grader"}
#: Starters whose metadata names no registry version.
STARTER_VERSIONS = {"spine": "spine-starter"}
#: Project task of bundles whose metadata task differs (the lumbar grader's).
BUNDLE_TASKS = {"spine_grading": "spine"}


@dataclass
class ModelRecord:
    """One row of the ``models`` table."""

    version: str
    task: str
    path: str
    round: int | None
    created_at: float
    metrics: dict
    active: bool

    @classmethod
    def from_row(cls, row) -> ModelRecord:
        return cls(
            version=row["version"],
            task=row["task"],
            path=row["path"],
            round=row["round"],
            created_at=row["created_at"],
            metrics=json.loads(row["metrics"]) if row["metrics"] else {},
            active=bool(row["active"]),
        )


def model_folder(project: Project, version: str) -> Path:
    """Where a model version of ``project`` lives: ``PROJECT/models/<version>``."""
    return project.folder / MODELS_DIR / version


def list_models(project: Project, task: str | None = None) -> list[ModelRecord]:
    """Registered model versions, oldest first."""
    sql, args = "SELECT * FROM models", ()
    if task:
        sql, args = sql + " WHERE task = ?", (task,)
    rows = project._db.execute(sql + " ORDER BY created_at, rowid", args)
    return [ModelRecord.from_row(r) for r in rows]


def model_identity(folder: str | Path) -> tuple[str, str, dict]:
    """``(version, project task, metadata)`` of a model folder (organ model or grader)."""
    path = Path(folder) / "configs" / "metadata.json"
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        metadata = {}
    task = BUNDLE_TASKS.get(metadata.get("task"))
    if task is not None:
        return str(metadata.get("model_version") or Path(folder).name), task, metadata
    bundle = ModelBundle.load(folder)
    return bundle.version, bundle.task, bundle.metadata


def get_model(project: Project, version: str) -> ModelRecord:
    row = project._db.execute("SELECT * FROM models WHERE version = ?", (version,)).fetchone()
    if row is None:
        known = ", ".join(m.version for m in list_models(project)) or "none yet"
        raise ProjectError(
            f"no model version {version!r} in project {project.folder} (known: {known}). "
            "List them with 'atlas-annotate models PROJECT --list'."
        )
    return ModelRecord.from_row(row)


def register_model(
    project: Project,
    folder: str | Path,
    *,
    round_number: int | None = None,
    metrics: dict | None = None,
    activate: bool = False,
    checked: bool = False,
) -> ModelRecord:
    """Register a model folder (its version and task come from its metadata).

    Parameters
    ----------
    folder
        A model folder inside the project (stored relative to it) or elsewhere.
    activate
        Make it the task's active model (the previous one is deactivated).
    checked
        The folder was checked already (:func:`usable_identity`, by the caller that wrote
        it from a checked one): not loaded and tried again.
    """
    version, task, metadata = (
        model_identity(folder) if checked else usable_identity(project, folder)
    )
    path = Path(folder).resolve()
    try:
        stored = str(path.relative_to(project.folder))
    except ValueError:
        stored = str(path)
    round_number = metadata.get("round") if round_number is None else round_number
    metrics = metadata.get("metrics", {}) if metrics is None else metrics
    with transaction(project._db):
        if project._db.execute("SELECT 1 FROM models WHERE version = ?", (version,)).fetchone():
            raise ProjectError(f"model version {version} is already registered.")
        if activate:
            project._db.execute("UPDATE models SET active = 0 WHERE task = ?", (task,))
        project._db.execute(
            "INSERT INTO models(version, task, path, round, created_at, metrics, active)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                version,
                task,
                stored,
                round_number,
                time.time(),
                json.dumps(metrics),
                int(activate),
            ),
        )
    project.record_audit(None, "model-registry", "register_model", version=version)
    return get_model(project, version)


def usable_identity(project: Project, folder: str | Path) -> tuple[str, str, dict]:
    """:func:`model_identity` of a model folder checked for ``project``: its task's, and
    usable (:func:`check_usable`); ProjectError or ModelMismatchError otherwise."""
    version, task, metadata = model_identity(folder)
    if task != project.task:
        raise ProjectError(
            f"model {version} is for task {task!r} but project "
            f"{project.folder} is {task_phrase(project.task)}."
        )
    check_usable(project, folder)
    return version, task, metadata


def check_usable(project: Project, folder: str | Path) -> None:
    """Raise unless the model in ``folder`` can propose for ``project``: an organ model's
    classes are the project's and its weights fit its architecture; a grader loads.

    Run when a model is registered, so that a model nobody can use is refused there and
    then, not at the first proposal after someone activated it.
    """
    if project.task == "spine":
        from .grader import load_grader

        load_grader(folder)
        return
    bundle = ModelBundle.load(folder)
    bundle.check_classes(project.classes, f"project {project.folder}")
    network = bundle.load_network("cpu")
    _dry_run(bundle, network)


def _dry_run(bundle: ModelBundle, network) -> None:
    """Propose a tiny blank CT with the model (about 0.3 s on a CPU): metadata that loads
    but lacks what proposing reads (a preprocessing window, an inference window) is found
    now, as a :class:`ModelMismatchError` naming the folder, not as a KeyError at the
    first proposal after someone activated the model."""
    import numpy as np
    import torch

    from ..volume import Volume
    from .inference import LoadedModel, propose_organs

    blank = Volume(np.full((8, 16, 16), -1000, np.int16), np.diag([3.0, 3.0, 3.0, 1.0]), "CT")
    try:
        propose_organs(blank, LoadedModel(bundle, network, torch.device("cpu")), refine=False)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise ModelMismatchError(
            f"{bundle.folder}: the model cannot propose with its {METADATA_PATH} "
            f"({type(exc).__name__}: {exc}); it needs the preprocessing (spacing, window) "
            "and inference (roi_size) settings its training used. Nothing was registered."
        ) from exc


#: Version names: letters, digits, ``.``, ``_`` and ``-`` (they name folders).
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def import_checkpoint(
    project: Project, path: str | Path, *, version: str | None = None
) -> ModelRecord:
    """Register a user's own organ-model weights as a new, inactive model version.

    The checkpoint is a state dict of the active model's network (``torch.save(
    model.state_dict(), path)``, read with ``weights_only=True``), trained for the
    project's classes on the same preprocessing; it becomes ``PROJECT/models/<version>/``
    with the active model's metadata (classes, spacing, preprocessing, architecture,
    inference) and where it came from (path, SHA-256). Activate it with :func:`rollback`.

    Parameters
    ----------
    path
        The checkpoint file.
    version
        Its version name (default ``<task>-import-<file name>``).

    Raises
    ------
    ModelBundleError
        The file is missing or not a plain state dict.
    ModelMismatchError
        Its weights do not fit the active model's architecture and classes (naming the
        file and what differs); nothing is written.
    """
    path = Path(path)
    if project.task != "organs":
        raise ProjectError(
            f"project {project.folder} is {task_phrase(project.task)}: its models are "
            f"lumbar grader folders ({METADATA_PATH} and {WEIGHTS_PATH}, as 'atlas-annotate "
            "train' writes them); register such a folder instead of a weights file."
        )
    state = read_weights(path)
    version = version or f"{project.task}-import-{re.sub(r'[^A-Za-z0-9._-]+', '-', path.stem)}"
    target = _new_version_folder(project, version)
    parent = active_model(project)
    network = parent.build_network()
    load_state_checked(
        network,
        state,
        path,
        parent.describe_architecture(),
        advice=f"A weights file is read as the active model's network ({parent.version}); "
        "for another network or class list, register a model folder whose "
        f"{METADATA_PATH} describes it.",
    )
    metadata = parent.derived_metadata(
        version=version,
        round=None,
        training={
            "imported_from": {
                "path": str(path.resolve()),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        },
        metrics={},
    )
    save_bundle(target, network, metadata)
    try:
        return register_model(project, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _new_version_folder(project: Project, version: str) -> Path:
    """The folder a model registered as ``version`` is written to, or ProjectError when
    the name is not a folder name, is registered already or its folder is taken."""
    if not VERSION_NAME.fullmatch(version):
        raise ProjectError(
            f"model version {version!r}: use letters, digits, '.', '_' and '-' only "
            "(it names a folder), starting with a letter or digit; give one with --version."
        )
    if project._db.execute("SELECT 1 FROM models WHERE version = ?", (version,)).fetchone():
        raise ProjectError(
            f"model version {version} is already registered; give the model another name "
            "with --version NAME."
        )
    target = model_folder(project, version)
    if target.exists():
        raise ProjectError(
            f"{target} already exists (left by an interrupted run?); give the model another "
            "name with --version NAME, or move that folder out of models/."
        )
    return target


#: How a project's own training rounds name their models.
ROUND_NAME = re.compile(r"(organs|spine)-round\d+")


def import_model_folder(
    project: Project, path: str | Path, *, version: str | None = None
) -> ModelRecord:
    """Register a model folder from outside the project (another project's round, a
    model trained elsewhere) as a new, inactive model version.

    The folder is checked (:func:`check_usable`) and copied to
    ``PROJECT/models/<version>/``, so the proposals it makes stay reproducible whatever
    happens to the original. ``version`` defaults to the folder's own; a round name
    (``organs-round3``) is refused, as it is this project's own rounds' (give another
    with ``version``). The copy's metadata keeps where it came from (path, the weights'
    SHA-256, its version and metrics there) but no round and no verdict of this project's.
    """
    source = Path(path)
    own, task, metadata = usable_identity(project, source)
    version = version or own
    if ROUND_NAME.fullmatch(version):
        raise ProjectError(
            f"{source}: its version {version} is how this project names the models its own "
            "training rounds make; register it under another name with --version NAME."
        )
    target = _new_version_folder(project, version)
    weights = source / WEIGHTS_PATH
    imported = {
        "path": str(source.resolve()),
        "version": own,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else "",
        "metrics": metadata.get("metrics", {}),
    }
    metadata = {
        **metadata,
        ("model_version" if task == "spine" else "version"): version,
        "round": None,
        "metrics": {},
        "imported_from": imported,
    }
    staging = target.with_name(f".{target.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging)
        (staging / METADATA_PATH).write_text(json.dumps(metadata, indent=2))
        staging.rename(target)
        return register_model(project, target, checked=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        raise


def install_starter(project: Project, task: str | None = None) -> ModelRecord:
    """Copy the packaged starter model into the project and make it active."""
    task = task or project.task
    source = STARTERS.get(task)
    if source is None or not (source / "configs" / "metadata.json").exists():
        raise ModelBundleError(
            f"no starter model for task {task!r} is packaged (looked in {source}). Train one "
            "with 'python scripts/make_starter_models.py', or register a model folder."
        )
    version = STARTER_VERSIONS.get(task) or model_identity(source)[0]
    target = model_folder(project, version)
    if not target.exists():
        tmp = target.parent / f".{target.name}.copy"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        tmp.rename(target)
    return register_model(project, target, round_number=0, activate=True)


def active_record(project: Project, task: str | None = None) -> ModelRecord | None:
    row = project._db.execute(
        "SELECT * FROM models WHERE task = ? AND active = 1", (task or project.task,)
    ).fetchone()
    return ModelRecord.from_row(row) if row else None


def active_model(project: Project, task: str | None = None) -> ModelBundle:
    """The task's active model; installs the packaged starter when there is none yet.

    The model's classes are checked against the project's.
    """
    record = active_record(project, task) or install_starter(project, task)
    bundle = ModelBundle.load(project.resolve(record.path))
    if project.task == "organs":
        bundle.check_classes(project.classes, f"project {project.folder}")
    return bundle


def rollback(project: Project, version: str) -> ModelRecord:
    """Make ``version`` the active model of its task again (later versions are kept)."""
    record = get_model(project, version)
    check_usable(project, project.resolve(record.path))  # must still load
    with transaction(project._db):
        project._db.execute("UPDATE models SET active = 0 WHERE task = ?", (record.task,))
        project._db.execute("UPDATE models SET active = 1 WHERE version = ?", (version,))
    project.record_audit(None, "model-registry", "activate_model", version=version)
    return get_model(project, version)


# -- rounds ---------------------------------------------------------------------------
def start_round(project: Project) -> int:
    """Open a row in ``rounds``; returns its id (the round number)."""
    with transaction(project._db):
        cur = project._db.execute("INSERT INTO rounds(started_at) VALUES (?)", (time.time(),))
        return int(cur.lastrowid)


def finish_round(project: Project, round_id: int, model_version: str | None, metrics: dict):
    """Close a round with the model it produced and its metrics."""
    with transaction(project._db):
        project._db.execute(
            "UPDATE rounds SET finished_at = ?, model_version = ?, metrics = ? WHERE id = ?",
            (time.time(), model_version, json.dumps(metrics), round_id),
        )


def list_rounds(project: Project) -> list[dict]:
    rows = project._db.execute("SELECT * FROM rounds ORDER BY id")
    out = []
    for r in rows:
        d = dict(r)
        d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
        out.append(d)
    return out

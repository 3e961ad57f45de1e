"""The demo campaign: two real projects of phantoms with the starter models' proposals.

:func:`build_demo_project` does, in one folder, what a new user does by hand::

    atlas-annotate phantoms DIR/phantoms --ct 3 --mri 2 --site 1
    atlas-annotate init DIR/organs --task organs;  atlas-annotate add DIR/organs manifest.json
    atlas-annotate init DIR/spine --task spine;    atlas-annotate add DIR/spine manifest.json
    atlas-annotate propose ...   (every case, with the starter models)

The phantoms come from an acquisition site the starter models were not trained on
(site 1 by default), so the proposals are good but imperfect: there is something to
correct, and the queue (ordered by the models' uncertainty) means something. The truth
stays available to each case (``case.truth``), so :func:`demo_cases` can say how good each
proposal is.

Rerunning on an existing demo folder reuses it: nothing is written twice, cases and
proposals already there are kept (so is any work done in them).

Examples
--------
>>> demo = build_demo_project("atlas-demo")          # doctest: +SKIP
>>> [row["proposal_mean_dice"] for row in demo_cases(demo.organs, demo.spine)
...  if row["task"] == "organs"]                       # doctest: +SKIP
[0.86, 0.84, 0.79]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .project import Project, ProjectError, task_phrase
from .project.config import CONFIG_NAME

#: Annotator name the demo opens the projects as.
DEMO_ANNOTATOR = "demo"
#: Sub-folders of a demo folder.
PHANTOMS_DIR, ORGANS_DIR, SPINE_DIR = "phantoms", "organs", "spine"
#: What a demo folder was built with (checked on reuse).
STAMP_NAME = "demo.json"


class DemoError(ProjectError):
    """A demo folder cannot be built or reused as asked (a ValueError: clean CLI error)."""


@dataclass(frozen=True)
class DemoProjects:
    """Where :func:`build_demo_project` put things."""

    organs: Path
    spine: Path
    manifest: Path


def build_demo_project(
    out_dir: str | Path,
    seed: int = 0,
    n_ct: int = 3,
    n_mri: int = 2,
    site: int = 1,
    progress: Callable[[str], Any] | None = print,
    *,
    device: str = "auto",
) -> DemoProjects:
    """Build (or reuse) the demo organ and spine projects in ``out_dir``.

    Parameters
    ----------
    out_dir
        Demo folder; gets ``phantoms/`` (the phantom set and its truth), ``organs/`` and
        ``spine/`` (the projects) and ``demo.json`` (the parameters below).
    seed, n_ct, n_mri, site
        Phantom set: seed, CT organ cases, lumbar MRI studies, acquisition site (0 is the
        site the starter models were trained on).
    progress
        Called with one line of text per step (``None``: silent).
    device
        Torch device for the proposals (``'auto'``, ``'cpu'``, ``'cuda'``).

    Returns
    -------
    DemoProjects
        The two project folders and the phantom manifest.

    Raises
    ------
    DemoError
        ``out_dir`` holds a demo built with other parameters, or something that is not a
        demo.
    """
    say = progress or (lambda _text: None)
    out = Path(out_dir)
    params = {"seed": int(seed), "n_ct": int(n_ct), "n_mri": int(n_mri), "site": int(site)}
    manifest = _phantoms(out, params, say)
    organs = _project(out / ORGANS_DIR, "organs", manifest, say)
    spine = _project(out / SPINE_DIR, "spine", manifest, say)
    for folder in (organs, spine):
        with Project(folder) as project:
            todo = [c.id for c in project.cases() if _proposal(project, c.id) is None]
            if todo:
                say(f"proposing {len(todo)} {project.task} case(s) with the starter model ...")
                propose(project, todo, device=device, progress=say)
            else:
                say(f"{folder}: every case already has a proposal")
    return DemoProjects(organs, spine, manifest)


def _phantoms(out: Path, params: dict, say: Callable[[str], Any]) -> Path:
    """Write the phantom set once; refuse a folder built with other parameters."""
    stamp_path = out / STAMP_NAME
    manifest = out / PHANTOMS_DIR / "manifest.json"
    if stamp_path.exists():
        try:
            stamp = json.loads(stamp_path.read_text())
        except json.JSONDecodeError as exc:
            raise DemoError(f"{stamp_path}: unreadable ({exc}); delete {out} and rerun.") from exc
        if stamp != params:
            differ = ", ".join(
                f"{k} {stamp.get(k)} (asked {v})" for k, v in params.items() if stamp.get(k) != v
            )
            raise DemoError(
                f"{out} holds a demo built with other settings: {differ}. Rerun with those "
                "settings to reuse it, or pick another --out (or delete the folder)."
            )
        if manifest.exists():
            say(f"reusing the phantoms in {manifest.parent}")
            return manifest
    elif (out / ORGANS_DIR).exists() or (out / SPINE_DIR).exists():
        raise DemoError(
            f"{out} has {ORGANS_DIR}/ or {SPINE_DIR}/ but no {STAMP_NAME}: it is not a demo "
            "folder built by 'atlas-annotate demo'. Pick another --out."
        )
    from .phantoms import write_phantoms

    say(
        f"writing {params['n_ct']} CT and {params['n_mri']} lumbar MRI phantoms (seed "
        f"{params['seed']}, site {params['site']}) to {out / PHANTOMS_DIR} ..."
    )
    out.mkdir(parents=True, exist_ok=True)
    written = write_phantoms(
        out / PHANTOMS_DIR,
        params["n_ct"],
        params["n_mri"],
        params["seed"],
        "dicom",
        site=params["site"],
    )
    stamp_path.write_text(json.dumps(params, indent=1) + "\n")
    return Path(written)


def _project(folder: Path, task: str, manifest: Path, say: Callable[[str], Any]) -> Path:
    """``init`` (unless it exists) and ``add`` the manifest's cases not yet in it."""
    from .project.sources import cases_from_manifest

    if (folder / CONFIG_NAME).exists():
        project = Project(folder)
        if project.task != task:
            project.close()
            raise DemoError(
                f"{folder} is {task_phrase(project.task)}, expected {task_phrase(task)}."
            )
    else:
        project = Project.create(folder, task=task, name=f"demo {task}")
        say(f"created {task} project {folder}")
    with project:
        present = {c.id for c in project.cases()}
        added = []
        for case in cases_from_manifest(manifest, task):
            if case.id not in present:
                project.add_case(case.id, case.images, truth=case.truth, source=case.source)
                added.append(case.id)
        if added:
            say(f"added {len(added)} {task} case(s): {', '.join(added)}")
    return folder


def _proposal(project: Project, case_id: str):
    """The case's latest proposal version, or None."""
    content = "grades" if project.task == "spine" else "mask"
    return project.latest_version(case_id, kinds=("proposal",), content=content)


def propose(
    project: Project,
    case_ids: Sequence[str],
    *,
    device: str = "auto",
    progress: Callable[[str], Any] | None = None,
) -> list:
    """Propose ``case_ids`` with the project's active model (``rounds.propose``)."""

    def report(done: int, total: int, message: str = "") -> None:
        if progress is not None:
            progress(f"  [{done}/{total}] {message}")

    try:
        from .rounds import propose as rounds_propose
    except ImportError:  # pragma: no cover - rounds.py not in this build yet
        from .models.proposals import propose_cases
        from .models.spine_proposals import propose_spine_cases

        fallback = propose_spine_cases if project.task == "spine" else propose_cases
        return fallback(project, list(case_ids), device=device, progress=report)
    return rounds_propose(project, list(case_ids), device=device, progress=report)


def demo_cases(organs: str | Path, spine: str | Path) -> list[dict[str, Any]]:
    """How good each proposal is, against the phantom truth, queue order per project.

    Returns
    -------
    list of dict
        Per case: ``id``, ``task``, ``uncertainty``, ``model_version``, ``version_id`` and
        ``proposal_mean_dice`` (organs: mean over the 9 classes of the proposal's Dice
        against the truth label) or ``rsna_score`` (spine: the RSNA 2024 metric of the
        proposal's probabilities against the true grades of that study; lower is better).
        A case without a proposal or truth gets ``None``.
    """
    rows = []
    for folder in (organs, spine):
        with Project(folder) as project:
            for case in project.queue():
                version = _proposal(project, case.id)
                row = {
                    "id": case.id,
                    "task": project.task,
                    "uncertainty": case.uncertainty,
                    "model_version": version.model_version if version else None,
                    "version_id": version.id if version else None,
                }
                if project.task == "organs":
                    row["proposal_mean_dice"] = _mean_dice(project, case, version)
                else:
                    row["rsna_score"] = _rsna(project, case, version)
                rows.append(row)
    return rows


def _mean_dice(project: Project, case, version) -> float | None:
    from .io import load_volume
    from .review.metrics import dice_per_class

    if version is None or not case.truth.get("label"):
        return None
    truth = load_volume(project.resolve(case.truth["label"])).array
    dice = dice_per_class(project.read_mask(version), truth, len(project.classes))
    return round(float(np.mean(dice)), 4)


def _rsna(project: Project, case, version) -> float | None:
    from .models.rsna_metric import rsna_score
    from .project.importing import read_grade_sheet

    if version is None or not case.truth.get("grades"):
        return None
    truth = read_grade_sheet(project.resolve(case.truth["grades"]), None)
    score = rsna_score({case.id: truth}, {case.id: project.read_grades(version)})["score"]
    return round(float(score), 4)

"""``atlas-annotate status PROJECT [--all] [--json]``.

First the campaign's progress (:mod:`~napari_atlas_annotate.project.progress`): cases
proposed and final, and per person cases in each state, edits and time on task. Then per
case, in queue order (the first :data:`SHOWN_CASES` unless ``--all``): proposals,
uncertainty, whether it is final, and each annotator's state (``new``, ``in_progress``,
``submitted``, ``imported``, ``final``, ``reopened``), versions, edits and time on task;
leads appear on the cases they finalized or edited. Then each training round in the words
the ``train`` command used.
"""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace

from ..project import Project
from ..project.progress import campaign_progress, progress_lines, reported_state

#: Cases listed one by one unless ``--all``.
SHOWN_CASES = 30


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument(
        "--all",
        action="store_true",
        help=f"list every case (default: the first {SHOWN_CASES} in queue order)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output (all cases)")


def run(args) -> int:
    from ..models.registry import active_record
    from ..training.round_lock import training_running

    with Project(args.project) as project:
        status = project.status()
        active = active_record(project)
        running = training_running(project)
    progress = campaign_progress(status)
    if args.json:
        print(json.dumps({**status, "progress": progress}, indent=2))
        return 0
    print(f"{status['task']} project {status['project']}: {len(status['cases'])} case(s)")
    if status["label_tolerance"]:
        print(
            f"  annotators may leave borders up to {status['label_tolerance']} voxel(s) off; "
            "retraining rounds allow for it"
        )
    for line in progress_lines(progress):
        print("  " + line)
    shown = status["cases"] if args.all else status["cases"][:SHOWN_CASES]
    if len(shown) < len(status["cases"]):
        print(
            f"cases, most doubtful first ({len(shown)} of {len(status['cases'])}; --all lists "
            "every one):"
        )
    elif shown:
        print("cases, most doubtful first:")
    for case in shown:
        unc = case["uncertainty"]
        head = f"  {case['id']:<24} proposals={case['proposals']}"
        head += f" uncertainty={unc:.3f}" if unc is not None else ""
        print(head + (" FINAL" if case["final"] else ""))
        for name, a in case["annotators"].items():
            who = f"{name} (lead)" if a["role"] == "lead" else name
            print(
                f"      {who:<16} {reported_state(a):<12} versions={a['versions']} "
                f"edits={a['edits']} time={a['seconds']:.0f}s"
            )
    unfinished = [r["id"] for r in status["rounds"] if not r.get("finished_at")]
    training_now = max(unfinished) if running and unfinished else None  # older ones stopped
    for r in status["rounds"]:
        line = round_line(
            r, status["project"], active.version if active else None, r["id"] == training_now
        )
        print("  " + line)
    return 0


def round_line(
    row: dict, project_folder: str, active_version: str | None, running: bool = False
) -> str:
    """One recorded round (a row of ``Project.status()['rounds']``) in plain words.

    ``running``: a training round holds the project's lock now, so an unfinished round is
    under way rather than stopped (:func:`~..training.round_lock.training_running`).
    """
    from ..rounds import describe_round

    metrics = row.get("metrics") or {}
    state = metrics.get("status")
    if not row.get("finished_at"):
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started_at"]))
        if running:
            return f"round {row['id']}: started {started}, training now"
        return (
            f"round {row['id']}: started {started}, stopped before it finished (the next "
            "training round records it as failed and removes what it left)"
        )
    if state == "cancelled":
        how = metrics.get("reason") or "cancelled"
        return f"round {row['id']}: {how}; the active model was left as it was"
    if state == "failed":
        return (
            f"round {row['id']}: failed ({metrics.get('error') or 'no reason recorded'}); the "
            "active model was left as it was"
        )
    result = SimpleNamespace(
        round=row["id"],
        model_version=row.get("model_version"),
        promoted=state == "promoted",
        previous_version=metrics.get("previous_version", "the previous model"),
        dice_new=_number(metrics.get("mean_dice")),
        dice_old=_number(metrics.get("previous_mean_dice")),
        voxels_to_edit_new=_number(metrics.get("voxels_to_edit_per_case")),
        voxels_to_edit_old=_number(metrics.get("previous_voxels_to_edit_per_case")),
        label_tolerance=metrics.get("label_tolerance") or 0,
        train_cases=metrics.get("train_cases") or [],
        holdout_cases=metrics.get("holdout_cases") or [],
        seconds=row["finished_at"] - row["started_at"],
        metrics=metrics,
    )
    if "rsna_score_new" in metrics:  # spine rounds: the grader's RSNA score
        result.rsna_score_old = _number(metrics.get("rsna_score_old"))
        result.rsna_score_new = _number(metrics.get("rsna_score_new"))
    return describe_round(result, project_folder, active_version=active_version)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan

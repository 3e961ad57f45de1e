"""``atlas-annotate train PROJECT [--device ...] [--epochs N] [--max-minutes M] [--json]``.

One round of retraining on the submitted labels (spine projects: grade sheets, the lumbar
grader); the new model becomes active only when it beats the current one on held-out cases.
"""

from __future__ import annotations

import json
import sys

from ..cli import non_negative_int, positive_float, positive_int
from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="training epochs (default 10)"
    )
    parser.add_argument(
        "--max-minutes", type=positive_float, default=None, help="training time cap"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--label-tolerance",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="organ projects: annotators leave borders up to N voxels off instead of "
        "repainting them; the held-out check then ignores voxels within 2N of a label "
        "border, where such labels keep the old model's borders (default: the project's "
        "setting from init, else 0)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from ..rounds import describe_round
    from ..training.round import train_round

    with Project(args.project) as project:
        progress = _progress_printer(args.json, spine=project.task == "spine")
        if project.task == "spine":  # the lumbar grader, through the task-independent API
            return _run_spine(project, args, progress)
        result = train_round(
            project,
            device=args.device,
            epochs=args.epochs,
            max_minutes=args.max_minutes,
            progress=progress,
            threads=args.threads,
            label_tolerance=args.label_tolerance,
        )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(describe_round(result, str(args.project)))
    return 0


def _progress_printer(quiet: bool, *, spine: bool):
    """``progress(done, total, stage)`` printing to stderr at each new stage, every 20th
    step and the last. Training counts optimiser iterations (all epochs together) for the
    organ model and epochs for the lumbar grader; the line says which."""
    unit = "epoch " if spine else "iteration "
    last = {"stage": None}

    def progress(done: int, total: int, stage: str) -> None:
        if quiet:
            return
        if stage != last["stage"] or done == total or done % 20 == 0:
            count = f"{unit if stage == 'training' else ''}{done}/{total}"
            print(f"{stage}: {count}", file=sys.stderr, flush=True)
            last["stage"] = stage

    return progress


def _run_spine(project, args, progress) -> int:
    from ..models.devices import set_cpu_threads
    from ..project import ProjectError
    from ..rounds import describe_round, retrain

    if args.max_minutes is not None:
        raise ProjectError("--max-minutes is for organ projects; give spine rounds --epochs.")
    if args.label_tolerance:
        raise ProjectError("--label-tolerance is for organ projects (label borders).")
    set_cpu_threads(args.threads)
    result = retrain(project, device=args.device, epochs=args.epochs, progress=progress)
    print(
        json.dumps(result.to_dict(), indent=2)
        if args.json
        else describe_round(result, str(args.project))
    )
    return 0

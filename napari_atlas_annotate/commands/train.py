"""``atlas-annotate train PROJECT [--device ...] [--epochs N] [--max-minutes M] [--json]``.

One round of retraining on the submitted labels (spine projects: grade sheets, the lumbar
grader); the new model becomes active only when it beats the current one on held-out cases.
"""

from __future__ import annotations

import json
import sys

from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 10)")
    parser.add_argument("--max-minutes", type=float, default=None, help="training time cap")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--label-tolerance",
        type=int,
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

    last = {"stage": None}

    def progress(done, total, stage):
        if args.json:
            return
        if stage != last["stage"] or done == total or done % 20 == 0:
            print(f"{stage}: {done}/{total}", file=sys.stderr, flush=True)
            last["stage"] = stage

    with Project(args.project) as project:
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

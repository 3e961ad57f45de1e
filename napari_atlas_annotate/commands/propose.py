"""``atlas-annotate propose PROJECT [--cases ID ...] [--device auto|cpu|cuda] [--json]``.

Runs the project's active model (organ segmentation, or the lumbar grader for spine
projects, which by default grades only cases without a proposal from the active grader) on
cases and stores each proposal as a version of kind ``proposal`` naming the model; the
case's uncertainty orders the annotation queue.
"""

from __future__ import annotations

import json
import sys

from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument("--cases", nargs="+", metavar="ID", help="case ids (default: all)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--no-uncertainty-map", action="store_true", help="do not save uncertainty maps"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from ..models.devices import set_cpu_threads
    from ..models.proposals import propose_cases

    set_cpu_threads(args.threads)

    def progress(done, total, message):
        if not args.json:
            print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)

    with Project(args.project) as project:
        if project.task == "spine":  # the lumbar grader, through the task-independent API
            from ..rounds import propose

            results = propose(project, args.cases, device=args.device, progress=progress)
        else:
            results = propose_cases(
                project,
                args.cases,
                device=args.device,
                progress=progress,
                save_uncertainty=not args.no_uncertainty_map,
            )
        queue = [c.id for c in project.queue()]
    if args.json:
        print(json.dumps({"proposals": [vars(r) for r in results], "queue": queue}, indent=2))
        return 0
    for r in results:
        print(
            f"{r.case_id}: proposal version {r.version_id} by {r.model_version}, "
            f"uncertainty {r.uncertainty:.4f} ({r.seconds:.1f} s)"
        )
    print("queue (most doubtful first): " + ", ".join(queue))
    return 0

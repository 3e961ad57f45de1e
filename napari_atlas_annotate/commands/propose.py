"""``atlas-annotate propose PROJECT [--cases ID ...] [--device auto|cpu|cuda] [--json]``.

Runs the project's active model (organ segmentation, or the lumbar grader for spine
projects, which by default grades only cases without a proposal from the active grader) on
cases and stores each proposal as a version of kind ``proposal`` naming the model; the
case's uncertainty orders the annotation queue. A proposal the model already made for the
case is not stored twice (reported as unchanged).

A case whose image cannot be loaded does not stop the others: they are proposed, the failed
cases are listed with the reason, and the exit code is 1.
"""

from __future__ import annotations

import json
import sys

from ..cli import positive_int
from ..project import Project, ProjectError


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="ID",
        help="case ids, space- or comma-separated (default: all)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--no-uncertainty-map", action="store_true", help="do not save uncertainty maps"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def case_ids(values: list[str] | None) -> list[str] | None:
    """``--cases`` values as ids: ``a b``, ``a,b`` and ``a, b`` alike (None: all cases)."""
    if not values:
        return None
    ids = [cid.strip() for value in values for cid in value.split(",")]
    ids = [cid for cid in ids if cid]
    if not ids:
        raise ProjectError("--cases: no case ids given; leave --cases out to propose all cases.")
    return ids


def run(args) -> int:
    from ..models.devices import set_cpu_threads
    from ..models.proposals import ProposalBatchError, propose_cases

    set_cpu_threads(args.threads)
    ids = case_ids(args.cases)

    def progress(done, total, message):
        if not args.json:
            print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)

    failures: dict[str, str] = {}
    with Project(args.project) as project:
        try:
            if project.task == "spine":  # the lumbar grader, through the task-independent API
                from ..rounds import propose

                results = propose(project, ids, device=args.device, progress=progress)
            else:
                results = propose_cases(
                    project,
                    ids,
                    device=args.device,
                    progress=progress,
                    save_uncertainty=not args.no_uncertainty_map,
                )
        except ProposalBatchError as exc:
            results, failures = exc.proposals, exc.failures
        queue = [c.id for c in project.queue(include_final=False)]
        n_final = len(project.cases()) - len(queue)
    if args.json:
        print(
            json.dumps(
                {
                    "proposals": [vars(r) for r in results],
                    "failures": [{"case_id": c, "error": m} for c, m in failures.items()],
                    "queue": queue,
                },
                indent=2,
            )
        )
        return 1 if failures else 0
    for r in results:
        stored = "unchanged, " if r.unchanged else ""
        print(
            f"{r.case_id}: proposal version {r.version_id} by {r.model_version} ({stored}"
            f"uncertainty {r.uncertainty:.4f}, {r.seconds:.1f} s)"
        )
    final = f"; {n_final} final case(s) left out" if n_final else ""
    print(f"queue (most doubtful first{final}): " + (", ".join(queue) or "nothing to annotate"))
    if failures:
        print(
            f"atlas-annotate propose: {len(failures)} case(s) could not be proposed "
            f"({len(results)} were):",
            file=sys.stderr,
        )
        for message in failures.values():
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0

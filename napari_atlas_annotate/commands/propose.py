"""``atlas-annotate propose PROJECT [--cases ID ... | --all] [--device auto|cpu|cuda] [--json]``.

Runs the project's active model (organ segmentation, or the lumbar grader for spine
projects) on cases and stores each proposal as a version of kind ``proposal`` naming the
model; the case's uncertainty orders the annotation queue. By default it proposes the cases
still to be annotated (not final) that have no proposal from the active model: after a
round promoted a model, all of them; after a batch was stopped, the rest. ``--cases``
names cases (always proposed), ``--all`` takes every case. A proposal the model already
made for the case is not stored twice (reported as unchanged).

A case whose image cannot be loaded does not stop the others: they are proposed, the failed
cases are listed with the reason, and the exit code is 1.

Each case's progress line says about how long the rest of the batch takes (a 20,000-case
project on a CPU is days of proposing). A batch of more than :data:`LISTED` cases is summed
up after it (how many proposals, by which model, uncertainty and time) instead of a line
per case, and more than :data:`LISTED` warnings or failures are cut to the first ones and a
count; ``--json`` lists every case.
"""

from __future__ import annotations

import json
import shlex
import sys
import time

from ..case_lists import first_ids
from ..cli import positive_int
from ..durations import duration
from ..project import Project, ProjectError


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="ID",
        help="case ids, space- or comma-separated (default: the cases not final without a "
        "proposal from the active model)",
    )
    parser.add_argument(
        "--all",
        dest="every",
        action="store_true",
        help="propose every case again, final ones included",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--no-uncertainty-map", action="store_true", help="do not save uncertainty maps"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


#: Queue entries printed after a batch (``--json`` has them all).
QUEUE_SHOWN = 20
#: Proposals, warnings and failures listed one a line; past this they are summed up.
LISTED = 20


def _active_version(project: Project) -> str:
    from ..models.registry import active_record

    record = active_record(project)
    return record.version if record is not None else "the active model"


def case_ids(values: list[str] | None) -> list[str] | None:
    """``--cases`` values as ids: ``a b``, ``a,b`` and ``a, b`` alike (None: all cases)."""
    if not values:
        return None
    ids = [cid.strip() for value in values for cid in value.split(",")]
    ids = list(dict.fromkeys(cid for cid in ids if cid))  # each case once, in the order given
    if not ids:
        raise ProjectError("--cases: no case ids given; leave --cases out to propose all cases.")
    return ids


def run(args) -> int:
    from ..models.devices import set_cpu_threads
    from ..models.proposals import ProposalBatchError, propose_cases

    set_cpu_threads(args.threads)
    ids = case_ids(args.cases)
    if ids and args.every:
        raise ProjectError("--cases names cases and --all takes every case: give one of them.")

    started = time.monotonic()

    def progress(done, total, message):
        if not args.json:
            left = time_left(time.monotonic() - started, done, total)
            print(f"[{done}/{total}] {message}{left}", file=sys.stderr, flush=True)

    failures: dict[str, str] = {}
    with Project(args.project) as project:
        try:
            if project.task == "spine":  # the lumbar grader, through the task-independent API
                from ..rounds import propose

                results = propose(
                    project, ids, device=args.device, progress=progress, every=args.every
                )
            else:
                results = propose_cases(
                    project,
                    ids,
                    device=args.device,
                    progress=progress,
                    save_uncertainty=not args.no_uncertainty_map,
                    every=args.every,
                )
        except ProposalBatchError as exc:
            results, failures = exc.proposals, exc.failures
        queue = [c.id for c in project.queue(include_final=False)]
        active = _active_version(project)
        n_cases = len(project.cases())
        n_final = n_cases - len(queue)
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
    _print_results(results)
    if not n_cases:
        print(
            "no cases yet: add images with 'atlas-annotate add "
            f"{shlex.quote(str(args.project))} PATH...', then propose."
        )
        return 0
    if not results and not failures and ids is None:
        print(
            f"nothing to propose: every case not final has a proposal from {active}; "
            "--all proposes every case again."
        )
    print(queue_line(queue, n_final))
    if failures:
        _print_failures(failures, len(results))
        return 1
    return 0


def _print_failures(failures: dict[str, str], n_proposed: int) -> None:
    """Why each case could not be proposed, the first :data:`LISTED` of them."""
    print(f"atlas-annotate propose: {failures_line(len(failures), n_proposed)}:", file=sys.stderr)
    for message in list(failures.values())[:LISTED]:
        print(f"  {message}", file=sys.stderr)
    rest = list(failures)[LISTED:]
    if rest:
        print(f"  ... and {len(rest)} more: {first_ids(rest)} (--json lists each)", file=sys.stderr)


def _print_results(results: list) -> None:
    """A line per proposal, or past :data:`LISTED` of them one summary; then the warnings
    (organ proposals say what to check), the first :data:`LISTED` of them."""
    if len(results) <= LISTED:
        for r in results:
            stored = "unchanged, " if r.unchanged else ""
            print(
                f"{r.case_id}: proposal version {r.version_id} by {r.model_version} ({stored}"
                f"uncertainty {r.uncertainty:.4f}, {r.seconds:.1f} s)"
            )
    else:
        print(batch_summary(results))
    warned = [r for r in results if getattr(r, "warning", "")]
    for r in warned[:LISTED]:
        print(f"warning: {r.case_id}: {r.warning}", file=sys.stderr)
    if len(warned) > LISTED:
        rest = [r.case_id for r in warned[LISTED:]]
        print(
            f"warning: {len(rest)} more cases have warnings: {first_ids(rest)} (--json gives "
            "each case's)",
            file=sys.stderr,
        )


def batch_summary(results: list) -> str:
    """One line for a batch of proposals: how many (new and unchanged), by which model,
    their uncertainty (lowest, median, highest) and the time they took."""
    models = sorted({r.model_version for r in results})
    unchanged = sum(1 for r in results if r.unchanged)
    stored = f" ({unchanged} unchanged, {len(results) - unchanged} new)" if unchanged else ""
    values = sorted(r.uncertainty for r in results)
    median = values[len(values) // 2]
    seconds = sum(r.seconds for r in results)
    return (
        f"{_count(len(results), 'proposal')}{stored} by {', '.join(models)}; uncertainty "
        f"{values[0]:.4f} to {values[-1]:.4f} (median {median:.4f}); {duration(seconds)} in "
        f"all, {seconds / len(results):.1f} s a case (--json lists each)"
    )


def time_left(elapsed: float, done: int, total: int) -> str:
    """``; about 2.1 h left`` from the pace so far (empty when done or too early)."""
    if done <= 0 or done >= total or elapsed <= 0:
        return ""
    return f"; about {duration(elapsed / done * (total - done))} left"


def _count(n: int, noun: str) -> str:
    """``1 final case``, ``2 final cases``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def queue_line(queue: list[str], n_final: int, shown: int = QUEUE_SHOWN) -> str:
    """The annotation queue after a batch: its first ``shown`` cases, and how many more."""
    final = f"; {_count(n_final, 'final case')} left out" if n_final else ""
    listed = ", ".join(queue[:shown]) or "nothing to annotate"
    more = f", ... ({len(queue) - shown} more)" if len(queue) > shown else ""
    return f"queue (most doubtful first{final}): {listed}{more}"


def failures_line(n_failed: int, n_proposed: int) -> str:
    """``2 cases could not be proposed (1 was)``."""
    return (
        f"{_count(n_failed, 'case')} could not be proposed "
        f"({n_proposed} {'was' if n_proposed == 1 else 'were'})"
    )

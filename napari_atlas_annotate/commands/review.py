"""``atlas-annotate review PROJECT [--json] [--report DIR] [--case ID]``.

Agreement between annotators for every case with at least two of them, most disputed
first: per class Dice / HD95 (mm) / volume difference (ml) for organ projects, weighted
kappa per condition and overall for spine projects. ``--report DIR`` also writes
``DIR/index.html`` with plots for the lead.

Examples
--------
.. code-block:: console

    $ atlas-annotate review campaign --json --report campaign/review
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", type=Path, help="project folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write DIR/index.html")
    parser.add_argument(
        "--case", action="append", metavar="ID", help="review only this case (repeatable)"
    )


def run(args: argparse.Namespace) -> int:
    from ..project import Project
    from ..review.cases import review_project
    from ..review.report import write_report

    with Project(args.project) as project:
        reviews, skipped = review_project(project, args.case)
        report = {
            "project": str(project.folder),
            "task": project.task,
            "cases": [r.to_dict() for r in reviews],
            "skipped": skipped,
        }
        if args.report:
            path = write_report(
                args.report,
                reviews,
                skipped,
                title=project.config.name,
                task=project.task,
                class_names=project.classes or None,
            )
            report["report"] = str(path)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for case in report["cases"]:
        if "classes" in case:
            worst = min(
                (
                    (d, name, pair)
                    for name, c in case["classes"].items()
                    if any(v > 0 for v in c["volume_ml"].values())
                    for pair, d in c["dice"].items()
                ),
                default=(1.0, "-", "-"),
            )
            detail = f"worst {worst[1]} Dice {worst[0]:.3f} ({worst[2]})"
        else:
            overall = case["kappa"]["overall"]
            detail = (
                "kappa "
                + ", ".join(f"{p} {'-' if k is None else f'{k:.3f}'}" for p, k in overall.items())
                + f"; {len(case['disputed_cells'])} disputed cell(s)"
            )
        final = " FINAL" if case["final_version"] else ""
        print(
            f"{case['id']:<16} disagreement {case['disagreement']:.3f}  "
            f"[{', '.join(case['annotators'])}]  {detail}{final}"
        )
    for case in skipped:
        print(f"{case['id']:<16} skipped: {case['reason']}")
    if args.report:
        print(f"report: {report['report']}")
    return 0
